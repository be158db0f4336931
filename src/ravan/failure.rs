//! Why a poll produced no observation. Its own module because every other part of the client
//! speaks it: the throttle gate, the transport, the classification of answers and the listing.
//!
//! A failure says nothing about the agent, so the tracker must never mistake a 500, a timeout
//! or a throttled request for a broken connection: this type is that distinction.

use std::time::Duration;

/// Why a poll produced no observation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
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
    #[strum(serialize = "server_error")]
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
            Self::Info(inner) => inner.kind(),
            other => other.into(),
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
