//! Confirm polls (`CONFIRM_INTERVAL`) through the real monitor, store, outbox and scheduler,
//! against the fake Ravan and a fake Slack: an answer a threshold has yet to decide is polled
//! again before the next tick, for that agent alone, and its alert is committed like a
//! cycle's. Ticks are run by hand (the schedule never ticks during a test); the confirm rounds
//! run on the scheduler's own loop, as in `serve`.

mod common;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use common::ids::agent_ids;
use common::{AGENT_A, AGENT_B, AGENT_C, FakeRavan, bodies, wait_until, webhook_sink};
use ravan_watch::domain::maintenance::WindowRequest;
use ravan_watch::domain::{AgentId, Platform, PollSchedule};
use ravan_watch::leader::{Leadership, Role};
use ravan_watch::monitor::Monitor;
use ravan_watch::notify::{Outbox, RetryPolicy, Worker};
use ravan_watch::scheduler::Scheduler;
use ravan_watch::store::Store;
use ravan_watch::tracker::Thresholds;
use wiremock::{MockServer, ResponseTemplate};

/// The confirm interval of these tests: short, so they finish soon; the ticks never come.
const CONFIRM: Duration = Duration::from_millis(300);

/// A monitor of `agents` (all `active`) with `FAILURE_THRESHOLD=2` and `SUCCESS_THRESHOLD=2`,
/// alerting to a fake Slack, its outbox delivering and its confirm rounds running.
struct Rig {
    ravan: FakeRavan,
    store: Store,
    monitor: Arc<Monitor>,
    leadership: Leadership,
    slack: MockServer,
    _scheduler: Option<Scheduler>,
    _worker: Worker,
}

impl Rig {
    async fn start(agents: &[String], confirm: Duration) -> Self {
        Self::led(agents, confirm, |_| Leadership::for_tests(), true).await
    }

    /// [`Rig::start`], leading as `lead` says for the store, with the scheduler's confirm
    /// loop running or not (`rounds`).
    async fn led(
        agents: &[String],
        confirm: Duration,
        lead: impl FnOnce(&Store) -> Leadership,
        rounds: bool,
    ) -> Self {
        let ravan = FakeRavan::start().await;
        for id in agents {
            ravan.set_status(id, "active", None);
        }
        let store = Store::open("sqlite::memory:").await.unwrap();
        let ids: Vec<AgentId> = agents.iter().map(|id| id.parse().unwrap()).collect();
        store.ensure_agents(&ids, chrono::Utc::now()).await.unwrap();
        let slack = webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
        let hook = common::alerts::webhook(Platform::Slack, &format!("{}/slack", slack.uri()));
        let leadership = lead(&store);
        let outbox = Outbox::new(store.clone(), RetryPolicy::default(), leadership.clone())
            .unwrap()
            .with_defaults(vec![hook.clone()]);
        let worker = outbox.spawn();
        let never = PollSchedule::parse(common::settings::NEVER).unwrap();
        let monitor = Monitor::new(
            common::ravan_client(&ravan),
            store.clone(),
            outbox,
            leadership.clone(),
            vec![hook],
            Thresholds {
                failure: NonZeroU32::new(2).unwrap(),
                success: NonZeroU32::new(2).unwrap(),
                reminder: None,
            },
            16,
        )
        .confirm_after(confirm)
        .schedule(never.clone());
        let monitor = Arc::new(monitor);
        let scheduler = rounds.then(|| Scheduler::start(&never, monitor.clone()));
        Self {
            ravan,
            store,
            monitor,
            leadership,
            slack,
            _scheduler: scheduler,
            _worker: worker,
        }
    }

    /// One tick's cycle.
    async fn tick(&self) {
        self.monitor.run_cycle().await.unwrap();
    }

    /// Whether a confirm round is planned.
    fn planned(&self) -> bool {
        self.monitor.confirm_plan().borrow().is_some()
    }

    /// The Slack messages received, as text.
    async fn messages(&self) -> Vec<String> {
        bodies(&self.slack)
            .await
            .iter()
            .map(|b| b.to_string())
            .collect()
    }

    /// Waits until `n` Slack messages have arrived; returns them.
    async fn wait_messages(&self, n: usize, what: &str) -> Vec<String> {
        wait_until(Duration::from_secs(10), what, || async {
            self.messages().await.len() >= n
        })
        .await;
        self.messages().await
    }

