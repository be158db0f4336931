//! The helpers the integration tests share, each defined once; a test file uses them with
//! `mod common;`. Here: a scriptable Ravan API (`FakeRavan`), a monitor of it, webhook sinks,
//! temporary databases, sending a request and reading its answer, and waiting with a deadline
//! instead of sleeping. Beside it: `alerts` builds alerts and webhooks, `api` serves the
//! management API for the `api_*` tests, `bin` runs the binary as operators do, `history`
//! seeds a fleet with a month of history, `ids` makes agent ids, `limits` checks payloads
//! against the platforms' limits, `postgres` gives a test a fresh PostgreSQL database (or
//! skips it), `pg_cluster` a PostgreSQL server of its own, and `replica` runs `serve` as a
//! real process beside others on one database.
#![allow(dead_code)]

pub mod alerts;
pub mod api;
pub mod bin;
pub mod history;
pub mod ids;
pub mod limits;
pub mod pg_cluster;
pub mod postgres;
pub mod replica;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Fixed agent ids, for tests that name a few agents.
pub const AGENT_A: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
pub const AGENT_B: &str = "9b2c7a10-1d2e-4f3a-8b4c-5d6e7f809102";
pub const AGENT_C: &str = "0d4e5f60-7a8b-4c9d-8e0f-112233445566";

/// `/status` for an agent with a private connection in `status` (with the account error `error`).
pub fn status_body(status: &str, error: Option<&str>) -> serde_json::Value {
    json!({
        "success": true,
        "message": "Agent connection status retrieved",
        "data": {
            "connected": status == "active",
            "status": status,
            "accounts": [{
                "id": "acc-1",
                "account_name": "Sales calendar",
                "status": status,
                "error": error.unwrap_or(""),
            }],
        }
    })
}

/// `/status` for an agent without a private connection (org-linked agents answer this).
pub fn no_private_body() -> serde_json::Value {
    json!({
        "success": true,
        "message": "No agent-level connection found",
        "data": {"connected": false, "status": "not_connected", "accounts": []}
    })
}

/// `/info`: the agent's effective account, of `kind` (`org_linked`, `agent`, `none` …).
pub fn info_body(kind: &str, status: &str, account_name: &str) -> serde_json::Value {
    if kind == "none" {
        return json!({
            "success": true,
            "message": "No Cal.com account",
            "data": {"connected": false, "type": "none", "calcom_account_id": null,
                     "account_name": null, "status": "not_connected", "api_base_url": null}
        });
    }
    json!({
        "success": true,
        "message": "Agent Cal.com account retrieved",
        "data": {
            "connected": status == "active",
            "type": kind,
            "calcom_account_id": 4242,
            "account_name": account_name,
            "status": status,
            "api_base_url": "https://api.cal.com/v2",
        }
    })
}

/// The two shapes of the agent listing the Ravan docs show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `agentName`, `status: "ACTIVE"`, `meta.total` a string, a secret `calcomApiKey`.
    Camel,
    /// `name`, `status: "AGENT_STATUS_ACTIVE"`, `meta.total` a number.
    Snake,
}

/// The secret every listed agent carries: it must never be stored, logged or answered.
pub const LISTED_SECRET: &str = "cal_live_SECRET_never_store_me";

/// One listed agent in `shape`; `active: false` lists it as inactive.
pub fn listed_agent(shape: Shape, id: &str, name: &str, active: bool) -> serde_json::Value {
    match shape {
        Shape::Camel => json!({
            "id": id, "agentName": name,
            "status": if active { "ACTIVE" } else { "INACTIVE" },
            "calcomApiKey": LISTED_SECRET, "prompt": "You are a helpful agent",
            "calcomStatus": "active",
        }),
        Shape::Snake => json!({
            "id": id, "name": name,
            "status": if active { "AGENT_STATUS_ACTIVE" } else { "AGENT_STATUS_INACTIVE" },
            "calcom_api_key": LISTED_SECRET, "voice": {"id": 3},
        }),
    }
}

