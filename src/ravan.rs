//! The Ravan API client: the calls the service makes (`/status` and `/info` of an agent, the
//! organisation's agent listing) and the classification of every answer into an
//! [`Observation`] or a [`PollFailure`].
//!
//! The split matters more than the calls: a failure says nothing about the agent, so the tracker
//! must never mistake a 500, a timeout or a throttled request for a broken connection.
//!
//! The client is also where politeness lives: a 429 from any call closes a gate that every
//! later request of every clone of this client waits at, for as long as `Retry-After` asks
//! (bounded), so the rest of a cycle and the next one slow down instead of hammering.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use url::Url;

use crate::config::RavanAuth;
use crate::domain::{Account, AgentId, Connection, Observation};
use crate::notify::text::truncate;
use crate::util::root_cause;

/// Answers larger than this are not read: a status fits in a few hundred bytes.
const MAX_BODY_BYTES: usize = 1 << 20;
/// A page of the agent listing carries whole agent objects (prompts, settings): roomier.
const MAX_LISTING_BODY_BYTES: usize = 16 << 20;
/// Upstream messages are cut to this many characters before they reach a log or an alert.
const MAX_MESSAGE_CHARS: usize = 200;
/// The longest wait a `Retry-After` can impose; longer asks are cut to this.
pub const MAX_THROTTLE_WAIT: Duration = Duration::from_secs(300);
/// The wait after a 429 without a usable `Retry-After`.
pub const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(10);
/// Agents asked for per page of the listing.
pub const LISTING_PAGE: usize = 100;
/// A `meta.total` above this is not believed: no organisation has that many agents, and
/// paging through it would never end.
pub const MAX_LISTED_AGENTS: u64 = 100_000;

pub const USER_AGENT: &str = concat!("ravan-watch/", env!("CARGO_PKG_VERSION"));

/// Why a poll produced no observation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollFailure {
    /// 401/403: the credentials are wrong for every agent, not just this one.
    #[error("Ravan API refused the credentials (HTTP {status}){}", msg(.message))]
    Unauthorized { status: u16, message: String },
    /// 404 from `/status`: Ravan does not know the agent (deleted, or a wrong id).
    #[error("agent not found at Ravan (HTTP 404){}", msg(.message))]
    NotFound { message: String },
    /// 429: Ravan asks us to slow down; the client waits `retry_after` before its next request.
    #[error("Ravan API is throttling requests (HTTP 429); waiting {}s before the next", .retry_after.as_secs())]
    Throttled { retry_after: Duration },
    /// Any other 4xx, e.g. 400 `INVALID_REQUEST`.
    #[error("Ravan API rejected the request (HTTP {status}{}){}", code_suffix(.code), msg(.message))]
    Rejected {
        status: u16,
        code: Option<String>,
        message: String,
    },
    #[error("Ravan API server error (HTTP {status}){}", msg(.message))]
    Server { status: u16, message: String },
    #[error("no answer from the Ravan API within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the Ravan API: {0}")]
    Connection(String),
    /// A 200 we cannot read, or an answer of a kind the API does not document (3xx, 1xx, 204…).
    #[error("unusable answer from the Ravan API: {0}")]
    BadBody(String),
    /// `/status` found no private connection and the `/info` call that followed failed: what
    /// the agent books through is unknown, so this is no observation either.
    #[error("/info (the org-linked connection) failed: {0}")]
    Info(Box<PollFailure>),
}

fn msg(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_ref().map(|c| format!(" {c}")).unwrap_or_default()
}

impl PollFailure {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } => "unauthorized",
            Self::NotFound { .. } => "not_found",
            Self::Throttled { .. } => "throttled",
            Self::Rejected { .. } => "rejected",
            Self::Server { .. } => "server_error",
            Self::Timeout(_) => "timeout",
            Self::Connection(_) => "connection",
            Self::BadBody(_) => "bad_body",
            Self::Info(inner) => inner.kind(),
        }
    }

    /// A failure that will repeat for every agent until an operator acts.
    pub fn is_auth(&self) -> bool {
        match self {
            Self::Unauthorized { .. } => true,
            Self::Info(inner) => inner.is_auth(),
            _ => false,
        }
    }

    /// `/status` answered 404: the agent is not known to Ravan. (A 404 from `/info` is not
    /// this: `/status` has just answered for the agent.)
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// Why the organisation's agents could not be listed completely. Any of these leaves the
/// watched agents as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    #[error("the request for agents at offset {offset} failed: {failure}")]
    Request { offset: usize, failure: PollFailure },
    #[error("the page at offset {offset} is unusable: {why}")]
    BadPage { offset: usize, why: String },
    #[error("the listing is incomplete: {0}")]
    Incomplete(String),
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the Ravan credential contains characters an HTTP header cannot carry")]
    InvalidCredential,
    #[error("the Ravan API base URL cannot have a path")]
    BaseUrl,
    #[error("cannot build the HTTP client: {0}")]
    Http(reqwest::Error),
}

