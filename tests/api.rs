//! The management API over real HTTP: `api::router` served on a random loopback port against a
//! temporary SQLite file, driven with reqwest.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use ravan_watch::api::{AllowedHosts, DEFAULT_ALLOWED_HOSTS};
use ravan_watch::api::{ApiState, router};
use ravan_watch::domain::Platform;
use ravan_watch::domain::alert::{Alert, MonitorAlertKind};
use ravan_watch::domain::secret::Secret;
use ravan_watch::domain::{Account, Observation};
use ravan_watch::store::{AgentUpdate, Store};
use ravan_watch::tracker::{AgentState, MonitorState};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

use common::alerts::{monitor_alert, noon, webhook};
use common::ids::id;
use common::{AGENT_A, AGENT_B};

const TOKEN: &str = "adm-T0KEN-4f2a9c";
const SLACK: &str = "https://hooks.slack.com/services/T0/B0/SLACKSECRET123";
const SLACK_MASKED: &str = "https://hooks.slack.com/services/T0/B0/***";
const DISCORD: &str = "https://discord.com/api/webhooks/42/DISCORDSECRET456";
const DISCORD_MASKED: &str = "https://discord.com/api/webhooks/42/***";
/// A loopback host listed in the test's WEBHOOK_ALLOWED_HOSTS.
const LOCAL_HOOK: &str = "http://127.0.0.1:9000/hook/LOCALSECRET789";
const SECRETS: [&str; 3] = ["SLACKSECRET123", "DISCORDSECRET456", "LOCALSECRET789"];
const AGENT_KEYS: [&str; 10] = [
    "agent_id",
    "source",
    "name",
    "muted",
    "muted_until",
    "slack_webhook_url",
    "discord_webhook_url",
    "delivery_error",
    "created_at",
    "state",
];
const STATE_KEYS: [&str; 9] = [
    "status",
    "connection",
    "missing_since",
    "connected",
    "healthy",
    "since",
    "last_checked_at",
    "last_error",
    "accounts",
];

struct TestApp {
    base: String,
    client: reqwest::Client,
    store: Store,
    scheduler_running: Arc<AtomicBool>,
    delivery: ravan_watch::supervise::TaskHealth,
    _dir: TempDir,
}

impl TestApp {
    /// With the admin token `TOKEN` and a running scheduler.
    async fn start() -> Self {
        Self::start_with(Some(TOKEN)).await
    }

    async fn start_with(token: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("api.db").display());
        let store = Store::open(&url).await.unwrap();
        let scheduler_running = Arc::new(AtomicBool::new(true));
        let delivery = ravan_watch::supervise::TaskHealth::default();
        let state = ApiState {
            store: store.clone(),
            admin_token: token.map(Secret::new),
            allowed_hosts: AllowedHosts::parse(&format!("{DEFAULT_ALLOWED_HOSTS},127.0.0.1:9000"))
                .unwrap(),
            scheduler_running: scheduler_running.clone(),
            default_webhooks: vec![],
            delivery: delivery.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            store,
            scheduler_running,
            delivery,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request without credentials.
    fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with the admin token.
    fn authed(&self, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path).bearer_auth(TOKEN)
    }

    async fn post(&self, body: Value) -> Response {
        self.authed(Method::POST, "/agents")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs and expects 201; returns the agent.
    async fn create(&self, body: Value) -> Value {
        let resp = self.post(body).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json().await.unwrap()
    }

    async fn get_agent(&self, id: &str) -> Response {
        self.authed(Method::GET, &format!("/agents/{id}"))
            .send()
            .await
            .unwrap()
    }

    async fn patch(&self, id: &str, body: Value) -> Response {
        self.authed(Method::PATCH, &format!("/agents/{id}"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// PATCHes and expects 200; returns the agent.
    async fn patched(&self, id: &str, body: Value) -> Value {
        let resp = self.patch(id, body.clone()).await;
        assert_eq!(resp.status(), StatusCode::OK, "PATCH {body}");
        resp.json().await.unwrap()
    }

    /// A request whose body is sent as is, with the given content type (none when `None`).
    async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> Response {
        let mut req = self.authed(method, path).body(body.to_owned());
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        req.send().await.unwrap()
    }

    async fn stored_ids(&self) -> Vec<String> {
        self.store
            .agents()
            .await
            .unwrap()
            .iter()
            .map(|a| a.agent_id.to_string())
            .collect()
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
}

/// Checks the envelope `{"error": {"code", "message"}}` exactly; returns the message.
async fn expect_error(resp: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(resp.status(), status, "status");
    let ct = resp.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "content type {ct}");
    let body: Value = resp.json().await.unwrap();
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("no error object: {body}"));
    assert_eq!(body.as_object().unwrap().len(), 1, "only `error`: {body}");
    assert_eq!(error.len(), 2, "only code and message: {body}");
    assert_eq!(error["code"], code, "{body}");
    let message = error["message"].as_str().unwrap().to_owned();
    assert!(!message.is_empty());
    message
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        if let Some(line) = text.lines().find(|l| l.contains(secret)) {
            panic!("{secret} leaked in: {line}");
        }
    }
}

// ------------------------------------------------------------------ POST /agents

#[tokio::test]
async fn post_creates_an_agent_with_location_and_the_contract_shape() {
    let app = TestApp::start().await;
    let resp = app
        .post(json!({
            "agent_id": AGENT_A.to_uppercase(),
            "name": "  Sales line  ",
            "slack_webhook_url": SLACK,
            "discord_webhook_url": DISCORD,
            "muted": true,
        }))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["location"], format!("/agents/{AGENT_A}"));
    let text = resp.text().await.unwrap();
    assert_no_secret(&text);
    let agent: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys(&agent), set(&AGENT_KEYS));
    assert_eq!(agent["agent_id"], AGENT_A, "canonical lowercase");
    assert_eq!(agent["name"], "Sales line", "trimmed");
    assert_eq!(agent["source"], "api");
    assert_eq!(agent["muted"], true);
    assert_eq!(agent["muted_until"], Value::Null);
    assert_eq!(agent["slack_webhook_url"], SLACK_MASKED);
    assert_eq!(agent["discord_webhook_url"], DISCORD_MASKED);
    assert_eq!(agent["delivery_error"], Value::Null);
    let created = DateTime::parse_from_rfc3339(agent["created_at"].as_str().unwrap()).unwrap();
    assert!(
        (Utc::now() - created.with_timezone(&Utc))
            .num_seconds()
            .abs()
            < 60
    );
    let state = &agent["state"];
    assert_eq!(keys(state), set(&STATE_KEYS));
    for key in &STATE_KEYS[..6] {
        assert_eq!(
            state[*key],
            Value::Null,
            "state.{key} before the first observation"
        );
    }
    assert_eq!(state["accounts"], json!([]));