/// What the fake's agent listing serves.
#[derive(Clone, Default)]
struct Listing {
    shape: Option<Shape>,
    agents: Vec<serde_json::Value>,
    /// Answers that replace the page at these offsets (a failure mid-way, a bad body …).
    pages: HashMap<usize, ResponseTemplate>,
    /// Replaces every page.
    all: Option<ResponseTemplate>,
}

/// A Ravan API whose answer per agent can be changed while the service runs: `/status` and
/// `/info` per agent, and the organisation's listing, paged by `limit` and `offset`.
#[derive(Clone)]
pub struct FakeRavan {
    pub server: Arc<MockServer>,
    answers: Arc<Mutex<HashMap<String, ResponseTemplate>>>,
    infos: Arc<Mutex<HashMap<String, ResponseTemplate>>>,
    listing: Arc<Mutex<Listing>>,
    fallback: Arc<Mutex<Option<ResponseTemplate>>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

/// The agent id of `/api/v1/calcom/agents/{id}/status` or `/info`.
fn agent_of(request: &Request) -> String {
    request
        .url
        .path_segments()
        .and_then(|s| s.rev().nth(1))
        .unwrap_or_default()
        .to_owned()
}

struct Infos(Arc<Mutex<HashMap<String, ResponseTemplate>>>);

impl Respond for Infos {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = agent_of(request);
        self.0
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .unwrap_or_else(|| ResponseTemplate::new(200).set_body_json(info_body("none", "", "")))
    }
}

struct Listings(Arc<Mutex<Listing>>);

impl Respond for Listings {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let listing = self.0.lock().unwrap().clone();
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let offset: usize = query
            .get("offset")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let limit: usize = query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(usize::MAX);
        if let Some(all) = listing.all {
            return all;
        }
        if let Some(page) = listing.pages.get(&offset) {
            return page.clone();
        }
        let total = listing.agents.len();
        let page: Vec<_> = listing
            .agents
            .iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        let meta = match listing.shape.unwrap_or(Shape::Snake) {
            Shape::Camel => {
                json!({"total": total.to_string(), "limit": limit.to_string(), "offset": offset.to_string()})
            }
            Shape::Snake => json!({"total": total, "limit": limit, "offset": offset}),
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "success": true, "message": "Agents retrieved", "data": page, "meta": meta,
        }))
    }
}

struct Answers {
    answers: Arc<Mutex<HashMap<String, ResponseTemplate>>>,
    fallback: Arc<Mutex<Option<ResponseTemplate>>>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Respond for Answers {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.arrivals.lock().unwrap().push(Instant::now());
        if let Some(all) = self.fallback.lock().unwrap().clone() {
            return all;
        }
        let id = agent_of(request);
        self.answers
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .unwrap_or_else(|| {
                ResponseTemplate::new(404).set_body_json(
                    json!({"success": false, "message": "Agent not found", "code": "NOT_FOUND"}),
                )
            })
    }
}

