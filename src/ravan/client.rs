//! The HTTP client of the Ravan API: building requests (credentials, URLs under the base URL's
//! path), sending them past the throttle gate, and reading answers within a size bound. What
//! an answer means is [`super::classify`]'s business; this module only fetches the bytes.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::classify::{EffectiveAccount, classify, classify_info};
use super::throttle::Gate;
use super::{PollFailure, RavanAuth};
use crate::domain::{AgentId, Connection, Observation};
use crate::util::root_cause;

/// Answers larger than this are not read: a status fits in a few hundred bytes.
pub(super) const MAX_BODY_BYTES: usize = 1 << 20;

pub const USER_AGENT: &str = concat!("ravan-watch/", env!("CARGO_PKG_VERSION"));

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

/// An agent's `/status` and `/info` URLs, built once: a request then copies its URL (reqwest
/// owns the URL it sends to) instead of writing and parsing it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentUrls {
    status: Url,
    info: Url,
}

/// The organisation-level URLs, built once (see [`super::organisation`]).
#[derive(Debug, Clone)]
pub(super) struct OrgUrls {
    /// `{base}/api/v1/calcom/status` (the `org_id` query is added per request).
    pub(super) calcom: Url,
    /// `{base}/api/v1/ghl/setup/status`.
    pub(super) ghl: Url,
    /// `{base}/health`.
    pub(super) health: Url,
}

#[derive(Clone)]
pub struct RavanClient {
    http: reqwest::Client,
    /// The same client without the credential: for `/health`, which needs none, so the key
    /// goes only where it is asked for.
    bare: reqwest::Client,
    base_url: Url,
    /// The path of `{base}/api/v1/calcom/agents/`, worked out once: a poll appends its id.
    agents_path: String,
    /// `{base}/api/v1/agents/`: the organisation's agent listing.
    pub(super) listing_url: Url,
    pub(super) org_urls: OrgUrls,
    timeout: Duration,
    /// Closed by a 429, shared by every clone.
    gate: Gate,
}

impl std::fmt::Debug for RavanClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RavanClient")
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The credential as the one header every request carries, marked sensitive so it is never
/// printed.
fn credential_headers(auth: &RavanAuth) -> Result<HeaderMap, ClientError> {
    let (name, secret) = match auth {
        RavanAuth::Bearer(token) => (AUTHORIZATION, format!("Bearer {}", token.expose())),
        RavanAuth::ApiKey(key) => (
            HeaderName::from_static("x-api-key"),
            key.expose().to_owned(),
        ),
    };
    let mut value = HeaderValue::from_str(&secret).map_err(|_| ClientError::InvalidCredential)?;
    value.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(name, value);
    Ok(headers)
}

fn http_client(headers: HeaderMap, timeout: Duration) -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .default_headers(headers)
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirect is not part of the API; following one could send the token elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(ClientError::Http)
}

/// `base` with `segments` appended to its path, so a base URL with a path prefix keeps it.
fn under(base: &Url, segments: &[&str]) -> Result<Url, ClientError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| ClientError::BaseUrl)?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

