//! Several `serve` processes on one database, as real processes: one leads (polls and sends),
//! the others stand by; a standby takes over within `max(2 × the poll interval, 15 s)` when
//! the leader is killed or paused, delivers what was pending, and nothing is sent twice.
//! The same scenarios run on one SQLite file and on one PostgreSQL database.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::replica::Replica;
use common::{AGENT_A, FakeRavan, TestSettings, more_cycles, wait_until};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Polls every second, so the takeover bound is max(2 × 1 s, 15 s).
const TAKEOVER: Duration = Duration::from_secs(15);
const LIMIT: Duration = Duration::from_secs(20);

/// A webhook that accepts messages (recording each) or, while `failing`, answers 429 with
/// `Retry-After: 1`, so the message stays pending and is retried every second.
#[derive(Clone)]
struct Sink {
    failing: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<serde_json::Value>>>,
    ok: u16,
}

impl Respond for Sink {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self.failing.load(Ordering::SeqCst) {
            return ResponseTemplate::new(429).insert_header("Retry-After", "1");
        }
        let body = serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
        self.accepted.lock().unwrap().push(body);
        ResponseTemplate::new(self.ok).set_body_string(if self.ok == 200 { "ok" } else { "" })
    }
}

impl Sink {
    async fn start(ok: u16) -> (Sink, MockServer) {
        let sink = Sink {
            failing: Arc::default(),
            accepted: Arc::default(),
            ok,
        };
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(sink.clone())
            .mount(&server)
            .await;
        (sink, server)
    }

    fn accepted(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }
}

/// A fake Ravan with one agent, a Slack and a Discord sink, and the settings every replica
/// shares (the database among them).
struct Fleet {
    ravan: FakeRavan,
    slack: Sink,
    discord: Sink,
    _servers: (MockServer, MockServer),
    settings: TestSettings,
}

impl Fleet {
    async fn new(database: &str) -> Fleet {
        let ravan = FakeRavan::start().await;
        ravan.set_status(AGENT_A, "active", None);
        let (slack, slack_server) = Sink::start(200).await;
        let (discord, discord_server) = Sink::start(204).await;
        let settings = TestSettings::new(&ravan.uri())
            .database(database)
            .agents(AGENT_A)
            .every_second()
            .poll_timeout("2s")
            .failure(1)
            .slack(&format!(
                "{}/services/T0/B0/slack-secret",
                slack_server.uri()
            ))
            .discord(&format!(
                "{}/api/webhooks/1/discord-secret",
                discord_server.uri()
            ));
        Fleet {
            ravan,
            slack,
            discord,
            _servers: (slack_server, discord_server),
            settings,
        }
    }

    async fn replica(&self) -> Replica {
        Replica::start(&self.settings.pairs()).await
    }

    /// A leader, then a standby.
    async fn pair(&self) -> (Replica, Replica) {
        let leader = self.replica().await;
        leader.wait_role("leader", LIMIT).await;
        let standby = self.replica().await;
        standby.wait_role("standby", LIMIT).await;
        (leader, standby)
    }

    /// Waits until Slack and Discord each accepted `n` messages in all.
    async fn wait_sent(&self, n: usize, what: &str) {
        wait_until(LIMIT, what, || async {
            self.slack.accepted() >= n && self.discord.accepted() >= n
        })
        .await;
    }

    /// Waits until `n` alerts are pending in the outbox (as `replica`'s `/metrics` reads it):
    /// the messages the sinks accepted are recorded as delivered. A leader stopped or killed
    /// between a webhook's answer and that record sends the message again after the takeover
    /// (delivery is at-least-once); the scenarios here are about the normal course.
    async fn wait_pending(&self, replica: &Replica, n: usize) {
        let want = n.to_string();
        wait_until(LIMIT, "the deliveries to be recorded", || async {
            replica.gauge("ravan_watch_outbox_pending").await.as_deref() == Some(want.as_str())
        })
        .await;
    }

