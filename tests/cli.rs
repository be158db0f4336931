//! The binary as operators run it: exit statuses and the one-line configuration errors.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::bin::{BIN, bin_command, output_of, run_bin, wait_output};
use common::{AGENT_A, AGENT_B, FakeRavan, TestSettings, wait_until};
use serde_json::json;
use wiremock::ResponseTemplate;

/// `env` after a loopback `LISTEN_ADDR` (one in `env` wins): these tests never listen publicly.
fn on_loopback<'a>(env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("LISTEN_ADDR", "127.0.0.1:0")];
    all.extend_from_slice(env);
    all
}

/// [`bin_command`] on loopback.
fn command(args: &[&str], env: &[(&str, &str)]) -> (Command, tempfile::TempDir) {
    bin_command(args, &on_loopback(env))
}

/// [`run_bin`] on loopback.
async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_bin(args, &on_loopback(env)).await
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn missing_credentials_stop_serve_with_one_line_and_status_2() {
    let out = run(&["serve"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("RAVAN_API_TOKEN"), "{err}");
}

#[tokio::test]
async fn each_bad_setting_is_named() {
    for (var, value) in [
        ("POLL_TIMEOUT", "soon"),
        ("POLL_SCHEDULE", "every now and then"),
        ("WATCH_AGENT_IDS", "not-a-uuid"),
        ("FAILURE_THRESHOLD", "0"),
        ("LOG_FORMAT", "yaml"),
        ("RUST_LOG", "[[["),
    ] {
        let out = run(&["serve"], &[("RAVAN_API_TOKEN", "t"), (var, value)]).await;
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{var}: {err}");
        assert!(err.contains(var), "{var}: {err}");
    }
}

/// `WEBHOOK_URL` and `WEBHOOK_SECRET` go together: either alone stops `serve` with one line
/// naming both, and never the value.
#[tokio::test]
async fn the_signed_webhook_needs_its_url_and_secret_together() {
    for (var, value) in [
        ("WEBHOOK_URL", "https://receiver.example/hooks/PATH-hunter2"),
        ("WEBHOOK_SECRET", "whsec-hunter2-0123456789"),
    ] {
        let out = run(&["serve"], &[("RAVAN_API_TOKEN", "t"), (var, value)]).await;
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{var}: {err}");
        assert!(
            err.contains("WEBHOOK_URL") && err.contains("WEBHOOK_SECRET"),
            "{var}: {err}"
        );
        assert!(!err.contains("hunter2"), "{var}: {err}");
    }
}

/// A database that cannot be opened (unreachable, a scheme we do not speak, a folder that does
/// not exist) stops `serve` with one line naming DATABASE_URL, exit 2, and its password
/// appears nowhere in what the process printed.
#[tokio::test]
async fn a_database_that_cannot_be_opened_is_named_without_its_password() {
    let refused = format!("postgres://rw:hunter2@127.0.0.1:{}/rw", common::free_port());
    for url in [
        refused.as_str(),
        "mysql://rw:hunter2@127.0.0.1/rw",
        "postgres://rw:hunter2@/rw",
        "sqlite:///no/such/folder/rw.db",
    ] {
        let out = run(
            &["serve"],
            &[("RAVAN_API_TOKEN", "t"), ("DATABASE_URL", url)],
        )
        .await;
        let err = stderr(&out);
        let everything = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(out.status.code(), Some(2), "{url}: {everything}");
        assert_eq!(err.lines().count(), 1, "{url}: {err}");
        assert!(err.contains("DATABASE_URL"), "{url}: {err}");
        assert!(!everything.contains("hunter2"), "{url}: {everything}");
    }
}

/// A database that opens but whose schema cannot be brought up to date (here: a table of the
/// first migration already there, not made by it) is not the setting's fault: one line naming
/// DATABASE_URL and what failed, exit 1, not a configuration error.
#[tokio::test]
async fn a_database_that_cannot_be_migrated_is_no_configuration_error() {
    use sqlx::Connection;
    let (_dir, url) = common::temp_database();
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let mut conn = sqlx::SqliteConnection::connect_with(&options.create_if_missing(true))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE agents (x INTEGER)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let out = run(
        &["serve"],
        &[("RAVAN_API_TOKEN", "t"), ("DATABASE_URL", url.as_str())],
    )
    .await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("DATABASE_URL sqlite://"), "{err}");
    assert!(err.contains("migration"), "{err}");
    assert!(!err.contains("configuration error"), "{err}");
}

/// A wrong password for a real PostgreSQL: one line naming DATABASE_URL, exit 2, and the
/// password appears nowhere in what the process printed.
#[tokio::test]
async fn a_wrong_postgres_password_is_named_without_the_password() {
    let Some(url) = common::postgres::fresh_database().await else {
        return;
    };
    let mut wrong = url::Url::parse(&url).unwrap();
    wrong.set_password(Some("hunter2-wrong")).unwrap();
    let out = run(
        &["serve"],
        &[("RAVAN_API_TOKEN", "t"), ("DATABASE_URL", wrong.as_str())],
    )
    .await;
    let err = stderr(&out);
    let everything = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(2), "{everything}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("DATABASE_URL postgres://"), "{err}");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!everything.contains("hunter2"), "{everything}");
}

