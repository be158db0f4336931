//! The admin token: `Authorization: Bearer …` on `/agents`, HTTP basic auth (any user name, the
//! token as password) on the status page. The headers are parsed by axum-extra's typed headers;
//! comparisons are constant-time (`subtle`); a token never reaches a log line or an answer.
//!
//! Both are layers on their routers, never checks inside handlers, so a route added to either
//! router is behind its credential without having to remember it.
//!
//! A wrong credential (a wrong bearer token, a wrong password) is a failed login, logged once a
//! minute per source address ([`failures`]); a request without any is not (a browser asks
//! first without one), and neither line ever holds what was sent.

pub mod failures;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum_extra::headers::authorization::{Basic, Bearer};
use axum_extra::headers::{Authorization, HeaderMapExt};
use subtle::ConstantTimeEq;

use self::failures::FailedLogins;
use super::error::ApiError;
use crate::domain::secret::Secret;

/// What both layers check against: the admin token (`None`: no auth asked), and the failed
/// logins of the last minute, shared by the API and the status page.
#[derive(Clone)]
pub struct Gate {
    token: Option<Secret>,
    failures: Arc<Mutex<FailedLogins>>,
}

impl Gate {
    pub fn new(token: Option<Secret>) -> Self {
        Self {
            token,
            failures: Arc::default(),
        }
    }

    /// Counts a failed login of `req`, and logs it when its source's minute allows.
    fn failed(&self, req: &Request, what: &str) {
        let addr = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let report = self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(addr, Instant::now());
        if let Some(r) = report {
            tracing::warn!(
                source = %r.source,
                suppressed = r.suppressed,
                "failed login from {}: {what} ({} more from it since its last line)",
                r.source,
                r.suppressed
            );
        }
    }
}

/// Why a request was refused: no credential at all is no login attempt.
enum Refused {
    Missing(ApiError),
    Wrong(ApiError),
}

impl Refused {
    fn error(self) -> ApiError {
        match self {
            Self::Missing(e) | Self::Wrong(e) => e,
        }
    }
}

/// Middleware for the `/agents` routes: lets the request through when the bearer token matches
/// (or when no token is configured), else answers 401 `unauthorized`.
pub async fn require_bearer(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    if let Some(expected) = &gate.token
        && let Err(refused) = check_bearer(req.headers(), expected)
    {
        if matches!(refused, Refused::Wrong(_)) {
            gate.failed(&req, "wrong bearer token on the API");
        }
        return refused.error().into_response();
    }
    next.run(req).await
}

fn check_bearer(headers: &HeaderMap, expected: &Secret) -> Result<(), Refused> {
    let given = headers
        .typed_get::<Authorization<Bearer>>()
        .ok_or_else(|| {
            Refused::Missing(ApiError::unauthorized_bearer(
                "missing admin token: send `Authorization: Bearer <ADMIN_TOKEN>`",
            ))
        })?;
    if same(given.token().trim().as_bytes(), expected) {
        Ok(())
    } else {
        Err(Refused::Wrong(ApiError::unauthorized_bearer(
            "wrong admin token",
        )))
    }
}

/// `routes` behind the status page's basic auth with the gate's token (none: open). A route
/// layer, so an unknown path stays a 404.
pub fn behind_basic_auth<S>(routes: Router<S>, gate: Gate) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    routes.route_layer(middleware::from_fn_with_state(gate, require_basic))
}

/// Middleware for the status pages: lets the request through with the token as the basic-auth
/// password (or when no token is configured), else answers 401 with `WWW-Authenticate: Basic`.
async fn require_basic(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    match check_basic(req.headers(), gate.token.as_ref()) {
        Ok(()) => next.run(req).await,
        Err(refused) => {
            if matches!(refused, Refused::Wrong(_)) {
                gate.failed(&req, "wrong password on the status page");
            }
            refused.error().into_response()
        }
    }
}

/// The status page's check: HTTP basic auth, any user name, the admin token as password.
fn check_basic(headers: &HeaderMap, expected: Option<&Secret>) -> Result<(), Refused> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let refused = || ApiError::unauthorized_basic("sign in with the admin token as the password");
    // `user:password`; the user name may be empty, the password may contain ':'.
    let given = headers
        .typed_get::<Authorization<Basic>>()
        .ok_or_else(|| Refused::Missing(refused()))?;
    if same(given.password().as_bytes(), expected) {
        Ok(())
    } else {
        Err(Refused::Wrong(refused()))
    }
}

/// Constant-time in the content; the length is not secret (and `ct_eq` says false at once).
fn same(given: &[u8], expected: &Secret) -> bool {
    given.ct_eq(expected.expose().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, header};

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_needs_the_exact_token() {
        let token = Secret::new("s3cr3t");
        assert!(check_bearer(&headers("Bearer s3cr3t"), &token).is_ok());
        assert!(check_bearer(&headers("bearer s3cr3t"), &token).is_ok());
        for bad in [
            "Bearer s3cr3",
            "Bearer s3cr3tt",
            "Basic s3cr3t",
            "Bearer ",
            "s3cr3t",
        ] {
            assert!(check_bearer(&headers(bad), &token).is_err(), "{bad}");
        }
        assert!(check_bearer(&HeaderMap::new(), &token).is_err());
    }

    #[test]
    fn basic_takes_any_user_and_the_token_as_password() {
        let token = Secret::new("s3cr3t");
        // "anyone:s3cr3t", ":s3cr3t", "anyone:wrong", "s3cr3t"
        assert!(check_basic(&headers("Basic YW55b25lOnMzY3IzdA=="), Some(&token)).is_ok());
        assert!(check_basic(&headers("Basic OnMzY3IzdA=="), Some(&token)).is_ok());
        assert!(check_basic(&headers("Basic YW55b25lOndyb25n"), Some(&token)).is_err());
        assert!(check_basic(&headers("Basic czNjcjN0"), Some(&token)).is_err());
        assert!(check_basic(&HeaderMap::new(), Some(&token)).is_err());
        assert!(check_basic(&HeaderMap::new(), None).is_ok());
    }

    /// A page whose handler checks nothing is still behind the password once it is on a router
    /// given to [`behind_basic_auth`].
    #[tokio::test]
    async fn a_route_without_a_check_of_its_own_is_behind_basic_auth() {
        let routes = Router::new().route("/new-page", axum::routing::get(|| async { "open" }));
        let app = behind_basic_auth(routes, Gate::new(Some(Secret::new("s3cr3t"))));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/new-page", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();

        let refused = client.get(&url).send().await.unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(
            refused.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"ravan-watch\""
        );
        let wrong = client.get(&url).basic_auth("anyone", Some("wrong"));
        assert_eq!(wrong.send().await.unwrap().status(), 401);
        let right = client.get(&url).basic_auth("anyone", Some("s3cr3t"));
        let right = right.send().await.unwrap();
        assert_eq!(right.status(), 200);
        assert_eq!(right.text().await.unwrap(), "open");
    }
}
