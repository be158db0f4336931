//! Reading, changing and deleting a watched agent: `GET`, `PATCH` and `DELETE /agents`, the
//! tracker's state in the answer, and a dead webhook shown in `delivery_error`.

mod common;

use chrono::{TimeZone, Utc};
use ravan_watch::domain::Platform;
use ravan_watch::domain::{Account, Observation};
use ravan_watch::store::Fence;
use ravan_watch::tracker::{AgentState, Hold};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::alerts::{noon, webhook};
use common::api::{
    DISCORD, DISCORD_MASKED, LOCAL_HOOK, SLACK, SLACK_MASKED, TestApp, assert_no_secret, at,
    expect_error, keys, set,
};
use common::ids::id;
use common::{AGENT_A, AGENT_B};

// ------------------------------------------------------------------ GET

#[tokio::test]
async fn get_lists_and_reads_agents() {
    let app = TestApp::start().await;
    let list: Value = common::json_of(app.authed(Method::GET, "/agents")).await;
    assert_eq!(list, json!({"agents": []}));

    let a = app
        .create(json!({"agent_id": AGENT_A, "name": "A", "slack_webhook_url": SLACK}))
        .await;
    let b = app
        .create(json!({"agent_id": AGENT_B, "discord_webhook_url": DISCORD}))
        .await;
    let resp = app.authed(Method::GET, "/agents").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert_no_secret(&text);
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys(&list), set(&["agents"]));
    let agents = list["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2);
    assert!(agents.contains(&a) && agents.contains(&b), "{list}");

    let resp = app.get_agent(AGENT_A).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        a,
        "GET shows what POST answered"
    );
    let resp = app.get_agent(&AGENT_B.to_uppercase()).await;
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        b,
        "any spelling of the id"
    );

    let other = uuid::Uuid::new_v4().to_string();
    let message = expect_error(
        app.get_agent(&other).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(message.contains(&other), "{message}");
    let message = expect_error(
        app.get_agent("not-a-uuid").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(message.contains("agent_id"), "{message}");
}

#[tokio::test]
async fn the_agent_shows_the_trackers_state() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "name": "A"})).await;
    let obs = Observation {
        status: "errored".into(),
        connected: false,
        accounts: vec![Account {
            id: "acc-1".into(),
            account_name: "Sales calendar".into(),
            status: "errored".into(),
            error: Some("token expired".into()),
        }],
        connection: Some(ravan_watch::domain::Connection::Private),
    };
    let thresholds = common::thresholds(2);
    let agent_ref = ravan_watch::domain::alert::AgentRef {
        id: id(AGENT_A),
        name: None,
    };
    let mut state = AgentState::default();
    state.observe(&agent_ref, &obs, at(0), &thresholds, Hold::None);
    state.observe(&agent_ref, &obs, at(30), &thresholds, Hold::None);
    app.commit_state(AGENT_A, state.clone(), at(30)).await;
    let agent: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(
        agent["state"],
        json!({
            "status": "errored",
            "connection": "private",
            "missing_since": null,
            "connected": false,
            "healthy": false,
            "since": "2025-06-15T15:06:40Z",
            "last_checked_at": "2025-06-15T15:07:10Z",
            "last_error": null,
            "accounts": [{"id": "acc-1", "account_name": "Sales calendar", "status": "errored", "error": "token expired"}],
        })
    );
    assert_eq!(
        at(0).to_rfc3339(),
        "2025-06-15T15:06:40+00:00",
        "the times above"
    );

    // A failed poll keeps the status and shows why it failed.
    state.poll_failed("timeout after 10s".to_owned(), at(60));
    let healthy = Observation {
        status: "active".into(),
        connected: true,
        accounts: vec![],
        connection: None,
    };
    app.commit_state(AGENT_A, state.clone(), at(60)).await;
    let agent: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(agent["state"]["status"], "errored");
    assert_eq!(agent["state"]["last_error"], "timeout after 10s");
    assert_eq!(agent["state"]["last_checked_at"], "2025-06-15T15:07:40Z");

    state.observe(&agent_ref, &healthy, at(90), &thresholds, Hold::None);
    app.commit_state(AGENT_A, state, at(90)).await;
    let agent: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(agent["state"]["status"], "active");
    assert_eq!(agent["state"]["healthy"], true);
    assert_eq!(agent["state"]["connected"], true);
    assert_eq!(agent["state"]["since"], "2025-06-15T15:08:10Z");
    assert_eq!(agent["state"]["last_error"], Value::Null);
    assert_eq!(agent["state"]["accounts"], json!([]));
}

