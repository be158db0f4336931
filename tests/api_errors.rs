//! Errors in the envelope `{"error": {"code", "message"}}`: unknown routes and methods, and
//! a failing database as a generic 500 that names no internals.

mod common;

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::json;

use common::api::{TOKEN, TestApp, expect_error};
use common::{AGENT_A, AGENT_B};

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let app = TestApp::start().await;
    for path in [
        "/nope",
        "/agents/",
        &format!("/agents/{AGENT_A}/extra"),
        "/healthz/x",
    ] {
        let resp = app.authed(Method::GET, path).send().await.unwrap();
        expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    }
    for (method, path, allow) in [
        (Method::PUT, "/agents", "GET,HEAD,POST"),
        (
            Method::POST,
            &format!("/agents/{AGENT_A}") as &str,
            "GET,HEAD,PATCH,DELETE",
        ),
        (Method::POST, "/healthz", "GET,HEAD"),
        (Method::DELETE, "/", "GET,HEAD"),
    ] {
        let resp = app.authed(method.clone(), path).send().await.unwrap();
        let allowed: HashSet<String> = resp.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        let expected: HashSet<String> = allow.split(',').map(str::to_owned).collect();
        assert_eq!(allowed, expected, "{method} {path}");
        let message = expect_error(resp, StatusCode::METHOD_NOT_ALLOWED, "invalid_request").await;
        assert!(message.contains(method.as_str()), "{message}");
    }
}

#[tokio::test]
async fn a_failing_database_is_a_generic_500() {
    let app = TestApp::start().await;
    app.create(json!({"agent_id": AGENT_A})).await;
    app.store.close().await;
    let requests = [
        app.authed(Method::GET, "/agents"),
        app.authed(Method::GET, &format!("/agents/{AGENT_A}")),
        app.authed(Method::POST, "/agents")
            .json(&json!({"agent_id": AGENT_B})),
        app.authed(Method::PATCH, &format!("/agents/{AGENT_A}"))
            .json(&json!({"name": "x"})),
        app.authed(Method::DELETE, &format!("/agents/{AGENT_A}")),
        app.anon(Method::GET, "/").basic_auth("admin", Some(TOKEN)),
    ];
    for req in requests {
        let resp = req.send().await.unwrap();
        let message = expect_error(resp, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
        let lower = message.to_lowercase();
        for leak in ["pool", "sql", "select", "database error"] {
            assert!(!lower.contains(leak), "{message}");
        }
    }
}
