//! The probes and metrics: `/healthz`, `/readyz` (scheduler, database, delivery worker) and
//! `/metrics` with the outbox gauge.

mod common;

use std::sync::atomic::Ordering;

use ravan_watch::domain::Platform;
use ravan_watch::domain::alert::{Alert, MonitorAlertKind};
use ravan_watch::store::Fence;
use ravan_watch::tracker::MonitorState;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::alerts::{monitor_alert, webhook};
use common::api::{DISCORD, SLACK, TOKEN, TestApp, assert_no_secret, at};

#[tokio::test]
async fn healthz_answers_ok_without_auth() {
    let app = TestApp::start().await;
    let resp = app.anon(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_needs_the_scheduler_and_the_database() {
    let app = TestApp::start().await;
    let ready = || async {
        let resp = app.anon(Method::GET, "/readyz").send().await.unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(
        ready().await,
        (
            StatusCode::OK,
            json!({"status": "ready", "role": "leader", "checks": {"database": "ok", "scheduler": "running", "delivery": "running"}})
        )
    );
    app.scheduler_running.store(false, Ordering::Release);
    assert_eq!(
        ready().await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "role": "leader", "checks": {"database": "ok", "scheduler": "not_running", "delivery": "running"}})
        )
    );
    app.scheduler_running.store(true, Ordering::Release);
    assert_eq!(ready().await.0, StatusCode::OK);
    // A delivery worker that keeps panicking (it is restarted each time) is not ready.
    let mut runs = 0;
    tokio::time::pause();
    ravan_watch::supervise::supervise("test worker", app.delivery.clone(), || {
        runs += 1;
        let n = runs;
        async move { assert!(n > 3, "worker bug {n}") }
    })
    .await;
    tokio::time::resume();
    assert_eq!(
        ready().await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "role": "leader", "checks": {"database": "ok", "scheduler": "running", "delivery": "failing"}})
        )
    );
    let page = common::text_of(app.anon(Method::GET, "/").basic_auth("admin", Some(TOKEN))).await;
    assert!(page.contains("Delivery worker"), "{page}");
    assert!(page.contains("worker bug 3"), "{page}");
    app.store.close().await;
    assert_eq!(
        ready().await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "role": "leader", "checks": {"database": "unavailable", "scheduler": "running", "delivery": "failing"}})
        )
    );
    // The process still answers: liveness is not readiness.
    let resp = app.anon(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// A standby (another process holds the lease) is ready and says so; once it takes the lease
/// over, `leader`. (`ravan_watch_leader` is checked per process in `tests/failover.rs`: the
/// metrics here are shared by every test of this file.)
#[tokio::test]
async fn readyz_and_metrics_tell_a_standby_from_the_leader() {
    let app = TestApp::start().await;
    let role = || async {
        let resp = app.anon(Method::GET, "/readyz").send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        (status, body["status"].clone(), body["role"].clone())
    };
    assert_eq!(
        role().await,
        (StatusCode::OK, json!("ready"), json!("leader"))
    );
    // Another process takes the lease over once this one gives it up.
    app.leadership.release().await;
    let other = ravan_watch::leader::Leadership::leased(app.store.clone());
    assert_eq!(other.claim().await, ravan_watch::leader::Role::Leader);
    assert_eq!(
        app.leadership.claim().await,
        ravan_watch::leader::Role::Standby
    );
    assert_eq!(
        role().await,
        (StatusCode::OK, json!("ready"), json!("standby"))
    );
    let page = common::text_of(app.anon(Method::GET, "/").basic_auth("admin", Some(TOKEN))).await;
    assert!(
        page.contains(&format!("standby: {} leads", other.holder())),
        "{page}"
    );
    other.release().await;
    assert_eq!(
        app.leadership.claim().await,
        ravan_watch::leader::Role::Leader
    );
    assert_eq!(role().await.2, json!("leader"));
    let page = common::text_of(app.anon(Method::GET, "/").basic_auth("admin", Some(TOKEN))).await;
    assert!(
        page.contains("leader: this process polls and delivers"),
        "{page}"
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_outbox_gauge() {
    let app = TestApp::start().await;
    let scrape = || async {
        let resp = app.anon(Method::GET, "/metrics").send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/plain; version=0.0.4");
        resp.text().await.unwrap()
    };
    let text = scrape().await;
    assert!(
        text.contains("# TYPE ravan_watch_outbox_pending gauge"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == "ravan_watch_outbox_pending 0"),
        "{text}"
    );

    // Two pending entries (one alert, two destinations) show up at the next scrape.
    let alert = Alert::Monitor(monitor_alert(
        MonitorAlertKind::Down,
        "all polls failed",
        at(0),
    ));
    let hooks = vec![
        webhook(Platform::Slack, SLACK),
        webhook(Platform::Discord, DISCORD),
    ];
    let written = app
        .store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[],
            &MonitorState::default(),
            &[(alert, hooks)],
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(written, 2);
    let text = scrape().await;
    assert!(
        text.lines().any(|l| l == "ravan_watch_outbox_pending 2"),
        "{text}"
    );
    assert_no_secret(&text);
}