    /// Each agent's status polls so far.
    async fn polls(&self, agents: &[&str]) -> Vec<usize> {
        let mut counts = Vec::new();
        for agent in agents {
            counts.push(self.ravan.polls_of(agent).await);
        }
        counts
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaking_agent_alone_is_polled_again_and_alerted_before_the_next_tick() {
    let agents = [AGENT_A, AGENT_B, AGENT_C].map(String::from);
    let rig = Rig::start(&agents, CONFIRM).await;
    rig.tick().await;
    assert!(!rig.planned(), "steady: nothing to confirm");
    rig.ravan
        .set_status(AGENT_A, "errored", Some("token expired"));
    let before = std::time::Instant::now();
    rig.tick().await;
    let messages = rig.wait_messages(1, "the down alert").await;
    assert!(
        before.elapsed() >= CONFIRM,
        "the confirm poll waits the interval"
    );
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains(AGENT_A) && messages[0].contains("errored"));
    // Two ticks for every agent, and one confirm poll for the one in transition.
    assert_eq!(rig.polls(&[AGENT_A, AGENT_B, AGENT_C]).await, [3, 2, 2]);
    wait_until(Duration::from_secs(5), "the plan cleared", || async {
        !rig.planned()
    })
    .await;
    // The alert was committed like a cycle's: the agent's state says it is down.
    let stored = rig.store.agent(AGENT_A.parse().unwrap()).await.unwrap();
    assert!(stored.unwrap().state.is_alerting());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_is_confirmed_the_same_way() {
    let agents = [AGENT_A, AGENT_B].map(String::from);
    let rig = Rig::start(&agents, CONFIRM).await;
    rig.ravan.set_status(AGENT_A, "errored", None);
    rig.tick().await;
    rig.wait_messages(1, "the down alert").await;
    assert_eq!(rig.polls(&[AGENT_A, AGENT_B]).await, [2, 1]);
    rig.ravan.set_status(AGENT_A, "active", None);
    rig.tick().await;
    let messages = rig.wait_messages(2, "the recovery").await;
    assert!(
        messages[1].to_lowercase().contains("recovered"),
        "{}",
        messages[1]
    );
    assert_eq!(rig.polls(&[AGENT_A, AGENT_B]).await, [4, 2]);
    wait_until(Duration::from_secs(5), "the plan cleared", || async {
        !rig.planned()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blip_that_heals_at_its_confirm_poll_alerts_nothing_and_costs_one_request() {
    let agents = [AGENT_A, AGENT_B].map(String::from);
    let rig = Rig::start(&agents, CONFIRM).await;
    rig.tick().await;
    rig.ravan.set_status(AGENT_A, "errored", None);
    rig.tick().await;
    assert!(
        rig.planned(),
        "a first unhealthy answer plans a confirm poll"
    );
    rig.ravan.set_status(AGENT_A, "active", None);
    wait_until(Duration::from_secs(10), "the confirm poll", || async {
        rig.ravan.polls_of(AGENT_A).await == 3
    })
    .await;
    wait_until(Duration::from_secs(5), "the plan cleared", || async {
        !rig.planned()
    })
    .await;
    rig.tick().await;
    assert_eq!(rig.polls(&[AGENT_A, AGENT_B]).await, [4, 3]);
    assert!(
        rig.messages().await.is_empty(),
        "a healed blip alerts nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_agents_breaking_together_are_confirmed_in_one_round_and_one_message() {
    let agents = agent_ids(50);
    let rig = Rig::start(&agents, CONFIRM).await;
    rig.tick().await;
    for id in &agents {
        rig.ravan.set_status(id, "errored", None);
    }
    rig.tick().await;
    let messages = rig.wait_messages(1, "the grouped alert").await;
    wait_until(Duration::from_secs(5), "the plan cleared", || async {
        !rig.planned()
    })
    .await;
    // Every agent polled by both ticks and once more, together.
    assert_eq!(rig.ravan.polls().await, 150);
    wait_until(Duration::from_secs(5), "nothing pending", || async {
        rig.store.outbox_pending().await.unwrap() == 0
    })
    .await;
    assert_eq!(rig.messages().await.len(), 1, "one message for 50 agents");
    assert!(messages[0].contains("50"), "{}", messages[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_confirm_polls_off_the_threshold_waits_for_the_ticks() {
    let agents = [AGENT_A].map(String::from);
    let rig = Rig::start(&agents, Duration::ZERO).await;
    rig.ravan.set_status(AGENT_A, "errored", None);
    rig.tick().await;
    assert!(!rig.planned(), "off: nothing is planned");
    rig.tick().await;
    rig.wait_messages(1, "the down alert at the second tick")
        .await;
    assert_eq!(rig.ravan.polls_of(AGENT_A).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_that_decides_first_leaves_nothing_to_confirm() {
    let agents = [AGENT_A].map(String::from);
    let rig = Rig::start(&agents, Duration::from_secs(3600)).await;
    rig.ravan.set_status(AGENT_A, "errored", None);
    rig.tick().await;
    assert!(rig.planned());
    rig.tick().await;
    assert!(
        !rig.planned(),
        "the tick's second answer decided: no confirm poll"
    );
    rig.wait_messages(1, "the down alert").await;
    assert_eq!(rig.ravan.polls_of(AGENT_A).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_no_longer_leads_makes_no_confirm_poll() {
    let agents = [AGENT_A].map(String::from);
    let lead = |store: &Store| Leadership::leased(store.clone());
    let rig = Rig::led(&agents, CONFIRM, lead, false).await;
    let leadership = &rig.leadership;
    assert_eq!(leadership.claim().await, Role::Leader);
    rig.ravan.set_status(AGENT_A, "errored", None);
    rig.tick().await;
    let due = (*rig.monitor.confirm_plan().borrow()).expect("a confirm round is planned");
    assert!(rig.monitor.try_run_confirm().await.is_none(), "not due yet");
    assert!(leadership.release().await);
    tokio::time::sleep_until(due).await;
    let report = rig.monitor.try_run_confirm().await.unwrap().unwrap();
    assert!(report.standby);
    assert_eq!(
        rig.ravan.polls_of(AGENT_A).await,
        1,
        "no poll after the lease was given up"
    );
    assert!(!rig.planned());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_poll_that_fails_leaves_the_agent_to_the_next_tick() {
    let agents = [AGENT_A].map(String::from);
    let rig = Rig::start(&agents, CONFIRM).await;
    rig.tick().await;
    rig.ravan.set_status(AGENT_A, "errored", None);
    rig.tick().await;
    rig.ravan.set_answer(AGENT_A, ResponseTemplate::new(503));
    wait_until(
        Duration::from_secs(10),
        "the failed confirm poll",
        || async { rig.ravan.polls_of(AGENT_A).await == 3 },
    )
    .await;
    wait_until(Duration::from_secs(5), "the plan cleared", || async {
        !rig.planned()
    })
    .await;
    assert!(rig.messages().await.is_empty());
    rig.ravan.set_status(AGENT_A, "errored", None);
    rig.tick().await;
    let messages = rig.wait_messages(1, "the down alert at the tick").await;
    assert!(messages[0].contains(AGENT_A));
    assert_eq!(rig.ravan.polls_of(AGENT_A).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_a_maintenance_window_covers_costs_no_confirm_poll() {
    let agents = [AGENT_A, AGENT_B].map(String::from);
    let rig = Rig::start(&agents, CONFIRM).await;
    let now = chrono::Utc::now();
    let window = WindowRequest {
        name: Some("re-connect".into()),
        start_at: Some((now - chrono::Duration::hours(1)).to_rfc3339()),
        end_at: Some((now + chrono::Duration::hours(1)).to_rfc3339()),
        agent_ids: Some(vec![AGENT_A.into()]),
        ..WindowRequest::default()
    };
    let window = window
        .parse(uuid::Uuid::new_v4(), chrono_tz::UTC, now)
        .unwrap();
    rig.store.insert_window(&window).await.unwrap();
    rig.ravan.set_status(AGENT_A, "errored", None);
    rig.tick().await;
    assert!(!rig.planned(), "its alert is held anyway");
    rig.ravan.set_status(AGENT_B, "errored", None);
    rig.tick().await;
    assert!(rig.planned(), "B is not covered");
    let messages = rig.wait_messages(1, "B's down alert").await;
    assert!(messages[0].contains(AGENT_B) && !messages[0].contains(AGENT_A));
    assert_eq!(rig.polls(&[AGENT_A, AGENT_B]).await, [2, 3]);
}