/// `/status`'s `data`, as sent.
#[derive(Debug, Deserialize)]
struct StatusData {
    status: String,
    connected: bool,
    #[serde(default)]
    accounts: Vec<Account>,
}

#[derive(Debug, Deserialize)]
struct StatusBody {
    data: Option<StatusData>,
}

/// `/info`'s `data`: the agent's effective Cal.com account.
#[derive(Debug, Deserialize)]
struct InfoData {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    connected: Option<bool>,
    #[serde(default)]
    calcom_account_id: Option<serde_json::Value>,
    #[serde(default)]
    account_name: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InfoBody {
    data: Option<InfoData>,
}

/// What `/info` says the agent books through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectiveAccount {
    /// `type: none`: no connection at all.
    None,
    /// `type: org_linked` or `agent`: an account and its status.
    Account {
        connection: Connection,
        status: String,
        connected: bool,
        account: Account,
    },
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

/// One agent of the organisation's listing: only what the service needs. The listing's agent
/// objects carry secrets (`calcomApiKey`); they are never deserialized, stored or logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAgent {
    pub id: AgentId,
    pub name: Option<String>,
    /// The agent's own status (`ACTIVE`, `AGENT_STATUS_ACTIVE`, `INACTIVE` …), raw.
    pub status: Option<String>,
}

impl ListedAgent {
    /// Whether the listing says the agent is switched off (`INACTIVE` or
    /// `AGENT_STATUS_INACTIVE`, any case). Such an agent takes no calls and books nothing, so
    /// watch-all leaves it alone; any other status, or none, is watched.
    pub fn is_inactive(&self) -> bool {
        self.status.as_deref().is_some_and(|s| {
            let s = s.trim().to_ascii_lowercase();
            s.strip_prefix("agent_status_").unwrap_or(&s) == "inactive"
        })
    }
}

/// The complete listing of the organisation's agents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    pub agents: Vec<ListedAgent>,
    /// Entries whose `id` is not a UUID: counted (the listing is still complete) but not
    /// watchable.
    pub unusable_ids: usize,
}

#[derive(Clone)]
pub struct RavanClient {
    http: reqwest::Client,
    base_url: Url,
    /// The path of `{base}/api/v1/calcom/agents/`, worked out once: a poll appends its id.
    agents_path: String,
    /// `{base}/api/v1/agents/`: the organisation's agent listing.
    listing_url: Url,
    timeout: Duration,
    /// No request starts before this instant: set by a 429, shared by every clone.
    throttled_until: Arc<Mutex<Option<tokio::time::Instant>>>,
}