    // The store keeps the full URLs (they are needed to deliver), under the canonical id.
    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(stored.slack_webhook_url.unwrap().expose().as_str(), SLACK);
    assert_eq!(
        stored.discord_webhook_url.unwrap().expose().as_str(),
        DISCORD
    );
    assert_eq!(stored.name.as_deref(), Some("Sales line"));
    assert!(stored.muted);
}

#[tokio::test]
async fn post_with_only_an_id_has_defaults() {
    let app = TestApp::start().await;
    let agent = app.create(json!({"agent_id": AGENT_A})).await;
    assert_eq!(agent["name"], Value::Null);
    assert_eq!(agent["muted"], false);
    assert_eq!(agent["slack_webhook_url"], Value::Null);
    assert_eq!(agent["discord_webhook_url"], Value::Null);
    // Explicit nulls for the optional fields mean the same.
    let agent = app
        .create(json!({"agent_id": AGENT_B, "name": null, "slack_webhook_url": null, "discord_webhook_url": null}))
        .await;
    assert_eq!(agent["name"], Value::Null);
    assert_eq!(agent["slack_webhook_url"], Value::Null);
    assert_eq!(app.stored_ids().await.len(), 2);
}

#[tokio::test]
async fn post_of_a_watched_agent_is_409_in_any_spelling() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "name": "first"}))
        .await;
    for spelling in [AGENT_A.to_owned(), AGENT_A.to_uppercase()] {
        let resp = app
            .post(json!({"agent_id": spelling, "name": "second"}))
            .await;
        let message = expect_error(resp, StatusCode::CONFLICT, "conflict").await;
        assert!(message.contains(AGENT_A), "{message}");
    }
    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(
        stored.name.as_deref(),
        Some("first"),
        "the first one is kept"
    );
}

