//! End to end: the real `serve` (in-process) against wiremock Ravan, Slack and Discord on
//! loopback, polling every second. Waits are on conditions with deadlines, never fixed sleeps.

mod common;

use std::time::Duration;

use common::{AGENT_A, AGENT_B, FakeRavan, TestSettings, bodies, more_cycles, wait_until};
use ravan_watch::commands::serve;
use serde_json::json;
use tokio::sync::oneshot;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LIMIT: Duration = Duration::from_secs(20);

struct Sinks {
    slack: MockServer,
    discord: MockServer,
}

impl Sinks {
    async fn start() -> Self {
        let slack = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/services/T0/B0/slack-secret"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&slack)
            .await;
        let discord = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/webhooks/1/discord-secret"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&discord)
            .await;
        Self { slack, discord }
    }

    async fn counts(&self) -> (usize, usize) {
        (
            bodies(&self.slack).await.len(),
            bodies(&self.discord).await.len(),
        )
    }

    async fn wait_for(&self, n: usize, what: &str) {
        wait_until(LIMIT, what, || async { self.counts().await == (n, n) }).await;
    }
}

struct Running {
    _db: tempfile::TempDir,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(ravan: &FakeRavan, sinks: &Sinks, agents: &str) -> Running {
    let slack = format!("{}/services/T0/B0/slack-secret", sinks.slack.uri());
    let discord = format!("{}/api/webhooks/1/discord-secret", sinks.discord.uri());
    let (db, database) = common::temp_database();
    let config = TestSettings::new(&ravan.uri())
        .database(&database)
        .any_port()
        .agents(agents)
        .every_second()
        .poll_timeout("2s")
        .failure(2)
        .success(1)
        .slack(&slack)
        .discord(&discord)
        .config();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve::run(config, async move {
        let _ = stopped.await;
    }));
    Running {
        _db: db,
        stop,
        task,
    }
}

impl Running {
    async fn shutdown(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("serve stops within its shutdown budget")
            .unwrap()
            .unwrap();
    }
}

fn text(v: &serde_json::Value) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_and_recovery_give_one_message_each_per_sink() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    ravan.set_status(AGENT_B, "active", None);
    let sinks = Sinks::start().await;
    let running = start(&ravan, &sinks, &format!("{AGENT_A},{AGENT_B}")).await;

    more_cycles(&ravan, 2, 2).await;
    assert_eq!(sinks.counts().await, (0, 0), "a healthy agent says nothing");

    ravan.set_status(AGENT_A, "errored", Some("Cal.com token revoked"));
    sinks.wait_for(1, "the down alert on both sinks").await;
    more_cycles(&ravan, 2, 3).await;
    assert_eq!(
        sinks.counts().await,
        (1, 1),
        "exactly one down message per sink"
    );

    let slack = text(&bodies(&sinks.slack).await[0]);
    let discord = text(&bodies(&sinks.discord).await[0]);
    for (sink, body) in [("slack", &slack), ("discord", &discord)] {
        assert!(body.contains(AGENT_A), "{sink}: agent id in {body}");
        assert!(body.contains("errored"), "{sink}: new status in {body}");
        assert!(
            body.contains("Cal.com token revoked"),
            "{sink}: account error in {body}"
        );
        assert!(
            !body.contains(AGENT_B),
            "{sink}: the healthy agent is not named"
        );
    }
    assert_eq!(
        bodies(&sinks.discord).await[0]["allowed_mentions"],
        json!({"parse": []})
    );

    ravan.set_status(AGENT_A, "active", None);
    sinks.wait_for(2, "the recovery on both sinks").await;
    more_cycles(&ravan, 2, 2).await;
    assert_eq!(
        sinks.counts().await,
        (2, 2),
        "exactly one recovery message per sink"
    );
    for server in [&sinks.slack, &sinks.discord] {
        let recovery = text(&bodies(server).await[1]);
        assert!(
            recovery.contains(AGENT_A) && recovery.contains("active"),
            "{recovery}"
        );
        assert!(recovery.to_lowercase().contains("recover"), "{recovery}");
    }

    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stretch_of_server_errors_gives_no_agent_alert() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let sinks = Sinks::start().await;
    let running = start(&ravan, &sinks, AGENT_A).await;
    more_cycles(&ravan, 1, 1).await;

    ravan.answer_all(Some(ResponseTemplate::new(500).set_body_json(
        json!({"success": false, "message": "db down", "code": "INTERNAL_ERROR"}),
    )));
    // Every poll failing is the monitor's trouble: one monitor alert, no agent alert.
    sinks.wait_for(1, "the monitor alert").await;
    more_cycles(&ravan, 1, 3).await;
    assert_eq!(sinks.counts().await, (1, 1));
    for server in [&sinks.slack, &sinks.discord] {
        let body = text(&bodies(server).await[0]);
        assert!(
            !body.contains(AGENT_A),
            "the monitor alert names no agent: {body}"
        );
        assert!(body.contains("500"), "it says why: {body}");
    }

    ravan.answer_all(None);
    sinks.wait_for(2, "the monitor recovery").await;
    more_cycles(&ravan, 1, 2).await;
    assert_eq!(
        sinks.counts().await,
        (2, 2),
        "no agent alert after the stretch"
    );
    for server in [&sinks.slack, &sinks.discord] {
        assert!(!text(&bodies(server).await[1]).contains(AGENT_A));
    }

    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blip_shorter_than_the_threshold_says_nothing() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let sinks = Sinks::start().await;
    let running = start(&ravan, &sinks, AGENT_A).await;
    more_cycles(&ravan, 1, 1).await;
    ravan.set_status(AGENT_A, "errored", Some("blip"));
    more_cycles(&ravan, 1, 1).await;
    ravan.set_status(AGENT_A, "active", None);
    more_cycles(&ravan, 1, 3).await;
    assert_eq!(sinks.counts().await, (0, 0));
    running.shutdown().await;
}

