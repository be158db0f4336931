//! The delivery tests' tools, written once: a retry policy without pacing, the time to the
//! millisecond the store keeps, a receiver answering in order, alerts committed as a cycle's,
//! and what the outbox and a receiver hold.
#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ravan_watch::domain::Webhook;
use ravan_watch::domain::alert::Alert;
use ravan_watch::notify::RetryPolicy;
use ravan_watch::store::{Fence, OutboxEntry, Store};
use ravan_watch::tracker::MonitorState;
use wiremock::{MockBuilder, MockServer, ResponseTemplate};

pub fn policy() -> RetryPolicy {
    RetryPolicy {
        min_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        max_age: Duration::from_secs(3600),
        max_rate_limit_wait: Duration::from_secs(300),
        timeout: Duration::from_millis(500),
        // Pacing has its own tests; here it would only slow the others down.
        slack_interval: Duration::ZERO,
        record_delay: Duration::from_millis(20),
        // Seconds of retries: a test switching the database back has time to.
        record_retries: 8,
    }
}

/// Now, to the millisecond the store keeps.
pub fn t0() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis())
        .unwrap()
}

pub fn secs(s: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((s * 1000.0) as i64)
}

/// A receiver of the requests `given` matches, answering `answers` in order (the last one for
/// every further request).
pub async fn answering(
    answers: Vec<ResponseTemplate>,
    given: impl Fn() -> MockBuilder,
) -> MockServer {
    let server = MockServer::start().await;
    let n = answers.len();
    for (i, answer) in answers.into_iter().enumerate() {
        let mock = given().respond_with(answer);
        let mock = if i + 1 < n {
            mock.up_to_n_times(1)
        } else {
            mock
        };
        mock.with_priority((i + 1) as u8).mount(&server).await;
    }
    server
}

/// `alerts` committed as one cycle's, each to its webhook.
pub async fn commit(store: &Store, alerts: &[(Alert, Webhook)]) {
    let rows: Vec<_> = (alerts.iter())
        .map(|(a, h)| (a.clone(), vec![h.clone()]))
        .collect();
    let monitor = MonitorState::default();
    let committed = store.commit_cycle(Fence::Unchecked, None, &[], &monitor, &rows, Utc::now());
    committed.await.unwrap();
}

pub async fn entries(store: &Store) -> Vec<OutboxEntry> {
    store.outbox().await.unwrap()
}

/// The JSON bodies `server` received.
pub async fn requests(server: &MockServer) -> Vec<serde_json::Value> {
    (server.received_requests().await.unwrap().iter())
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}
