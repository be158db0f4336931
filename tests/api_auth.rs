//! Who may call what: the bearer token on every `/agents` route, no auth without an admin
//! token, and no answer, header or log line carrying a webhook secret or the token.

mod common;

use reqwest::header::HeaderMap;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use common::api::{
    DISCORD, DISCORD_MASKED, LOCAL_HOOK, SLACK, SLACK_MASKED, TOKEN, TestApp, assert_no_secret,
    expect_error,
};
use common::ids::id;
use common::{AGENT_A, AGENT_B};

/// Every `/agents` route, and the other bearer-token routes (`DELETE /maintenance/{id}`'s
/// token is checked in tests/maintenance.rs), as (method, path, JSON body).
fn agent_routes() -> Vec<(Method, String, Option<Value>)> {
    let one = format!("/agents/{AGENT_A}");
    vec![
        (Method::GET, "/agents".to_owned(), None),
        (
            Method::POST,
            "/agents".to_owned(),
            Some(json!({"agent_id": AGENT_B})),
        ),
        (Method::GET, one.clone(), None),
        (Method::PATCH, one.clone(), Some(json!({"name": "changed"}))),
        (Method::DELETE, one, None),
        (Method::GET, "/integrations".to_owned(), None),
        (Method::GET, "/maintenance".to_owned(), None),
        (
            Method::POST,
            "/maintenance".to_owned(),
            Some(json!({"name": "n", "schedule": "0 2 * * SUN", "duration": "2h"})),
        ),
    ]
}

#[tokio::test]
async fn every_agents_route_needs_the_bearer_token() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "name": "kept"}))
        .await;
    let basic = format!("Basic {}", "YW55b25lOmFkbS1UMEtFTi00ZjJhOWM="); // anyone:TOKEN
    let wrong: [(&str, Option<String>); 5] = [
        ("no header", None),
        ("wrong token", Some("Bearer adm-T0KEN-4f2a9".to_owned())),
        ("longer token", Some(format!("Bearer {TOKEN}x"))),
        ("empty bearer", Some("Bearer ".to_owned())),
        ("basic with the token", Some(basic)),
    ];
    for (method, path, body) in agent_routes() {
        for (what, header) in &wrong {
            let mut req = app.anon(method.clone(), &path);
            if let Some(h) = header {
                req = req.header("authorization", h);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let resp = req.send().await.unwrap();
            let challenge = resp.headers().get("www-authenticate").cloned();
            let message = expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
            assert!(!message.contains(TOKEN), "{message}");
            let challenge =
                challenge.unwrap_or_else(|| panic!("{method} {path} {what}: no challenge"));
            assert!(
                challenge.to_str().unwrap().starts_with("Bearer"),
                "{challenge:?}"
            );
        }
    }
    // Nothing changed.
    assert_eq!(app.stored_ids().await, vec![AGENT_A.to_owned()]);
    assert!(app.store.maintenance_windows().await.unwrap().is_empty());
    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(stored.name.as_deref(), Some("kept"));

    // The same requests with the token pass (the scheme is case-insensitive).
    for (method, path, body) in agent_routes() {
        let mut req = app
            .anon(method.clone(), &path)
            .header("authorization", format!("bearer {TOKEN}"));
        if let Some(b) = &body {
            req = req.json(b);
        }
        let status = req.send().await.unwrap().status();
        assert!(status.is_success(), "{method} {path}: {status}");
    }
    assert_eq!(
        app.stored_ids().await,
        vec![AGENT_B.to_owned()],
        "POST and DELETE happened"
    );
}

#[tokio::test]
async fn without_an_admin_token_no_auth_is_asked() {
    let app = TestApp::start_with(None).await;
    for (method, path, body) in agent_routes() {
        let mut req = app.anon(method.clone(), &path);
        if method == Method::GET && path.starts_with("/agents/") {
            // Create A first so that reading, changing and deleting it succeed.
            let created = app
                .anon(Method::POST, "/agents")
                .json(&json!({"agent_id": AGENT_A}))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), StatusCode::CREATED);
        }
        if let Some(b) = &body {
            req = req.json(b);
        }
        let status = req.send().await.unwrap().status();
        assert!(status.is_success(), "{method} {path}: {status}");
    }
    let page = app.anon(Method::GET, "/").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}