impl std::fmt::Debug for RavanClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RavanClient")
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RavanClient {
    pub fn new(base_url: Url, auth: &RavanAuth, timeout: Duration) -> Result<Self, ClientError> {
        let (name, secret) = match auth {
            RavanAuth::Bearer(token) => (AUTHORIZATION, format!("Bearer {}", token.expose())),
            RavanAuth::ApiKey(key) => (
                HeaderName::from_static("x-api-key"),
                key.expose().to_owned(),
            ),
        };
        let mut value =
            HeaderValue::from_str(&secret).map_err(|_| ClientError::InvalidCredential)?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(name, value);
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect is not part of the API; following one could send the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ClientError::Http)?;
        let with_path = |segments: &[&str]| -> Result<Url, ClientError> {
            let mut url = base_url.clone();
            url.path_segments_mut()
                .map_err(|()| ClientError::BaseUrl)?
                .pop_if_empty()
                .extend(segments);
            Ok(url)
        };
        let agents = with_path(&["api", "v1", "calcom", "agents", ""])?;
        let listing_url = with_path(&["api", "v1", "agents", ""])?;
        Ok(Self {
            http,
            agents_path: agents.path().to_owned(),
            listing_url,
            base_url,
            timeout,
            throttled_until: Arc::new(Mutex::new(None)),
        })
    }

    /// `{base}/api/v1/calcom/agents/{id}/status`, keeping any path prefix of the base URL.
    pub fn status_url(&self, agent: &AgentId) -> Url {
        self.agent_url(agent, "status")
    }

    /// `{base}/api/v1/calcom/agents/{id}/info`.
    pub fn info_url(&self, agent: &AgentId) -> Url {
        self.agent_url(agent, "info")
    }

    fn agent_url(&self, agent: &AgentId, what: &str) -> Url {
        let mut url = self.base_url.clone();
        // A UUID needs no escaping.
        url.set_path(&format!("{}{agent}/{what}", self.agents_path));
        url
    }

    /// `{base}/api/v1/agents/?limit=…&offset=…`.
    pub fn listing_url(&self, offset: usize) -> Url {
        let mut url = self.listing_url.clone();
        url.query_pairs_mut()
            .append_pair("limit", &LISTING_PAGE.to_string())
            .append_pair("offset", &offset.to_string());
        url
    }

    /// One poll of an agent: `/status`, and when that finds no private connection and
    /// `check_org_linked` is on, `/info` for the connection the agent really books through.
    /// Agents with a private connection cost one request; the others two.
    pub async fn poll(
        &self,
        agent: &AgentId,
        check_org_linked: bool,
    ) -> Result<Observation, PollFailure> {
        let mut obs = self.status(agent).await?;
        if !obs.has_no_private_connection() {
            return Ok(obs);
        }
        obs.connection = Some(Connection::None);
        if !check_org_linked {
            return Ok(obs);
        }
        match self.info(agent).await {
            Ok(EffectiveAccount::None) => Ok(obs),
            Ok(EffectiveAccount::Account {
                connection,
                status,
                connected,
                account,
            }) => Ok(Observation {
                status,
                connected,
                accounts: vec![account],
                connection: Some(connection),
            }),
            Err(failure) => Err(PollFailure::Info(Box::new(failure))),
        }
    }

    /// `/status` of one agent, once: its private connection. Never retries: the next cycle is
    /// the retry.
    pub async fn status(&self, agent: &AgentId) -> Result<Observation, PollFailure> {
        let (status, body) = self.get(self.status_url(agent), MAX_BODY_BYTES).await?;
        classify(status, &body)
    }

    /// `/info` of one agent, once: the account it effectively books through.
    pub async fn info(&self, agent: &AgentId) -> Result<EffectiveAccount, PollFailure> {
        let (status, body) = self.get(self.info_url(agent), MAX_BODY_BYTES).await?;
        classify_info(status, &body)
    }

    /// Every agent the credentials can list, page by page. The listing counts only when it is
    /// complete: `meta.total` believable, the same on every page, and that many distinct
    /// agents received. Anything less is a [`ListingError`].
    pub async fn list_agents(&self) -> Result<Listing, ListingError> {
        let mut listing = Listing::default();
        let mut seen = std::collections::HashSet::new();
        let mut repeated = 0usize;
        let mut offset = 0usize;
        let mut total: Option<u64> = None;
        loop {
            let (status, body) = self
                .get(self.listing_url(offset), MAX_LISTING_BODY_BYTES)
                .await
                .map_err(|failure| ListingError::Request { offset, failure })?;
            let page = classify_listing_page(status, &body).map_err(|failure| match failure {
                PollFailure::BadBody(why) => ListingError::BadPage { offset, why },
                failure => ListingError::Request { offset, failure },
            })?;
            let expected = *total.get_or_insert(page.total);
            if page.total != expected {
                return Err(ListingError::Incomplete(format!(
                    "meta.total changed from {expected} to {} while listing",
                    page.total
                )));
            }
            let received = page.entries.len();
            if received == 0 && (offset as u64) < expected {
                return Err(ListingError::Incomplete(format!(
                    "the page at offset {offset} is empty, but meta.total is {expected}"
                )));
            }
            for entry in page.entries {
                match entry {
                    Some(agent) => {
                        if seen.insert(agent.id) {
                            listing.agents.push(agent);
                        } else {
                            repeated += 1;
                        }
                    }
                    None => listing.unusable_ids += 1,
                }
            }
            offset += received;
            if offset as u64 >= expected {
                break;
            }
        }
        let expected = total.unwrap_or_default();
        let distinct = (listing.agents.len() + listing.unusable_ids) as u64;
        if repeated > 0 || distinct != expected {
            return Err(ListingError::Incomplete(format!(
                "{distinct} distinct agents received ({repeated} repeated across pages), but meta.total is {expected}"
            )));
        }
        Ok(listing)
    }

    /// Waits at the throttle gate, sends a GET, reads at most `cap` bytes of the answer. A 429
    /// closes the gate and is a [`PollFailure::Throttled`].
    async fn get(&self, url: Url, cap: usize) -> Result<(u16, Vec<u8>), PollFailure> {
        self.wait_for_gate().await;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport_failure(e))?;
        let status = response.status().as_u16();
        if status == 429 {
            let wait = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, chrono::Utc::now()))
                .unwrap_or(DEFAULT_THROTTLE_WAIT);
            self.close_gate(wait);
            return Err(PollFailure::Throttled { retry_after: wait });
        }
        let body = read_capped(response, cap).await.map_err(|e| match e {
            ReadError::Transport(e) => self.transport_failure(e),
            ReadError::TooLarge => PollFailure::BadBody(format!("answer larger than {cap} bytes")),
        })?;
        Ok((status, body))
    }

    /// Until when requests wait, if a 429 asked for a pause that has not ended.
    pub fn throttled_until(&self) -> Option<tokio::time::Instant> {
        let until = *self
            .throttled_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        until.filter(|&u| u > tokio::time::Instant::now())
    }

    fn close_gate(&self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        let mut gate = self
            .throttled_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if gate.is_none_or(|g| g < until) {
            *gate = Some(until);
        }
        tracing::warn!(
            wait_secs = wait.as_secs(),
            "Ravan API answered 429: no request is sent until the wait it asked for is over"
        );
    }

    async fn wait_for_gate(&self) {
        // Read again after each sleep: another request may have moved the gate meanwhile.
        while let Some(until) = self.throttled_until() {
            tokio::time::sleep_until(until).await;
        }
    }

    fn transport_failure(&self, e: reqwest::Error) -> PollFailure {
        if e.is_timeout() {
            PollFailure::Timeout(self.timeout)
        } else if e.is_decode() || e.is_body() {
            PollFailure::BadBody(root_cause(&e))
        } else {
            PollFailure::Connection(root_cause(&e))
        }
    }
}

