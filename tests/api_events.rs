//! The event log and uptime through the real router: `GET /events`, `GET /agents/{id}/events`
//! and the agent's `uptime`.
//!
//! The first test runs the whole service (real polls of a fake Ravan, real deliveries to a fake
//! Slack) and reads what happened from `/events`; the others write history through the store
//! as poll cycles do, at chosen times, and read it back over HTTP: paging and its edges,
//! errors, an agent removed and added again, uptime, and retention at start.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::api::{SLACK, SLACK_MASKED, TOKEN, TestApp, assert_no_secret, expect_error};
use common::ids::id;
use common::{AGENT_A, AGENT_B, FakeRavan, TestSettings, wait_until};
use ravan_watch::domain::secret::SecretUrl;
use ravan_watch::domain::{
    AgentAlert, AgentAlertKind, AgentRef, Alert, HealthEdge, MonitorAlert, MonitorAlertKind,
    Observation, Platform, Webhook,
};
use ravan_watch::store::{AgentUpdate, Fence, Store};
use ravan_watch::tracker::{AgentState, MonitorState};

const LIMIT: Duration = Duration::from_secs(20);

fn slack() -> Webhook {
    Webhook::new(Platform::Slack, SecretUrl::new(SLACK.parse().unwrap()))
}

fn alert(agent: &str, kind: AgentAlertKind, from: &str, to: &str, at: DateTime<Utc>) -> Alert {
    Alert::Agent(AgentAlert {
        kind,
        agent: AgentRef {
            id: id(agent),
            name: Some("Sales line".into()),
        },
        from: Some(from.into()),
        to: to.into(),
        connected: to == "active",
        accounts: vec![],
        connection: None,
        at,
        unhealthy_since: at,
    })
}

/// A state observed `status` at `at`.
fn observed(status: &str, at: DateTime<Utc>) -> AgentState {
    AgentState {
        last: Some(Observation {
            connection: Some(ravan_watch::domain::Connection::Private),
            status: status.into(),
            connected: status == "active",
            accounts: vec![],
        }),
        observed_at: Some(at),
        last_checked_at: Some(at),
        ..AgentState::default()
    }
}

/// Commits one cycle for `agent` at `at`: its state, `alerts` (to Slack) and a health edge.
async fn commit(
    store: &Store,
    agent: &str,
    state: AgentState,
    alerts: Vec<Alert>,
    health: Option<HealthEdge>,
    at: DateTime<Utc>,
) {
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[AgentUpdate {
                agent_id: id(agent),
                state: &state,
                alerts: alerts.into_iter().map(|a| (a, vec![slack()])).collect(),
                health,
            }],
            &MonitorState::default(),
            &[],
            at,
        )
        .await
        .unwrap();
}

/// `n` down/recovered events for `agent`, one a minute ending at `end`; returns nothing.
async fn events_for(store: &Store, agent: &str, n: usize, end: DateTime<Utc>) {
    for k in 0..n {
        let at = end - TimeDelta::minutes((n - k) as i64);
        let (kind, from, to) = if k % 2 == 0 {
            (AgentAlertKind::Down, "active", "errored")
        } else {
            (AgentAlertKind::Recovered, "errored", "active")
        };
        commit(
            store,
            agent,
            observed(to, at),
            vec![alert(agent, kind, from, to, at)],
            None,
            at,
        )
        .await;
    }
}

