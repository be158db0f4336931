//! The one error shape of the API, `{"error": {"code", "message"}}`, and the conversion of
//! axum's own rejections (bad JSON, wrong content type, oversized body, bad path, unknown route,
//! wrong method) into it, so a client never sees a plain-text error.

use std::error::Error as _;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::domain::AgentId;
use crate::store::StoreError;

/// The largest request body accepted, in bytes (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What went wrong, for programs; the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, a field that breaks a rule, a bad id, wrong method.
    InvalidRequest,
    /// Missing or wrong admin token.
    Unauthorized,
    /// No such agent, or no such route.
    NotFound,
    /// The agent is already watched.
    Conflict,
    /// The body is larger than 64 KiB.
    PayloadTooLarge,
    /// The body is not `Content-Type: application/json`.
    UnsupportedMediaType,
    /// Something failed on the server; the details are in its log.
    Internal,
}

/// Every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// A sentence for the operator; never contains a secret or SQL.
    #[schema(example = "agent 3f2504e0-4f89-11d3-9a0c-0305e82c3301 is not watched")]
    pub message: String,
}

/// An error answer: a status, a code and a message, and for 401 the challenge to send.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    challenge: Option<&'static str>,
    /// Seconds for `Retry-After` (503).
    retry_after: Option<u32>,
}

pub(crate) const BEARER_CHALLENGE: &str = "Bearer realm=\"ravan-watch\"";
pub(crate) const BASIC_CHALLENGE: &str = "Basic realm=\"ravan-watch\"";

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            challenge: None,
            retry_after: None,
        }
    }

    /// 503 with `Retry-After`: the database stayed busy past its wait. The contract's codes
    /// have no "unavailable", so the code is `internal`; the status and header say retry.
    pub fn busy(detail: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "request not served: the database stayed busy");
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                "the database is busy; retry in a moment",
            )
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
    }

    /// A field that breaks a rule: the message is `field: rule`.
    pub fn invalid_field(field: &str, rule: impl std::fmt::Display) -> Self {
        Self::invalid(format!("{field}: {rule}"))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn agent_not_found(id: AgentId) -> Self {
        Self::not_found(format!("agent {id} is not watched"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
    }

    /// 401 for the `/agents` routes, with `WWW-Authenticate: Bearer`.
    pub fn unauthorized_bearer(message: impl Into<String>) -> Self {
        Self {
            challenge: Some(BEARER_CHALLENGE),
            ..Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
        }
    }

    /// 401 for the status page, with `WWW-Authenticate: Basic` so a browser asks.
    pub fn unauthorized_basic(message: impl Into<String>) -> Self {
        Self {
            challenge: Some(BASIC_CHALLENGE),
            ..Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
        }
    }

    /// A 500 whose detail goes to the log only; the client gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; the details are in the service's log",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(id) => Self::conflict(format!("agent {id} is already watched")),
            busy if busy.is_busy() => Self::busy(busy),
            other => Self::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        use axum::extract::rejection::BytesRejection;
        use axum::extract::rejection::FailedToBufferBody;
        match rejection {
            // Serde's own words (path and reason) are the useful part; axum's prefix is not.
            JsonRejection::JsonDataError(e) => Self::invalid(format!(
                "invalid request body: {}",
                e.source().map_or_else(|| e.body_text(), |s| s.to_string())
            )),
            JsonRejection::JsonSyntaxError(e) => Self::invalid(format!(
                "request body is not valid JSON: {}",
                e.source().map_or_else(|| e.body_text(), |s| s.to_string())
            )),
            JsonRejection::MissingJsonContentType(_) => unsupported_media_type(),
            JsonRejection::BytesRejection(BytesRejection::FailedToBufferBody(
                FailedToBufferBody::LengthLimitError(_),
            )) => payload_too_large(),
            JsonRejection::BytesRejection(e) => {
                tracing::debug!(error = %e, "could not read a request body");
                Self::invalid("the request body could not be read")
            }
            other => Self::invalid(other.body_text()),
        }
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::UnsupportedMediaType,
        "expected a JSON body with `Content-Type: application/json`",
    )
}

fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!("the request body is larger than {MAX_BODY_BYTES} bytes (64 KiB)"),
    )
}

/// A JSON object body whose rejections are [`ApiError`]s: the content type must be JSON
/// (`application/json`, `application/*+json`, any parameters), the body at most
/// [`MAX_BODY_BYTES`], and a JSON object (serde would also take a positional array).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(unsupported_media_type());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::from(JsonRejection::from(e)))?;
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') | None => {}
            Some(_) => return Err(ApiError::invalid("the request body must be a JSON object")),
        }
        let Json(value) = Json::<T>::from_bytes(&bytes)?;
        Ok(Self(value))
    }
}

/// What axum's `Json` accepts: `application/json` or `application/<something>+json`.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// The `{agent_id}` of the path, parsed: a bad id is a 400 before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentIdPath(pub AgentId);

impl<S: Send + Sync> FromRequestParts<S> for AgentIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| match e {
                PathRejection::FailedToDeserializePathParams(e) => {
                    ApiError::invalid(format!("invalid path: {}", e.body_text()))
                }
                other => ApiError::internal(other.body_text()),
            })?;
        raw.parse()
            .map(Self)
            .map_err(|_| ApiError::invalid_field("agent_id", "the path's agent id must be a UUID"))
    }
}

/// The fallback for a path no route matches.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

/// The fallback for a route that exists but not with this method (axum adds `Allow`).
pub async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        ..ApiError::invalid(format!("method {method} is not allowed on this route"))
    }
}