/// The wait a `Retry-After` value asks for, at `now`: whole or decimal seconds, or an HTTP
/// date. Bounded by [`MAX_THROTTLE_WAIT`]; `None` for a value that is neither (or negative,
/// NaN …), which then gets the default wait.
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        // Compared before converting: from_secs_f64 panics on values it cannot hold.
        let max = MAX_THROTTLE_WAIT.as_secs_f64();
        return Some(Duration::from_secs_f64(secs.min(max)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = (at.with_timezone(&chrono::Utc) - now)
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_THROTTLE_WAIT))
}

enum ReadError {
    Transport(reqwest::Error),
    TooLarge,
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns an HTTP answer of `/status` into an observation or a failure, per the API reference.
/// The observation's connection is `private` unless it says there is none (then `/info` may
/// tell more, see [`RavanClient::poll`]).
pub fn classify(status: u16, body: &[u8]) -> Result<Observation, PollFailure> {
    if status == 404 {
        return Err(PollFailure::NotFound {
            message: error_body(body).message.unwrap_or_default(),
        });
    }
    let data = ok_data::<StatusBody, _>(status, body, |b| b.data)?;
    let mut obs = Observation {
        status: data.status,
        connected: data.connected,
        accounts: data.accounts,
        connection: None,
    };
    if !obs.has_no_private_connection() {
        obs.connection = Some(Connection::Private);
    }
    Ok(obs)
}

/// Turns an HTTP answer of `/info` into the agent's effective account, or a failure. A `type`
/// other than `agent`, `org_linked` or `none` is a failure: the connection cannot be judged.
pub fn classify_info(status: u16, body: &[u8]) -> Result<EffectiveAccount, PollFailure> {
    let data = ok_data::<InfoBody, _>(status, body, |b| b.data)?;
    let kind = data
        .kind
        .ok_or_else(|| PollFailure::BadBody("/info without a `type`".into()))?;
    let connection = match kind.as_str() {
        "none" => return Ok(EffectiveAccount::None),
        "org_linked" => Connection::OrgLinked,
        "agent" => Connection::Private,
        other => {
            return Err(PollFailure::BadBody(format!(
                "/info answered an unknown connection type {:?}",
                truncate(other, 40)
            )));
        }
    };
    let status = data
        .status
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| PollFailure::BadBody(format!("/info type {kind} without a `status`")))?;
    let id = match data.calcom_account_id {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    Ok(EffectiveAccount::Account {
        connection,
        connected: data
            .connected
            .unwrap_or(status == crate::domain::HEALTHY_STATUS),
        account: Account {
            id: truncate(&id, MAX_MESSAGE_CHARS),
            account_name: data.account_name.unwrap_or_default(),
            status: status.clone(),
            error: None,
        },
        status,
    })
}

/// A 200's `data` (read by `data` from the body `B`), or the failure any other answer is.
fn ok_data<B: serde::de::DeserializeOwned, D>(
    status: u16,
    body: &[u8],
    data: impl FnOnce(B) -> Option<D>,
) -> Result<D, PollFailure> {
    match status {
        200 => match serde_json::from_slice::<B>(body) {
            Ok(b) => {
                data(b).ok_or_else(|| PollFailure::BadBody("200 without a `data` object".into()))
            }
            Err(e) => Err(PollFailure::BadBody(format!(
                "200 with a body that does not parse: {}",
                truncate(&e.to_string(), MAX_MESSAGE_CHARS)
            ))),
        },
        401 | 403 => {
            let err = error_body(body);
            Err(PollFailure::Unauthorized {
                status,
                message: err.message.unwrap_or_default(),
            })
        }
        400..=499 => {
            let err = error_body(body);
            Err(PollFailure::Rejected {
                status,
                code: err.code,
                message: err.message.unwrap_or_default(),
            })
        }
        500..=599 => Err(PollFailure::Server {
            status,
            message: error_body(body).message.unwrap_or_default(),
        }),
        other => Err(PollFailure::BadBody(format!("unexpected HTTP {other}"))),
    }
}

/// One page of the listing: its `meta.total`, and each entry (`None`: its id is no UUID).
#[derive(Debug)]
struct ListingPage {
    total: u64,
    entries: Vec<Option<ListedAgent>>,
}

/// Only the fields the service reads; serde skips the rest of each agent object unread into
/// any value, secrets included. Both documented shapes: camelCase (`agentName`) and
/// snake_case (`name` or `agent_name`).
#[derive(Debug, Deserialize)]
struct ListedEntry {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default, rename = "agentName")]
    agent_name_camel: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<serde_json::Value>,
    #[serde(default)]
    agent_name: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ListingMeta {
    total: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ListingBody {
    data: Option<Vec<ListedEntry>>,
    meta: Option<ListingMeta>,
}

fn text_of(value: Option<serde_json::Value>) -> Option<String> {
    match value {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s),
        _ => None,
    }
}

