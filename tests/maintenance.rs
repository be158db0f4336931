//! Maintenance windows (issue 27): the API's contract (bad bodies are 400s naming the field,
//! `in_maintenance` in an agent's JSON), and real poll cycles against the fake Ravan delivering
//! to a webhook fake: a window holds an agent's alerts back while its state is still tracked;
//! when it ends, an agent still down alerts once and one that recovered inside it says
//! nothing; a window for some agents covers only them; a restart inside a window still holds;
//! monitor alerts are not held. The store's side runs on both backends.
//!
//! A window "ends" here by being removed over the store (as `DELETE /maintenance/{id}` does):
//! cycles take the time from the clock, and the rules at a window's exact end are the
//! tracker's and the domain's unit tests' (they are given the time).

mod common;

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

use common::api::{TestApp, expect_error};
use common::{AGENT_A, AGENT_B, FakeRavan};
use ravan_watch::domain::alert::{AgentAlertKind, Alert, MonitorAlertKind};
use ravan_watch::domain::maintenance::WindowRequest;
use ravan_watch::domain::{AgentId, MaintenanceWindow, Platform};
use ravan_watch::leader::Leadership;
use ravan_watch::monitor::Monitor;
use ravan_watch::notify::{Outbox, RetryPolicy};
use ravan_watch::store::Store;

// ------------------------------------------------------------------ the API