impl RavanClient {
    pub fn new(base_url: Url, auth: &RavanAuth, timeout: Duration) -> Result<Self, ClientError> {
        let http = http_client(credential_headers(auth)?, timeout)?;
        let bare = http_client(HeaderMap::new(), timeout)?;
        let agents = under(&base_url, &["api", "v1", "calcom", "agents", ""])?;
        let listing_url = under(&base_url, &["api", "v1", "agents", ""])?;
        let org_urls = OrgUrls {
            calcom: under(&base_url, &["api", "v1", "calcom", "status"])?,
            ghl: under(&base_url, &["api", "v1", "ghl", "setup", "status"])?,
            health: under(&base_url, &["health"])?,
        };
        Ok(Self {
            http,
            bare,
            agents_path: agents.path().to_owned(),
            listing_url,
            org_urls,
            base_url,
            timeout,
            gate: Gate::default(),
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

    /// The URLs an agent is polled at, for a caller that polls it again and again.
    pub fn agent_urls(&self, agent: &AgentId) -> AgentUrls {
        AgentUrls {
            status: self.status_url(agent),
            info: self.info_url(agent),
        }
    }

    /// One poll of an agent: `/status`, and when that finds no private connection and
    /// `check_org_linked` is on, `/info` for the connection the agent really books through.
    /// Agents with a private connection cost one request; the others two.
    pub async fn poll(
        &self,
        agent: &AgentId,
        check_org_linked: bool,
    ) -> Result<Observation, PollFailure> {
        self.poll_until(&self.agent_urls(agent), check_org_linked, None)
            .await
    }

    /// [`RavanClient::poll`] at an agent's [`AgentUrls`], for a poll cycle that ends at
    /// `deadline` (the next tick): when a 429 has closed the gate beyond it, the poll fails as
    /// throttled at once, without a request. A long `Retry-After` then ends the cycle instead
    /// of stretching it over hours, and persistent throttling reaches the monitor alert in
    /// `FAILURE_THRESHOLD` cycles.
    pub async fn poll_until(
        &self,
        urls: &AgentUrls,
        check_org_linked: bool,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Observation, PollFailure> {
        let mut obs = self.fetch(urls.status.clone(), deadline, classify).await?;
        if !obs.has_no_private_connection() {
            return Ok(obs);
        }
        obs.connection = Some(Connection::None);
        if !check_org_linked {
            return Ok(obs);
        }
        let info = self
            .fetch(urls.info.clone(), deadline, classify_info)
            .await
            .map_err(|failure| PollFailure::Info(Box::new(failure)))?;
        Ok(info.over(obs))
    }

    /// `/status` of one agent, once: its private connection. Never retries: the next cycle is
    /// the retry.
    pub async fn status(&self, agent: &AgentId) -> Result<Observation, PollFailure> {
        self.fetch(self.status_url(agent), None, classify).await
    }

    /// `/info` of one agent, once: the account it effectively books through.
    pub async fn info(&self, agent: &AgentId) -> Result<EffectiveAccount, PollFailure> {
        self.fetch(self.info_url(agent), None, classify_info).await
    }

    /// Until when requests wait, if a 429 asked for a pause that has not ended.
    pub fn throttled_until(&self) -> Option<tokio::time::Instant> {
        self.gate.closed_until()
    }

    /// A GET of `url` whose answer `classify` reads.
    async fn fetch<T>(
        &self,
        url: Url,
        deadline: Option<tokio::time::Instant>,
        classify: fn(u16, &[u8]) -> Result<T, PollFailure>,
    ) -> Result<T, PollFailure> {
        let (status, body) = self.get(url, MAX_BODY_BYTES, deadline).await?;
        classify(status, &body)
    }

    /// Waits at the throttle gate (not past `deadline`: then it is a throttled failure at
    /// once), sends a GET, reads at most `cap` bytes of the answer. A 429 closes the gate and is
    /// a [`PollFailure::Throttled`].
    pub(super) async fn get(
        &self,
        url: Url,
        cap: usize,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(u16, Vec<u8>), PollFailure> {
        self.get_via(&self.http, url, cap, deadline).await
    }

    /// [`RavanClient::get`] without the credential.
    pub(super) async fn get_bare(
        &self,
        url: Url,
        cap: usize,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(u16, Vec<u8>), PollFailure> {
        self.get_via(&self.bare, url, cap, deadline).await
    }

    async fn get_via(
        &self,
        http: &reqwest::Client,
        url: Url,
        cap: usize,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(u16, Vec<u8>), PollFailure> {
        self.gate.pass(deadline).await?;
        let response = http
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport_failure(e))?;
        let status = response.status().as_u16();
        if status == 429 {
            return Err(self.gate.throttled(response.headers()));
        }
        let body = read_capped(response, cap).await.map_err(|e| match e {
            ReadError::Transport(e) => self.transport_failure(e),
            ReadError::TooLarge => PollFailure::BadBody(format!("answer larger than {cap} bytes")),
        })?;
        Ok((status, body))
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

enum ReadError {
    Transport(reqwest::Error),
    TooLarge,
}

async fn read_capped(response: reqwest::Response, cap: usize) -> Result<Vec<u8>, ReadError> {
    match crate::util::read_prefix(response, cap).await {
        Ok((_, true)) => Err(ReadError::TooLarge),
        Ok((body, false)) => Ok(body),
        Err(e) => Err(ReadError::Transport(e)),
    }
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
}