#[tokio::test]
async fn post_rejects_bad_bodies_with_400_naming_the_problem() {
    let app = TestApp::start().await;
    let long = "x".repeat(101);
    let cases: Vec<(&str, String, &str)> = vec![
        ("bad id", json!({"agent_id": "not-a-uuid"}).to_string(), "agent_id"),
        ("short id", json!({"agent_id": &AGENT_A[..30]}).to_string(), "agent_id"),
        ("id not a string", json!({"agent_id": 12}).to_string(), "agent_id"),
        ("missing id", json!({"name": "x"}).to_string(), "agent_id"),
        ("syntax", r#"{"agent_id": "#.to_owned(), "JSON"),
        ("an array", "[]".to_owned(), "must be a JSON object"),
        ("positional fields", json!([AGENT_A, "name"]).to_string(), "must be a JSON object"),
        ("a string", json!(AGENT_A).to_string(), "must be a JSON object"),
        ("null", " null".to_owned(), "must be a JSON object"),
        ("empty body", String::new(), "JSON"),
        ("unknown field", json!({"agent_id": AGENT_A, "nmae": "typo"}).to_string(), "nmae"),
        ("muted_until is PATCH only", json!({"agent_id": AGENT_A, "muted_until": null}).to_string(), "muted_until"),
        ("muted wrong type", json!({"agent_id": AGENT_A, "muted": "yes"}).to_string(), "muted"),
        ("muted null", json!({"agent_id": AGENT_A, "muted": null}).to_string(), "muted"),
        ("name too long", json!({"agent_id": AGENT_A, "name": long}).to_string(), "name: must be 1 to 100"),
        ("name empty", json!({"agent_id": AGENT_A, "name": ""}).to_string(), "name: must be 1 to 100"),
        ("name blank", json!({"agent_id": AGENT_A, "name": "   "}).to_string(), "name: must be 1 to 100"),
        ("name newline", json!({"agent_id": AGENT_A, "name": "a\nb"}).to_string(), "name: must not contain control"),
        (
            "disallowed host",
            json!({"agent_id": AGENT_A, "slack_webhook_url": "https://evil.example/services/T0/B0/SLACKSECRET123"}).to_string(),
            "slack_webhook_url: host \"evil.example\" is not in WEBHOOK_ALLOWED_HOSTS",
        ),
        (
            "lookalike host",
            json!({"agent_id": AGENT_A, "discord_webhook_url": "https://discord.com.evil.example/api/webhooks/42/DISCORDSECRET456"}).to_string(),
            "discord_webhook_url: host",
        ),
        (
            "http to a non-loopback host",
            json!({"agent_id": AGENT_A, "slack_webhook_url": "http://hooks.slack.com/services/T0/B0/SLACKSECRET123"}).to_string(),
            "slack_webhook_url: must use https",
        ),
        (
            "loopback port not listed",
            json!({"agent_id": AGENT_A, "slack_webhook_url": "http://127.0.0.1:9001/hook/LOCALSECRET789"}).to_string(),
            "slack_webhook_url: host \"127.0.0.1:9001\"",
        ),
        (
            "credentials in the URL",
            json!({"agent_id": AGENT_A, "discord_webhook_url": "https://u:DISCORDSECRET456@discord.com/api/webhooks/1/x"}).to_string(),
            "discord_webhook_url: must not contain a user name or password",
        ),
        (
            "not a URL",
            json!({"agent_id": AGENT_A, "slack_webhook_url": "hooks.slack.com/SLACKSECRET123"}).to_string(),
            "slack_webhook_url: is not a URL",
        ),
        (
            "not a string URL",
            json!({"agent_id": AGENT_A, "slack_webhook_url": 5}).to_string(),
            "slack_webhook_url",
        ),
    ];
    for (what, body, needle) in cases {
        let resp = app
            .raw(Method::POST, "/agents", Some("application/json"), &body)
            .await;
        let message = expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(
            message.contains(needle),
            "{what}: {message:?} lacks {needle:?}"
        );
        assert_no_secret(&message);
    }
    assert!(app.stored_ids().await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn post_needs_a_json_content_type() {
    let app = TestApp::start().await;
    let body = json!({"agent_id": AGENT_A}).to_string();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let resp = app.raw(Method::POST, "/agents", ct, &body).await;
        let message = expect_error(
            resp,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
        assert!(message.contains("application/json"), "{message}");
    }
    assert!(app.stored_ids().await.is_empty());
    let resp = app
        .raw(
            Method::POST,
            "/agents",
            Some("application/json; charset=utf-8"),
            &body,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

/// `{"agent_id": "..."}` padded with spaces to exactly `len` bytes.
fn padded_body(agent: &str, len: usize) -> String {
    let head = format!("{{\"agent_id\": \"{agent}\"");
    let body = format!("{head}{}}}", " ".repeat(len - head.len() - 1));
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn bodies_up_to_64_kib_are_read_and_larger_ones_are_413() {
    let app = TestApp::start().await;
    let resp = app
        .raw(
            Method::POST,
            "/agents",
            Some("application/json"),
            &padded_body(AGENT_A, 64 * 1024 + 1),
        )
        .await;
    let message = expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(message.contains("64 KiB"), "{message}");
    assert!(app.stored_ids().await.is_empty());
    let resp = app
        .raw(
            Method::PATCH,
            &format!("/agents/{AGENT_A}"),
            Some("application/json"),
            &"{}".repeat(40_000),
        )
        .await;
    expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let resp = app
        .raw(
            Method::POST,
            "/agents",
            Some("application/json"),
            &padded_body(AGENT_A, 64 * 1024),
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "exactly 64 KiB is accepted"
    );
}

#[tokio::test]
async fn http_to_a_listed_loopback_host_is_accepted() {
    let app = TestApp::start().await;
    let agent = app
        .create(json!({"agent_id": AGENT_A, "slack_webhook_url": LOCAL_HOOK, "discord_webhook_url": LOCAL_HOOK}))
        .await;
    assert_eq!(agent["slack_webhook_url"], "http://127.0.0.1:9000/hook/***");
    assert_eq!(
        agent["discord_webhook_url"],
        "http://127.0.0.1:9000/hook/***"
    );
    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(
        stored.slack_webhook_url.unwrap().expose().as_str(),
        LOCAL_HOOK
    );
}

// ------------------------------------------------------------------ auth

/// Every `/agents` route, as (method, path, JSON body).
fn agent_routes() -> Vec<(Method, String, Option<Value>)> {
    let one = format!("/agents/{AGENT_A}");
    vec![
        (Method::GET, "/agents".to_owned(), None),
        (
            Method::POST,
            "/agents".to_owned(),
            Some(json!({"agent_id": AGENT_B})),
        ),
        (Method::GET, one.clone(), None),
        (Method::PATCH, one.clone(), Some(json!({"name": "changed"}))),
        (Method::DELETE, one, None),
    ]
}

#[tokio::test]
async fn every_agents_route_needs_the_bearer_token() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "name": "kept"}))
        .await;
    let basic = format!("Basic {}", "YW55b25lOmFkbS1UMEtFTi00ZjJhOWM="); // anyone:TOKEN
    let wrong: [(&str, Option<String>); 5] = [
        ("no header", None),
        ("wrong token", Some("Bearer adm-T0KEN-4f2a9".to_owned())),
        ("longer token", Some(format!("Bearer {TOKEN}x"))),
        ("empty bearer", Some("Bearer ".to_owned())),
        ("basic with the token", Some(basic)),
    ];
    for (method, path, body) in agent_routes() {
        for (what, header) in &wrong {
            let mut req = app.anon(method.clone(), &path);
            if let Some(h) = header {
                req = req.header("authorization", h);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = req.send().await.unwrap();
            let challenge = resp.headers().get("www-authenticate").cloned();
            let message = expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
            assert!(!message.contains(TOKEN), "{message}");
            let challenge =
                challenge.unwrap_or_else(|| panic!("{method} {path} {what}: no challenge"));
            assert!(
                challenge.to_str().unwrap().starts_with("Bearer"),
                "{challenge:?}"
            );
        }
    }
    // Nothing changed.
    assert_eq!(app.stored_ids().await, vec![AGENT_A.to_owned()]);
    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(stored.name.as_deref(), Some("kept"));

    // The same requests with the token pass (the scheme is case-insensitive).
    for (method, path, body) in agent_routes() {
        let mut req = app
            .anon(method.clone(), &path)
            .header("authorization", format!("bearer {TOKEN}"));
        if let Some(b) = &body {
            req = req.json(b);
        }
        let status = req.send().await.unwrap().status();
        assert!(status.is_success(), "{method} {path}: {status}");
    }
    assert_eq!(
        app.stored_ids().await,
        vec![AGENT_B.to_owned()],
        "POST and DELETE happened"
    );
}

#[tokio::test]
async fn without_an_admin_token_no_auth_is_asked() {
    let app = TestApp::start_with(None).await;
    for (method, path, body) in agent_routes() {
        let mut req = app.anon(method.clone(), &path);
        if method == Method::GET && path != "/agents" {
            // Create A first so that reading, changing and deleting it succeed.
            let created = app
                .anon(Method::POST, "/agents")
                .json(&json!({"agent_id": AGENT_A}))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), StatusCode::CREATED);
        }
        if let Some(b) = &body {
            req = req.json(b);
        }
        let status = req.send().await.unwrap().status();
        assert!(status.is_success(), "{method} {path}: {status}");
    }
    let page = app.anon(Method::GET, "/").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}

// ------------------------------------------------------------------ GET

#[tokio::test]
async fn get_lists_and_reads_agents() {
    let app = TestApp::start().await;
    let list: Value = common::json_of(app.authed(Method::GET, "/agents")).await;
    assert_eq!(list, json!({"agents": []}));

    let a = app
        .create(json!({"agent_id": AGENT_A, "name": "A", "slack_webhook_url": SLACK}))
        .await;
    let b = app
        .create(json!({"agent_id": AGENT_B, "discord_webhook_url": DISCORD}))
        .await;
    let resp = app.authed(Method::GET, "/agents").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert_no_secret(&text);
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys(&list), set(&["agents"]));
    let agents = list["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2);
    assert!(agents.contains(&a) && agents.contains(&b), "{list}");

    let resp = app.get_agent(AGENT_A).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        a,
        "GET shows what POST answered"
    );
    let resp = app.get_agent(&AGENT_B.to_uppercase()).await;
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        b,
        "any spelling of the id"
    );

    let other = uuid::Uuid::new_v4().to_string();
    let message = expect_error(
        app.get_agent(&other).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(message.contains(&other), "{message}");
    let message = expect_error(
        app.get_agent("not-a-uuid").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(message.contains("agent_id"), "{message}");
}

#[tokio::test]
async fn the_agent_shows_the_trackers_state() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "name": "A"})).await;
    let obs = Observation {
        status: "errored".to_owned(),
        connected: false,
        accounts: vec![Account {
            id: "acc-1".to_owned(),
            account_name: "Sales calendar".to_owned(),
            status: "errored".to_owned(),
            error: Some("token expired".to_owned()),
        }],
        connection: Some(ravan_watch::domain::Connection::Private),
    };
    let thresholds = ravan_watch::tracker::Thresholds {
        failure: 2.try_into().unwrap(),
        success: 1.try_into().unwrap(),
        reminder: None,
    };
    let agent_ref = ravan_watch::domain::alert::AgentRef {
        id: id(AGENT_A),
        name: None,
    };
    let mut state = AgentState::default();
    state.observe(&agent_ref, &obs, at(0), &thresholds, false);
    state.observe(&agent_ref, &obs, at(30), &thresholds, false);
    app.store
        .commit_cycle(
            None,
            &[AgentUpdate {
                agent_id: id(AGENT_A),
                state: state.clone(),
                alerts: vec![],
            }],
            &MonitorState::default(),
            &[],
            at(30),
        )
        .await
        .unwrap();
    let agent: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(
        agent["state"],
        json!({
            "status": "errored",
            "connection": "private",
            "missing_since": null,
            "connected": false,
            "healthy": false,
            "since": "2025-06-15T15:06:40Z",
            "last_checked_at": "2025-06-15T15:07:10Z",
            "last_error": null,
            "accounts": [{"id": "acc-1", "account_name": "Sales calendar", "status": "errored", "error": "token expired"}],
        })
    );
    assert_eq!(
        at(0).to_rfc3339(),
        "2025-06-15T15:06:40+00:00",
        "the times above"
    );

    // A failed poll keeps the status and shows why it failed.
    state.poll_failed("timeout after 10s".to_owned(), at(60));
    let healthy = Observation {
        status: "active".to_owned(),
        connected: true,
        accounts: vec![],
        connection: None,
    };
    app.store
        .commit_cycle(
            None,
            &[AgentUpdate {
                agent_id: id(AGENT_A),
                state: state.clone(),
                alerts: vec![],
            }],
            &MonitorState::default(),
            &[],
            at(60),
        )
        .await
        .unwrap();
    let agent: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(agent["state"]["status"], "errored");
    assert_eq!(agent["state"]["last_error"], "timeout after 10s");
    assert_eq!(agent["state"]["last_checked_at"], "2025-06-15T15:07:40Z");

    state.observe(&agent_ref, &healthy, at(90), &thresholds, false);
    app.store
        .commit_cycle(
            None,
            &[AgentUpdate {
                agent_id: id(AGENT_A),
                state,
                alerts: vec![],
            }],
            &MonitorState::default(),
            &[],
            at(90),
        )
        .await
        .unwrap();
    let agent: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(agent["state"]["status"], "active");
    assert_eq!(agent["state"]["healthy"], true);
    assert_eq!(agent["state"]["connected"], true);
    assert_eq!(agent["state"]["since"], "2025-06-15T15:08:10Z");
    assert_eq!(agent["state"]["last_error"], Value::Null);
    assert_eq!(agent["state"]["accounts"], json!([]));
}

