//! The signed JSON webhook's body and signature (`ravan_watch::notify::signed`), checked from
//! outside the code: a vector computed with OpenSSL (`tests/fixtures/signed-webhook/`), the
//! JSON Schema served in `/openapi.json` against a body of every alert kind, and each event
//! against what `GET /events` shows for it.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use common::alerts::{agent_alert, webhook};
use common::api::{SLACK, TestApp};
use common::{AGENT_A, AGENT_B};
use ravan_watch::domain::alert::{
    AgentAlertKind, IntegrationAlert, IntegrationAlertKind, IntegrationName, MonitorAlert,
    MonitorAlertKind, WebhookAlert,
};
use ravan_watch::domain::{Alert, Digest, Platform};
use ravan_watch::notify::signed::{
    self, SIGNATURE_HEADER, SignedEvent, SigningSecret, TIMESTAMP_HEADER,
};
use ravan_watch::store::{AgentUpdate, Fence};
use ravan_watch::tracker::{AgentState, MonitorState};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/signed-webhook");

/// 2027-01-15T08:00:00.123456789Z: a time finer than the store keeps.
fn fine() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 123_456_789).unwrap()
}

fn integration(kind: IntegrationAlertKind, at: DateTime<Utc>) -> Alert {
    Alert::Integration(IntegrationAlert {
        kind,
        integration: IntegrationName::Ghl,
        from: Some("connected".into()),
        status: "token_invalid".into(),
        detail: Some("token revoked".into()),
        at,
        since: at,
        token_expires: Some(at),
        affected: vec![],
        affected_count: 0,
        org_linked: None,
    })
}

fn agent(kind: AgentAlertKind, id: &str, at: DateTime<Utc>) -> Alert {
    Alert::Agent(agent_alert(
        kind,
        id,
        Some("Sales \"line\" <1>"),
        ("active", "errored"),
        at,
    ))
}

/// One alert of every kind the event log knows, agents' about `id`, all at `at`.
fn every_kind(id: &str, at: DateTime<Utc>) -> Vec<Alert> {
    let mut all: Vec<Alert> = [
        AgentAlertKind::Down,
        AgentAlertKind::Changed,
        AgentAlertKind::Reminder,
        AgentAlertKind::Recovered,
        AgentAlertKind::Missing,
        AgentAlertKind::Found,
    ]
    .into_iter()
    .map(|kind| agent(kind, id, at))
    .collect();
    for kind in [MonitorAlertKind::Down, MonitorAlertKind::Recovered] {
        all.push(Alert::Monitor(MonitorAlert {
            kind,
            reason: "Ravan API refused the credentials (HTTP 401): <!here>".into(),
            at,
            since: at,
        }));
    }
    all.push(Alert::Webhook(WebhookAlert {
        platform: Platform::Discord,
        webhook: "https://discord.com/api/webhooks/1/***".into(),
        answer: "HTTP 404: {\"code\": 10015}".into(),
        default: false,
        agents: vec![],
        agents_routed: 2,
        at,
    }));
    for kind in [
        IntegrationAlertKind::Down,
        IntegrationAlertKind::Recovered,
        IntegrationAlertKind::TokenExpiring,
    ] {
        all.push(integration(kind, at));
    }
    all
}

/// The body and its signature, byte for byte, as committed: the signature computed with
/// `openssl dgst -sha256 -hmac` (see the fixtures' README), not with this crate.
#[test]
fn the_signature_matches_a_vector_computed_with_openssl() {
    let committed = std::fs::read(format!("{FIXTURES}/body.json")).unwrap();
    let expected = std::fs::read_to_string(format!("{FIXTURES}/signature.txt")).unwrap();
    let expected = expected.trim();
    let alerts = [
        agent(AgentAlertKind::Down, AGENT_A, fine()),
        integration(IntegrationAlertKind::Down, fine()),
    ];
    // The fixture's agent is named `Sales "line"`: rename to match it.
    let mut alerts = alerts;
    if let Alert::Agent(a) = &mut alerts[0] {
        a.agent.name = Some("Sales \"line\"".into());
    }
    let body = signed::body(&[(41, &alerts[0]), (42, &alerts[1])]);
    assert_eq!(
        String::from_utf8_lossy(&body),
        String::from_utf8_lossy(&committed),
        "the body is the committed bytes"
    );
    let secret = SigningSecret::parse("whsec-fixture-0123456789abcdef").unwrap();
    assert_eq!(signed::sign(&secret, 1_800_000_000, &committed), expected);
    let headers = signed::headers(&secret, fine(), &committed);
    assert_eq!(headers[0], (TIMESTAMP_HEADER, "1800000000".to_owned()));
    assert_eq!(headers[1], (SIGNATURE_HEADER, expected.to_owned()));
    // Another secret, or one byte more, is another signature.
    let other = SigningSecret::parse("whsec-fixture-0123456789abcdeF").unwrap();
    assert_ne!(signed::sign(&other, 1_800_000_000, &committed), expected);
    let mut longer = committed.clone();
    longer.push(b' ');
    assert_ne!(signed::sign(&secret, 1_800_000_000, &longer), expected);
}