async fn page(app: &TestApp, path: &str) -> Value {
    let resp = app.authed(Method::GET, path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
    resp.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<i64> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flip_is_an_event_with_what_slack_did_with_it() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let sink = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&sink)
        .await;
    let sink_host = sink.address().to_string();
    let hook = format!("http://{sink_host}/services/T0/B0/EVENTSECRET");
    let (_db, database) = common::temp_database();
    let service = TestSettings::new(&ravan.uri())
        .api(&database, TOKEN)
        .every_second()
        .poll_timeout("2s")
        .failure(1)
        .set("WEBHOOK_ALLOWED_HOSTS", sink_host.as_str())
        .start()
        .await;
    let api = format!("http://{}", service.addr());
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{api}/agents"))
        .bearer_auth(TOKEN)
        .json(&json!({"agent_id": AGENT_A, "name": "Sales line", "slack_webhook_url": hook}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let agent_json = || async {
        common::json_of(
            http.get(format!("{api}/agents/{AGENT_A}"))
                .bearer_auth(TOKEN),
        )
        .await
    };
    wait_until(LIMIT, "A observed healthy", || async {
        agent_json().await["state"]["healthy"] == true
    })
    .await;
    ravan.set_status(AGENT_A, "errored", Some("token revoked"));
    let events =
        || async { common::json_of(http.get(format!("{api}/events")).bearer_auth(TOKEN)).await };
    wait_until(LIMIT, "the down event delivered", || async {
        events().await["events"][0]["deliveries"][0]["outcome"] == "delivered"
    })
    .await;
    let page = events().await;
    let e = &page["events"][0];
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["next"], Value::Null);
    assert_eq!(e["kind"], "down");
    assert_eq!(e["agent_id"], AGENT_A);
    assert_eq!(e["from_status"], "active");
    assert_eq!(e["to_status"], "errored");
    assert!(e["summary"].as_str().unwrap().contains("Sales line"), "{e}");
    let d = &e["deliveries"][0];
    assert_eq!(d["platform"], "slack");
    assert_eq!(
        d["webhook"],
        format!("http://{sink_host}/services/T0/B0/***")
    );
    assert!(d["at"].is_string(), "{d}");
    assert_eq!(d["error"], Value::Null);
    assert_no_secret(&page.to_string());
    assert!(!page.to_string().contains("EVENTSECRET"));
    // The same event on the agent's own log.
    let mine = common::json_of(
        http.get(format!("{api}/agents/{AGENT_A}/events"))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(mine["events"], page["events"]);
    // Uptime: observed healthy, then unhealthy; the day's share is below 100 and above 0.
    wait_until(LIMIT, "uptime below 100 %", || async {
        agent_json().await["uptime"]["24h"]
            .as_f64()
            .is_some_and(|u| u < 100.0)
    })
    .await;
    let up = agent_json().await["uptime"].clone();
    assert!(up["24h"].as_f64().unwrap() > 0.0, "{up}");
    assert_eq!(
        up["24h"], up["30d"],
        "all observed time is within the day: {up}"
    );
    service.stop().await;
}

#[tokio::test]
async fn an_empty_log_is_one_empty_page() {
    let app = TestApp::start().await;
    let p = page(&app, "/events").await;
    assert_eq!(p, json!({"events": [], "next": null}));
    app.create(json!({"agent_id": AGENT_A})).await;
    let p = page(&app, &format!("/agents/{AGENT_A}/events")).await;
    assert_eq!(p, json!({"events": [], "next": null}));
}

/// A dead webhook's announcement is an event of its own: no agent, the webhook named masked,
/// and its deliveries to the other destinations.
#[tokio::test]
async fn a_dead_webhook_is_an_event_naming_it_masked() {
    let app = TestApp::start().await;
    let dead = Webhook::new(
        Platform::Discord,
        SecretUrl::new(
            "https://discord.com/api/webhooks/1/DEAD-SECRET"
                .parse()
                .unwrap(),
        ),
    );
    let now = Utc::now();
    let notice = ravan_watch::notify::dead::notice(
        &dead,
        "HTTP 404: {\"code\": 10015}",
        &[],
        &[slack()],
        &[],
        now,
    );
    let fresh = app
        .store
        .mark_webhook_dead(
            Fence::Unchecked,
            &dead,
            "HTTP 404: {\"code\": 10015}",
            now,
            Some(&notice),
        )
        .await
        .unwrap();
    assert!(fresh);
    let p = page(&app, "/events").await;
    let event = &p["events"][0];
    assert_eq!(event["kind"], "webhook_dead", "{p}");
    assert_eq!(event["agent_id"], Value::Null);
    assert_eq!(event["webhook"], "https://discord.com/api/webhooks/1/***");
    assert!(event.get("integration").is_none(), "{event}");
    assert_eq!(event["deliveries"][0]["webhook"], SLACK_MASKED);
    assert_no_secret(&p.to_string());
    assert!(!p.to_string().contains("DEAD-SECRET"), "{p}");
}

/// An integration's alert is an event of its own: no agent, the integration named; other
/// events carry no `integration` field at all.
#[tokio::test]
async fn an_integration_down_is_an_event_naming_the_integration() {
    use ravan_watch::domain::alert::{IntegrationAlert, IntegrationAlertKind, IntegrationName};
    let app = TestApp::start().await;
    let down = IntegrationAlert {
        kind: IntegrationAlertKind::Down,
        integration: IntegrationName::CalcomOrg,
        from: Some("active".into()),
        status: "errored".into(),
        detail: Some("Token refresh failed".into()),
        at: Utc::now(),
        since: Utc::now(),
        token_expires: None,
        affected: vec![],
        affected_count: 0,
        org_linked: None,
    };
    app.store
        .save_integration(
            Fence::Unchecked,
            IntegrationName::CalcomOrg,
            &ravan_watch::tracker::IntegrationState::default(),
            &[(Alert::Integration(down), vec![])],
            Utc::now(),
        )
        .await
        .unwrap();
    let p = page(&app, "/events").await;
    let event = &p["events"][0];
    assert_eq!(event["kind"], "integration_down", "{p}");
    assert_eq!(event["agent_id"], Value::Null);
    assert_eq!(event["integration"], "calcom_org");
    assert_eq!(event["from_status"], "active");
    assert_eq!(event["to_status"], "errored");
    assert!(event.get("webhook").is_none(), "{event}");
    assert_eq!(event["deliveries"], json!([]));
}

#[tokio::test]
async fn pages_go_newest_first_and_end_with_a_null_cursor() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "slack_webhook_url": SLACK}))
        .await;
    events_for(&app.store, AGENT_A, 7, Utc::now()).await;

    let first = page(&app, "/events?limit=3").await;
    let all = ids(&page(&app, "/events").await);
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");
    assert_eq!(ids(&first), all[..3]);
    let next = first["next"].as_str().unwrap().to_owned();
    let second = page(&app, &format!("/events?limit=3&before={next}")).await;
    assert_eq!(ids(&second), all[3..6]);
    let next = second["next"].as_str().unwrap().to_owned();
    let third = page(&app, &format!("/events?limit=3&before={next}")).await;
    assert_eq!(ids(&third), all[6..]);
    assert_eq!(third["next"], Value::Null, "the last page has no cursor");

    // Exactly one page's worth: no cursor to an empty page.
    let exact = page(&app, "/events?limit=7").await;
    assert_eq!(ids(&exact), all);
    assert_eq!(exact["next"], Value::Null);
    // The agent's own log pages alike.
    let mine = page(&app, &format!("/agents/{AGENT_A}/events?limit=4")).await;
    assert_eq!(ids(&mine), all[..4]);
    assert!(mine["next"].is_string());

    // An event's shape, as the contract lists it.
    let e = &first["events"][0];
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "agent_id",
            "at",
            "deliveries",
            "from_status",
            "id",
            "kind",
            "summary",
            "to_status"
        ]
    );
    assert_eq!(e["kind"], "down", "{e}");
    assert_eq!(
        e["deliveries"],
        json!([{"platform": "slack", "webhook": SLACK_MASKED, "outcome": "pending", "at": null, "error": null}])
    );
    // The OpenAPI document's schema accepts it.
    let doc: Value = common::json_of(app.anon(Method::GET, "/openapi.json")).await;
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/components/schemas/EventPage",
        "components": doc["components"],
    });
    let schema = jsonschema::validator_for(&root).unwrap();
    assert!(schema.is_valid(&first), "{first}");
    let mut broken = first.clone();
    broken["events"][0]["deliveries"][0]
        .as_object_mut()
        .unwrap()
        .remove("outcome");
    assert!(!schema.is_valid(&broken), "the check can fail");
}

