//! `POST /agents`: creating an agent, the answer's shape, the defaults, conflicts in any
//! spelling of the id, the bodies, content types and sizes refused, and parallel creates.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::api::{
    AGENT_KEYS, DISCORD, DISCORD_MASKED, LOCAL_HOOK, SLACK, SLACK_MASKED, STATE_KEYS, TestApp,
    assert_no_secret, expect_error, keys, set,
};
use common::ids::id;
use common::{AGENT_A, AGENT_B};

#[tokio::test]
async fn post_creates_an_agent_with_location_and_the_contract_shape() {
    let app = TestApp::start().await;
    let resp = app
        .post(json!({
            "agent_id": AGENT_A.to_uppercase(),
            "name": "  Sales line  ",
            "slack_webhook_url": SLACK,
            "discord_webhook_url": DISCORD,
            "muted": true,
        }))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["location"], format!("/agents/{AGENT_A}"));
    let text = resp.text().await.unwrap();
    assert_no_secret(&text);
    let agent: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys(&agent), set(&AGENT_KEYS));
    assert_eq!(agent["agent_id"], AGENT_A, "canonical lowercase");
    assert_eq!(agent["name"], "Sales line", "trimmed");
    assert_eq!(agent["source"], "api");
    assert_eq!(agent["muted"], true);
    assert_eq!(agent["muted_until"], Value::Null);
    assert_eq!(agent["slack_webhook_url"], SLACK_MASKED);
    assert_eq!(agent["discord_webhook_url"], DISCORD_MASKED);
    assert_eq!(agent["delivery_error"], Value::Null);
    let created = DateTime::parse_from_rfc3339(agent["created_at"].as_str().unwrap()).unwrap();
    assert!(
        (Utc::now() - created.with_timezone(&Utc))
            .num_seconds()
            .abs()
            < 60
    );
    let state = &agent["state"];
    assert_eq!(keys(state), set(&STATE_KEYS));
    for key in &STATE_KEYS[..6] {
        assert_eq!(
            state[*key],
            Value::Null,
            "state.{key} before the first observation"
        );
    }
    assert_eq!(state["accounts"], json!([]));

    // The store keeps the full URLs (they are needed to deliver), under the canonical id.
    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(stored.slack_webhook_url.unwrap().expose().as_str(), SLACK);
    assert_eq!(
        stored.discord_webhook_url.unwrap().expose().as_str(),
        DISCORD
    );
    assert_eq!(stored.name.as_deref(), Some("Sales line"));
    assert!(stored.muted);
}

#[tokio::test]
async fn post_with_only_an_id_has_defaults() {
    let app = TestApp::start().await;
    let agent = app.create(json!({"agent_id": AGENT_A})).await;
    assert_eq!(agent["name"], Value::Null);
    assert_eq!(agent["muted"], false);
    assert_eq!(agent["slack_webhook_url"], Value::Null);
    assert_eq!(agent["discord_webhook_url"], Value::Null);
    // Explicit nulls for the optional fields mean the same.
    let agent = app
        .create(json!({"agent_id": AGENT_B, "name": null, "slack_webhook_url": null, "discord_webhook_url": null}))
        .await;
    assert_eq!(agent["name"], Value::Null);
    assert_eq!(agent["slack_webhook_url"], Value::Null);
    assert_eq!(app.stored_ids().await.len(), 2);
}

#[tokio::test]
async fn post_of_a_watched_agent_is_409_in_any_spelling() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "name": "first"}))
        .await;
    for spelling in [AGENT_A.to_owned(), AGENT_A.to_uppercase()] {
        let resp = app
            .post(json!({"agent_id": spelling, "name": "second"}))
            .await;
        let message = expect_error(resp, StatusCode::CONFLICT, "conflict").await;
        assert!(message.contains(AGENT_A), "{message}");
    }
    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(
        stored.name.as_deref(),
        Some("first"),
        "the first one is kept"
    );
}