// ------------------------------------------------------------------ PATCH

#[tokio::test]
async fn patch_changes_each_field_and_null_clears() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A})).await;

    let agent = app.patched(AGENT_A, json!({"name": "  Support  "})).await;
    assert_eq!(agent["name"], "Support");
    let agent = app
        .patched(AGENT_A, json!({"slack_webhook_url": SLACK}))
        .await;
    assert_eq!(agent["slack_webhook_url"], SLACK_MASKED);
    assert_eq!(agent["name"], "Support", "absent fields stay");
    let agent = app
        .patched(AGENT_A, json!({"discord_webhook_url": DISCORD}))
        .await;
    assert_eq!(agent["discord_webhook_url"], DISCORD_MASKED);
    assert_eq!(agent["slack_webhook_url"], SLACK_MASKED);
    let agent = app.patched(AGENT_A, json!({"muted": true})).await;
    assert_eq!(agent["muted"], true);
    let agent = app
        .patched(AGENT_A, json!({"muted_until": "2030-01-02T04:05:06+01:00"}))
        .await;
    assert_eq!(agent["muted_until"], "2030-01-02T03:05:06Z", "kept in UTC");

    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(stored.name.as_deref(), Some("Support"));
    assert_eq!(stored.slack_webhook_url.unwrap().expose().as_str(), SLACK);
    assert_eq!(
        stored.discord_webhook_url.unwrap().expose().as_str(),
        DISCORD
    );
    assert!(stored.muted);
    assert_eq!(
        stored.muted_until,
        Some(Utc.with_ymd_and_hms(2030, 1, 2, 3, 5, 6).unwrap())
    );

    // An empty patch changes nothing.
    let before: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(app.patched(AGENT_A, json!({})).await, before);

    let agent = app
        .patched(AGENT_A, json!({"muted": false, "muted_until": null}))
        .await;
    assert_eq!(
        (agent["muted"].clone(), agent["muted_until"].clone()),
        (json!(false), Value::Null)
    );
    let agent = app.patched(AGENT_A, json!({"name": null})).await;
    assert_eq!(agent["name"], Value::Null);
    let agent = app
        .patched(AGENT_A, json!({"slack_webhook_url": null}))
        .await;
    assert_eq!(agent["slack_webhook_url"], Value::Null);
    assert_eq!(agent["discord_webhook_url"], DISCORD_MASKED);
    let agent = app
        .patched(AGENT_A, json!({"discord_webhook_url": null}))
        .await;
    assert_eq!(agent["discord_webhook_url"], Value::Null);

    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(stored.name, None);
    assert_eq!(stored.slack_webhook_url, None);
    assert_eq!(stored.discord_webhook_url, None);
    assert!(!stored.muted);
    assert_eq!(stored.muted_until, None);

    // The JSON merge-patch media type is JSON too.
    let resp = app
        .raw(
            Method::PATCH,
            &format!("/agents/{AGENT_A}"),
            Some("application/merge-patch+json"),
            r#"{"name": "Merged"}"#,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["name"], "Merged");

    // Several fields at once, through the uppercase spelling of the id.
    let agent = app
        .patched(
            &AGENT_A.to_uppercase(),
            json!({"name": "Both", "slack_webhook_url": LOCAL_HOOK, "muted": true}),
        )
        .await;
    assert_eq!(agent["name"], "Both");
    assert_eq!(agent["slack_webhook_url"], "http://127.0.0.1:9000/hook/***");
    assert_eq!(agent["muted"], true);
}