// ------------------------------------------------------------------ PATCH

#[tokio::test]
async fn patch_changes_each_field_and_null_clears() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A})).await;

    let agent = app.patched(AGENT_A, json!({"name": "  Support  "})).await;
    assert_eq!(agent["name"], "Support");
    let agent = app
        .patched(AGENT_A, json!({"slack_webhook_url": SLACK}))
        .await;
    assert_eq!(agent["slack_webhook_url"], SLACK_MASKED);
    assert_eq!(agent["name"], "Support", "absent fields stay");
    let agent = app
        .patched(AGENT_A, json!({"discord_webhook_url": DISCORD}))
        .await;
    assert_eq!(agent["discord_webhook_url"], DISCORD_MASKED);
    assert_eq!(agent["slack_webhook_url"], SLACK_MASKED);
    let agent = app.patched(AGENT_A, json!({"muted": true})).await;
    assert_eq!(agent["muted"], true);
    let agent = app
        .patched(AGENT_A, json!({"muted_until": "2030-01-02T04:05:06+01:00"}))
        .await;
    assert_eq!(agent["muted_until"], "2030-01-02T03:05:06Z", "kept in UTC");

    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(stored.name.as_deref(), Some("Support"));
    assert_eq!(stored.slack_webhook_url.unwrap().expose().as_str(), SLACK);
    assert_eq!(
        stored.discord_webhook_url.unwrap().expose().as_str(),
        DISCORD
    );
    assert!(stored.muted);
    assert_eq!(
        stored.muted_until,
        Some(Utc.with_ymd_and_hms(2030, 1, 2, 3, 5, 6).unwrap())
    );

    // An empty patch changes nothing.
    let before: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(app.patched(AGENT_A, json!({})).await, before);

    let agent = app
        .patched(AGENT_A, json!({"muted": false, "muted_until": null}))
        .await;
    assert_eq!(
        (agent["muted"].clone(), agent["muted_until"].clone()),
        (json!(false), Value::Null)
    );
    let agent = app.patched(AGENT_A, json!({"name": null})).await;
    assert_eq!(agent["name"], Value::Null);
    let agent = app
        .patched(AGENT_A, json!({"slack_webhook_url": null}))
        .await;
    assert_eq!(agent["slack_webhook_url"], Value::Null);
    assert_eq!(agent["discord_webhook_url"], DISCORD_MASKED);
    let agent = app
        .patched(AGENT_A, json!({"discord_webhook_url": null}))
        .await;
    assert_eq!(agent["discord_webhook_url"], Value::Null);

    let stored = app.store.agent(id(AGENT_A)).await.unwrap().unwrap();
    assert_eq!(stored.name, None);
    assert_eq!(stored.slack_webhook_url, None);
    assert_eq!(stored.discord_webhook_url, None);
    assert!(!stored.muted);
    assert_eq!(stored.muted_until, None);

    // The JSON merge-patch media type is JSON too.
    let resp = app
        .raw(
            Method::PATCH,
            &format!("/agents/{AGENT_A}"),
            Some("application/merge-patch+json"),
            r#"{"name": "Merged"}"#,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["name"], "Merged");

    // Several fields at once, through the uppercase spelling of the id.
    let agent = app
        .patched(
            &AGENT_A.to_uppercase(),
            json!({"name": "Both", "slack_webhook_url": LOCAL_HOOK, "muted": true}),
        )
        .await;
    assert_eq!(agent["name"], "Both");
    assert_eq!(agent["slack_webhook_url"], "http://127.0.0.1:9000/hook/***");
    assert_eq!(agent["muted"], true);
}