/// Reads one page of `GET /api/v1/agents/`. Not JSON, no `data` array, or no believable
/// `meta.total` is a [`PollFailure::BadBody`] saying which.
fn classify_listing_page(status: u16, body: &[u8]) -> Result<ListingPage, PollFailure> {
    let page = ok_data::<ListingBody, _>(status, body, Some)?;
    let entries = page
        .data
        .ok_or_else(|| PollFailure::BadBody("no `data` array of agents".into()))?;
    let total = match page.meta.and_then(|m| m.total) {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        None | Some(serde_json::Value::Null) => {
            return Err(PollFailure::BadBody(
                "no `meta.total`: cannot tell whether the listing is complete".into(),
            ));
        }
        Some(_) => None,
    }
    .ok_or_else(|| PollFailure::BadBody("`meta.total` is not a whole number".into()))?;
    if total > MAX_LISTED_AGENTS {
        return Err(PollFailure::BadBody(format!(
            "`meta.total` of {total} is not believable (more than {MAX_LISTED_AGENTS})"
        )));
    }
    let entries = entries
        .into_iter()
        .map(|e| {
            let id = text_of(e.id)?.parse::<AgentId>().ok()?;
            let name = text_of(e.agent_name_camel)
                .or_else(|| text_of(e.name))
                .or_else(|| text_of(e.agent_name))
                .map(|n| truncate(n.trim(), 100));
            Some(ListedAgent {
                id,
                name,
                status: text_of(e.status).map(|s| truncate(s.trim(), 40)),
            })
        })
        .collect();
    Ok(ListingPage { total, entries })
}

