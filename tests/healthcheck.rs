//! `ravan-watch healthcheck` against a running `serve`, an answering fake and nothing at all.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::bin::{BIN, run_bin};
use common::{AGENT_A, FakeRavan, TestSettings, free_port, wait_until};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn healthy_against_a_running_serve() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let db = format!("sqlite://{}", dir.path().join("rw.db").display());
    let settings = TestSettings::new(&ravan.uri())
        .listen(&listen)
        .agents(AGENT_A)
        .database(&db);
    let mut serve = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .envs(settings.pairs())
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let listen_check = listen.clone();
    wait_until(Duration::from_secs(30), "serve to be healthy", || {
        let listen = listen_check.clone();
        async move {
            run_bin(&["healthcheck"], &[("LISTEN_ADDR", listen.as_str())])
                .await
                .status
                .code()
                == Some(0)
        }
    })
    .await;
    // 0.0.0.0 means "this machine": the check goes to loopback. Other settings, missing or
    // wrong, do not matter to it.
    let out = run_bin(
        &["healthcheck"],
        &[
            ("LISTEN_ADDR", &format!("0.0.0.0:{port}")),
            ("DATABASE_URL", "postgres://elsewhere"),
            ("POLL_TIMEOUT", "soon"),
        ],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("127.0.0.1:{port}/healthz")));

    common::signal(&serve, libc::SIGTERM);
    let status = tokio::task::spawn_blocking(move || serve.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn unhealthy_when_nothing_listens_or_the_answer_is_wrong() {
    let port = free_port();
    let out = run_bin(
        &["healthcheck"],
        &[("LISTEN_ADDR", &format!("127.0.0.1:{port}"))],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unhealthy"), "{err}");

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/healthz"))
        .respond_with(ResponseTemplate::new(503).set_body_string("starting"))
        .mount(&server)
        .await;
    let addr = server.address().to_string();
    let out = run_bin(&["healthcheck"], &[("LISTEN_ADDR", addr.as_str())]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 503: starting"));
}

#[tokio::test]
async fn healthy_answer_from_any_listener() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/healthz"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(r#"{"status":"ok"}"#, "application/json"),
        )
        .mount(&server)
        .await;
    let addr = server.address().to_string();
    let out = run_bin(&["healthcheck"], &[("LISTEN_ADDR", addr.as_str())]).await;
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test]
async fn a_bad_listen_addr_is_a_configuration_error() {
    let out = run_bin(&["healthcheck"], &[("LISTEN_ADDR", "localhost")]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("LISTEN_ADDR"), "{err}");
}