    /// The database's password (PostgreSQL's) appears in no line `replica` logged.
    fn assert_no_password(&self, replica: &Replica) {
        let database = self.settings.get("DATABASE_URL").unwrap();
        if let Some(password) = url::Url::parse(database)
            .ok()
            .and_then(|u| u.password().map(str::to_owned))
        {
            assert!(!replica.logs().contains(&password), "{}", replica.logs());
        }
    }

    /// After a few more cycles, each destination accepted exactly `n` messages.
    async fn assert_sent_exactly(&self, n: usize) {
        more_cycles(&self.ravan, 1, 3).await;
        assert_eq!(
            (self.slack.accepted(), self.discord.accepted()),
            (n, n),
            "messages accepted by Slack and Discord"
        );
    }
}

/// One leader polls and sends; a flip alerts once per destination; `ravan_watch_leader` is 1
/// on the leader and 0 on the standby. A clean stop of the leader (a rolling deploy) hands
/// over at once, and the next flip again alerts once.
async fn one_leader_alerts_once_and_hands_over_on_a_clean_stop(database: &str) {
    let fleet = Fleet::new(database).await;
    let (leader, standby) = fleet.pair().await;
    assert_eq!(leader.leader_gauge().await.as_deref(), Some("1"));
    assert_eq!(standby.leader_gauge().await.as_deref(), Some("0"));

    fleet
        .ravan
        .set_status(AGENT_A, "errored", Some("token revoked"));
    fleet.wait_sent(1, "the down alert").await;
    fleet.ravan.set_status(AGENT_A, "active", None);
    fleet.wait_sent(2, "the recovery").await;
    fleet.assert_sent_exactly(2).await;
    assert!(
        !standby.logs().contains("\"delivered\""),
        "{}",
        standby.logs()
    );

    assert_eq!(leader.terminate().await, Some(0));
    // Released at shutdown: the standby's next claim (every 2 s) takes it.
    standby.wait_role("leader", Duration::from_secs(5)).await;
    fleet
        .ravan
        .set_status(AGENT_A, "errored", Some("token revoked"));
    fleet
        .wait_sent(3, "the down alert from the new leader")
        .await;
    fleet.assert_sent_exactly(3).await;
}

/// `kill -9` of the leader while an alert is still pending (Slack answers 429): the standby
/// leads within the bound and delivers it, and no destination gets anything twice.
async fn kill_9_of_the_leader_during_an_outage(database: &str) {
    let fleet = Fleet::new(database).await;
    let (mut leader, standby) = fleet.pair().await;
    fleet.slack.failing.store(true, Ordering::SeqCst);
    fleet
        .ravan
        .set_status(AGENT_A, "errored", Some("token revoked"));
    wait_until(LIMIT, "the down alert on Discord", || async {
        fleet.discord.accepted() == 1
    })
    .await;
    // Only Slack's is left pending.
    fleet.wait_pending(&leader, 1).await;
    leader.kill();
    standby.wait_role("leader", TAKEOVER).await;
    fleet.slack.failing.store(false, Ordering::SeqCst);
    fleet
        .wait_sent(1, "the pending alert from the new leader")
        .await;
    fleet.assert_sent_exactly(1).await;
}