#[tokio::test]
async fn a_cursor_whose_event_was_deleted_still_pages() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A})).await;
    let now = Utc::now();
    // Two events 100 days old, three recent.
    events_for(&app.store, AGENT_A, 2, now - TimeDelta::days(100)).await;
    events_for(&app.store, AGENT_A, 3, now).await;
    let all = ids(&page(&app, "/events").await);
    let p = page(&app, "/events?limit=4").await;
    let cursor = p["next"].as_str().unwrap().to_owned();
    assert_eq!(cursor, all[3].to_string());
    let deleted = app
        .store
        .prune_history(Fence::Unchecked, now, Duration::from_secs(90 * 86_400), 500)
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    // The cursor's event is gone; the page after it is what is left before it: nothing.
    let after = page(&app, &format!("/events?before={cursor}")).await;
    assert_eq!(after, json!({"events": [], "next": null}));
    // A cursor above every id reads from the newest.
    let top = page(&app, &format!("/events?before={}", all[0] + 1000)).await;
    assert_eq!(ids(&top), all[..3]);
}

#[tokio::test]
async fn bad_queries_are_400_and_unknown_agents_404() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A})).await;
    for (query, field) in [
        ("before=abc", "before"),
        // `0` fits the documented pattern (an empty page); a sign or 21 digits do not.
        ("before=%2B5", "before"),
        ("before=123456789012345678901", "before"),
        ("before=-5", "before"),
        ("before=", "before"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=many", "limit"),
        ("agent_id=not-a-uuid", "agent_id"),
        ("colour=red", "colour"),
    ] {
        let resp = app
            .authed(Method::GET, &format!("/events?{query}"))
            .send()
            .await
            .unwrap();
        let message = expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(message.contains(field), "{query}: {message}");
    }
    let resp = app
        .authed(Method::GET, &format!("/agents/{AGENT_A}/events?before=x"))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    let resp = app
        .authed(Method::GET, &format!("/agents/{AGENT_B}/events"))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app
        .authed(Method::GET, "/agents/nope/events")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    for path in ["/events".to_owned(), format!("/agents/{AGENT_A}/events")] {
        let resp = app.anon(Method::GET, &path).send().await.unwrap();
        expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}

#[tokio::test]
async fn an_agent_added_again_starts_a_new_history_and_its_old_events_stay_readable() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "slack_webhook_url": SLACK}))
        .await;
    let now = Utc::now();
    let start = now - TimeDelta::hours(5);
    commit(
        &app.store,
        AGENT_A,
        observed("active", start),
        vec![],
        Some(HealthEdge {
            at: start,
            healthy: Some(true),
            closes_at: start,
        }),
        start,
    )
    .await;
    events_for(&app.store, AGENT_A, 2, now - TimeDelta::hours(1)).await;
    let old = ids(&page(&app, &format!("/agents/{AGENT_A}/events")).await);
    assert_eq!(old.len(), 2);
    let up = common::json_of(app.authed(Method::GET, &format!("/agents/{AGENT_A}"))).await;
    assert!(up["uptime"]["24h"].is_number(), "{up}");

    let resp = app
        .authed(Method::DELETE, &format!("/agents/{AGENT_A}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // Removed: its own log is a 404, its events stay in /events.
    let resp = app
        .authed(Method::GET, &format!("/agents/{AGENT_A}/events"))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        ids(&page(&app, &format!("/events?agent_id={AGENT_A}")).await),
        old
    );

    let again = app.create(json!({"agent_id": AGENT_A})).await;
    assert_eq!(
        again["uptime"],
        json!({"24h": null, "7d": null, "30d": null}),
        "the new watch has no history"
    );
    let mine = page(&app, &format!("/agents/{AGENT_A}/events")).await;
    assert_eq!(mine, json!({"events": [], "next": null}));
    assert_eq!(
        ids(&page(&app, &format!("/events?agent_id={AGENT_A}")).await),
        old
    );
    // A new event belongs to the new watch only.
    events_for(&app.store, AGENT_A, 1, Utc::now()).await;
    let mine = ids(&page(&app, &format!("/agents/{AGENT_A}/events")).await);
    assert_eq!(mine.len(), 1);
    assert!(mine[0] > old[0]);
    assert_eq!(
        ids(&page(&app, &format!("/events?agent_id={AGENT_A}")).await).len(),
        3
    );
    // Another agent's filter shows none of them.
    assert_eq!(
        page(&app, &format!("/events?agent_id={AGENT_B}")).await,
        json!({"events": [], "next": null})
    );
}

