//! Webhook delivery against wiremock sinks: what is retried, what is not, and how long it waits.
//! Backoff waits go through a recording sleeper, so the tests assert the exact waits without
//! sleeping for them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ravan_watch::notify::{DeliveryError, Platform, RetryPolicy, Sender, Webhook};
use ravan_watch::secret::SecretUrl;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

type Waits = Arc<Mutex<Vec<Duration>>>;

fn policy() -> RetryPolicy {
    RetryPolicy {
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(5),
        max_retries: 3,
        max_rate_limit_wait: Duration::from_secs(60),
        timeout: Duration::from_millis(500),
    }
}

/// A sender whose backoff waits are recorded and return at once.
fn sender() -> (Sender, Waits) {
    let waits: Waits = Arc::default();
    let recorded = waits.clone();
    let sender = Sender::new(policy())
        .unwrap()
        .with_sleep(Arc::new(move |d| {
            recorded.lock().unwrap().push(d);
            Box::pin(async {})
        }));
    (sender, waits)
}

fn hook(server: &MockServer, platform: Platform) -> Webhook {
    let url = format!("{}/hook/SECRET-TOKEN", server.uri())
        .parse()
        .unwrap();
    Webhook::new(platform, SecretUrl::new(url))
}

async fn sink_answering(answers: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    let n = answers.len();
    for (i, answer) in answers.into_iter().enumerate() {
        // Each answer once, in order; the last one for any further request.
        let mock = Mock::given(method("POST"))
            .and(path("/hook/SECRET-TOKEN"))
            .respond_with(answer);
        let mock = if i + 1 < n {
            mock.up_to_n_times(1)
        } else {
            mock
        };
        mock.with_priority((i + 1) as u8).mount(&server).await;
    }
    server
}

fn body() -> serde_json::Value {
    json!({"text": "hello"})
}

#[tokio::test]
async fn server_error_then_ok_delivers_once() {
    let server = sink_answering(vec![
        ResponseTemplate::new(500).set_body_string("rollup_error"),
        ResponseTemplate::new(200).set_body_string("ok"),
    ])
    .await;
    let (sender, waits) = sender();
    sender
        .deliver(&hook(&server, Platform::Slack), &body())
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "one failure, one success, nothing after");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&requests[1].body).unwrap(),
        body()
    );
    let waits = waits.lock().unwrap().clone();
    assert_eq!(waits.len(), 1);
    assert!(
        waits[0] >= Duration::from_millis(100) && waits[0] <= Duration::from_millis(200),
        "jittered first backoff: {waits:?}"
    );
}

#[tokio::test]
async fn slack_429_waits_retry_after() {
    let server = sink_answering(vec![
        ResponseTemplate::new(429)
            .insert_header("retry-after", "7")
            .set_body_string("rate_limited"),
        ResponseTemplate::new(200).set_body_string("ok"),
    ])
    .await;
    let (sender, waits) = sender();
    sender
        .deliver(&hook(&server, Platform::Slack), &body())
        .await
        .unwrap();
    assert_eq!(*waits.lock().unwrap(), vec![Duration::from_secs(7)]);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn discord_429_waits_retry_after_from_the_body() {
    let server = sink_answering(vec![
        ResponseTemplate::new(429)
            .insert_header("retry-after", "1")
            .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 2.5, "global": false})),
        ResponseTemplate::new(204),
    ])
    .await;
    let (sender, waits) = sender();
    sender
        .deliver(&hook(&server, Platform::Discord), &body())
        .await
        .unwrap();
    assert_eq!(*waits.lock().unwrap(), vec![Duration::from_millis(2500)]);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn overlong_retry_after_is_capped() {
    let server = sink_answering(vec![
        ResponseTemplate::new(429).insert_header("retry-after", "86400"),
        ResponseTemplate::new(204),
    ])
    .await;
    let (sender, waits) = sender();
    sender
        .deliver(&hook(&server, Platform::Discord), &body())
        .await
        .unwrap();
    assert_eq!(*waits.lock().unwrap(), vec![Duration::from_secs(60)]);
}

#[tokio::test]
async fn not_found_is_not_retried_and_the_url_is_not_in_the_error() {
    let server = sink_answering(vec![
        ResponseTemplate::new(404).set_body_string("no_service"),
    ])
    .await;
    let (sender, waits) = sender();
    let err = sender
        .deliver(&hook(&server, Platform::Slack), &body())
        .await
        .unwrap_err();
    assert_eq!(err, DeliveryError::Permanent("HTTP 404: no_service".into()));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(waits.lock().unwrap().is_empty());
    let hook = hook(&server, Platform::Slack);
    assert!(!hook.to_string().contains("SECRET-TOKEN"), "{hook}");
}

#[tokio::test]
async fn discord_unknown_webhook_is_not_retried() {
    let server = sink_answering(vec![
        ResponseTemplate::new(404)
            .set_body_json(json!({"message": "Unknown Webhook", "code": 10015})),
    ])
    .await;
    let (sender, _) = sender();
    let err = sender
        .deliver(&hook(&server, Platform::Discord), &body())
        .await
        .unwrap_err();
    assert!(
        !err.is_retryable() && err.to_string().contains("Unknown Webhook"),
        "{err}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_the_retry_limit() {
    let server = sink_answering(vec![ResponseTemplate::new(503)]).await;
    let (sender, waits) = sender();
    let err = sender
        .deliver(&hook(&server, Platform::Discord), &body())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Transient(ref m) if m.contains("503")),
        "{err:?}"
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        4,
        "1 attempt + 3 retries"
    );
    let waits = waits.lock().unwrap().clone();
    assert_eq!(waits.len(), 3);
    assert!(waits[2] > waits[0], "backoff grows: {waits:?}");
}

#[tokio::test]
async fn timeouts_are_retried() {
    let server = sink_answering(vec![
        ResponseTemplate::new(200)
            .set_body_string("ok")
            .set_delay(Duration::from_secs(3)),
        ResponseTemplate::new(200).set_body_string("ok"),
    ])
    .await;
    let (sender, waits) = sender();
    sender
        .deliver(&hook(&server, Platform::Slack), &body())
        .await
        .unwrap();
    assert_eq!(waits.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn slack_200_without_ok_is_not_success() {
    let server = sink_answering(vec![
        ResponseTemplate::new(200).set_body_string("invalid_payload"),
    ])
    .await;
    let (sender, _) = sender();
    let err = sender
        .deliver(&hook(&server, Platform::Slack), &body())
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn connection_errors_are_retried_and_do_not_leak_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook/SECRET-TOKEN")
        .parse()
        .unwrap();
    let (sender, waits) = sender();
    let err = sender
        .deliver(&Webhook::new(Platform::Slack, SecretUrl::new(url)), &body())
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("SECRET-TOKEN"), "{err}");
    assert_eq!(waits.lock().unwrap().len(), 3);
}