/// The leader is paused (SIGSTOP) past its lease: the standby takes over and alerts the
/// recovery. When the old leader wakes (SIGCONT) it holds a stale picture (the agent down)
/// that would alert the recovery again; it steps down and sends nothing.
async fn a_paused_leader_sends_nothing_when_it_wakes(database: &str) {
    let fleet = Fleet::new(database).await;
    let (leader, standby) = fleet.pair().await;
    fleet
        .ravan
        .set_status(AGENT_A, "errored", Some("token revoked"));
    fleet.wait_sent(1, "the down alert").await;
    fleet.wait_pending(&leader, 0).await;

    leader.signal(libc::SIGSTOP);
    standby.wait_role("leader", TAKEOVER).await;
    fleet.ravan.set_status(AGENT_A, "active", None);
    fleet.wait_sent(2, "the recovery from the new leader").await;

    leader.signal(libc::SIGCONT);
    leader.wait_role("standby", Duration::from_secs(5)).await;
    fleet.assert_sent_exactly(2).await;
    assert_eq!(leader.role().await.as_deref(), Some("standby"));
    assert_eq!(standby.role().await.as_deref(), Some("leader"));
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_leader_alerts_once_and_hands_over_on_a_clean_stop() {
        let (_dir, url) = common::temp_database();
        super::one_leader_alerts_once_and_hands_over_on_a_clean_stop(&url).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_9_of_the_leader_during_an_outage() {
        let (_dir, url) = common::temp_database();
        super::kill_9_of_the_leader_during_an_outage(&url).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_leader_sends_nothing_when_it_wakes() {
        let (_dir, url) = common::temp_database();
        super::a_paused_leader_sends_nothing_when_it_wakes(&url).await;
    }
}

mod postgres {
    use super::*;
    use common::pg_cluster::PgCluster;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_leader_alerts_once_and_hands_over_on_a_clean_stop() {
        let Some(url) = common::postgres::fresh_database().await else {
            return;
        };
        super::one_leader_alerts_once_and_hands_over_on_a_clean_stop(&url).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kill_9_of_the_leader_during_an_outage() {
        let Some(url) = common::postgres::fresh_database().await else {
            return;
        };
        super::kill_9_of_the_leader_during_an_outage(&url).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_leader_sends_nothing_when_it_wakes() {
        let Some(url) = common::postgres::fresh_database().await else {
            return;
        };
        super::a_paused_leader_sends_nothing_when_it_wakes(&url).await;
    }

    /// PostgreSQL of this test's own: stopping it must not disturb the other tests' server.
    /// `None` (skipped, after one line) without PostgreSQL's binaries, unless under CI.
    fn own_cluster() -> Option<PgCluster> {
        let cluster = PgCluster::start();
        if cluster.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL's initdb is needed under CI (Debian's postgresql package)"
            );
            eprintln!("skipped: no initdb for a PostgreSQL server of the test's own");
        }
        cluster
    }

    /// PostgreSQL stops while the agent is down and starts again after it recovered: the
    /// leader steps down while the database is gone (no process leads), the processes carry
    /// on without a restart of their own, one leads again, and the recovery is alerted once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_restart_is_survived_without_a_restart_or_a_duplicate() {
        let Some(cluster) = own_cluster() else { return };
        let fleet = Fleet::new(&cluster.url()).await;
        let (mut first, mut second) = fleet.pair().await;
        fleet
            .ravan
            .set_status(AGENT_A, "errored", Some("token revoked"));
        fleet.wait_sent(1, "the down alert").await;
        // Recorded before the database goes: a stop between a webhook's answer and its record
        // sends the message again (at-least-once), which is not what this scenario is about.
        fleet.wait_pending(&first, 0).await;

        cluster.stop();
        fleet.ravan.set_status(AGENT_A, "active", None);
        wait_until(
            LIMIT,
            "the leader to step down without its database",
            || async {
                first.leader_gauge().await.as_deref() == Some("0")
                    && second.leader_gauge().await.as_deref() == Some("0")
            },
        )
        .await;
        if !(first.is_running() && second.is_running()) {
            panic!("a process exited:\n{}\n{}", first.logs(), second.logs());
        }
        cluster.start_again();
        wait_until(LIMIT, "one process to lead again", || async {
            let roles = [first.role().await, second.role().await];
            roles
                .iter()
                .filter(|r| r.as_deref() == Some("leader"))
                .count()
                == 1
        })
        .await;
        fleet.wait_sent(2, "the recovery").await;
        fleet.assert_sent_exactly(2).await;
        assert!(first.is_running() && second.is_running());
        fleet.assert_no_password(&first);
        fleet.assert_no_password(&second);
    }
}