async fn post_window(app: &TestApp, body: Value) -> reqwest::Response {
    app.authed(Method::POST, "/maintenance")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_bad_body_is_a_400_naming_the_field() {
    let app = TestApp::start().await;
    let cron = json!({"name": "Sunday", "schedule": "0 2 * * SUN", "duration": "2h"});
    let with = |patch: Value| {
        let mut body = cron.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let too_many: Vec<String> = (0..1_001)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    let cases = [
        (with(json!({"name": null})), "name"),
        (with(json!({"name": ""})), "name"),
        (with(json!({"name": "x".repeat(201)})), "name"),
        (with(json!({"name": 5})), "name"),
        (with(json!({"duration": null})), "duration"),
        (with(json!({"duration": "forever"})), "duration"),
        (with(json!({"duration": "8d"})), "duration"),
        (with(json!({"duration": 7200})), "duration"),
        (
            with(json!({"start_at": "2030-01-01T00:00:00Z"})),
            "schedule",
        ),
        (with(json!({"schedule": "0 0 2 * * SUN"})), "schedule"),
        (with(json!({"schedule": "every sunday"})), "schedule"),
        (with(json!({"timezone": "Berlin"})), "timezone"),
        (with(json!({"agent_ids": ["not-a-uuid"]})), "agent_ids"),
        (with(json!({"agent_ids": []})), "agent_ids"),
        (with(json!({"agent_ids": too_many})), "agent_ids"),
        (with(json!({"agent_ids": AGENT_A})), "agent_ids"),
        (with(json!({"nmae": "typo"})), "nmae"),
        (
            json!({"name": "n", "start_at": "2030-01-01T02:00:00Z", "end_at": "2030-01-01T01:00:00Z"}),
            "end_at",
        ),
        (
            json!({"name": "n", "start_at": "soon", "end_at": "2030-01-01T01:00:00Z"}),
            "start_at",
        ),
        (
            json!({"name": "n", "start_at": "2030-01-01T02:00:00Z"}),
            "end_at",
        ),
        (json!({"name": "n"}), "start_at"),
    ];
    for (body, field) in cases {
        let message = expect_error(
            post_window(&app, body.clone()).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(message.contains(field), "{body}: {message}");
    }
    // Not JSON, or too large: the API's usual answers.
    let resp = app
        .authed(Method::POST, "/maintenance")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    let huge = json!({"name": "n", "schedule": "0 2 * * SUN", "duration": "2h", "pad": "x".repeat(70_000)});
    expect_error(
        post_window(&app, huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let list: Value = common::json_of(app.authed(Method::GET, "/maintenance")).await;
    assert_eq!(list, json!({"windows": []}), "nothing was stored");
}

#[tokio::test]
async fn windows_are_added_listed_and_removed_and_agents_say_whether_one_covers_them() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A})).await;
    app.create(json!({"agent_id": AGENT_B})).await;
    let now = Utc::now();
    let resp = post_window(
        &app,
        json!({
            "name": "  Re-connect A  ",
            "start_at": (now - Duration::minutes(5)).to_rfc3339(),
            "end_at": (now + Duration::hours(1)).to_rfc3339(),
            "agent_ids": [AGENT_A.to_uppercase()],
        }),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let one_off: Value = resp.json().await.unwrap();
    let id = one_off["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/maintenance/{id}"));
    assert_eq!(one_off["name"], "Re-connect A");
    assert_eq!(one_off["agent_ids"], json!([AGENT_A]));
    assert_eq!(one_off["active"], true);
    assert_eq!(one_off["next_start"], Value::Null);
    assert_eq!(one_off["schedule"], Value::Null);
    assert_eq!(one_off["timezone"], "UTC", "the TIMEZONE setting");

    let recurring: Value = common::json_of(app.authed(Method::POST, "/maintenance").json(&json!({
        "name": "Sunday", "schedule": "0 2 * * SUN", "duration": "90m", "timezone": "Europe/Berlin",
    })))
    .await;
    assert_eq!(recurring["duration"], "1h 30m");
    assert_eq!(recurring["agent_ids"], Value::Null, "every agent");
    assert_eq!(recurring["start_at"], Value::Null);
    let next: DateTime<Utc> = recurring["next_start"].as_str().unwrap().parse().unwrap();
    assert!(next > now && next < now + Duration::days(8), "{next}");

    let list: Value = common::json_of(app.authed(Method::GET, "/maintenance")).await;
    let ids: Vec<&str> = list["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str(), recurring["id"].as_str().unwrap()]);

    let covered = |agent: &'static str| {
        let app = &app;
        async move {
            let one: Value = app.get_agent(agent).await.json().await.unwrap();
            let all: Value = common::json_of(app.authed(Method::GET, "/agents")).await;
            let listed = all["agents"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["agent_id"] == agent)
                .unwrap()["in_maintenance"]
                .clone();
            assert_eq!(one["in_maintenance"], listed);
            listed.as_bool().unwrap()
        }
    };
    assert!(covered(AGENT_A).await);
    assert!(!covered(AGENT_B).await);

    // Without the token: 401; an unknown or malformed id: 404.
    let resp = app.anon(Method::GET, "/maintenance").send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = app
        .anon(Method::DELETE, &format!("/maintenance/{id}"))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    for missing in [
        uuid::Uuid::new_v4().to_string(),
        "nope".to_owned(),
        "%FF%FE".to_owned(),
    ] {
        let resp = app
            .authed(Method::DELETE, &format!("/maintenance/{missing}"))
            .send()
            .await
            .unwrap();
        expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    }

    let delete = app.authed(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    assert!(!covered(AGENT_A).await, "its window is gone");
    let again = app.authed(Method::DELETE, &location).send().await.unwrap();
    expect_error(again, StatusCode::NOT_FOUND, "not_found").await;
    let list: Value = common::json_of(app.authed(Method::GET, "/maintenance")).await;
    assert_eq!(list["windows"].as_array().unwrap().len(), 1);
}

// ------------------------------------------------------------------ the store, on both backends

/// A SQLite file in a temporary directory, or a fresh PostgreSQL database.
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    fn sqlite() -> Self {
        let (dir, url) = common::temp_database();
        Self {
            url,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Option<Self> {
        Some(Self {
            url: common::postgres::fresh_database().await?,
            _dir: None,
        })
    }

    /// Opens the store (again: a reopen is what a restart does).
    async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }
}

/// Each named `async fn name(db: Db)` becomes two tests, `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::Db::postgres().await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    windows_are_stored_survive_a_reopen_and_move_the_settings_version,
    a_window_holds_a_down_and_the_agent_still_down_when_it_ends_alerts_once,
    a_break_that_recovers_inside_the_window_sends_nothing,
    an_outage_alerted_before_the_window_recovers_after_it,
    a_window_for_some_agents_covers_only_them,
    a_restart_inside_a_window_still_holds,
    a_window_that_ends_by_itself_lets_the_held_down_out,
    monitor_alerts_are_not_held_by_windows,
);

/// A window from `request`, made now.
fn window(request: WindowRequest) -> MaintenanceWindow {
    request
        .parse(uuid::Uuid::new_v4(), chrono_tz::UTC, Utc::now())
        .unwrap()
}

/// A one-off window open from an hour ago to an hour from now, for `agents` (`None`: all).
fn open_now(agents: Option<&[&str]>) -> MaintenanceWindow {
    let now = Utc::now();
    window(WindowRequest {
        name: Some("re-connect".into()),
        start_at: Some((now - Duration::hours(1)).to_rfc3339()),
        end_at: Some((now + Duration::hours(1)).to_rfc3339()),
        agent_ids: agents.map(|a| a.iter().map(|s| s.to_string()).collect()),
        ..WindowRequest::default()
    })
}

async fn windows_are_stored_survive_a_reopen_and_move_the_settings_version(db: Db) {
    let store = db.open().await;
    let recurring = window(WindowRequest {
        name: Some("Sunday".into()),
        schedule: Some("0 2 * * SUN".into()),
        duration: Some("2h".into()),
        timezone: Some("Europe/Berlin".into()),
        agent_ids: Some(vec![AGENT_A.into(), AGENT_B.into()]),
        ..WindowRequest::default()
    });
    let mut once = open_now(None);
    // Oldest first.
    once.created_at = recurring.created_at + Duration::seconds(1);
    let v0 = store.settings_version().await.unwrap();
    store.insert_window(&recurring).await.unwrap();
    let v1 = store.settings_version().await.unwrap();
    assert!(v1 > v0, "an added window moves the version");
    store.insert_window(&once).await.unwrap();
    assert_eq!(
        store.maintenance_windows().await.unwrap(),
        [recurring.clone(), once.clone()]
    );
    store.close().await;

    let store = db.open().await;
    assert_eq!(
        store.maintenance_windows().await.unwrap(),
        [recurring.clone(), once.clone()],
        "kept across a restart"
    );
    let v2 = store.settings_version().await.unwrap();
    assert!(store.delete_window(recurring.id).await.unwrap());
    assert!(
        store.settings_version().await.unwrap() > v2,
        "so does a removal"
    );
    assert!(!store.delete_window(recurring.id).await.unwrap(), "gone");
    assert_eq!(store.maintenance_windows().await.unwrap(), [once]);
}

/// A monitor of the fake on `store` delivering to `sink` (Slack), and its outbox: thresholds 2
/// down, 1 up.
fn monitor(ravan: &FakeRavan, store: &Store, sink: &MockServer) -> (Monitor, Outbox) {
    let hook = common::alerts::webhook(Platform::Slack, &format!("{}/hook", sink.uri()));
    let leadership = Leadership::for_tests();
    let outbox = Outbox::new(store.clone(), RetryPolicy::default(), leadership.clone())
        .unwrap()
        .with_defaults(vec![hook.clone()]);
    let client = common::ravan_client(ravan);
    let monitor = common::monitor_of(client, store, vec![hook], 2, 4, leadership);
    (monitor, outbox)
}

/// What a test drives: the fake Ravan, a store watching some agents, a monitor, and the
/// webhook fake its alerts go to.
struct Rig {
    ravan: FakeRavan,
    store: Store,
    monitor: Monitor,
    outbox: Outbox,
    sink: MockServer,
    /// How many messages the sink had received at the last look.
    seen: usize,
}

impl Rig {
    /// `agents` watched on `db`, each answering `status`.
    async fn new(db: &Db, agents: &[&str], status: &str) -> Self {
        let ravan = FakeRavan::start().await;
        let sink = common::webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
        let store = db.open().await;
        let ids: Vec<AgentId> = agents.iter().map(|a| a.parse().unwrap()).collect();
        store.ensure_agents(&ids, Utc::now()).await.unwrap();
        for a in agents {
            ravan.set_status(a, status, (status != "active").then_some("token expired"));
        }
        let (monitor, outbox) = monitor(&ravan, &store, &sink);
        Self {
            ravan,
            store,
            monitor,
            outbox,
            sink,
            seen: 0,
        }
    }

    /// A new monitor on the database reopened: a restart.
    async fn restart(&mut self, db: &Db) {
        self.store.close().await;
        self.store = db.open().await;
        (self.monitor, self.outbox) = monitor(&self.ravan, &self.store, &self.sink);
    }

    /// One poll cycle, its alerts delivered: the agent alerts' (kind, agent), checked against
    /// what the webhook fake received (one message each, naming its agent).
    async fn cycle(&mut self) -> Vec<(AgentAlertKind, String)> {
        let report = self.monitor.run_cycle().await.unwrap();
        let alerts: Vec<(AgentAlertKind, String)> = report
            .alerts
            .iter()
            .filter_map(|a| match a {
                Alert::Agent(a) => Some((a.kind, a.agent.id.to_string())),
                _ => None,
            })
            .collect();
        let delivered = self.deliver().await;
        assert_eq!(delivered.len(), report.alerts.len(), "{delivered:?}");
        for ((_, agent), message) in alerts.iter().zip(&delivered) {
            assert!(message.to_string().contains(agent.as_str()), "{message}");
        }
        alerts
    }

    /// Delivers what is due; the messages the sink received since the last look.
    async fn deliver(&mut self) -> Vec<Value> {
        self.outbox.pass(Utc::now()).await.unwrap();
        let all = common::bodies(&self.sink).await;
        let new = all[self.seen..].to_vec();
        self.seen = all.len();
        new
    }

    async fn add(&self, w: &MaintenanceWindow) {
        self.store.insert_window(w).await.unwrap();
    }

    /// The window ends (removed, as `DELETE /maintenance/{id}` does).
    async fn end(&self, w: &MaintenanceWindow) {
        assert!(self.store.delete_window(w.id).await.unwrap());
    }

    async fn status_of(&self, agent: &str) -> Option<String> {
        let record = self.store.agent(agent.parse().unwrap()).await.unwrap();
        let last = record.unwrap().state.last;
        last.map(|o| o.status.to_string())
    }
}

fn down(agent: &str) -> (AgentAlertKind, String) {
    (AgentAlertKind::Down, agent.to_owned())
}

async fn a_window_holds_a_down_and_the_agent_still_down_when_it_ends_alerts_once(db: Db) {
    let mut rig = Rig::new(&db, &[AGENT_A], "active").await;
    assert!(rig.cycle().await.is_empty());
    // A recurring window open all the time (a start every minute, lasting a day).
    let always = window(WindowRequest {
        name: Some("all day".into()),
        schedule: Some("* * * * *".into()),
        duration: Some("1d".into()),
        ..WindowRequest::default()
    });
    rig.add(&always).await;
    rig.ravan
        .set_status(AGENT_A, "errored", Some("token expired"));
    for _ in 0..3 {
        assert_eq!(rig.cycle().await, [], "held back");
    }
    // Still tracked and shown.
    assert_eq!(rig.status_of(AGENT_A).await.as_deref(), Some("errored"));
    let state = rig
        .store
        .agent(AGENT_A.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .state;
    assert_eq!(state.health_streak, 2, "counted up to the threshold");
    assert!(state.outage.is_none(), "nothing announced");

    rig.end(&always).await;
    assert_eq!(rig.cycle().await, [down(AGENT_A)], "once, after the window");
    assert_eq!(rig.cycle().await, [], "and only once");
}

async fn a_break_that_recovers_inside_the_window_sends_nothing(db: Db) {
    let mut rig = Rig::new(&db, &[AGENT_A], "active").await;
    assert!(rig.cycle().await.is_empty());
    let w = open_now(None);
    rig.add(&w).await;
    rig.ravan
        .set_status(AGENT_A, "errored", Some("token expired"));
    assert_eq!(rig.cycle().await, []);
    assert_eq!(rig.cycle().await, []);
    rig.ravan.set_status(AGENT_A, "active", None);
    assert_eq!(rig.cycle().await, []);
    rig.end(&w).await;
    assert_eq!(rig.cycle().await, [], "recovered inside: nothing");
    assert_eq!(rig.cycle().await, []);
    assert!(rig.deliver().await.is_empty());
}

async fn an_outage_alerted_before_the_window_recovers_after_it(db: Db) {
    let mut rig = Rig::new(&db, &[AGENT_A], "errored").await;
    assert_eq!(rig.cycle().await, []);
    assert_eq!(rig.cycle().await, [down(AGENT_A)]);
    let w = open_now(Some(&[AGENT_A]));
    rig.add(&w).await;
    rig.ravan.set_status(AGENT_A, "active", None);
    assert_eq!(rig.cycle().await, [], "no recovery inside the window");
    assert_eq!(rig.cycle().await, []);
    rig.end(&w).await;
    assert_eq!(
        rig.cycle().await,
        [(AgentAlertKind::Recovered, AGENT_A.to_owned())],
        "the recovery of the down the team was told about, after the window"
    );
    assert_eq!(rig.cycle().await, []);
}

async fn a_window_for_some_agents_covers_only_them(db: Db) {
    let mut rig = Rig::new(&db, &[AGENT_A, AGENT_B], "active").await;
    assert!(rig.cycle().await.is_empty());
    rig.add(&open_now(Some(&[AGENT_A]))).await;
    rig.ravan
        .set_status(AGENT_A, "errored", Some("token expired"));
    rig.ravan
        .set_status(AGENT_B, "errored", Some("token expired"));
    assert_eq!(rig.cycle().await, []);
    assert_eq!(rig.cycle().await, [down(AGENT_B)], "B is not in the window");
    assert_eq!(rig.cycle().await, []);
    assert_eq!(rig.status_of(AGENT_A).await.as_deref(), Some("errored"));
}

async fn a_restart_inside_a_window_still_holds(db: Db) {
    let mut rig = Rig::new(&db, &[AGENT_A], "active").await;
    assert!(rig.cycle().await.is_empty());
    let w = open_now(None);
    rig.add(&w).await;
    rig.ravan
        .set_status(AGENT_A, "errored", Some("token expired"));
    assert_eq!(rig.cycle().await, []);
    rig.restart(&db).await;
    for _ in 0..3 {
        assert_eq!(rig.cycle().await, [], "still held after the restart");
    }
    rig.end(&w).await;
    assert_eq!(rig.cycle().await, [down(AGENT_A)]);
}

/// No removal: the window's own end releases the down, on the first cycle after it.
async fn a_window_that_ends_by_itself_lets_the_held_down_out(db: Db) {
    let mut rig = Rig::new(&db, &[AGENT_A], "errored").await;
    let end = Utc::now() + Duration::seconds(4);
    let w = window(WindowRequest {
        name: Some("short".into()),
        start_at: Some((end - Duration::hours(1)).to_rfc3339()),
        end_at: Some(end.to_rfc3339()),
        ..WindowRequest::default()
    });
    rig.add(&w).await;
    assert_eq!(rig.cycle().await, []);
    assert_eq!(rig.cycle().await, []);
    assert!(
        Utc::now() < end,
        "both cycles ran inside the window (else this machine is too slow for the test)"
    );
    common::wait_until(
        std::time::Duration::from_secs(10),
        "the window's end",
        || async { Utc::now() >= end },
    )
    .await;
    assert_eq!(
        rig.cycle().await,
        [down(AGENT_A)],
        "once the window is over"
    );
    assert_eq!(rig.cycle().await, []);
}

async fn monitor_alerts_are_not_held_by_windows(db: Db) {
    let mut rig = Rig::new(&db, &[AGENT_A], "active").await;
    rig.add(&open_now(None)).await;
    rig.ravan.answer_all(Some(ResponseTemplate::new(500)));
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let report = rig.monitor.run_cycle().await.unwrap();
        kinds.extend(report.alerts.into_iter().filter_map(|a| match a {
            Alert::Monitor(m) => Some(m.kind),
            _ => None,
        }));
    }
    assert_eq!(
        kinds,
        [MonitorAlertKind::Down],
        "the monitor's own alert goes out"
    );
    assert_eq!(rig.deliver().await.len(), 1);
}