/// Reads `{"message", "code"}` leniently: error bodies are for humans and may be anything.
fn error_body(body: &[u8]) -> ErrorBody {
    let mut err: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    err.message = err.message.map(|m| truncate(m.trim(), MAX_MESSAGE_CHARS));
    err.code = err.code.map(|c| truncate(c.trim(), MAX_MESSAGE_CHARS));
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_url_keeps_the_base_url_and_any_path_prefix() {
        let agent: AgentId = "3f2504e0-4f89-11d3-9a0c-0305e82c3301".parse().unwrap();
        let auth = RavanAuth::Bearer(crate::secret::Secret::new("t"));
        for (base, want) in [
            (
                "https://api.ravan.ai",
                "https://api.ravan.ai/api/v1/calcom/agents/3f2504e0-4f89-11d3-9a0c-0305e82c3301/status",
            ),
            (
                "https://api.ravan.ai/",
                "https://api.ravan.ai/api/v1/calcom/agents/3f2504e0-4f89-11d3-9a0c-0305e82c3301/status",
            ),
            (
                "http://127.0.0.1:9000/ravan",
                "http://127.0.0.1:9000/ravan/api/v1/calcom/agents/3f2504e0-4f89-11d3-9a0c-0305e82c3301/status",
            ),
            (
                "http://127.0.0.1:9000/ravan/",
                "http://127.0.0.1:9000/ravan/api/v1/calcom/agents/3f2504e0-4f89-11d3-9a0c-0305e82c3301/status",
            ),
        ] {
            let client =
                RavanClient::new(base.parse().unwrap(), &auth, Duration::from_secs(1)).unwrap();
            assert_eq!(client.status_url(&agent).as_str(), want, "{base}");
        }
    }

    #[test]
    fn classify_documented_answers() {
        let ok = br#"{"success":true,"message":"Agent connection status retrieved","data":{"connected":true,"status":"active","accounts":[{"id":"a","account_name":"Main","status":"active","error":""}]}}"#;
        let obs = classify(200, ok).unwrap();
        assert!(obs.is_healthy());
        assert_eq!(obs.accounts[0].account_name, "Main");

        let none = br#"{"success":true,"message":"No agent-level connection found","data":{"connected":false,"status":"not_connected","accounts":[]}}"#;
        let obs = classify(200, none).unwrap();
        assert_eq!(obs.status, "not_connected");
        assert!(!obs.is_healthy());

        let bad =
            br#"{"success":false,"message":"agent_id must be a UUID","code":"INVALID_REQUEST"}"#;
        assert_eq!(
            classify(400, bad).unwrap_err(),
            PollFailure::Rejected {
                status: 400,
                code: Some("INVALID_REQUEST".into()),
                message: "agent_id must be a UUID".into()
            }
        );
        let unauth = classify(401, br#"{"success":false,"message":"Invalid token"}"#).unwrap_err();
        assert!(unauth.is_auth());
        assert_eq!(
            unauth.to_string(),
            "Ravan API refused the credentials (HTTP 401): Invalid token"
        );
        assert!(classify(403, b"").unwrap_err().is_auth());
        let server = classify(
            500,
            br#"{"success":false,"message":"boom","code":"INTERNAL_ERROR"}"#,
        )
        .unwrap_err();
        assert_eq!(
            server,
            PollFailure::Server {
                status: 500,
                message: "boom".into()
            }
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_unknown_status_kept() {
        let body = br#"{"success":true,"extra":1,"data":{"connected":false,"status":"quarantined","accounts":[{"id":"a","new_field":true}],"more":{}}}"#;
        let obs = classify(200, body).unwrap();
        assert_eq!(obs.status, "quarantined");
        assert!(!obs.is_healthy());
    }

    #[test]
    fn unusable_bodies_are_failures_not_observations() {
        for (status, body) in [
            (200, &b"not json"[..]),
            (200, br#"{"success":true}"#),
            (200, br#"{"data":null}"#),
            (200, br#"{"data":{"connected":true}}"#),
            (200, br#"{"data":"active"}"#),
            (204, b""),
            (302, b""),
        ] {
            assert!(
                matches!(classify(status, body), Err(PollFailure::BadBody(_))),
                "{status} {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn error_messages_are_clipped() {
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(5000));
        let err = classify(502, long.as_bytes()).unwrap_err().to_string();
        assert!(err.chars().count() < 300, "{}", err.len());
    }
}
