//! The Ravan API client: the calls the service makes (`/status` and `/info` of an agent, the
//! organisation's agent listing in `listing`) and the classification of every answer into an
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

use crate::domain::{Account, AgentId, Connection, Observation};
use crate::util::{root_cause, truncate};

mod auth;
mod listing;

pub use auth::RavanAuth;
pub use listing::{LISTING_PAGE, ListedAgent, Listing, ListingError, MAX_LISTED_AGENTS};

/// Answers larger than this are not read: a status fits in a few hundred bytes.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Upstream messages are cut to this many characters before they reach a log or an alert.
const MAX_MESSAGE_CHARS: usize = 200;
/// The longest wait a `Retry-After` can impose; longer asks are cut to this.
pub const MAX_THROTTLE_WAIT: Duration = Duration::from_secs(300);
/// The wait after a 429 without a usable `Retry-After`.
pub const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(10);

pub const USER_AGENT: &str = concat!("ravan-watch/", env!("CARGO_PKG_VERSION"));

/// Why a poll produced no observation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollFailure {
    /// 401/403: the credentials are wrong for every agent, not just this one.
    #[error("Ravan API refused the credentials (HTTP {status}){}", msg(.message))]
    Unauthorized { status: u16, message: String },
    /// 404 from `/status` with Ravan's `NOT_FOUND` code: Ravan does not know the agent (deleted,
    /// or a wrong id).
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

    /// Ravan answered 429, to `/status` or to the `/info` after it.
    pub fn is_throttled(&self) -> bool {
        match self {
            Self::Throttled { .. } => true,
            Self::Info(inner) => inner.is_throttled(),
            _ => false,
        }
    }

    /// `/status` answered 404: the agent is not known to Ravan. (A 404 from `/info` is not
    /// this: `/status` has just answered for the agent.)
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
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

    /// One poll of an agent: `/status`, and when that finds no private connection and
    /// `check_org_linked` is on, `/info` for the connection the agent really books through.
    /// Agents with a private connection cost one request; the others two.
    pub async fn poll(
        &self,
        agent: &AgentId,
        check_org_linked: bool,
    ) -> Result<Observation, PollFailure> {
        self.poll_until(agent, check_org_linked, None).await
    }

    /// [`RavanClient::poll`], for a poll cycle that ends at `deadline` (the next tick): when a
    /// 429 has closed the gate beyond it, the poll fails as throttled at once, without a
    /// request. A long `Retry-After` then ends the cycle instead of stretching it over hours,
    /// and persistent throttling reaches the monitor alert in `FAILURE_THRESHOLD` cycles.
    pub async fn poll_until(
        &self,
        agent: &AgentId,
        check_org_linked: bool,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Observation, PollFailure> {
        let (status, body) = self
            .get(self.status_url(agent), MAX_BODY_BYTES, deadline)
            .await?;
        let mut obs = classify(status, &body)?;
        if !obs.has_no_private_connection() {
            return Ok(obs);
        }
        obs.connection = Some(Connection::None);
        if !check_org_linked {
            return Ok(obs);
        }
        let info = match self
            .get(self.info_url(agent), MAX_BODY_BYTES, deadline)
            .await
        {
            Ok((status, body)) => classify_info(status, &body),
            Err(failure) => Err(failure),
        };
        match info {
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
        let (status, body) = self
            .get(self.status_url(agent), MAX_BODY_BYTES, None)
            .await?;
        classify(status, &body)
    }

    /// `/info` of one agent, once: the account it effectively books through.
    pub async fn info(&self, agent: &AgentId) -> Result<EffectiveAccount, PollFailure> {
        let (status, body) = self.get(self.info_url(agent), MAX_BODY_BYTES, None).await?;
        classify_info(status, &body)
    }

    /// Waits at the throttle gate (not past `deadline`: then it is a throttled failure at
    /// once), sends a GET, reads at most `cap` bytes of the answer. A 429 closes the gate and is
    /// a [`PollFailure::Throttled`].
    async fn get(
        &self,
        url: Url,
        cap: usize,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(u16, Vec<u8>), PollFailure> {
        self.wait_for_gate(deadline).await?;
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
        let now = tokio::time::Instant::now();
        let until = now + wait;
        let mut gate = self
            .throttled_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let was_open = gate.is_none_or(|g| g <= now);
        if gate.is_none_or(|g| g < until) {
            *gate = Some(until);
        }
        drop(gate);
        // Requests in flight when the gate closes may bring more 429s: one line for the pause.
        if was_open {
            tracing::warn!(
                wait_secs = wait.as_secs_f64(),
                "Ravan API answered 429: no request is sent until the wait it asked for is over"
            );
        }
    }

    async fn wait_for_gate(
        &self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(), PollFailure> {
        // Read again after each sleep: another request may have moved the gate meanwhile.
        while let Some(until) = self.throttled_until() {
            if deadline.is_some_and(|d| until > d) {
                return Err(PollFailure::Throttled {
                    retry_after: until - tokio::time::Instant::now(),
                });
            }
            tokio::time::sleep_until(until).await;
        }
        Ok(())
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
        if secs.is_infinite() {
            return None;
        }
        return crate::util::bounded_secs(secs, MAX_THROTTLE_WAIT);
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
        // Only Ravan's own answer about the agent: a 404 page from a proxy, or from a wrong
        // RAVAN_API_BASE_URL, would make every agent look deleted.
        let err = error_body(body);
        if err
            .code
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("NOT_FOUND"))
        {
            return Err(PollFailure::NotFound {
                message: err.message.unwrap_or_default(),
            });
        }
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
        let auth = RavanAuth::Bearer(crate::domain::secret::Secret::new("t"));
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

    // ----- /info -----

    fn info(data: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"success": true, "message": "ok", "data": data}))
            .unwrap()
    }

    #[test]
    fn info_org_linked_is_an_org_linked_account_with_its_name_and_id() {
        for (status, connected) in [("active", true), ("errored", false)] {
            for (id, want_id) in [
                (serde_json::json!(4242), "4242"),
                (serde_json::json!("acc-77"), "acc-77"),
            ] {
                let body = info(serde_json::json!({
                    "connected": connected, "type": "org_linked", "calcom_account_id": id,
                    "account_name": "Org calendar", "status": status,
                    "api_base_url": "https://api.cal.com/v2",
                }));
                assert_eq!(
                    classify_info(200, &body).unwrap(),
                    EffectiveAccount::Account {
                        connection: Connection::OrgLinked,
                        status: status.into(),
                        connected,
                        account: Account {
                            id: want_id.into(),
                            account_name: "Org calendar".into(),
                            status: status.into(),
                            error: None,
                        },
                    },
                    "{status} {want_id}"
                );
            }
        }
    }

    #[test]
    fn info_without_connected_takes_it_from_the_status() {
        for (status, connected) in [("active", true), ("errored", false)] {
            let body = info(serde_json::json!({"type": "org_linked", "status": status}));
            let Ok(EffectiveAccount::Account {
                connected: got,
                account,
                ..
            }) = classify_info(200, &body)
            else {
                panic!("{status}: not an account");
            };
            assert_eq!(got, connected, "{status}");
            assert_eq!(
                (account.id.as_str(), account.account_name.as_str()),
                ("", "")
            );
        }
    }

    #[test]
    fn info_agent_is_the_private_connection_and_none_is_none() {
        let body = info(serde_json::json!({
            "connected": true, "type": "agent", "calcom_account_id": 9,
            "account_name": "Own key", "status": "active",
        }));
        let Ok(EffectiveAccount::Account {
            connection,
            status,
            account,
            ..
        }) = classify_info(200, &body)
        else {
            panic!("not an account");
        };
        assert_eq!(connection, Connection::Private);
        assert_eq!(status, "active");
        assert_eq!(account.account_name, "Own key");

        let none = info(serde_json::json!({
            "connected": false, "type": "none", "calcom_account_id": null,
            "account_name": null, "status": "not_connected", "api_base_url": null,
        }));
        assert_eq!(classify_info(200, &none).unwrap(), EffectiveAccount::None);
        // `none` needs no status.
        let bare = info(serde_json::json!({"type": "none"}));
        assert_eq!(classify_info(200, &bare).unwrap(), EffectiveAccount::None);
    }

    #[test]
    fn info_of_an_unknown_type_is_a_bad_body_naming_it_cut_short() {
        let body = info(serde_json::json!({"type": "team_pool", "status": "active"}));
        let err = classify_info(200, &body).unwrap_err();
        let PollFailure::BadBody(message) = &err else {
            panic!("{err:?}");
        };
        assert!(message.contains("\"team_pool\""), "{message}");

        let long = format!("pool{}", "x".repeat(10_000));
        let body = info(serde_json::json!({"type": long, "status": "active"}));
        let err = classify_info(200, &body).unwrap_err();
        let PollFailure::BadBody(message) = &err else {
            panic!("{err:?}");
        };
        assert!(message.contains("\"poolxxx"), "{message}");
        assert!(message.contains(crate::util::MARKER), "{message}");
        assert!(message.chars().count() < 120, "{}", message.chars().count());
        assert!(err.to_string().chars().count() < 200);
        // Case matters: the documented values are lowercase.
        let body = info(serde_json::json!({"type": "ORG_LINKED", "status": "active"}));
        assert!(matches!(
            classify_info(200, &body),
            Err(PollFailure::BadBody(m)) if m.contains("ORG_LINKED")
        ));
    }

    #[test]
    fn info_unusable_answers_are_failures() {
        let bad_bodies: [(&str, &[u8]); 12] = [
            ("no type", &info(serde_json::json!({"status": "active"}))),
            (
                "type null",
                &info(serde_json::json!({"type": null, "status": "active"})),
            ),
            (
                "type a number",
                &info(serde_json::json!({"type": 3, "status": "active"})),
            ),
            (
                "org_linked, no status",
                &info(serde_json::json!({"type": "org_linked"})),
            ),
            (
                "org_linked, status null",
                &info(serde_json::json!({"type": "org_linked", "status": null})),
            ),
            (
                "agent, blank status",
                &info(serde_json::json!({"type": "agent", "status": "  "})),
            ),
            ("not json", b"<html>hi</html>"),
            ("empty", b""),
            ("data null", br#"{"success":true,"data":null}"#),
            ("no data", br#"{"success":true}"#),
            ("data a string", br#"{"data":"org_linked"}"#),
            ("an array", b"[1,2,3]"),
        ];
        for (what, body) in bad_bodies {
            let got = classify_info(200, body);
            assert!(
                matches!(got, Err(PollFailure::BadBody(_))),
                "{what}: {got:?}"
            );
        }
        let got = classify_info(200, &info(serde_json::json!({"type": "org_linked"})));
        assert!(
            matches!(&got, Err(PollFailure::BadBody(m)) if m.contains("status")),
            "{got:?}"
        );
        let got = classify_info(200, &info(serde_json::json!({"status": "active"})));
        assert!(
            matches!(&got, Err(PollFailure::BadBody(m)) if m.contains("type")),
            "{got:?}"
        );

        let err = classify_info(401, br#"{"success":false,"message":"bad token"}"#).unwrap_err();
        assert!(err.is_auth(), "{err:?}");
        assert!(classify_info(403, b"nope").unwrap_err().is_auth());
        // A 404 from /info is no missing agent: /status has just answered for it.
        let err = classify_info(404, br#"{"message":"nope","code":"NOT_FOUND"}"#).unwrap_err();
        assert_eq!(
            err,
            PollFailure::Rejected {
                status: 404,
                code: Some("NOT_FOUND".into()),
                message: "nope".into()
            }
        );
        assert!(!err.is_not_found());
        assert!(matches!(
            classify_info(400, b"{}"),
            Err(PollFailure::Rejected { status: 400, .. })
        ));
        assert_eq!(
            classify_info(500, b"not json").unwrap_err(),
            PollFailure::Server {
                status: 500,
                message: String::new()
            }
        );
        assert!(matches!(
            classify_info(302, b""),
            Err(PollFailure::BadBody(m)) if m.contains("302")
        ));
    }

    #[test]
    fn info_odd_account_ids_do_not_panic() {
        for id in [
            serde_json::json!(null),
            serde_json::json!(1.5),
            serde_json::json!(-1),
            serde_json::json!(u64::MAX),
            serde_json::json!(true),
            serde_json::json!([1, 2]),
            serde_json::json!({"id": 1}),
            serde_json::json!("x".repeat(5000)),
        ] {
            let body = info(serde_json::json!({
                "type": "org_linked", "status": "active", "calcom_account_id": id.clone(),
                "account_name": "Org",
            }));
            let Ok(EffectiveAccount::Account { account, .. }) = classify_info(200, &body) else {
                panic!("{id}: not an account");
            };
            assert!(account.id.chars().count() <= MAX_MESSAGE_CHARS, "{id}");
        }
        // A number JSON cannot hold as f64 is a body that does not parse.
        let body = br#"{"data":{"type":"org_linked","status":"active","calcom_account_id":1e400}}"#;
        assert!(matches!(
            classify_info(200, body),
            Err(PollFailure::BadBody(_))
        ));
    }

    // ----- /status -----

    #[test]
    fn status_404_is_not_found() {
        let err = classify(
            404,
            br#"{"success":false,"message":"Agent not found","code":"NOT_FOUND"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            PollFailure::NotFound {
                message: "Agent not found".into()
            }
        );
        assert!(err.is_not_found());
        assert!(!err.is_auth());
        assert_eq!(err.kind(), "not_found");
        // Ravan's error code says "not found"...
        for body in [&br#"{"code":"NOT_FOUND"}"#[..], br#"{"code":"not_found"}"#] {
            assert!(classify(404, body).unwrap_err().is_not_found());
        }
        // ...but a 404 page that is not Ravan's (a proxy, a wrong base URL) is only a failed
        // poll: it must not make every agent look deleted.
        for body in [
            &b""[..],
            b"<html>Not Found</html>",
            b"null",
            b"[]",
            br#"{"detail":"Not Found"}"#,
            br#"{"success":true,"code":"OTHER"}"#,
            br#"{"success":false,"message":"Cannot GET /v1/api/v1/calcom/agents/x/status"}"#,
        ] {
            let err = classify(404, body).unwrap_err();
            assert!(!err.is_not_found(), "{:?}", String::from_utf8_lossy(body));
            assert!(
                matches!(err, PollFailure::Rejected { status: 404, .. }),
                "{err:?}"
            );
        }
        // Other failures are not "not found", nor is /info's.
        assert!(!classify(500, b"").unwrap_err().is_not_found());
        assert!(!classify(410, b"").unwrap_err().is_not_found());
        let info = PollFailure::Info(Box::new(PollFailure::NotFound {
            message: String::new(),
        }));
        assert!(!info.is_not_found());
    }

    #[test]
    fn status_leaves_the_connection_of_no_private_connection_undecided() {
        let none = br#"{"success":true,"message":"No agent-level connection found","data":{"connected":false,"status":"not_connected","accounts":[]}}"#;
        let obs = classify(200, none).unwrap();
        assert_eq!(obs.connection, None);
        assert!(obs.has_no_private_connection());
        // Without the field, `accounts` defaults to none: the same answer.
        let obs = classify(
            200,
            br#"{"data":{"connected":false,"status":"not_connected"}}"#,
        )
        .unwrap();
        assert_eq!(obs.connection, None);
        assert!(obs.has_no_private_connection());

        let ok = br#"{"success":true,"data":{"connected":true,"status":"active","accounts":[{"id":"a","account_name":"Main","status":"active","error":""}]}}"#;
        let obs = classify(200, ok).unwrap();
        assert_eq!(obs.connection, Some(Connection::Private));
        assert!(!obs.has_no_private_connection());
        // not_connected with an account listed is a private connection that is down.
        let down = br#"{"data":{"connected":false,"status":"not_connected","accounts":[{"id":"a","status":"not_connected"}]}}"#;
        let obs = classify(200, down).unwrap();
        assert_eq!(obs.connection, Some(Connection::Private));
        // Any other status without accounts, too.
        let errored = br#"{"data":{"connected":false,"status":"errored","accounts":[]}}"#;
        assert_eq!(
            classify(200, errored).unwrap().connection,
            Some(Connection::Private)
        );
    }

    // ----- Retry-After -----

    fn http_date(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc2822(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    const NOW: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn retry_after_reads_seconds_and_dates_within_bounds() {
        let now = http_date(NOW);
        for (value, want) in [
            ("5", Some(Duration::from_secs(5))),
            (" 5 ", Some(Duration::from_secs(5))),
            ("1.5", Some(Duration::from_millis(1500))),
            ("0", Some(Duration::ZERO)),
            ("300", Some(MAX_THROTTLE_WAIT)),
            ("301", Some(MAX_THROTTLE_WAIT)),
            ("1e20", Some(MAX_THROTTLE_WAIT)),
            ("99999999999999999999999999999999", Some(MAX_THROTTLE_WAIT)),
            ("inf", None),
            ("+inf", None),
            ("-inf", None),
            ("infinity", None),
            ("NaN", None),
            ("nan", None),
            ("-3", None),
            ("-0.5", None),
            ("1e400", None),
            ("", None),
            ("   ", None),
            ("soon", None),
            ("5 seconds", None),
            ("0x10", None),
            (
                "Sun, 06 Nov 1994 08:49:44 GMT",
                Some(Duration::from_secs(7)),
            ),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(Duration::ZERO)),
            ("Sun, 06 Nov 1994 08:49:36 GMT", Some(Duration::ZERO)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(Duration::ZERO)),
            ("Mon, 06 Nov 1995 08:49:37 GMT", Some(MAX_THROTTLE_WAIT)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Some(MAX_THROTTLE_WAIT)),
            // The same instant written with an offset.
            (
                "Sun, 06 Nov 1994 09:49:44 +0100",
                Some(Duration::from_secs(7)),
            ),
        ] {
            assert_eq!(retry_after(value, now), want, "{value:?}");
        }
    }

    #[test]
    fn retry_after_never_panics_nor_exceeds_the_bound() {
        let now = http_date(NOW);
        let mut hostile: Vec<String> = [
            "-0",
            "-0.0",
            "+0",
            "+5",
            "0.0000000001",
            "5e-324",
            "1e-400",
            "1.7976931348623157e308",
            "-1.7976931348623157e308",
            "18446744073709551615",
            "18446744073709551616",
            "-18446744073709551616",
            "1_000",
            "1,5",
            "١",
            "５",
            "\u{0}",
            "\t7\t",
            "e",
            ".",
            "-",
            "+",
            "1e",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 +9999",
            "Sun, 06 Nov 1994 23:59:60 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 99999 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 -2359",
            "Sun, 06 Nov 1994 08:49:37 +2359",
            "2026-11-28T12:00:00Z",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        hostile.push("9".repeat(400));
        hostile.push(format!("0.{}1", "0".repeat(400)));
        hostile.push(format!("1e{}", "9".repeat(50)));
        hostile.push(format!("1e-{}", "9".repeat(50)));
        hostile.push("x".repeat(100_000));
        for n in [-1e300, -1.0, -1e-300, 1e-300, 0.4, 299.999, 300.0001, 1e300] {
            hostile.push(n.to_string());
            hostile.push(format!("{n:e}"));
        }
        for value in &hostile {
            let got = retry_after(value, now);
            assert!(
                got.is_none_or(|d| d <= MAX_THROTTLE_WAIT),
                "{value:?} gave {got:?}"
            );
            if value.trim().starts_with('-') && value.trim().parse::<f64>().is_ok_and(|v| v < 0.0) {
                assert_eq!(got, None, "{value:?}: negative");
            }
        }
        assert_eq!(retry_after("1e300", now), Some(MAX_THROTTLE_WAIT));
        assert_eq!(retry_after("-1e-300", now), None);
        assert_eq!(retry_after("x", now), None);
        // A date, whatever `now` is.
        for now in [
            chrono::DateTime::<chrono::Utc>::MIN_UTC,
            chrono::DateTime::<chrono::Utc>::MAX_UTC,
            chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        ] {
            for value in ["Sun, 06 Nov 1994 08:49:37 GMT", "7", "NaN"] {
                let got = retry_after(value, now);
                assert!(
                    got.is_none_or(|d| d <= MAX_THROTTLE_WAIT),
                    "{value:?} at {now}"
                );
            }
        }
    }

    // ----- The listing -----
}