// ------------------------------------------------------------------ secrets

#[tokio::test]
async fn no_answer_or_log_line_contains_a_webhook_secret() {
    let (logs, _capturing) = common::logs::capture_here();
    let app = TestApp::start().await;
    let mut texts: Vec<String> = Vec::new();
    let mut headers: Vec<HeaderMap> = Vec::new();
    let keep = |resp: Response| async {
        let h = resp.headers().clone();
        (h, resp.text().await.unwrap())
    };
    for resp in [
        app.post(json!({"agent_id": AGENT_A, "slack_webhook_url": SLACK, "discord_webhook_url": DISCORD})).await,
        app.post(json!({"agent_id": AGENT_B, "slack_webhook_url": LOCAL_HOOK})).await,
        app.post(json!({"agent_id": AGENT_A, "slack_webhook_url": SLACK})).await,
        app.authed(Method::GET, "/agents").send().await.unwrap(),
        app.get_agent(AGENT_A).await,
        app.patch(AGENT_B, json!({"discord_webhook_url": DISCORD})).await,
        app.patch(AGENT_B, json!({"slack_webhook_url": "https://evil.example/services/SLACKSECRET123"})).await,
        app.patch(AGENT_A, json!({"teams_webhook_url": common::api::TEAMS})).await,
        app.patch(AGENT_B, json!({"teams_webhook_url": common::api::TEAMS.replace("logic.azure.com", "evil.example")})).await,
        app.get_agent(AGENT_A).await,
        app.anon(Method::GET, "/").basic_auth("a", Some(TOKEN)).send().await.unwrap(),
    ] {
        let (h, t) = keep(resp).await;
        headers.push(h);
        texts.push(t);
    }
    let all = texts.join("\n");
    assert_no_secret(&all);
    for h in &headers {
        assert_no_secret(&format!("{h:?}"));
    }
    assert!(!all.contains(TOKEN));
    assert!(
        all.contains(SLACK_MASKED) && all.contains(DISCORD_MASKED),
        "{all}"
    );
    assert!(all.contains("http://127.0.0.1:9000/hook/***"), "{all}");
    assert!(
        all.contains(common::api::TEAMS_MASKED),
        "the Teams webhook was taken, shown without its sig: {all}"
    );

    // A wrong token and a failing database are logged, without the secrets.
    let resp = app
        .anon(Method::GET, "/agents")
        .bearer_auth(format!("{TOKEN}-wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    app.store.close().await;
    let resp = app.get_agent(AGENT_A).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let logged = logs.text();
    assert!(
        logged.contains("agent added over the API"),
        "logs are captured: {logged}"
    );
    assert!(logged.contains("request failed"), "{logged}");
    assert_no_secret(&logged);
    assert!(!logged.contains(TOKEN), "the admin token was logged");
}

// ------------------------------------------------------------------ failed logins

/// Many failed logins from one address within a minute, on the API (a wrong bearer token) and
/// on the status page (a wrong password), are one log line naming the address: an attacker
/// guessing tokens cannot fill the log. The minute's roll-over and the count of suppressed
/// failures are the unit tests' (`api::auth::failures`), on an injected clock.
#[tokio::test]
async fn failed_logins_from_one_address_are_logged_once_a_minute() {
    // The API the test starts runs on its (current-thread) runtime: its lines are this
    // thread's, and the other tests' stay out of them.
    let (logs, _capturing) = common::logs::capture_here();
    let app = TestApp::start().await;
    for n in 0..20 {
        let resp = app
            .anon(Method::GET, "/agents")
            .bearer_auth(format!("{TOKEN}-wrong-{n}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let resp = app
            .anon(Method::GET, "/")
            .basic_auth("admin", Some(format!("guess-{n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    // The right token is no failure and logs nothing of the kind.
    let resp = app.authed(Method::GET, "/agents").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let logged = logs.text();
    let lines: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("login") || l.contains("refused"))
        .collect();
    assert_eq!(lines.len(), 1, "one line for 40 failures: {lines:#?}");
    assert!(
        lines[0].contains("127.0.0.1"),
        "the line names the source: {}",
        lines[0]
    );
    assert!(
        !logged.contains(TOKEN) && !logged.contains("guess-"),
        "{logged}"
    );
}