fn body_schema() -> jsonschema::Validator {
    let doc = serde_json::to_value(ravan_watch::api::openapi::document()).unwrap();
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/components/schemas/SignedWebhookBody",
        "components": doc["components"],
    });
    jsonschema::validator_for(&root).unwrap()
}

#[test]
fn the_served_schema_accepts_a_body_of_every_kind_and_a_digest() {
    let schema = body_schema();
    let all = every_kind(AGENT_A, fine());
    let mut kinds = Vec::new();
    for (id, alert) in (1..).zip(&all) {
        let body: Value = serde_json::from_slice(&signed::body(&[(id, alert)])).unwrap();
        assert!(schema.is_valid(&body), "{body}");
        kinds.push(body["events"][0]["kind"].as_str().unwrap().to_owned());
    }
    kinds.sort();
    let mut every: Vec<String> = Alert::KIND_NAMES.iter().map(|k| k.to_string()).collect();
    every.sort();
    assert_eq!(kinds, every, "one body of every kind");
    let grouped: Vec<(i64, &Alert)> = (100..).zip(&all).collect();
    let body: Value = serde_json::from_slice(&signed::body(&grouped)).unwrap();
    assert!(schema.is_valid(&body), "{body}");
    let ids: Vec<i64> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (100..100 + all.len() as i64).collect::<Vec<_>>());
    let digest = Digest {
        tick: fine(),
        since: fine(),
        since_previous: false,
        watched: 0,
        healthy: 0,
        unknown: 0,
        unhealthy: vec![],
        unhealthy_count: 0,
        alerts: vec![],
        integrations: vec![],
        pending: 0,
        failed: 0,
        dead_webhooks: vec![],
        dead_count: 0,
    };
    let digest: Value = serde_json::from_slice(&signed::digest_body(&digest)).unwrap();
    assert!(schema.is_valid(&digest), "{digest}");
    // The checks can fail.
    for broken in [
        json!({"events": []}),
        json!({"version": 2, "events": []}),
        json!({"version": 1, "events": [{"id": 1}]}),
        json!({"version": 1, "events": [], "digest": {"watched": 1}}),
    ] {
        assert!(!schema.is_valid(&broken), "{broken}");
    }
}

/// Each event of the body is what `GET /events` answers for the same event, minus
/// `deliveries`: every kind, written by the store as a poll cycle writes it and read back over
/// HTTP, with an `at` finer than the store keeps.
#[tokio::test]
async fn a_signed_event_is_what_get_events_shows_without_deliveries() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_B})).await;
    let slack = webhook(Platform::Slack, SLACK);
    let all = every_kind(AGENT_B, fine());
    for alert in &all {
        let routed = (alert.clone(), vec![slack.clone()]);
        let state = AgentState::default();
        let (agents, monitor) = match alert {
            Alert::Agent(a) => (
                vec![AgentUpdate {
                    agent_id: a.agent.id,
                    state: &state,
                    alerts: vec![routed],
                    health: None,
                }],
                vec![],
            ),
            _ => (vec![], vec![routed]),
        };
        app.store
            .commit_cycle(
                Fence::Unchecked,
                None,
                &agents,
                &MonitorState::default(),
                &monitor,
                fine(),
            )
            .await
            .unwrap();
    }
    let page: Value =
        common::json_of(app.authed(Method::GET, &format!("/events?limit={}", all.len()))).await;
    let mut shown = page["events"].as_array().unwrap().clone();
    assert_eq!(shown.len(), all.len(), "{page}");
    shown.reverse(); // oldest first: the order they were committed in
    for (event, alert) in shown.iter_mut().zip(&all) {
        let deliveries = event.as_object_mut().unwrap().remove("deliveries");
        assert_eq!(deliveries.unwrap().as_array().unwrap().len(), 1, "{event}");
        let id = event["id"].as_i64().unwrap();
        let ours = serde_json::to_value(SignedEvent::new(id, alert)).unwrap();
        assert_eq!(&ours, event, "{}", alert.kind_name());
        let body: Value = serde_json::from_slice(&signed::body(&[(id, alert)])).unwrap();
        assert_eq!(&body["events"][0], event);
    }
    assert_eq!(shown[0]["at"], "2027-01-15T08:00:00.123Z", "{}", shown[0]);
}