#[tokio::test]
async fn patch_rejects_bad_values_and_changes_nothing() {
    let app = TestApp::start().await;
    let original = app
        .create(json!({"agent_id": AGENT_A, "name": "Orig", "slack_webhook_url": SLACK}))
        .await;
    let path = format!("/agents/{AGENT_A}");
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"muted_until": "tomorrow"}),
            "muted_until: must be an RFC 3339 time",
        ),
        (
            json!({"muted_until": "2030-01-02"}),
            "muted_until: must be an RFC 3339 time",
        ),
        (json!({"muted_until": 1893456000}), "muted_until"),
        (json!({"muted": null}), "muted"),
        (json!({"muted": 1}), "muted"),
        (json!({"name": "x".repeat(101)}), "name: must be 1 to 100"),
        (json!({"name": ""}), "name: must be 1 to 100"),
        (json!({"nmae": "typo"}), "nmae"),
        (json!({"agent_id": AGENT_B}), "agent_id"),
        (
            json!({"slack_webhook_url": "https://evil.example/x/SLACKSECRET123"}),
            "slack_webhook_url: host",
        ),
        (
            json!({"discord_webhook_url": "http://discord.com/api/webhooks/1/DISCORDSECRET456"}),
            "discord_webhook_url: must use https",
        ),
        // One good field and one bad: all or nothing.
        (
            json!({"name": "Changed", "muted_until": "soon"}),
            "muted_until",
        ),
    ];
    for (body, needle) in cases {
        let resp = app.patch(AGENT_A, body.clone()).await;
        let message = expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(
            message.contains(needle),
            "{body}: {message:?} lacks {needle:?}"
        );
        assert_no_secret(&message);
    }
    let resp = app
        .raw(
            Method::PATCH,
            &path,
            Some("application/json"),
            "{\"name\": ",
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    let resp = app
        .raw(Method::PATCH, &path, Some("text/plain"), "{}")
        .await;
    expect_error(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let resp = app.raw(Method::PATCH, &path, None, "{}").await;
    expect_error(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let resp = app
        .raw(
            Method::PATCH,
            &path,
            Some("application/json"),
            "[\"Changed\"]",
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    let now: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(now, original, "nothing changed");

    let other = uuid::Uuid::new_v4().to_string();
    let resp = app.patch(&other, json!({"name": "x"})).await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    assert!(
        app.store.agent(id(&other)).await.unwrap().is_none(),
        "PATCH does not create"
    );
    let resp = app.patch("12345", json!({"name": "x"})).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
}

// ------------------------------------------------------------------ DELETE

#[tokio::test]
async fn delete_removes_once() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A})).await;
    app.create(json!({"agent_id": AGENT_B})).await;
    let delete = |path: String| app.authed(Method::DELETE, &path).send();
    let resp = delete(format!("/agents/{}", AGENT_A.to_uppercase()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.text().await.unwrap().is_empty());
    assert_eq!(app.stored_ids().await, vec![AGENT_B.to_owned()]);
    expect_error(
        app.get_agent(AGENT_A).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let resp = delete(format!("/agents/{AGENT_A}")).await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = delete("/agents/nope".to_owned()).await.unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(app.stored_ids().await, vec![AGENT_B.to_owned()]);
}

// ------------------------------------------------------------------ probes and metrics

#[tokio::test]
async fn healthz_answers_ok_without_auth() {
    let app = TestApp::start().await;
    let resp = app.anon(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_needs_the_scheduler_and_the_database() {
    let app = TestApp::start().await;
    let ready = || async {
        let resp = app.anon(Method::GET, "/readyz").send().await.unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(
        ready().await,
        (
            StatusCode::OK,
            json!({"status": "ok", "checks": {"database": "ok", "scheduler": "running", "delivery": "running"}})
        )
    );
    app.scheduler_running.store(false, Ordering::Release);
    assert_eq!(
        ready().await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "checks": {"database": "ok", "scheduler": "not_running", "delivery": "running"}})
        )
    );
    app.scheduler_running.store(true, Ordering::Release);
    assert_eq!(ready().await.0, StatusCode::OK);
    // A delivery worker that keeps panicking (it is restarted each time) is not ready.
    let mut runs = 0;
    tokio::time::pause();
    ravan_watch::supervise::supervise("test worker", app.delivery.clone(), || {
        runs += 1;
        let n = runs;
        async move { assert!(n > 3, "worker bug {n}") }
    })
    .await;
    tokio::time::resume();
    assert_eq!(
        ready().await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "checks": {"database": "ok", "scheduler": "running", "delivery": "failing"}})
        )
    );
    let page = app
        .anon(Method::GET, "/")
        .basic_auth("admin", Some(TOKEN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Delivery worker"), "{page}");
    assert!(page.contains("worker bug 3"), "{page}");
    app.store.close().await;
    assert_eq!(
        ready().await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "checks": {"database": "unavailable", "scheduler": "running", "delivery": "failing"}})
        )
    );
    // The process still answers: liveness is not readiness.
    let resp = app.anon(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_failing_database_is_a_generic_500() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A})).await;
    app.store.close().await;
    let requests = [
        app.authed(Method::GET, "/agents"),
        app.authed(Method::GET, &format!("/agents/{AGENT_A}")),
        app.authed(Method::POST, "/agents")
            .json(&json!({"agent_id": AGENT_B})),
        app.authed(Method::PATCH, &format!("/agents/{AGENT_A}"))
            .json(&json!({"name": "x"})),
        app.authed(Method::DELETE, &format!("/agents/{AGENT_A}")),
        app.anon(Method::GET, "/").basic_auth("admin", Some(TOKEN)),
    ];
    for req in requests {
        let resp = req.send().await.unwrap();
        let message = expect_error(resp, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
        let lower = message.to_lowercase();
        for leak in ["pool", "sql", "select", "database error"] {
            assert!(!lower.contains(leak), "{message}");
        }
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_outbox_gauge() {
    let app = TestApp::start().await;
    let scrape = || async {
        let resp = app.anon(Method::GET, "/metrics").send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/plain; version=0.0.4");
        resp.text().await.unwrap()
    };
    let text = scrape().await;
    assert!(
        text.contains("# TYPE ravan_watch_outbox_pending gauge"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == "ravan_watch_outbox_pending 0"),
        "{text}"
    );

    // Two pending entries (one alert, two destinations) show up at the next scrape.
    let alert = Alert::Monitor(monitor_alert(
        MonitorAlertKind::Down,
        "all polls failed",
        at(0),
    ));
    let hooks = vec![
        webhook(Platform::Slack, SLACK),
        webhook(Platform::Discord, DISCORD),
    ];
    let written = app
        .store
        .commit_cycle(
            None,
            &[],
            &MonitorState::default(),
            &[(alert, hooks)],
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(written, 2);
    let text = scrape().await;
    assert!(
        text.lines().any(|l| l == "ravan_watch_outbox_pending 2"),
        "{text}"
    );
    assert_no_secret(&text);
}

// ------------------------------------------------------------------ status page

#[tokio::test]
async fn status_page_needs_basic_auth_and_escapes_text() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "name": "<script>alert('x')</script> & co", "slack_webhook_url": SLACK, "muted": true}))
        .await;
    app.create(json!({"agent_id": AGENT_B})).await;
    let mut state = AgentState::default();
    let obs = Observation {
        status: "<b>errored</b>".to_owned(),
        connected: false,
        accounts: vec![],
        connection: None,
    };
    let th = ravan_watch::tracker::Thresholds {
        failure: 1.try_into().unwrap(),
        success: 1.try_into().unwrap(),
        reminder: None,
    };
    state.observe(
        &ravan_watch::domain::alert::AgentRef {
            id: id(AGENT_B),
            name: None,
        },
        &obs,
        at(0),
        &th,
        false,
    );
    app.store
        .commit_cycle(
            None,
            &[AgentUpdate {
                agent_id: id(AGENT_B),
                state,
                alerts: vec![],
            }],
            &MonitorState::default(),
            &[],
            at(0),
        )
        .await
        .unwrap();

    let refused = [
        app.anon(Method::GET, "/"),
        app.anon(Method::GET, "/")
            .basic_auth("admin", Some("wrong")),
        app.anon(Method::GET, "/").basic_auth(TOKEN, None::<&str>),
        app.anon(Method::GET, "/").bearer_auth(TOKEN),
        app.anon(Method::GET, "/")
            .header("authorization", "Basic !!!"),
    ];
    for req in refused {
        let resp = req.send().await.unwrap();
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Basic realm=\"ravan-watch\""
        );
        expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }

    for user in ["admin", "", "anyone at all"] {
        let resp = app
            .anon(Method::GET, "/")
            .basic_auth(user, Some(TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "user {user:?}");
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        let html = resp.text().await.unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_no_secret(&html);
        assert!(
            !html.contains("<script>") && !html.contains("<b>errored"),
            "{html}"
        );
        // askama's escapes: `&#60;` for `<`, `&#38;` for `&`, `&#39;` for `'`.
        assert!(
            html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; co"),
            "{html}"
        );
        assert!(html.contains(AGENT_A) && html.contains(AGENT_B), "{html}");
        // Each agent's card: B observed unhealthy, A never polled and muted; B comes first.
        let card = |id: &str| {
            let start = html.find(&format!("id=\"agent-{id}\"")).unwrap();
            let end = start + html[start..].find("</article>").unwrap();
            html[start..end].to_owned()
        };
        assert!(
            html.find(&format!("agent-{AGENT_B}")) < html.find(&format!("agent-{AGENT_A}")),
            "unhealthy first"
        );
        let card_b = card(AGENT_B);
        for text in [
            "&#60;b&#62;errored&#60;/b&#62;",
            "data-health=\"unhealthy\"",
            "2025-06-15T15:06:40Z",
            "Muted</dt><dd>no",
        ] {
            assert!(card_b.contains(text), "{text} not in {card_b}");
        }
        let card_a = card(AGENT_A);
        for text in [
            "not polled yet",
            "data-health=\"unknown\"",
            "Last checked</dt><dd>never",
            "Muted</dt><dd>yes",
        ] {
            assert!(card_a.contains(text), "{text} not in {card_a}");
        }
    }
}