#[tokio::test]
async fn uptime_is_the_share_of_observed_time_healthy_per_window() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A})).await;
    app.create(json!({"agent_id": AGENT_B})).await;
    let now = Utc::now();
    let edge = |at, healthy| {
        Some(HealthEdge {
            at,
            healthy: Some(healthy),
            closes_at: at,
        })
    };
    // A: healthy from 10 days ago, polls failing for the 2 days from 5 days ago (not
    // observed), unhealthy for the last 12 hours, last polled now.
    let (d10, d5, d3, h12) = (
        now - TimeDelta::days(10),
        now - TimeDelta::days(5),
        now - TimeDelta::days(3),
        now - TimeDelta::hours(12),
    );
    commit(
        &app.store,
        AGENT_A,
        observed("active", d10),
        vec![],
        edge(d10, true),
        d10,
    )
    .await;
    let mut failing = observed("active", d10);
    failing.last_error = Some("HTTP 502".into());
    failing.last_checked_at = Some(d5);
    let gap = Some(HealthEdge {
        at: d5,
        healthy: None,
        closes_at: d5,
    });
    commit(&app.store, AGENT_A, failing, vec![], gap, d5).await;
    commit(
        &app.store,
        AGENT_A,
        observed("active", d3),
        vec![],
        edge(d3, true),
        d3,
    )
    .await;
    commit(
        &app.store,
        AGENT_A,
        observed("errored", h12),
        vec![],
        edge(h12, false),
        h12,
    )
    .await;
    // The last poll: now (what a steady agent's cycles record without a history row).
    commit(
        &app.store,
        AGENT_A,
        observed("errored", now),
        vec![],
        None,
        now,
    )
    .await;

    let a = common::json_of(app.authed(Method::GET, &format!("/agents/{AGENT_A}"))).await;
    let u = &a["uptime"];
    let close = |v: &Value, want: f64| {
        let got = v.as_f64().unwrap_or_else(|| panic!("{u}"));
        assert!((got - want).abs() < 0.01, "{got} != {want}: {u}");
    };
    // Day: 12 h healthy of 24 h. Week: observed 2 d + 3 d = 5 d, of which 12 h unhealthy.
    close(&u["24h"], 50.0);
    close(&u["7d"], (5.0 * 24.0 - 12.0) * 100.0 / (5.0 * 24.0));
    // 30 days: observed 5 d (10..5) + 3 d = 8 d, 12 h unhealthy.
    close(&u["30d"], (8.0 * 24.0 - 12.0) * 100.0 / (8.0 * 24.0));
    // The list says the same; B, never polled, has no figures.
    let list = common::json_of(app.authed(Method::GET, "/agents")).await;
    let listed = |id: &str| {
        list["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["agent_id"] == id)
            .unwrap()["uptime"]
            .clone()
    };
    close(&listed(AGENT_A)["24h"], 50.0);
    assert_eq!(
        listed(AGENT_B),
        json!({"24h": null, "7d": null, "30d": null})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_older_than_history_retention_are_deleted_at_start() {
    let (_db, database) = common::temp_database();
    let store = Store::open(&database).await.unwrap();
    let now = Utc::now();
    store
        .insert_agent(
            id(AGENT_A),
            &ravan_watch::store::NewAgent::default(),
            now - TimeDelta::days(200),
        )
        .await
        .unwrap();
    events_for(&store, AGENT_A, 2, now - TimeDelta::days(40)).await;
    events_for(&store, AGENT_A, 3, now - TimeDelta::days(20)).await;
    // A monitor event 40 days old goes too.
    let monitor = Alert::Monitor(MonitorAlert {
        kind: MonitorAlertKind::Down,
        reason: "all 1 polls failed".into(),
        at: now - TimeDelta::days(40),
        since: now - TimeDelta::days(40),
    });
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[],
            &MonitorState::default(),
            &[(monitor, vec![])],
            now - TimeDelta::days(40),
        )
        .await
        .unwrap();
    store.close().await;

    let service = TestSettings::new("http://127.0.0.1:9")
        .api(&database, TOKEN)
        // New Year only: no poll cycle during the test.
        .never_polling()
        .set("HISTORY_RETENTION", "30d")
        .start()
        .await;
    let api = format!("http://{}", service.addr());
    let http = reqwest::Client::new();
    let events =
        || async { common::json_of(http.get(format!("{api}/events")).bearer_auth(TOKEN)).await };
    wait_until(LIMIT, "the 40-day-old events deleted", || async {
        events().await["events"].as_array().map(Vec::len) == Some(3)
    })
    .await;
    let page = events().await;
    for e in page["events"].as_array().unwrap() {
        let at: DateTime<Utc> = e["at"].as_str().unwrap().parse().unwrap();
        assert!(now - at < TimeDelta::days(30), "{e}");
        assert_eq!(e["agent_id"], AGENT_A);
    }
    service.stop().await;
}