impl FakeRavan {
    /// A new fake on a random loopback port: until told otherwise, every agent's `/status` is
    /// a 404, its `/info` of type `none`, and the listing empty.
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let answers = Arc::new(Mutex::new(HashMap::new()));
        let infos = Arc::new(Mutex::new(HashMap::new()));
        let listing = Arc::new(Mutex::new(Listing::default()));
        let fallback = Arc::new(Mutex::new(None));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("GET"))
            .and(path_regex(r"^/api/v1/calcom/agents/[^/]+/info$"))
            .respond_with(Infos(infos.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/api/v1/agents/$"))
            .respond_with(Listings(listing.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/api/v1/calcom/agents/[^/]+/status$"))
            .respond_with(Answers {
                answers: answers.clone(),
                fallback: fallback.clone(),
                arrivals: arrivals.clone(),
            })
            .mount(&server)
            .await;
        Self {
            server: Arc::new(server),
            answers,
            infos,
            listing,
            fallback,
            arrivals,
        }
    }

    /// The agent has no private connection and books through the org-linked account `name`,
    /// whose status is `status`.
    pub fn set_org_linked(&self, agent: &str, status: &str, name: &str) {
        self.set_answer(
            agent,
            ResponseTemplate::new(200).set_body_json(no_private_body()),
        );
        self.set_info(
            agent,
            ResponseTemplate::new(200).set_body_json(info_body("org_linked", status, name)),
        );
    }

    /// Any `/info` answer for one agent (the default is `type: none`).
    pub fn set_info(&self, agent: &str, answer: ResponseTemplate) {
        self.infos.lock().unwrap().insert(agent.to_owned(), answer);
    }

    /// The organisation's agents, in `shape`.
    pub fn set_listing(&self, shape: Shape, agents: Vec<serde_json::Value>) {
        let mut listing = self.listing.lock().unwrap();
        listing.shape = Some(shape);
        listing.agents = agents;
    }

    /// The page at `offset` answers `answer` instead (`None`: served normally again).
    pub fn set_listing_page(&self, offset: usize, answer: Option<ResponseTemplate>) {
        let mut listing = self.listing.lock().unwrap();
        match answer {
            Some(a) => listing.pages.insert(offset, a),
            None => listing.pages.remove(&offset),
        };
    }

    /// Every page answers `answer` (`None`: served normally again).
    pub fn set_listing_all(&self, answer: Option<ResponseTemplate>) {
        self.listing.lock().unwrap().all = answer;
    }

    /// Requests received so far, by kind: `status`, `info` or `listing`.
    pub async fn requests(&self, kind: &str) -> usize {
        let requests = self.server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| {
                let p = r.url.path();
                match kind {
                    "status" => p.ends_with("/status"),
                    "info" => p.ends_with("/info"),
                    "listing" => p == "/api/v1/agents/",
                    _ => false,
                }
            })
            .count()
    }

    /// The fake's base URL, for `RAVAN_API_BASE_URL`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Every agent answers `status` (with the account error `error`).
    pub fn set_status(&self, agent: &str, status: &str, error: Option<&str>) {
        self.answers.lock().unwrap().insert(
            agent.to_owned(),
            ResponseTemplate::new(200).set_body_json(status_body(status, error)),
        );
    }

    /// Any answer for one agent.
    pub fn set_answer(&self, agent: &str, answer: ResponseTemplate) {
        self.answers
            .lock()
            .unwrap()
            .insert(agent.to_owned(), answer);
    }

    /// When each status request arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }

    /// Overrides every agent's answer (e.g. a stretch of 500s); `None` goes back to per-agent.
    pub fn answer_all(&self, answer: Option<ResponseTemplate>) {
        *self.fallback.lock().unwrap() = answer;
    }

    /// Status polls of one agent received so far.
    pub async fn polls_of(&self, agent: &str) -> usize {
        let requests = self.server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| r.url.path().contains(agent) && r.url.path().ends_with("/status"))
            .count()
    }

    /// Status polls received so far.
    pub async fn polls(&self) -> usize {
        self.requests("status").await
    }
}

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
/// make an alert, one healthy one a recovery.
pub fn test_monitor(
    ravan: &FakeRavan,
    store: &ravan_watch::store::Store,
    concurrency: usize,
    failure: u32,
) -> ravan_watch::monitor::Monitor {
    let outbox = ravan_watch::notify::Outbox::new(
        store.clone(),
        ravan_watch::notify::RetryPolicy::default(),
    )
    .unwrap();
    ravan_watch::monitor::Monitor::new(
        ravan_client(ravan),
        store.clone(),
        outbox,
        vec![],
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

/// Polls `check` every 20 ms until it is true or `limit` passes; panics with `what` on timeout.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