// ------------------------------------------------------------------ routing errors

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let app = TestApp::start().await;
    for path in [
        "/nope",
        "/agents/",
        &format!("/agents/{AGENT_A}/extra"),
        "/healthz/x",
    ] {
        let resp = app.authed(Method::GET, path).send().await.unwrap();
        expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    }
    for (method, path, allow) in [
        (Method::PUT, "/agents", "GET,HEAD,POST"),
        (
            Method::POST,
            &format!("/agents/{AGENT_A}") as &str,
            "GET,HEAD,PATCH,DELETE",
        ),
        (Method::POST, "/healthz", "GET,HEAD"),
        (Method::DELETE, "/", "GET,HEAD"),
    ] {
        let resp = app.authed(method.clone(), path).send().await.unwrap();
        let allowed: HashSet<String> = resp.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        let expected: HashSet<String> = allow.split(',').map(str::to_owned).collect();
        assert_eq!(allowed, expected, "{method} {path}");
        let message = expect_error(resp, StatusCode::METHOD_NOT_ALLOWED, "invalid_request").await;
        assert!(message.contains(method.as_str()), "{message}");
    }
}

// ------------------------------------------------------------------ secrets

/// Everything the process logs (at debug and above) from the first call on.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn capture_logs() -> LogBuffer {
    static LOGS: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(buffer.clone())
            .init();
        buffer
    })
    .clone()
}