#[tokio::test]
async fn env_file_is_read() {
    let dir = std::env::temp_dir().join(format!("ravan-watch-envfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".env"),
        "RAVAN_API_TOKEN=t\nPOLL_CONCURRENCY=zero\n",
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").env_clear().current_dir(&dir);
    let out = output_of(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("POLL_CONCURRENCY"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn help_for_every_command() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["check", "--help"],
        &["copy-db", "--help"],
    ] {
        let out = run(args, &[]).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn check_exit_statuses_follow_the_contract() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    ravan.set_status(AGENT_B, "errored", Some("expired"));
    let base = ravan.uri();
    let env = [
        ("RAVAN_API_KEY", "key-SECRET-123"),
        ("RAVAN_API_BASE_URL", base.as_str()),
    ];

    let out = run(&["check", AGENT_A], &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(AGENT_A) && table.contains("active"),
        "{table}"
    );

    let out = run(&["check", AGENT_A, AGENT_B], &env).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("expired"));

    let out = run(&["check", "--json", AGENT_A, AGENT_B], &env).await;
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["agents"][0]["agent_id"], AGENT_A);
    assert_eq!(v["agents"][1]["status"], "errored");
    assert_eq!(v["agents"][1]["healthy"], false);

    // An agent Ravan does not know answers 404: a failed poll.
    let unknown = "00000000-0000-4000-8000-000000000000";
    let out = run(&["check", AGENT_A, unknown], &env).await;
    assert_eq!(out.status.code(), Some(2));

    let out = run(&["check", "not-a-uuid"], &env).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not-a-uuid"));

    ravan.answer_all(Some(
        ResponseTemplate::new(401).set_body_json(json!({"success": false, "message": "bad key"})),
    ));
    let out = run(&["check", "--json", AGENT_A], &env).await;
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["agents"][0]["error"].as_str().unwrap().contains("401"));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!all.contains("SECRET"), "the key is not printed");
}

#[tokio::test]
async fn serve_exits_0_on_sigterm() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let settings = TestSettings::new(&ravan.uri())
        .token("tok-SECRET-456")
        .agents(AGENT_A)
        .every_second()
        .set("LOG_FORMAT", "json")
        .set("WEBHOOK_URL", "http://127.0.0.1:9/hooks/url-SECRET")
        .set("WEBHOOK_SECRET", "whsec-SECRET-0123456789");
    let (mut cmd, _dir) = command(&["serve"], &settings.pairs());
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "the first poll", || async {
        ravan.polls().await >= 1
    })
    .await;
    common::signal(&child, libc::SIGTERM);
    let out = wait_output(child).await;
    assert_eq!(out.status.code(), Some(0));
    let logs = stderr(&out);
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(!logs.contains("SECRET"), "the token is not logged: {logs}");
}

#[tokio::test]
async fn shutdown_keeps_and_reports_an_alert_it_could_not_deliver() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer};

    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "errored", Some("revoked"));
    // A webhook that never answers in time: the alert is in flight when SIGTERM arrives.
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("ok")
                .set_delay(Duration::from_secs(60)),
        )
        .mount(&slack)
        .await;
    let hook = format!("{}/services/T0/B0/hook-SECRET", slack.uri());
    let settings = TestSettings::new(&ravan.uri())
        .agents(AGENT_A)
        .every_second()
        .failure(1)
        .slack(&hook);
    let (mut cmd, _dir) = command(&["serve"], &settings.pairs());
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        Duration::from_secs(20),
        "the alert to reach the webhook",
        || async {
            !slack
                .received_requests()
                .await
                .unwrap_or_default()
                .is_empty()
        },
    )
    .await;
    let started = std::time::Instant::now();
    common::signal(&child, libc::SIGTERM);
    let out = wait_output(child).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped within Docker's grace: {:?}",
        started.elapsed()
    );
    let logs = stderr(&out);
    let line = logs
        .lines()
        .find(|l| l.contains("not yet delivered"))
        .unwrap_or_else(|| panic!("no undelivered line in {logs}"));
    assert!(line.contains("pending=1"), "{line}");
    assert!(
        !logs.contains("hook-SECRET"),
        "the webhook URL is masked in every line"
    );
}

/// `ADMIN_TOKEN=adm` on `0.0.0.0` is refused at start-up. Waited for with a deadline: a
/// service that starts instead is killed and the test fails, rather than hanging.
#[tokio::test]
async fn serve_refuses_a_public_listener_with_a_short_admin_token() {
    let (mut cmd, _dir) = command(
        &["serve"],
        &[
            ("RAVAN_API_TOKEN", "t"),
            ("RAVAN_API_BASE_URL", "http://127.0.0.1:9"),
            ("LISTEN_ADDR", "0.0.0.0:0"),
            ("ADMIN_TOKEN", "adm"),
        ],
    );
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = common::poll_until(Duration::from_secs(20), || {
        std::future::ready(child.try_wait().unwrap())
    })
    .await;
    let Some(status) = exited else {
        child.kill().unwrap();
        panic!("serve started with ADMIN_TOKEN=adm on 0.0.0.0");
    };
    let out = wait_output(child).await;
    assert_eq!(status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("ADMIN_TOKEN") && err.contains("openssl rand -hex 24"),
        "{err}"
    );
}

#[tokio::test]
async fn serve_refuses_a_public_listener_without_an_admin_token() {
    let out = run(
        &["serve"],
        &[("RAVAN_API_TOKEN", "t"), ("LISTEN_ADDR", "0.0.0.0:0")],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("ADMIN_TOKEN") && err.contains("loopback"),
        "{err}"
    );
}