/// The API and the poll cycle together: an agent added over the API is polled from the next
/// cycle on; a removed one is not, and its pending alert is still delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_added_and_removed_over_the_api() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    ravan.set_status(AGENT_B, "errored", Some("Cal.com token revoked"));
    // Slack is down at first: the alert about B waits in the outbox.
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&slack)
        .await;
    let (_db, database) = common::temp_database();
    let hook = format!("{}/services/T0/B0/secret", slack.uri());
    let service = TestSettings::new(&ravan.uri())
        .agents(AGENT_A)
        .every_second()
        .failure(2)
        .slack(&hook)
        .api(&database, "admin-secret")
        .start()
        .await;
    let api = format!("http://{}", service.addr());
    let http = reqwest::Client::new();

    let created = http
        .post(format!("{api}/agents"))
        .bearer_auth("admin-secret")
        .json(&json!({"agent_id": AGENT_B, "name": "Support bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    wait_until(LIMIT, "B polled", || async {
        ravan.polls_of(AGENT_B).await >= 2
    })
    .await;
    wait_until(LIMIT, "the alert about B tried", || async {
        !slack
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    })
    .await;
    let agent: serde_json::Value = common::json_of(
        http.get(format!("{api}/agents/{AGENT_B}"))
            .bearer_auth("admin-secret"),
    )
    .await;
    assert_eq!(agent["state"]["status"], "errored");
    assert_eq!(agent["state"]["healthy"], false);

    let deleted = http
        .delete(format!("{api}/agents/{AGENT_B}"))
        .bearer_auth("admin-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let polls_of_b = ravan.polls_of(AGENT_B).await;
    let polls_of_a = ravan.polls_of(AGENT_A).await;
    wait_until(LIMIT, "three more cycles", || async {
        ravan.polls_of(AGENT_A).await >= polls_of_a + 3
    })
    .await;
    assert!(
        ravan.polls_of(AGENT_B).await <= polls_of_b + 1,
        "a removed agent is not polled (one poll may have been in flight)"
    );

    // Slack recovers: the alert about the removed agent is still delivered.
    slack.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    // The entry has been failing for a few seconds: its next retry can be up to ~10 s away.
    wait_until(Duration::from_secs(60), "the pending alert", || async {
        !slack
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    })
    .await;
    let body =
        String::from_utf8_lossy(&slack.received_requests().await.unwrap()[0].body).into_owned();
    assert!(
        body.contains("Support bot") && body.contains(AGENT_B),
        "{body}"
    );

    service.stop().await;
}