#[tokio::test]
async fn no_answer_or_log_line_contains_a_webhook_secret() {
    let logs = capture_logs();
    let app = TestApp::start().await;
    let mut texts: Vec<String> = Vec::new();
    let mut headers: Vec<HeaderMap> = Vec::new();
    let keep = |resp: Response| async {
        let h = resp.headers().clone();
        (h, resp.text().await.unwrap())
    };
    for resp in [
        app.post(json!({"agent_id": AGENT_A, "slack_webhook_url": SLACK, "discord_webhook_url": DISCORD})).await,
        app.post(json!({"agent_id": AGENT_B, "slack_webhook_url": LOCAL_HOOK})).await,
        app.post(json!({"agent_id": AGENT_A, "slack_webhook_url": SLACK})).await,
        app.authed(Method::GET, "/agents").send().await.unwrap(),
        app.get_agent(AGENT_A).await,
        app.patch(AGENT_B, json!({"discord_webhook_url": DISCORD})).await,
        app.patch(AGENT_B, json!({"slack_webhook_url": "https://evil.example/services/SLACKSECRET123"})).await,
        app.anon(Method::GET, "/").basic_auth("a", Some(TOKEN)).send().await.unwrap(),
    ] {
        let (h, t) = keep(resp).await;
        headers.push(h);
        texts.push(t);
    }
    let all = texts.join("\n");
    assert_no_secret(&all);
    for h in &headers {
        assert_no_secret(&format!("{h:?}"));
    }
    assert!(!all.contains(TOKEN));
    assert!(
        all.contains(SLACK_MASKED) && all.contains(DISCORD_MASKED),
        "{all}"
    );
    assert!(all.contains("http://127.0.0.1:9000/hook/***"), "{all}");

    // A wrong token and a failing database are logged, without the secrets.
    let resp = app
        .anon(Method::GET, "/agents")
        .bearer_auth(format!("{TOKEN}-wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    app.store.close().await;
    let resp = app.get_agent(AGENT_A).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("agent added over the API"),
        "logs are captured: {logged}"
    );
    assert!(logged.contains("request failed"), "{logged}");
    assert_no_secret(&logged);
    assert!(!logged.contains(TOKEN), "the admin token was logged");
}

// ------------------------------------------------------------------ concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_posts_are_all_created_once() {
    let app = Arc::new(TestApp::start().await);
    let ids: Vec<String> = (0..50).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let tasks: Vec<_> = ids
        .iter()
        .map(|agent| {
            let app = app.clone();
            let agent = agent.clone();
            tokio::spawn(async move {
                app.post(json!({"agent_id": agent, "name": format!("agent {agent}")}))
                    .await
                    .status()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    let list: Value = common::json_of(app.authed(Method::GET, "/agents")).await;
    let listed: Vec<String> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed.len(), 50, "each exactly once");
    let expected: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let stored: BTreeSet<String> = app.stored_ids().await.into_iter().collect();
    assert_eq!(stored, expected);
}

// ------------------------------------------------------------------ OpenAPI

/// Every route of the contract, with the codes each must document.
fn documented_routes() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        (
            "/agents",
            "post",
            vec!["201", "400", "401", "409", "413", "415", "500"],
        ),
        ("/agents", "get", vec!["200", "401"]),
        (
            "/agents/{agent_id}",
            "get",
            vec!["200", "400", "401", "404"],
        ),
        (
            "/agents/{agent_id}",
            "patch",
            vec!["200", "400", "401", "404", "413", "415"],
        ),
        (
            "/agents/{agent_id}",
            "delete",
            vec!["204", "400", "401", "404"],
        ),
        ("/", "get", vec!["200", "401"]),
        ("/healthz", "get", vec!["200"]),
        ("/readyz", "get", vec!["200", "503"]),
        ("/metrics", "get", vec!["200"]),
        ("/openapi.json", "get", vec!["200"]),
    ]
}

fn validator(doc: &Value, schema: &str) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{schema}"),
        "components": doc["components"],
    });
    jsonschema::validator_for(&root).unwrap()
}