#[tokio::test]
async fn patch_rejects_bad_values_and_changes_nothing() {
    let app = TestApp::start().await;
    let original = app
        .create(json!({"agent_id": AGENT_A, "name": "Orig", "slack_webhook_url": SLACK}))
        .await;
    let path = format!("/agents/{AGENT_A}");
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"muted_until": "tomorrow"}),
            "muted_until: must be an RFC 3339 time",
        ),
        (
            json!({"muted_until": "2030-01-02"}),
            "muted_until: must be an RFC 3339 time",
        ),
        (json!({"muted_until": 1893456000}), "muted_until"),
        (json!({"muted": null}), "muted"),
        (json!({"muted": 1}), "muted"),
        (json!({"name": "x".repeat(101)}), "name: must be 1 to 100"),
        (json!({"name": ""}), "name: must be 1 to 100"),
        (json!({"nmae": "typo"}), "nmae"),
        (json!({"agent_id": AGENT_B}), "agent_id"),
        (
            json!({"slack_webhook_url": "https://evil.example/x/SLACKSECRET123"}),
            "slack_webhook_url: host",
        ),
        (
            json!({"discord_webhook_url": "http://discord.com/api/webhooks/1/DISCORDSECRET456"}),
            "discord_webhook_url: must use https",
        ),
        // One good field and one bad: all or nothing.
        (
            json!({"name": "Changed", "muted_until": "soon"}),
            "muted_until",
        ),
    ];
    for (body, needle) in cases {
        let resp = app.patch(AGENT_A, body.clone()).await;
        let message = expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(
            message.contains(needle),
            "{body}: {message:?} lacks {needle:?}"
        );
        assert_no_secret(&message);
    }
    let resp = app
        .raw(
            Method::PATCH,
            &path,
            Some("application/json"),
            "{\"name\": ",
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    let resp = app
        .raw(Method::PATCH, &path, Some("text/plain"), "{}")
        .await;
    expect_error(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let resp = app.raw(Method::PATCH, &path, None, "{}").await;
    expect_error(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let resp = app
        .raw(
            Method::PATCH,
            &path,
            Some("application/json"),
            "[\"Changed\"]",
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    let now: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(now, original, "nothing changed");

    let other = uuid::Uuid::new_v4().to_string();
    let resp = app.patch(&other, json!({"name": "x"})).await;
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    assert!(
        app.store.agent(id(&other)).await.unwrap().is_none(),
        "PATCH does not create"
    );
    let resp = app.patch("12345", json!({"name": "x"})).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
}

// ------------------------------------------------------------------ DELETE

#[tokio::test]
async fn delete_removes_once() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A})).await;
    app.create(json!({"agent_id": AGENT_B})).await;
    let delete = |path: String| app.authed(Method::DELETE, &path).send();
    let resp = delete(format!("/agents/{}", AGENT_A.to_uppercase()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.text().await.unwrap().is_empty());
    assert_eq!(app.stored_ids().await, vec![AGENT_B.to_owned()]);
    expect_error(
        app.get_agent(AGENT_A).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let resp = delete(format!("/agents/{AGENT_A}")).await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = delete("/agents/nope".to_owned()).await.unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(app.stored_ids().await, vec![AGENT_B.to_owned()]);
}

// ------------------------------------------------------------------ delivery errors

#[tokio::test]
async fn a_dead_webhook_shows_in_delivery_error_until_its_url_is_set_again() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "slack_webhook_url": SLACK}))
        .await;
    let agent: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    assert_eq!(agent["delivery_error"], Value::Null);

    let hook = webhook(Platform::Slack, SLACK);
    let now = noon();
    assert!(
        app.store
            .mark_webhook_dead(Fence::Unchecked, &hook, "HTTP 404: no_service", now, None)
            .await
            .unwrap()
    );
    let agent: Value = app.get_agent(AGENT_A).await.json().await.unwrap();
    let error = agent["delivery_error"]
        .as_str()
        .expect("delivery_error is set");
    assert!(
        error.contains("no_service") && error.contains(SLACK_MASKED),
        "{error}"
    );
    assert!(!error.contains("SLACKSECRET123"), "{error}");
    let list: Value = common::json_of(app.authed(Method::GET, "/agents")).await;
    assert_eq!(list["agents"][0]["delivery_error"], agent["delivery_error"]);

    // Setting the URL again (here: the same one) clears it.
    let agent = app
        .patched(AGENT_A, json!({"slack_webhook_url": SLACK}))
        .await;
    assert_eq!(agent["delivery_error"], Value::Null);
    assert!(app.store.dead_webhooks().await.unwrap().is_empty());
}
