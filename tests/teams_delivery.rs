//! Microsoft Teams (Workflows) delivery through the outbox against a wiremock flow: a 202 is
//! delivered, a 429 waits its `Retry-After`, a 5xx is retried, a bare 404 is retried, and the
//! flow's own "gone" answer marks the webhook dead and is announced to the other destinations,
//! without its `sig` anywhere.

mod common;

use chrono::Utc;
use ravan_watch::domain::alert::Alert;
use ravan_watch::domain::{Platform, Webhook};
use ravan_watch::leader::Leadership;
use ravan_watch::notify::Outbox;
use ravan_watch::store::{EventQuery, EventsAbout, NewAgent, OutboxStatus, Store};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::alerts::{agent_down, webhook};
use common::ids::{agent_id, id};
use common::limits::{all_text, assert_teams_valid};
use common::outbox::{answering, commit, entries, policy, requests, secs, t0};

const SIG: &str = "TEAMSSIGSECRET";
const FLOW: &str = "/workflows/0a1b/triggers/manual/paths/invoke";

/// A Workflows flow answering `answers` in order (the last one for every further request);
/// it only answers requests that carry its `sig`.
async fn flow(answers: Vec<ResponseTemplate>) -> MockServer {
    let given = || {
        let mock = Mock::given(method("POST")).and(path(FLOW));
        mock.and(query_param("sig", SIG))
    };
    answering(answers, given).await
}

fn teams_hook(server: &MockServer) -> Webhook {
    webhook(
        Platform::Teams,
        &format!(
            "{}{FLOW}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}",
            server.uri()
        ),
    )
}

async fn outbox_with(alerts: &[(Alert, Webhook)]) -> (Store, Outbox) {
    let store = Store::open("sqlite::memory:").await.unwrap();
    commit(&store, alerts).await;
    let outbox = Outbox::new(store.clone(), policy(), Leadership::for_tests()).unwrap();
    (store, outbox)
}

fn down(n: usize) -> Alert {
    agent_down(&agent_id(n), Some("Sales line"))
}

