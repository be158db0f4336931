//! The one fake Ravan API of the tests and the benchmarks: a scriptable `FakeRavan` on a random
//! loopback port (wiremock, serving on a thread of its own), and the bodies the real API
//! answers. The tests reach it through `common`; a benchmark can include this file alone
//! (`#[path = "../tests/common/ravan.rs"] mod ravan;`): it uses nothing else of `common`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

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
    answered: Arc<AtomicUsize>,
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
    /// `None` in a fake for load, whose requests would only pile up.
    arrivals: Option<Arc<Mutex<Vec<Instant>>>>,
    answered: Arc<AtomicUsize>,
}

impl Respond for Answers {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.answered.fetch_add(1, Ordering::Relaxed);
        if let Some(arrivals) = &self.arrivals {
            arrivals.lock().unwrap().push(Instant::now());
        }
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
        Self::on(MockServer::start().await, true).await
    }

    /// A fake for the benchmarks' load (hundreds of thousands of requests), which keeps no
    /// request: [`Self::polls`] counts, but [`Self::requests`], [`Self::polls_of`],
    /// [`Self::arrivals`] and `server.received_requests()` see nothing.
    pub async fn start_for_load() -> Self {
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        Self::on(server, false).await
    }

    async fn on(server: MockServer, record: bool) -> Self {
        let answers = Arc::new(Mutex::new(HashMap::new()));
        let infos = Arc::new(Mutex::new(HashMap::new()));
        let listing = Arc::new(Mutex::new(Listing::default()));
        let fallback = Arc::new(Mutex::new(None));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(AtomicUsize::new(0));
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
                arrivals: record.then(|| arrivals.clone()),
                answered: answered.clone(),
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
            answered,
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

    /// Status polls answered so far.
    pub async fn polls(&self) -> usize {
        self.answered()
    }

    /// Status polls answered so far, from outside an async context (a wiremock responder).
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }
}
