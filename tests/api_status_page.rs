//! The status pages `/` and `/status/{agent_id}`: basic auth with the admin token, escaped
//! text, each agent's row, and an agent's page.

mod common;

use ravan_watch::domain::Observation;
use ravan_watch::tracker::AgentState;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::json;

use common::api::{SLACK, TOKEN, TestApp, assert_no_secret, at, expect_error};
use common::ids::id;
use common::{AGENT_A, AGENT_B};

#[tokio::test]
async fn status_page_needs_basic_auth_and_escapes_text() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A, "name": "<script>alert('x')</script> & co", "slack_webhook_url": SLACK, "muted": true}))
        .await;
    app.create(json!({"agent_id": AGENT_B})).await;
    let mut state = AgentState::default();
    let obs = Observation {
        status: "<b>errored</b>".into(),
        connected: false,
        accounts: vec![],
        connection: None,
    };
    let th = common::thresholds(1);
    state.observe(
        &ravan_watch::domain::alert::AgentRef {
            id: id(AGENT_B),
            name: None,
        },
        &obs,
        at(0),
        &th,
        ravan_watch::tracker::Hold::None,
    );
    app.commit_state(AGENT_B, state, at(0)).await;

    let refused = [
        app.anon(Method::GET, "/"),
        app.anon(Method::GET, "/")
            .basic_auth("admin", Some("wrong")),
        app.anon(Method::GET, "/").basic_auth(TOKEN, None::<&str>),
        app.anon(Method::GET, "/").bearer_auth(TOKEN),
        app.anon(Method::GET, "/")
            .header("authorization", "Basic !!!"),
    ];
    for req in refused {
        let resp = req.send().await.unwrap();
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Basic realm=\"ravan-watch\""
        );
        expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }

    for user in ["admin", "", "anyone at all"] {
        let resp = app
            .anon(Method::GET, "/")
            .basic_auth(user, Some(TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "user {user:?}");
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        let html = resp.text().await.unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_no_secret(&html);
        assert!(
            !html.contains("<script>") && !html.contains("<b>errored"),
            "{html}"
        );
        // askama's escapes: `&#60;` for `<`, `&#38;` for `&`, `&#39;` for `'`.
        assert!(
            html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; co"),
            "{html}"
        );
        assert!(html.contains(AGENT_A) && html.contains(AGENT_B), "{html}");
        // Each agent's row: B observed unhealthy, A never polled and muted; B comes first.
        let card = |id: &str| {
            let start = html.find(&format!("id=\"agent-{id}\"")).unwrap();
            let end = start + html[start..].find('\n').unwrap();
            html[start..end].to_owned()
        };
        assert!(
            html.find(&format!("agent-{AGENT_B}")) < html.find(&format!("agent-{AGENT_A}")),
            "unhealthy first"
        );
        let card_b = card(AGENT_B);
        for text in [
            "&#60;b&#62;errored&#60;/b&#62;",
            "data-health=\"unhealthy\"",
            "2025-06-15T15:06:40Z",
        ] {
            assert!(card_b.contains(text), "{text} not in {card_b}");
        }
        assert!(!card_b.contains("muted"), "{card_b}");
        let card_a = card(AGENT_A);
        for text in [
            "not polled yet",
            "data-health=\"unknown\"",
            "<div role=\"cell\">never</div>",
            "<span class=\"mt\">muted</span>",
        ] {
            assert!(card_a.contains(text), "{text} not in {card_a}");
        }
    }

    // An agent's page: the same credentials, the same escaping; a 404 for an id not watched
    // or not an id at all.
    let page = format!("/status/{AGENT_A}");
    let resp = app.anon(Method::GET, &page).send().await.unwrap();
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = app
        .anon(Method::GET, &page)
        .basic_auth("operator", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    let html = resp.text().await.unwrap();
    assert_no_secret(&html);
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("<title>&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; co · ravan-watch</title>"),
        "{html}"
    );
    assert!(html.contains("Muted</dt><dd>yes"), "{html}");
    assert!(html.contains("Last checked</dt><dd>never"), "{html}");
    for path in [
        "/status/6a7b8c9d-0e1f-4a2b-9c3d-4e5f60718293".to_owned(),
        "/status/not-a-uuid".to_owned(),
        format!("/status/{AGENT_A}x"),
    ] {
        let resp = app
            .anon(Method::GET, &path)
            .basic_auth("operator", Some(TOKEN))
            .send()
            .await
            .unwrap();
        expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    }
    let resp = app
        .anon(Method::GET, &format!("{page}?before=soon"))
        .basic_auth("operator", Some(TOKEN))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
    let resp = app
        .anon(Method::GET, "/?health=sick")
        .basic_auth("operator", Some(TOKEN))
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_request").await;
}

/// Every route the OpenAPI document lists under the status page's credential, taken from the
/// document rather than a list here, refuses a request without credentials the same way.
#[tokio::test]
async fn every_status_page_route_needs_basic_auth() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A})).await;
    let doc: serde_json::Value = app
        .anon(Method::GET, "/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let behind_basic = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("status_page").is_some()));
            if !behind_basic {
                continue;
            }
            let path = path.replace("{agent_id}", AGENT_A);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = app.anon(method.clone(), &path).send().await.unwrap();
            assert_eq!(
                resp.headers()["www-authenticate"],
                "Basic realm=\"ravan-watch\"",
                "{method} {path}"
            );
            expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
            checked += 1;
        }
    }
    assert!(checked >= 2, "only {checked} status page routes documented");
}