#[tokio::test]
async fn openapi_documents_every_route_with_its_schemas() {
    let app = TestApp::start().await;
    let resp = app.anon(Method::GET, "/openapi.json").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );

    // Exactly the contract's routes, no more.
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            found.insert((path.clone(), method.clone()));
        }
    }
    let expected: BTreeSet<_> = documented_routes()
        .into_iter()
        .map(|(p, m, _)| (p.to_owned(), m.to_owned()))
        .collect();
    assert_eq!(found, expected);

    for (path, method, codes) in documented_routes() {
        let op = &doc["paths"][path][method];
        let responses = op["responses"].as_object().unwrap();
        for code in codes {
            assert!(responses.contains_key(code), "{method} {path} lacks {code}");
        }
        let secured = op["security"]
            .as_array()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        if path.starts_with("/agents") {
            assert_eq!(secured, vec![json!({"admin_token": []})], "{method} {path}");
            assert!(
                responses["401"]["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .unwrap()
                    .ends_with("/ErrorBody")
            );
        }
        if path.contains("{agent_id}") {
            let param = &op["parameters"][0];
            assert_eq!(
                (param["name"].as_str(), param["in"].as_str()),
                (Some("agent_id"), Some("path"))
            );
            assert_eq!(param["schema"]["format"], "uuid");
        }
    }
    let body_ref = |method: &str, path: &str| {
        doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(
        body_ref("post", "/agents").as_deref(),
        Some("#/components/schemas/CreateAgent")
    );
    assert_eq!(
        body_ref("patch", "/agents/{agent_id}").as_deref(),
        Some("#/components/schemas/UpdateAgent")
    );
    let ok_ref = |method: &str, path: &str, code: &str| {
        doc["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(
        ok_ref("post", "/agents", "201").as_deref(),
        Some("#/components/schemas/Agent")
    );
    assert_eq!(
        ok_ref("get", "/agents", "200").as_deref(),
        Some("#/components/schemas/AgentList")
    );
    assert_eq!(
        ok_ref("get", "/agents/{agent_id}", "200").as_deref(),
        Some("#/components/schemas/Agent")
    );
    assert_eq!(
        ok_ref("patch", "/agents/{agent_id}", "200").as_deref(),
        Some("#/components/schemas/Agent")
    );
    assert_eq!(
        ok_ref("get", "/readyz", "503").as_deref(),
        Some("#/components/schemas/Readiness")
    );
    assert!(doc["paths"]["/"]["get"]["responses"]["200"]["content"]["text/html"].is_object());
    assert!(
        doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]["text/plain; version=0.0.4"]
            .is_object()
    );

    // The schemas say what the contract says.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(keys(&schemas["Agent"]["properties"]), set(&AGENT_KEYS));
    assert_eq!(
        keys(&schemas["AgentStatus"]["properties"]),
        set(&STATE_KEYS)
    );
    let required = |name: &str| -> BTreeSet<String> {
        schemas[name]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        required("Agent"),
        set(&AGENT_KEYS),
        "every field is always present"
    );
    assert_eq!(required("AgentStatus"), set(&STATE_KEYS));
    assert_eq!(required("CreateAgent"), set(&["agent_id"]));
    assert!(
        schemas["UpdateAgent"]["required"].is_null(),
        "every PATCH field is optional"
    );
    assert_eq!(
        keys(&schemas["UpdateAgent"]["properties"]),
        set(&[
            "name",
            "slack_webhook_url",
            "discord_webhook_url",
            "muted",
            "muted_until"
        ])
    );
    assert_eq!(
        keys(&schemas["CreateAgent"]["properties"]),
        set(&[
            "agent_id",
            "name",
            "slack_webhook_url",
            "discord_webhook_url",
            "muted"
        ])
    );
    for s in ["CreateAgent", "UpdateAgent"] {
        assert_eq!(
            schemas[s]["additionalProperties"], false,
            "{s}: unknown fields are refused"
        );
    }
    let codes: BTreeSet<String> = schemas["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        codes,
        set(&[
            "invalid_request",
            "unauthorized",
            "not_found",
            "conflict",
            "payload_too_large",
            "unsupported_media_type",
            "internal"
        ])
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["status_page"]["scheme"],
        "basic"
    );

    // Real answers validate against the document's schemas.
    let agent = app
        .create(json!({"agent_id": AGENT_A, "name": "A", "slack_webhook_url": SLACK}))
        .await;
    let agent_schema = validator(&doc, "Agent");
    assert!(
        agent_schema.is_valid(&agent),
        "{:?}",
        agent_schema
            .iter_errors(&agent)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let mut broken = agent.clone();
    broken["state"].as_object_mut().unwrap().remove("accounts");
    assert!(!agent_schema.is_valid(&broken), "the check can fail");
    let list: Value = common::json_of(app.authed(Method::GET, "/agents")).await;
    assert!(validator(&doc, "AgentList").is_valid(&list));
    let error: Value = app.get_agent(AGENT_B).await.json().await.unwrap();
    assert!(validator(&doc, "ErrorBody").is_valid(&error), "{error}");
    let ready: Value = common::json_of(app.anon(Method::GET, "/readyz")).await;
    assert!(validator(&doc, "Readiness").is_valid(&ready), "{ready}");
    let health: Value = common::json_of(app.anon(Method::GET, "/healthz")).await;
    assert!(validator(&doc, "Health").is_valid(&health), "{health}");
    let create_schema = validator(&doc, "CreateAgent");
    assert!(create_schema.is_valid(&json!({"agent_id": AGENT_B, "muted": true})));
    assert!(!create_schema.is_valid(&json!({"agent_id": AGENT_B, "nmae": "typo"})));
    let update_schema = validator(&doc, "UpdateAgent");
    assert!(update_schema.is_valid(&json!({"name": null, "muted_until": "2030-01-01T00:00:00Z"})));
    assert!(!update_schema.is_valid(&json!({"muted": null})));
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let app = TestApp::start().await;
    let doc: Value = common::json_of(app.anon(Method::GET, "/openapi.json")).await;
    app.create(json!({"agent_id": AGENT_A})).await;
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((path.clone(), method.clone()));
        }
    }
    // DELETE last, so the agent exists for the others.
    routes.sort_by_key(|(_, m)| m == "delete");
    for (path, method) in routes {
        let concrete = path.replace("{agent_id}", AGENT_A);
        let method: Method = method.to_uppercase().parse().unwrap();
        let mut req = if path.starts_with("/agents") {
            app.authed(method.clone(), &concrete)
        } else {
            app.anon(method.clone(), &concrete)
                .basic_auth("x", Some(TOKEN))
        };
        if method == Method::POST {
            req = req.json(&json!({"agent_id": AGENT_B}));
        } else if method == Method::PATCH {
            req = req.json(&json!({"muted": true}));
        }
        let status = req.send().await.unwrap().status();
        assert!(status.is_success(), "{method} {path}: {status}");
    }
}

#[tokio::test]
async fn a_dead_webhook_shows_in_delivery_error_until_its_url_is_set_again() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "slack_webhook_url": SLACK}))
        .await;
    let agent: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(agent["delivery_error"], Value::Null);

    let hook = webhook(Platform::Slack, SLACK);
    let now = noon();
    assert!(
        app.store
            .mark_webhook_dead(&hook, "HTTP 404: no_service", now)
            .await
            .unwrap()
    );
    let agent: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    let error = agent["delivery_error"]
        .as_str()
        .expect("delivery_error is set");
    assert!(
        error.contains("no_service") && error.contains(SLACK_MASKED),
        "{error}"
    );
    assert!(!error.contains("SLACKSECRET123"), "{error}");
    let list: Value = common::json_of(app.authed(Method::GET, "/agents")).await;
    assert_eq!(list["agents"][0]["delivery_error"], agent["delivery_error"]);

    // Setting the URL again (here: the same one) clears it.
    let agent = app
        .patched(AGENT_A, json!({"slack_webhook_url": SLACK}))
        .await;
    assert_eq!(agent["delivery_error"], Value::Null);
    assert!(app.store.dead_webhooks().await.unwrap().is_empty());
}
