//! The Ravan client against a wiremock Ravan: every documented answer, and the ways an answer
//! can be unusable.

mod common;

use std::time::Duration;

use common::{AGENT_A, status_body};
use ravan_watch::config::RavanAuth;
use ravan_watch::domain::AgentId;
use ravan_watch::ravan::{PollFailure, RavanClient};
use ravan_watch::secret::Secret;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PATH: &str = "/api/v1/calcom/agents/3f2504e0-4f89-11d3-9a0c-0305e82c3301/status";

fn agent() -> AgentId {
    AGENT_A.parse().unwrap()
}

fn client(server: &MockServer, auth: RavanAuth, timeout: Duration) -> RavanClient {
    RavanClient::new(server.uri().parse().unwrap(), &auth, timeout).unwrap()
}

fn bearer() -> RavanAuth {
    RavanAuth::Bearer(Secret::new("tok-123"))
}

async fn answer(
    template: ResponseTemplate,
) -> Result<ravan_watch::domain::Observation, PollFailure> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .respond_with(template)
        .mount(&server)
        .await;
    client(&server, bearer(), Duration::from_secs(5))
        .status(&agent())
        .await
}

#[tokio::test]
async fn bearer_token_user_agent_and_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .and(header("authorization", "Bearer tok-123"))
        .and(header("user-agent", ravan_watch::ravan::USER_AGENT))
        .respond_with(ResponseTemplate::new(200).set_body_json(status_body("active", None)))
        .expect(1)
        .mount(&server)
        .await;
    let obs = client(&server, bearer(), Duration::from_secs(5))
        .status(&agent())
        .await
        .unwrap();
    assert!(obs.is_healthy());
    let req = &server.received_requests().await.unwrap()[0];
    assert!(req.headers.get("x-api-key").is_none());
}

#[tokio::test]
async fn api_key_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .and(header("x-api-key", "key-456"))
        .respond_with(ResponseTemplate::new(200).set_body_json(status_body("active", None)))
        .expect(1)
        .mount(&server)
        .await;
    let auth = RavanAuth::ApiKey(Secret::new("key-456"));
    client(&server, auth, Duration::from_secs(5))
        .status(&agent())
        .await
        .unwrap();
    let req = &server.received_requests().await.unwrap()[0];
    assert!(req.headers.get("authorization").is_none());
}

#[tokio::test]
async fn base_url_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/ravan{PATH}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(status_body("active", None)))
        .expect(1)
        .mount(&server)
        .await;
    let base = format!("{}/ravan/", server.uri()).parse().unwrap();
    RavanClient::new(base, &bearer(), Duration::from_secs(5))
        .unwrap()
        .status(&agent())
        .await
        .unwrap();
}

#[tokio::test]
async fn connected_answer_is_an_observation() {
    let obs = answer(
        ResponseTemplate::new(200).set_body_json(status_body("errored", Some("Token revoked"))),
    )
    .await
    .unwrap();
    assert_eq!(obs.status, "errored");
    assert!(!obs.connected);
    assert_eq!(obs.accounts[0].error.as_deref(), Some("Token revoked"));
}

#[tokio::test]
async fn no_connection_answer_is_an_unhealthy_observation() {
    let body = json!({"success": true, "message": "No agent-level connection found",
        "data": {"connected": false, "status": "not_connected", "accounts": []}});
    let obs = answer(ResponseTemplate::new(200).set_body_json(body))
        .await
        .unwrap();
    assert_eq!(obs.status, "not_connected");
    assert!(obs.accounts.is_empty());
    assert!(!obs.is_healthy());
}

#[tokio::test]
async fn bad_request_is_a_rejected_poll() {
    let body = json!({"success": false, "message": "Invalid agent id", "code": "INVALID_REQUEST"});
    let err = answer(ResponseTemplate::new(400).set_body_json(body))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PollFailure::Rejected {
            status: 400,
            code: Some("INVALID_REQUEST".into()),
            message: "Invalid agent id".into()
        }
    );
    assert!(!err.is_auth());
}

#[tokio::test]
async fn unauthorised_is_an_auth_failure() {
    let body = json!({"success": false, "message": "Unauthorized"});
    let err = answer(ResponseTemplate::new(401).set_body_json(body))
        .await
        .unwrap_err();
    assert!(err.is_auth());
    assert!(err.to_string().contains("401"));
    let err = answer(ResponseTemplate::new(403).set_body_string("Forbidden"))
        .await
        .unwrap_err();
    assert!(err.is_auth());
}

#[tokio::test]
async fn server_error_is_a_server_failure() {
    let body = json!({"success": false, "message": "Something broke", "code": "INTERNAL_ERROR"});
    let err = answer(ResponseTemplate::new(500).set_body_json(body))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PollFailure::Server {
            status: 500,
            message: "Something broke".into()
        }
    );
    let err = answer(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PollFailure::Server {
            status: 502,
            message: String::new()
        }
    );
}

#[tokio::test]
async fn malformed_json_is_a_bad_body() {
    let err = answer(ResponseTemplate::new(200).set_body_string("{\"success\": true, \"data\": {"))
        .await
        .unwrap_err();
    assert!(matches!(err, PollFailure::BadBody(_)), "{err:?}");
    let err = answer(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .await
        .unwrap_err();
    assert!(matches!(err, PollFailure::BadBody(_)), "{err:?}");
}

#[tokio::test]
async fn huge_body_is_refused() {
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    let err = answer(ResponseTemplate::new(200).set_body_string(big))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PollFailure::BadBody(ref m) if m.contains("larger")),
        "{err:?}"
    );
}

#[tokio::test]
async fn slow_answer_past_the_timeout_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(status_body("active", None))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let err = client(&server, bearer(), Duration::from_millis(200))
        .status(&agent())
        .await
        .unwrap_err();
    assert_eq!(err, PollFailure::Timeout(Duration::from_millis(200)));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "gave up at the timeout, not at the answer"
    );
}

#[tokio::test]
async fn connection_refused_is_a_connection_failure() {
    // Bind then drop a listener: nothing listens on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}").parse().unwrap();
    let err = RavanClient::new(base, &bearer(), Duration::from_secs(2))
        .unwrap()
        .status(&agent())
        .await
        .unwrap_err();
    assert!(matches!(err, PollFailure::Connection(_)), "{err:?}");
    assert!(!err.to_string().contains("tok-123"));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let err =
        answer(ResponseTemplate::new(302).insert_header("location", "http://127.0.0.1:1/steal"))
            .await
            .unwrap_err();
    assert!(
        matches!(err, PollFailure::BadBody(ref m) if m.contains("302")),
        "{err:?}"
    );
}