/// A down alert reaches the flow as one Adaptive Card in the Workflows envelope, posted as
/// JSON to the whole URL (with its `sig`); 202 is delivered.
#[tokio::test]
async fn a_down_alert_is_one_adaptive_card_and_202_is_delivered() {
    let server = flow(vec![ResponseTemplate::new(202)]).await;
    let (store, outbox) = outbox_with(&[(down(1), teams_hook(&server))]).await;
    let r = outbox.pass(t0()).await.unwrap();
    assert_eq!((r.delivered, r.retrying, r.failed), (1, 0, 0));
    assert_eq!(entries(&store).await[0].status, OutboxStatus::Delivered);
    let got = server.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_teams_valid("down", &body);
    assert_eq!(body["type"], "message");
    let card = &body["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["body"][0]["color"], "attention");
    let text = all_text(&body).replace('\u{200B}', "");
    assert!(text.contains("Sales line"), "{text}");
    assert!(text.contains(&agent_id(1)), "{text}");
}

#[tokio::test]
async fn a_429_waits_retry_after_then_delivers() {
    let server = flow(vec![
        ResponseTemplate::new(429).insert_header("retry-after", "7"),
        ResponseTemplate::new(202),
    ])
    .await;
    let (store, outbox) = outbox_with(&[(down(1), teams_hook(&server))]).await;
    let now = t0();
    let r = outbox.pass(now).await.unwrap();
    assert_eq!(r.retrying, 1);
    assert_eq!(entries(&store).await[0].next_attempt_at - now, secs(7.0));
    assert_eq!(
        outbox.pass(now + secs(6.9)).await.unwrap().delivered,
        0,
        "not before Retry-After"
    );
    assert_eq!(outbox.pass(now + secs(7.0)).await.unwrap().delivered, 1);
    assert_eq!(requests(&server).await.len(), 2);
}

/// A 503 and a bare 404 (a proxy's, without the flow's words) are retried, never dead.
#[tokio::test]
async fn a_503_and_a_bare_404_are_retried() {
    let server = flow(vec![
        ResponseTemplate::new(503).set_body_string("Service Unavailable"),
        ResponseTemplate::new(404).set_body_string("<html>Not Found</html>"),
        ResponseTemplate::new(202),
    ])
    .await;
    let (store, outbox) = outbox_with(&[(down(1), teams_hook(&server))]).await;
    let now = t0();
    assert_eq!(outbox.pass(now).await.unwrap().retrying, 1);
    let e = &entries(&store).await[0];
    assert_eq!(e.status, OutboxStatus::Pending);
    assert_eq!(
        e.last_error.as_deref(),
        Some("HTTP 503: Service Unavailable")
    );
    assert_eq!(outbox.pass(now + secs(3.0)).await.unwrap().retrying, 1);
    assert!(store.dead_webhooks().await.unwrap().is_empty());
    assert_eq!(outbox.pass(now + secs(10.0)).await.unwrap().delivered, 1);
    assert_eq!(requests(&server).await.len(), 3);
}

/// The flow's own "not found" answer marks the webhook dead: nothing more is sent to it, and
/// the other destinations are told which one (masked, no `sig`), what it answered, whose alerts
/// it carried and which field to set.
#[tokio::test]
async fn a_deleted_flow_is_dead_and_announced_without_its_sig() {
    let gone = flow(vec![ResponseTemplate::new(404).set_body_json(json!({
        "error": {"code": "WorkflowNotFound", "message": "The workflow '0a1b' could not be found."}
    }))])
    .await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let store = Store::open("sqlite::memory:").await.unwrap();
    let dead = teams_hook(&gone);
    store
        .insert_agent(
            id(&agent_id(1)),
            &NewAgent {
                name: Some("Sales line".into()),
                teams_webhook_url: Some(dead.url.expose().clone()),
                ..Default::default()
            },
            t0(),
        )
        .await
        .unwrap();
    let default = webhook(Platform::Slack, &format!("{}/services/T/B/x", slack.uri()));
    let outbox = Outbox::new(store.clone(), policy(), Leadership::for_tests())
        .unwrap()
        .with_defaults(vec![default]);
    commit(&store, &[(down(1), dead.clone())]).await;
    commit(&store, &[(down(1), dead.clone())]).await;

    outbox.pass(t0() + secs(1.0)).await.unwrap();
    outbox.pass(t0() + secs(2.0)).await.unwrap();
    assert_eq!(
        requests(&gone).await.len(),
        1,
        "nothing more to the dead flow"
    );
    let deads = store.dead_webhooks().await.unwrap();
    assert_eq!(deads.len(), 1);
    assert_eq!(deads[0].webhook, dead);
    let statuses: Vec<_> = entries(&store)
        .await
        .into_iter()
        .filter(|e| e.webhook == dead)
        .map(|e| e.status)
        .collect();
    assert_eq!(statuses, [OutboxStatus::Failed, OutboxStatus::Failed]);

    let told = requests(&slack).await;
    assert_eq!(told.len(), 1, "one announcement: {told:?}");
    let text = told[0].to_string();
    assert!(text.contains("Microsoft Teams webhook"), "{text}");
    assert!(text.contains("WorkflowNotFound"), "{text}");
    assert!(text.contains("Sales line"), "whose alerts: {text}");
    assert!(text.contains("teams_webhook_url"), "what to set: {text}");
    assert!(text.contains("/workflows/0a1b/"), "named: {text}");
    assert!(!text.contains(SIG), "the sig leaked: {text}");
    assert!(!text.contains("sig="), "{text}");

    // The event log: deliveries with platform `teams`, the dead webhook's event, all masked.
    let events = store
        .events(&EventQuery {
            about: EventsAbout::All,
            before: None,
            limit: 50,
        })
        .await
        .unwrap();
    let dead_event = events.iter().find(|e| e.kind == "webhook_dead").unwrap();
    assert_eq!(
        dead_event.webhook.as_deref(),
        Some(dead.url.masked().as_str())
    );
    let teams: Vec<_> = events
        .iter()
        .flat_map(|e| &e.deliveries)
        .filter(|d| d.platform == Platform::Teams)
        .collect();
    assert_eq!(teams.len(), 2, "both downs went to Teams: {events:?}");
    let logged = format!("{events:?}");
    assert!(!logged.contains(SIG), "{logged}");
}

/// End to end through real poll cycles: an agent whose own webhook is a Teams flow goes down at
/// the fake Ravan; its alert reaches the flow as a red card naming it and its account's error,
/// and not the default Slack webhook (an agent's own destinations replace the defaults).
#[tokio::test]
async fn an_agent_going_down_reaches_its_own_teams_flow_and_not_the_defaults() {
    use common::{AGENT_A, FakeRavan};
    let ravan = FakeRavan::start().await;
    let teams = flow(vec![ResponseTemplate::new(202)]).await;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    let store = Store::open("sqlite::memory:").await.unwrap();
    store
        .insert_agent(
            id(AGENT_A),
            &NewAgent {
                name: Some("Sales *line*".into()),
                teams_webhook_url: Some(teams_hook(&teams).url.expose().clone()),
                ..Default::default()
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let default = webhook(Platform::Slack, &format!("{}/services/T/B/x", slack.uri()));
    let leadership = Leadership::for_tests();
    let outbox = Outbox::new(store.clone(), policy(), leadership.clone())
        .unwrap()
        .with_defaults(vec![default.clone()]);
    let monitor = common::monitor_of(
        common::ravan_client(&ravan),
        &store,
        vec![default],
        2,
        4,
        leadership,
    );

    ravan.set_status(AGENT_A, "active", None);
    monitor.run_cycle().await.unwrap();
    ravan.set_status(AGENT_A, "errored", Some("Token <at>expired</at>"));
    monitor.run_cycle().await.unwrap();
    monitor.run_cycle().await.unwrap();
    let r = outbox.pass(Utc::now()).await.unwrap();
    assert_eq!((r.delivered, r.failed), (1, 0), "{r:?}");

    let got = requests(&teams).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_teams_valid("down", &got[0]);
    let card = &got[0]["attachments"][0]["content"];
    assert_eq!(card["body"][0]["color"], "attention");
    let text = all_text(&got[0]);
    assert!(!text.contains("<at>"), "{text}");
    let read = text.replace('\u{200B}', "");
    assert!(read.contains("Sales *line*"), "{read}");
    assert!(read.contains(AGENT_A), "{read}");
    assert!(read.contains("Token <at>expired</at>"), "{read}");
    assert!(
        requests(&slack).await.is_empty(),
        "the agent's own webhook replaces the defaults"
    );
}
