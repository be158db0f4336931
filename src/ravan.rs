//! The Ravan API client: one call, `GET /api/v1/calcom/agents/{id}/status`, and the
//! classification of every answer into an [`Observation`] or a [`PollFailure`].
//!
//! The split matters more than the call: a failure says nothing about the agent, so the tracker
//! must never mistake a 500 or a timeout for a broken connection.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use url::Url;

use crate::config::RavanAuth;
use crate::domain::{AgentId, Observation};
use crate::notify::text::truncate;
use crate::util::root_cause;

/// Answers larger than this are not read: a status fits in a few hundred bytes.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Upstream messages are cut to this many characters before they reach a log or an alert.
const MAX_MESSAGE_CHARS: usize = 200;

pub const USER_AGENT: &str = concat!("ravan-watch/", env!("CARGO_PKG_VERSION"));

/// Why a poll produced no observation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollFailure {
    /// 401/403: the credentials are wrong for every agent, not just this one.
    #[error("Ravan API refused the credentials (HTTP {status}){}", msg(.message))]
    Unauthorized { status: u16, message: String },
    /// Any other 4xx, e.g. 400 `INVALID_REQUEST` or 404 `NOT_FOUND`.
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
            Self::Rejected { .. } => "rejected",
            Self::Server { .. } => "server_error",
            Self::Timeout(_) => "timeout",
            Self::Connection(_) => "connection",
            Self::BadBody(_) => "bad_body",
        }
    }

    /// A failure that will repeat for every agent until an operator acts.
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Unauthorized { .. })
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

#[derive(Debug, Deserialize)]
struct StatusBody {
    data: Option<Observation>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RavanClient {
    http: reqwest::Client,
    base_url: Url,
    /// The path of `{base}/api/v1/calcom/agents/`, worked out once: a poll appends its id.
    agents_path: String,
    timeout: Duration,
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
        let mut agents = base_url.clone();
        agents
            .path_segments_mut()
            .map_err(|()| ClientError::BaseUrl)?
            .pop_if_empty()
            .extend(["api", "v1", "calcom", "agents", ""]);
        Ok(Self {
            http,
            agents_path: agents.path().to_owned(),
            base_url,
            timeout,
        })
    }

    /// `{base}/api/v1/calcom/agents/{id}/status`, keeping any path prefix of the base URL.
    pub fn status_url(&self, agent: &AgentId) -> Url {
        let mut url = self.base_url.clone();
        // A UUID needs no escaping.
        url.set_path(&format!("{}{agent}/status", self.agents_path));
        url
    }

    /// Polls one agent once. Never panics and never retries: the next cycle is the retry.
    pub async fn status(&self, agent: &AgentId) -> Result<Observation, PollFailure> {
        let response = self
            .http
            .get(self.status_url(agent))
            .send()
            .await
            .map_err(|e| self.transport_failure(e))?;
        let status = response.status();
        let body = read_capped(response).await.map_err(|e| match e {
            ReadError::Transport(e) => self.transport_failure(e),
            ReadError::TooLarge => {
                PollFailure::BadBody(format!("answer larger than {MAX_BODY_BYTES} bytes"))
            }
        })?;
        classify(status.as_u16(), &body)
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

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns an HTTP answer into an observation or a failure, per the API reference.
pub fn classify(status: u16, body: &[u8]) -> Result<Observation, PollFailure> {
    match status {
        200 => match serde_json::from_slice::<StatusBody>(body) {
            Ok(StatusBody { data: Some(obs) }) => Ok(obs),
            Ok(StatusBody { data: None }) => {
                Err(PollFailure::BadBody("200 without a `data` object".into()))
            }
            Err(e) => Err(PollFailure::BadBody(format!(
                "200 with a body that does not parse: {e}"
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