#[tokio::test]
async fn post_rejects_bad_bodies_with_400_naming_the_problem() {
    let app = TestApp::start().await;
    let long = "x".repeat(101);
    let cases: Vec<(&str, String, &str)> = vec![
        ("bad id", json!({"agent_id": "not-a-uuid"}).to_string(), "agent_id"),
        ("short id", json!({"agent_id": &AGENT_A[..30]}).to_string(), "agent_id"),
        ("id not a string", json!({"agent_id": 12}).to_string(), "agent_id"),
        ("missing id", json!({"name": "x"}).to_string(), "agent_id"),
        ("syntax", r#"{"agent_id": "#.to_owned(), "JSON"),
        ("an array", "[]".to_owned(), "must be a JSON object"),
        ("positional fields", json!([AGENT_A, "name"]).to_string(), "must be a JSON object"),
        ("a string", json!(AGENT_A).to_string(), "must be a JSON object"),
        ("null", " null".to_owned(), "must be a JSON object"),
        ("empty body", String::new(), "JSON"),
        ("unknown field", json!({"agent_id": AGENT_A, "nmae": "typo"}).to_string(), "nmae"),
        ("muted_until is PATCH only", json!({"agent_id": AGENT_A, "muted_until": null}).to_string(), "muted_until"),
        ("muted wrong type", json!({"agent_id": AGENT_A, "muted": "yes"}).to_string(), "muted"),
        ("muted null", json!({"agent_id": AGENT_A, "muted": null}).to_string(), "muted"),
        ("name too long", json!({"agent_id": AGENT_A, "name": long}).to_string(), "name: must be 1 to 100"),
        ("name empty", json!({"agent_id": AGENT_A, "name": ""}).to_string(), "name: must be 1 to 100"),
        ("name blank", json!({"agent_id": AGENT_A, "name": "   "}).to_string(), "name: must be 1 to 100"),
        ("name newline", json!({"agent_id": AGENT_A, "name": "a\nb"}).to_string(), "name: must not contain control"),
        (
            "disallowed host",
            json!({"agent_id": AGENT_A, "slack_webhook_url": "https://evil.example/services/T0/B0/SLACKSECRET123"}).to_string(),
            "slack_webhook_url: host \"evil.example\" is not in WEBHOOK_ALLOWED_HOSTS",
        ),
        (
            "lookalike host",
            json!({"agent_id": AGENT_A, "discord_webhook_url": "https://discord.com.evil.example/api/webhooks/42/DISCORDSECRET456"}).to_string(),
            "discord_webhook_url: host",
        ),
        (
            "http to a non-loopback host",
            json!({"agent_id": AGENT_A, "slack_webhook_url": "http://hooks.slack.com/services/T0/B0/SLACKSECRET123"}).to_string(),
            "slack_webhook_url: must use https",
        ),
        (
            "loopback port not listed",
            json!({"agent_id": AGENT_A, "slack_webhook_url": "http://127.0.0.1:9001/hook/LOCALSECRET789"}).to_string(),
            "slack_webhook_url: host \"127.0.0.1:9001\"",
        ),
        (
            "credentials in the URL",
            json!({"agent_id": AGENT_A, "discord_webhook_url": "https://u:DISCORDSECRET456@discord.com/api/webhooks/1/x"}).to_string(),
            "discord_webhook_url: must not contain a user name or password",
        ),
        (
            "not a URL",
            json!({"agent_id": AGENT_A, "slack_webhook_url": "hooks.slack.com/SLACKSECRET123"}).to_string(),
            "slack_webhook_url: is not a URL",
        ),
        (
            "not a string URL",
            json!({"agent_id": AGENT_A, "slack_webhook_url": 5}).to_string(),
            "slack_webhook_url",
        ),
    ];
    for (what, body, needle) in cases {
        let resp = app
            .raw(Method::POST, "/agents", Some("application/json"), &body)
            .await;
        let message = expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(
            message.contains(needle),
            "{what}: {message:?} lacks {needle:?}"
        );
        assert_no_secret(&message);
    }
    assert!(app.stored_ids().await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn post_needs_a_json_content_type() {
    let app = TestApp::start().await;
    let body = json!({"agent_id": AGENT_A}).to_string();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let resp = app.raw(Method::POST, "/agents", ct, &body).await;
        let message = expect_error(
            resp,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
        assert!(message.contains("application/json"), "{message}");
    }
    assert!(app.stored_ids().await.is_empty());
    let resp = app
        .raw(
            Method::POST,
            "/agents",
            Some("application/json; charset=utf-8"),
            &body,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

/// `{"agent_id": "..."}` padded with spaces to exactly `len` bytes.
fn padded_body(agent: &str, len: usize) -> String {
    let head = format!("{{\"agent_id\": \"{agent}\"");
    let body = format!("{head}{}}}", " ".repeat(len - head.len() - 1));
    assert_eq!(body.len(), len);
    body
}

#[tokio::test]
async fn bodies_up_to_64_kib_are_read_and_larger_ones_are_413() {
    let app = TestApp::start().await;
    let resp = app
        .raw(
            Method::POST,
            "/agents",
            Some("application/json"),
            &padded_body(AGENT_A, 64 * 1024 + 1),
        )
        .await;
    let message = expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(message.contains("64 KiB"), "{message}");
    assert!(app.stored_ids().await.is_empty());
    let resp = app
        .raw(
            Method::PATCH,
            &format!("/agents/{AGENT_A}"),
            Some("application/json"),
            &"{}".repeat(40_000),
        )
        .await;
    expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let resp = app
        .raw(
            Method::POST,
            "/agents",
            Some("application/json"),
            &padded_body(AGENT_A, 64 * 1024),
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "exactly 64 KiB is accepted"
    );
}

#[tokio::test]
async fn http_to_a_listed_loopback_host_is_accepted() {
    let app = TestApp::start().await;
    let agent = app
        .create(json!({"agent_id": AGENT_A, "slack_webhook_url": LOCAL_HOOK, "discord_webhook_url": LOCAL_HOOK}))
        .await;
    assert_eq!(agent["slack_webhook_url"], "http://127.0.0.1:9000/hook/***");
    assert_eq!(
        agent["discord_webhook_url"],
        "http://127.0.0.1:9000/hook/***"
    );
    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(
        stored.slack_webhook_url.unwrap().expose().as_str(),
        LOCAL_HOOK
    );
}

// ------------------------------------------------------------------ concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_posts_are_all_created_once() {
    let app = Arc::new(TestApp::start().await);
    let ids: Vec<String> = (0..50).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let tasks: Vec<_> = ids
        .iter()
        .map(|agent| {
            let app = app.clone();
            let agent = agent.clone();
            tokio::spawn(async move {
                app.post(json!({"agent_id": agent, "name": format!("agent {agent}")}))
                    .await
                    .status()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::CREATED);
    }
    let list: Value = common::json_of(app.authed(Method::GET, "/agents")).await;
    let listed: Vec<String> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed.len(), 50, "each exactly once");
    let expected: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let stored: BTreeSet<String> = app.stored_ids().await.into_iter().collect();
    assert_eq!(stored, expected);
}

/// An agent's own Teams webhook: taken on an allowed https host, answered masked (no `sig`),
/// kept whole in the store, cleared with `null`, and refused over http.
#[tokio::test]
async fn teams_webhook_url_is_taken_masked_and_its_sig_never_shown() {
    use common::api::{TEAMS, TEAMS_MASKED};
    let app = TestApp::start().await;
    let resp = app
        .post(json!({"agent_id": AGENT_A, "teams_webhook_url": TEAMS}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let text = resp.text().await.unwrap();
    assert_no_secret(&text);
    assert!(!text.contains("sig="), "{text}");
    let agent: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(agent["teams_webhook_url"], TEAMS_MASKED);
    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(
        stored.teams_webhook_url.as_ref().unwrap().expose().as_str(),
        TEAMS.replace(":443", ""),
        "the whole URL is kept to deliver to"
    );
    let got = app.get_agent(AGENT_A).await.text().await.unwrap();
    assert_no_secret(&got);
    assert!(got.contains(TEAMS_MASKED), "{got}");

    let agent = app
        .patched(AGENT_A, json!({"teams_webhook_url": null}))
        .await;
    assert_eq!(agent["teams_webhook_url"], Value::Null);
    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(stored.teams_webhook_url, None);

    let message = expect_error(
        app.post(
            json!({"agent_id": AGENT_B, "teams_webhook_url": TEAMS.replace("https:", "http:")}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(
        message.starts_with("teams_webhook_url: must use https"),
        "{message}"
    );
    assert_no_secret(&message);
}

/// An agent's own signed webhook: taken and masked with `WEBHOOK_SECRET` set; refused, naming
/// the field and the setting, without it (its requests could not be signed), by POST and PATCH.
#[tokio::test]
async fn an_agents_signed_webhook_url_is_masked_and_needs_webhook_secret() {
    let url = "http://127.0.0.1:9000/hooks/ravan/PATHSECRET";
    let app = TestApp::start().await;
    let resp = app
        .post(json!({"agent_id": AGENT_A, "webhook_url": url}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("PATHSECRET"), "{text}");
    let agent: Value = serde_json::from_str(&text).unwrap();
    let masked = agent["webhook_url"].as_str().unwrap();
    assert!(
        masked.starts_with("http://127.0.0.1:9000/hooks/ravan/"),
        "{masked}"
    );
    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(stored.webhook_url.as_ref().unwrap().expose().as_str(), url);

    let message = expect_error(
        app.post(json!({"agent_id": AGENT_B, "webhook_url": "https://evil.example/PATHSECRET"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(message.starts_with("webhook_url: "), "{message}");
    assert!(
        message.contains("WEBHOOK_ALLOWED_HOSTS"),
        "checked like the others: {message}"
    );

    let unsigned = TestApp::start_unsigned().await;
    let refused = |resp| expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request");
    let message = refused(
        unsigned
            .post(json!({"agent_id": AGENT_A, "webhook_url": url}))
            .await,
    )
    .await;
    assert!(
        message.starts_with("webhook_url: needs WEBHOOK_SECRET"),
        "{message}"
    );
    assert!(!message.contains("PATHSECRET"), "{message}");
    assert_eq!(
        unsigned.post(json!({"agent_id": AGENT_A})).await.status(),
        StatusCode::CREATED
    );
    let resp = unsigned.patch(AGENT_A, json!({"webhook_url": url})).await;
    let message = refused(resp).await;
    assert!(
        message.starts_with("webhook_url: needs WEBHOOK_SECRET"),
        "{message}"
    );
    let cleared = unsigned
        .patched(AGENT_A, json!({"webhook_url": null}))
        .await;
    assert_eq!(cleared["webhook_url"], Value::Null);
}
