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

/// The organisation id the fake's single agents belong to, by default.
pub const FAKE_ORG_ID: &str = "7c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5";

/// `GET /api/v1/calcom/status?org_id=…`: the organisation's own Cal.com connection in `status`
/// (`active`: connected, with a token expiry; anything else: the documented "not connected"
/// shape with that status).
pub fn calcom_org_body(status: &str) -> serde_json::Value {
    if status == "active" {
        return json!({
            "success": true, "message": "Connection status retrieved",
            "data": {"connected": true, "status": "active",
                     "accounts": [{"id": "acc_123", "email": "user@example.com"}],
                     "token_expires": "2026-04-20T12:00:00Z"}
        });
    }
    json!({
        "success": true, "message": "Connection status retrieved",
        "data": {"accounts": [], "connected": false, "message": "Cal.com is not connected",
                 "status": status}
    })
}

/// `GET /api/v1/ghl/setup/status`, as documented, with these two flags.
pub fn ghl_body(ghl_connected: bool, token_valid: bool) -> serde_json::Value {
    json!({
        "success": true, "message": "GHL setup status fetched successfully",
        "data": {"ghl_connected": ghl_connected, "location_id": "loc_abc123def456",
                 "company_id": "comp_xyz789", "token_valid": token_valid,
                 "agents_created": true, "agent_count": 2, "setup_complete": ghl_connected && token_valid,
                 "message": "GHL integration is fully configured",
                 "next_step": if ghl_connected { "" } else { "CONNECT_GHL" }}
    })
}

/// `GET /api/v1/agents/{id}/`: one agent of `org`, with the secret it carries.
pub fn agent_body(id: &str, org: &str) -> serde_json::Value {
    json!({
        "success": true, "message": "Agent retrieved",
        "data": {"id": id, "agentName": "Sales", "organization_id": org,
                 "calcomApiKey": LISTED_SECRET, "calcomStatus": "active",
                 "calcomConnectionType": "org_linked", "prompt": "You are a helpful agent"}
    })
}

/// `GET /health` when Ravan runs.
pub fn health_body() -> serde_json::Value {
    json!({"status": "healthy", "service": "integration_service", "time": "2026-03-20T14:30:00Z"})
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
    /// The organisation-level answers: see [`FakeRavan::set_calcom_org`] and the others.
    calcom_org: Arc<Mutex<ResponseTemplate>>,
    ghl: Arc<Mutex<ResponseTemplate>>,
    health: Arc<Mutex<ResponseTemplate>>,
    agents: Arc<Mutex<HashMap<String, ResponseTemplate>>>,
}

/// One answer, changeable while the fake serves.
struct Fixed(Arc<Mutex<ResponseTemplate>>);

impl Respond for Fixed {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().clone()
    }
}

/// `GET /api/v1/agents/{id}/`: the answer set for the agent, else one of [`FAKE_ORG_ID`].
struct Agents(Arc<Mutex<HashMap<String, ResponseTemplate>>>);

impl Respond for Agents {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = agent_of(request);
        self.0.lock().unwrap().get(&id).cloned().unwrap_or_else(|| {
            ResponseTemplate::new(200).set_body_json(agent_body(&id, FAKE_ORG_ID))
        })
    }
}

/// The agent id of `/api/v1/calcom/agents/{id}/status` or `/info` (or of
/// `/api/v1/agents/{id}/`, whose last segment is empty).
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
    /// a 404, its `/info` of type `none`, and the listing empty; the organisation's Cal.com
    /// connection is `active`, its GoHighLevel setup complete, every single agent belongs to
    /// [`FAKE_ORG_ID`] and `/health` answers healthy (the documented examples).
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
        let ok = |body| Arc::new(Mutex::new(ResponseTemplate::new(200).set_body_json(body)));
        let (calcom_org, ghl, health) = (
            ok(calcom_org_body("active")),
            ok(ghl_body(true, true)),
            ok(health_body()),
        );
        let agents = Arc::new(Mutex::new(HashMap::new()));
        for (route, answer) in [
            (r"^/api/v1/calcom/status$", &calcom_org),
            (r"^/api/v1/ghl/setup/status$", &ghl),
            (r"^/health$", &health),
        ] {
            Mock::given(method("GET"))
                .and(path_regex(route))
                .respond_with(Fixed(answer.clone()))
                .mount(&server)
                .await;
        }
        Mock::given(method("GET"))
            .and(path_regex(r"^/api/v1/agents/[^/]+/$"))
            .respond_with(Agents(agents.clone()))
            .mount(&server)
            .await;
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
            calcom_org,
            ghl,
            health,
            agents,
        }
    }

    /// Any answer of `GET /api/v1/calcom/status` (the organisation's Cal.com connection).
    pub fn set_calcom_org(&self, answer: ResponseTemplate) {
        *self.calcom_org.lock().unwrap() = answer;
    }

    /// Any answer of `GET /api/v1/ghl/setup/status`.
    pub fn set_ghl(&self, answer: ResponseTemplate) {
        *self.ghl.lock().unwrap() = answer;
    }

    /// Any answer of `GET /health`.
    pub fn set_health(&self, answer: ResponseTemplate) {
        *self.health.lock().unwrap() = answer;
    }

    /// Any answer of `GET /api/v1/agents/{agent}/` (the default: an agent of [`FAKE_ORG_ID`]).
    pub fn set_agent(&self, agent: &str, answer: ResponseTemplate) {
        self.agents.lock().unwrap().insert(agent.to_owned(), answer);
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

    /// Requests received so far, by kind: `status` (an agent's), `info`, `listing`,
    /// `calcom_org`, `ghl`, `agent` (a single agent) or `health`.
    pub async fn requests(&self, kind: &str) -> usize {
        let requests = self.server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .filter(|r| {
                let p = r.url.path();
                match kind {
                    "status" => p.starts_with("/api/v1/calcom/agents/") && p.ends_with("/status"),
                    "info" => p.ends_with("/info"),
                    "listing" => p == "/api/v1/agents/",
                    "calcom_org" => p == "/api/v1/calcom/status",
                    "ghl" => p == "/api/v1/ghl/setup/status",
                    "agent" => p.starts_with("/api/v1/agents/") && p != "/api/v1/agents/",
                    "health" => p == "/health",
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
            .filter(|r| {
                let p = r.url.path();
                p.starts_with("/api/v1/calcom/agents/")
                    && p.contains(agent)
                    && p.ends_with("/status")
            })
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
