//! The management API over real HTTP, for the `api_*` tests: `api::router` served on a random
//! loopback port against a temporary SQLite file, driven with reqwest.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use chrono::{DateTime, TimeZone, Utc};
use ravan_watch::api::{AllowedHosts, DEFAULT_ALLOWED_HOSTS};
use ravan_watch::api::{ApiState, router};
use ravan_watch::domain::secret::Secret;
use ravan_watch::store::Fence;
use ravan_watch::store::{AgentUpdate, Store};
use ravan_watch::tracker::{AgentState, MonitorState};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

use super::ids::id;

/// The admin token the API is started with.
pub const TOKEN: &str = "adm-T0KEN-4f2a9c";
/// A Slack webhook URL on an allowed host.
pub const SLACK: &str = "https://hooks.slack.com/services/T0/B0/SLACKSECRET123";
/// [`SLACK`] as the API shows it: its secret masked.
pub const SLACK_MASKED: &str = "https://hooks.slack.com/services/T0/B0/***";
/// A Discord webhook URL on an allowed host.
pub const DISCORD: &str = "https://discord.com/api/webhooks/42/DISCORDSECRET456";
/// [`DISCORD`] as the API shows it: its secret masked.
pub const DISCORD_MASKED: &str = "https://discord.com/api/webhooks/42/***";
/// A loopback host listed in the test's WEBHOOK_ALLOWED_HOSTS.
pub const LOCAL_HOOK: &str = "http://127.0.0.1:9000/hook/LOCALSECRET789";
/// The secret part of each webhook URL here: no answer or log line may contain one.
pub const SECRETS: [&str; 4] = [
    "SLACKSECRET123",
    "DISCORDSECRET456",
    "LOCALSECRET789",
    "TEAMSSIG000",
];
/// A Microsoft Teams Workflows webhook URL on an allowed host: its `sig` query is the secret.
pub const TEAMS: &str = "https://prod-12.westus.logic.azure.com:443/workflows/0a1b2c/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=TEAMSSIG000";
/// [`TEAMS`] masked: the query (with `sig`) dropped, the last path segment `***`.
pub const TEAMS_MASKED: &str =
    "https://prod-12.westus.logic.azure.com/workflows/0a1b2c/triggers/manual/paths/***";
/// The fields of an agent in every answer, as the contract lists them.
pub const AGENT_KEYS: [&str; 14] = [
    "agent_id",
    "source",
    "uptime",
    "name",
    "muted",
    "muted_until",
    "slack_webhook_url",
    "discord_webhook_url",
    "teams_webhook_url",
    "webhook_url",
    "in_maintenance",
    "delivery_error",
    "created_at",
    "state",
];
/// The fields of an agent's `state`, as the contract lists them.
pub const STATE_KEYS: [&str; 9] = [
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

/// The management API (`api::router`) served on a random loopback port against a temporary
/// SQLite file, with a client for it; `scheduler_running` and `delivery` are the health the
/// probes report, for a test to change.
pub struct TestApp {
    base: String,
    client: reqwest::Client,
    pub store: Store,
    pub scheduler_running: Arc<AtomicBool>,
    pub delivery: ravan_watch::supervise::TaskHealth,
    /// This API's process's leadership, by the lease in `store` (claimed at start: leader).
    pub leadership: ravan_watch::leader::Leadership,
    _dir: TempDir,
}

impl TestApp {
    /// With the admin token `TOKEN` and a running scheduler.
    pub async fn start() -> Self {
        Self::start_with(Some(TOKEN)).await
    }

    /// With the admin token `token` (none: no auth is asked) and a running scheduler.
    pub async fn start_with(token: Option<&str>) -> Self {
        Self::start_signing(token, true).await
    }

    /// [`TestApp::start`] for a service without `WEBHOOK_SECRET`.
    pub async fn start_unsigned() -> Self {
        Self::start_signing(Some(TOKEN), false).await
    }

    /// With the admin token `token`, `WEBHOOK_SECRET` set or not (`signing`).
    async fn start_signing(token: Option<&str>, signing: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("api.db").display());
        let store = Store::open(&url).await.unwrap();
        let scheduler_running = Arc::new(AtomicBool::new(true));
        let delivery = ravan_watch::supervise::TaskHealth::default();
        let leadership = ravan_watch::leader::Leadership::leased(store.clone());
        leadership.claim().await;
        let state = ApiState {
            store: store.clone(),
            admin_token: token.map(Secret::new),
            allowed_hosts: AllowedHosts::parse(&format!("{DEFAULT_ALLOWED_HOSTS},127.0.0.1:9000"))
                .unwrap(),
            scheduler_running: scheduler_running.clone(),
            default_webhooks: vec![],
            delivery: delivery.clone(),
            leadership: leadership.clone(),
            zone: ravan_watch::domain::Zone::UTC,
            signing,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            store,
            scheduler_running,
            delivery,
            leadership,
            _dir: dir,
        }
    }

    /// The full URL of `path` on this API.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request without credentials.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with the admin token.
    pub fn authed(&self, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path).bearer_auth(TOKEN)
    }

    /// POSTs `body` to `/agents` with the admin token.
    pub async fn post(&self, body: Value) -> Response {
        self.authed(Method::POST, "/agents")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs and expects 201; returns the agent.
    pub async fn create(&self, body: Value) -> Value {
        let resp = self.post(body).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json().await.unwrap()
    }

    /// GETs one agent with the admin token.
    pub async fn get_agent(&self, id: &str) -> Response {
        self.authed(Method::GET, &format!("/agents/{id}"))
            .send()
            .await
            .unwrap()
    }

    /// PATCHes one agent with `body` and the admin token.
    pub async fn patch(&self, id: &str, body: Value) -> Response {
        self.authed(Method::PATCH, &format!("/agents/{id}"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// PATCHes and expects 200; returns the agent.
    pub async fn patched(&self, id: &str, body: Value) -> Value {
        let resp = self.patch(id, body.clone()).await;
        assert_eq!(resp.status(), StatusCode::OK, "PATCH {body}");
        resp.json().await.unwrap()
    }

    /// A request whose body is sent as is, with the given content type (none when `None`).
    pub async fn raw(
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

    /// Stores `state` as `agent`'s tracker state, as a poll cycle at `at` would, without alerts.
    pub async fn commit_state(&self, agent: &str, state: AgentState, at: DateTime<Utc>) {
        self.store
            .commit_cycle(
                Fence::Unchecked,
                None,
                &[AgentUpdate {
                    agent_id: id(agent),
                    state: &state,
                    alerts: vec![],
                    health: None,
                }],
                &MonitorState::default(),
                &[],
                at,
            )
            .await
            .unwrap();
    }

    /// The ids of the agents in the store, as it lists them.
    pub async fn stored_ids(&self) -> Vec<String> {
        self.store
            .agents()
            .await
            .unwrap()
            .iter()
            .map(|a| a.agent_id.to_string())
            .collect()
    }
}

/// `secs` seconds after 2025-06-15T15:06:40Z, a fixed time for observations.
pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
}

/// Checks the envelope `{"error": {"code", "message"}}` exactly; returns the message.
pub async fn expect_error(resp: Response, status: StatusCode, code: &str) -> String {
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

/// The keys of the JSON object `v`; panics if it is not one.
pub fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// `keys` as a set, to compare with [`keys`].
pub fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

/// Panics, naming the line, if `text` contains any of [`SECRETS`].
pub fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        if let Some(line) = text.lines().find(|l| l.contains(secret)) {
            panic!("{secret} leaked in: {line}");
        }
    }
}
