//! The helpers the integration tests share, each defined once; a test file uses them with
//! `mod common;`. Here: a monitor of the fake Ravan, webhook sinks, temporary databases, and
//! sending a request and reading its answer. Beside it: `ravan` is the one fake Ravan API
//! (`FakeRavan`, the benchmarks' too), `wait` waits on a condition with a deadline instead of
//! sleeping (`wait_until`), `settings` writes a test service's settings (`TestSettings`),
//! `alerts` builds alerts and webhooks, `api` serves the management API for the `api_*`
//! tests, `bin` runs the binary as operators do, `history` seeds a fleet with a month of
//! history, `ids` makes agent ids, `logs` captures what the code logs, `limits` checks payloads against the platforms' limits,
//! `postgres` gives a test a fresh PostgreSQL database (or skips it), `pg_cluster` a
//! PostgreSQL server of its own, and `replica` runs `serve` as a real process beside others on
//! one database.
#![allow(dead_code)]

pub mod alerts;
pub mod api;
pub mod bin;
pub mod history;
pub mod ids;
pub mod limits;
pub mod logs;
pub mod outbox;
pub mod pg_cluster;
pub mod postgres;
pub mod ravan;
pub mod replica;
pub mod settings;
pub mod signing;
pub mod wait;

use std::time::Duration;

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

// Each test file uses some of these, none all of them.
#[allow(unused_imports)]
pub use ravan::{
    FAKE_ORG_ID, FakeRavan, LISTED_SECRET, Shape, agent_body, calcom_org_body, ghl_body,
    health_body, info_body, listed_agent, no_private_body, status_body,
};
#[allow(unused_imports)]
pub use settings::TestSettings;
#[allow(unused_imports)]
pub use wait::{poll_until, wait_until, wait_until_some};

/// Fixed agent ids, for tests that name a few agents.
pub const AGENT_A: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
pub const AGENT_B: &str = "9b2c7a10-1d2e-4f3a-8b4c-5d6e7f809102";
pub const AGENT_C: &str = "0d4e5f60-7a8b-4c9d-8e0f-112233445566";

/// A Ravan client for the fake, with a bearer token and a 10 s timeout.
pub fn ravan_client(ravan: &FakeRavan) -> ravan_watch::ravan::RavanClient {
    ravan_watch::ravan::RavanClient::new(
        ravan.uri().parse().unwrap(),
        &ravan_watch::ravan::RavanAuth::Bearer(ravan_watch::domain::secret::Secret::new("t")),
        Duration::from_secs(10),
    )
    .unwrap()
}

/// A monitor of the fake on `store`, alerting to no webhook: `failure` unhealthy observations
/// make an alert, one healthy one a recovery. It always leads ([`Leadership::for_tests`]).
pub fn test_monitor(
    ravan: &FakeRavan,
    store: &ravan_watch::store::Store,
    concurrency: usize,
    failure: u32,
) -> ravan_watch::monitor::Monitor {
    let leadership = ravan_watch::leader::Leadership::for_tests();
    led_monitor(ravan, store, concurrency, failure, leadership)
}

/// [`test_monitor`] under `leadership`.
pub fn led_monitor(
    ravan: &FakeRavan,
    store: &ravan_watch::store::Store,
    concurrency: usize,
    failure: u32,
    leadership: ravan_watch::leader::Leadership,
) -> ravan_watch::monitor::Monitor {
    monitor_of(
        ravan_client(ravan),
        store,
        vec![],
        failure,
        concurrency,
        leadership,
    )
}

/// A monitor polling through `client` on `store`, alerting to `defaults` (its outbox's too):
/// `failure` unhealthy observations make an alert, one healthy one a recovery.
pub fn monitor_of(
    client: ravan_watch::ravan::RavanClient,
    store: &ravan_watch::store::Store,
    defaults: Vec<ravan_watch::domain::Webhook>,
    failure: u32,
    concurrency: usize,
    leadership: ravan_watch::leader::Leadership,
) -> ravan_watch::monitor::Monitor {
    let outbox = ravan_watch::notify::Outbox::new(
        store.clone(),
        ravan_watch::notify::RetryPolicy::default(),
        leadership.clone(),
    )
    .unwrap()
    .with_defaults(defaults.clone());
    ravan_watch::monitor::Monitor::new(
        client,
        store.clone(),
        outbox,
        leadership,
        defaults,
        thresholds(failure),
        concurrency,
    )
}

/// The trackers' thresholds: `failure` unhealthy observations make an alert, one healthy one a
/// recovery, and no reminders.
pub fn thresholds(failure: u32) -> ravan_watch::tracker::Thresholds {
    ravan_watch::tracker::Thresholds {
        failure: std::num::NonZeroU32::new(failure).unwrap(),
        success: std::num::NonZeroU32::new(1).unwrap(),
        reminder: None,
    }
}

/// A new in-memory store watching `agents`, and a [`test_monitor`] of the fake on it.
pub async fn monitor_watching(
    ravan: &FakeRavan,
    agents: &[String],
    concurrency: usize,
    failure: u32,
) -> (ravan_watch::monitor::Monitor, ravan_watch::store::Store) {
    let store = ravan_watch::store::Store::open("sqlite::memory:")
        .await
        .unwrap();
    let ids: Vec<ravan_watch::domain::AgentId> =
        agents.iter().map(|id| id.parse().unwrap()).collect();
    store.ensure_agents(&ids, chrono::Utc::now()).await.unwrap();
    (test_monitor(ravan, &store, concurrency, failure), store)
}

/// Waits (20 s at most) until `cycles` more poll cycles of `agents` agents each have polled.
pub async fn more_cycles(ravan: &FakeRavan, agents: usize, cycles: usize) {
    let target = ravan.polls().await + agents * cycles;
    wait_until(Duration::from_secs(20), "more poll cycles", || async {
        ravan.polls().await >= target
    })
    .await;
}

/// A webhook fake that gives every POST `answer`.
pub async fn webhook_sink(answer: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

/// Sends `request` and reads its answer as JSON; panics if either fails.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Sends `request` and reads its answer as text; panics if either fails.
pub async fn text_of(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// Sends `signal` (`libc::SIGTERM`, `libc::SIGINT` …) to `child`.
pub fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill has no memory preconditions; a stale pid only makes it fail.
    let sent = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(sent, 0, "signal {signal} to {}", child.id());
}

/// Requests a mock server received, as JSON bodies.
pub async fn bodies(server: &MockServer) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null))
        .collect()
}

/// A new temporary folder, and the URL of the SQLite file `state.db` in it (created on first
/// open); the database goes when the folder is dropped.
pub fn temp_database() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/state.db", dir.path().display());
    (dir, url)
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
