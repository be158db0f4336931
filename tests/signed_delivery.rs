//! The signed webhook as a destination, through the outbox against a wiremock receiver: each
//! request carries the exact bytes its signature covers (checked here with `hmac` + `sha2`
//! directly, not through the code under test), a 429 waits its `Retry-After`, a 5xx is
//! retried, a 410 marks it dead and is announced to the other destinations; without
//! `WEBHOOK_SECRET` nothing unsigned is ever sent; an agent's own `webhook_url` needs the
//! secret, and is masked.

mod common;

use chrono::Utc;
use ravan_watch::domain::alert::Alert;
use ravan_watch::domain::{Platform, Webhook};
use ravan_watch::leader::Leadership;
use ravan_watch::notify::Outbox;
use ravan_watch::notify::signed::SigningSecret;
use ravan_watch::store::{OutboxStatus, Store};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::alerts::{agent_down, webhook};
use common::ids::agent_id;
use common::outbox::{answering, commit, entries, policy, secs, t0};

const SECRET: &str = "whsec-test-0123456789abcdef";

/// A receiver answering `answers` in order (the last one for every further request).
async fn receiver(answers: Vec<ResponseTemplate>) -> MockServer {
    answering(answers, || Mock::given(method("POST"))).await
}

fn signed_hook(server: &MockServer) -> Webhook {
    webhook(
        Platform::Webhook,
        &format!("{}/hooks/ravan/PATHSECRET", server.uri()),
    )
}

async fn outbox_with(alerts: &[(Alert, Webhook)], secret: Option<&str>) -> (Store, Outbox) {
    let store = Store::open("sqlite::memory:").await.unwrap();
    commit(&store, alerts).await;
    let signing = secret.map(|s| SigningSecret::parse(s).unwrap());
    let outbox = Outbox::new(store.clone(), policy(), Leadership::for_tests())
        .unwrap()
        .with_signing(signing);
    (store, outbox)
}

/// The receiver's check ([`common::signing::verifies`]) with this file's secret.
fn verifies(timestamp: &str, signature: &str, body: &[u8]) -> bool {
    common::signing::verifies(SECRET, timestamp, signature, body)
}

#[tokio::test]
async fn a_down_alert_is_posted_signed_with_its_event_and_a_2xx_is_delivered() {
    let server = receiver(vec![ResponseTemplate::new(204)]).await;
    let down = agent_down(&agent_id(1), Some("Sales line"));
    let (store, outbox) = outbox_with(&[(down, signed_hook(&server))], Some(SECRET)).await;
    let before = Utc::now().timestamp();
    let r = outbox.pass(t0()).await.unwrap();
    assert_eq!((r.delivered, r.retrying, r.failed), (1, 0, 0));
    let entry = &entries(&store).await[0];
    assert_eq!(entry.status, OutboxStatus::Delivered);
    let got = server.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.headers["content-type"], "application/json");
    let timestamp = request.headers["x-ravan-watch-timestamp"].to_str().unwrap();
    let signature = request.headers["x-ravan-watch-signature"].to_str().unwrap();
    let ts: i64 = timestamp.parse().unwrap();
    assert!((before..=Utc::now().timestamp()).contains(&ts), "{ts}");
    assert!(verifies(timestamp, signature, &request.body), "{signature}");
    assert!(!verifies(timestamp, signature, b"{}"), "the check can fail");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["version"], 1);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], json!(entry.event_id.unwrap()));
    assert_eq!(events[0]["kind"], "down");
    assert_eq!(events[0]["agent_id"], agent_id(1));
    assert!(events[0].get("deliveries").is_none());
    let raw = String::from_utf8_lossy(&request.body);
    assert!(!raw.contains(SECRET), "the secret is never sent");
}

#[tokio::test]
async fn a_429_waits_retry_after_and_a_5xx_is_retried_each_attempt_signed_afresh() {
    let server = receiver(vec![
        ResponseTemplate::new(429).insert_header("retry-after", "7"),
        ResponseTemplate::new(503).set_body_string("busy"),
        ResponseTemplate::new(200),
    ])
    .await;
    let down = agent_down(&agent_id(1), None);
    let (store, outbox) = outbox_with(&[(down, signed_hook(&server))], Some(SECRET)).await;
    let now = t0();
    assert_eq!(outbox.pass(now).await.unwrap().retrying, 1);
    assert_eq!(entries(&store).await[0].next_attempt_at - now, secs(7.0));
    assert_eq!(outbox.pass(now + secs(6.9)).await.unwrap().delivered, 0);
    assert_eq!(outbox.pass(now + secs(7.0)).await.unwrap().retrying, 1);
    let e = &entries(&store).await[0];
    assert_eq!(e.last_error.as_deref(), Some("HTTP 503: busy"));
    assert!(store.dead_webhooks().await.unwrap().is_empty());
    assert_eq!(outbox.pass(now + secs(60.0)).await.unwrap().delivered, 1);
    let got = server.received_requests().await.unwrap();
    assert_eq!(got.len(), 3);
    for request in &got {
        let ts = request.headers["x-ravan-watch-timestamp"].to_str().unwrap();
        let sig = request.headers["x-ravan-watch-signature"].to_str().unwrap();
        assert!(verifies(ts, sig, &request.body));
    }
}

#[tokio::test]
async fn a_410_is_dead_and_announced_to_the_other_destinations_masked() {
    let gone = receiver(vec![ResponseTemplate::new(410).set_body_string("gone")]).await;
    let slack = receiver(vec![ResponseTemplate::new(200).set_body_string("ok")]).await;
    let store = Store::open("sqlite::memory:").await.unwrap();
    let dead = signed_hook(&gone);
    let default = webhook(Platform::Slack, &format!("{}/services/T/B/x", slack.uri()));
    let signing = SigningSecret::parse(SECRET).unwrap();
    let outbox = Outbox::new(store.clone(), policy(), Leadership::for_tests())
        .unwrap()
        .with_signing(Some(signing))
        .with_defaults(vec![default]);
    let down = agent_down(&agent_id(1), Some("Sales line"));
    commit(&store, &[(down.clone(), dead.clone())]).await;
    commit(&store, &[(down, dead.clone())]).await;
    outbox.pass(t0() + secs(1.0)).await.unwrap();
    outbox.pass(t0() + secs(2.0)).await.unwrap();
    assert_eq!(gone.received_requests().await.unwrap().len(), 1);
    let deads = store.dead_webhooks().await.unwrap();
    assert_eq!(deads.len(), 1);
    assert_eq!(deads[0].webhook, dead);
    let told = slack.received_requests().await.unwrap();
    assert_eq!(told.len(), 1, "one announcement");
    let text = String::from_utf8_lossy(&told[0].body);
    assert!(text.contains("signed JSON webhook is dead"), "{text}");
    assert!(text.contains("HTTP 410: gone"), "what it answered: {text}");
    assert!(!text.contains("PATHSECRET"), "masked: {text}");
}

#[tokio::test]
async fn without_a_secret_nothing_unsigned_is_sent() {
    let server = receiver(vec![ResponseTemplate::new(200)]).await;
    let down = agent_down(&agent_id(1), None);
    let (store, outbox) = outbox_with(&[(down, signed_hook(&server))], None).await;
    let r = outbox.pass(t0()).await.unwrap();
    assert_eq!((r.delivered, r.failed), (0, 1));
    let e = &entries(&store).await[0];
    assert_eq!(e.status, OutboxStatus::Failed);
    assert!(
        e.last_error
            .as_deref()
            .unwrap_or("")
            .contains("WEBHOOK_SECRET")
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
