//! `/openapi.json`: every route of the contract documented with its codes and schemas, real
//! answers valid against them, and every documented route served.

mod common;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::api::{AGENT_KEYS, SLACK, STATE_KEYS, TOKEN, TestApp, keys, set};
use common::{AGENT_A, AGENT_B};

/// Every route of the contract, with the codes each must document.
fn documented_routes() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        (
            "/agents",
            "post",
            vec!["201", "400", "401", "409", "413", "415", "500"],
        ),
        ("/agents", "get", vec!["200", "401"]),
        (
            "/agents/{agent_id}",
            "get",
            vec!["200", "400", "401", "404"],
        ),
        (
            "/agents/{agent_id}",
            "patch",
            vec!["200", "400", "401", "404", "413", "415"],
        ),
        (
            "/agents/{agent_id}",
            "delete",
            vec!["204", "400", "401", "404"],
        ),
        (
            "/agents/{agent_id}/events",
            "get",
            vec!["200", "400", "401", "404"],
        ),
        ("/events", "get", vec!["200", "400", "401"]),
        ("/integrations", "get", vec!["200", "401"]),
        (
            "/maintenance",
            "post",
            vec!["201", "400", "401", "413", "415", "500"],
        ),
        ("/maintenance", "get", vec!["200", "401"]),
        ("/maintenance/{id}", "delete", vec!["204", "401", "404"]),
        ("/", "get", vec!["200", "400", "401"]),
        (
            "/status/{agent_id}",
            "get",
            vec!["200", "400", "401", "404"],
        ),
        ("/healthz", "get", vec!["200"]),
        ("/readyz", "get", vec!["200", "503"]),
        ("/metrics", "get", vec!["200"]),
        ("/openapi.json", "get", vec!["200"]),
    ]
}

/// Whether the route needs the bearer token (the JSON API), not the status page's password.
fn bearer(path: &str) -> bool {
    ["/agents", "/events", "/integrations", "/maintenance"]
        .iter()
        .any(|p| path.starts_with(p))
}

fn validator(doc: &Value, schema: &str) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{schema}"),
        "components": doc["components"],
    });
    jsonschema::validator_for(&root).unwrap()
}

#[tokio::test]
async fn openapi_documents_every_route_with_its_schemas() {
    let app = TestApp::start().await;
    let resp = app.anon(Method::GET, "/openapi.json").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );

    // Exactly the contract's routes, no more.
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            found.insert((path.clone(), method.clone()));
        }
    }
    let expected: BTreeSet<_> = documented_routes()
        .into_iter()
        .map(|(p, m, _)| (p.to_owned(), m.to_owned()))
        .collect();
    assert_eq!(found, expected);

    for (path, method, codes) in documented_routes() {
        let op = &doc["paths"][path][method];
        let responses = op["responses"].as_object().unwrap();
        for code in codes {
            assert!(responses.contains_key(code), "{method} {path} lacks {code}");
        }
        let secured = op["security"]
            .as_array()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        if bearer(path) {
            assert_eq!(secured, vec![json!({"admin_token": []})], "{method} {path}");
            assert!(
                responses["401"]["content"]["application/json"]["schema"]["$ref"]
                    .as_str()
                    .unwrap()
                    .ends_with("/ErrorBody")
            );
        }
        if path.contains("{agent_id}") {
            let param = &op["parameters"][0];
            assert_eq!(
                (param["name"].as_str(), param["in"].as_str()),
                (Some("agent_id"), Some("path"))
            );
            assert_eq!(param["schema"]["format"], "uuid");
        }
    }
    let body_ref = |method: &str, path: &str| {
        doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(
        body_ref("post", "/agents").as_deref(),
        Some("#/components/schemas/CreateAgent")
    );
    assert_eq!(
        body_ref("patch", "/agents/{agent_id}").as_deref(),
        Some("#/components/schemas/UpdateAgent")
    );
    let ok_ref = |method: &str, path: &str, code: &str| {
        doc["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(
        ok_ref("post", "/agents", "201").as_deref(),
        Some("#/components/schemas/Agent")
    );
    assert_eq!(
        ok_ref("get", "/agents", "200").as_deref(),
        Some("#/components/schemas/AgentList")
    );
    assert_eq!(
        ok_ref("get", "/agents/{agent_id}", "200").as_deref(),
        Some("#/components/schemas/Agent")
    );
    assert_eq!(
        ok_ref("patch", "/agents/{agent_id}", "200").as_deref(),
        Some("#/components/schemas/Agent")
    );
    assert_eq!(
        ok_ref("get", "/readyz", "503").as_deref(),
        Some("#/components/schemas/Readiness")
    );
    assert_eq!(
        ok_ref("get", "/events", "200").as_deref(),
        Some("#/components/schemas/EventPage")
    );
    assert_eq!(
        ok_ref("get", "/agents/{agent_id}/events", "200").as_deref(),
        Some("#/components/schemas/EventPage")
    );
    assert_eq!(
        ok_ref("get", "/integrations", "200").as_deref(),
        Some("#/components/schemas/IntegrationList")
    );
    assert_eq!(
        body_ref("post", "/maintenance").as_deref(),
        Some("#/components/schemas/CreateWindow")
    );
    assert_eq!(
        ok_ref("post", "/maintenance", "201").as_deref(),
        Some("#/components/schemas/Window")
    );
    assert_eq!(
        ok_ref("get", "/maintenance", "200").as_deref(),
        Some("#/components/schemas/WindowList")
    );
    assert!(doc["paths"]["/"]["get"]["responses"]["200"]["content"]["text/html"].is_object());
    assert!(
        doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]["text/plain; version=0.0.4"]
            .is_object()
    );

    // The schemas say what the contract says.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(keys(&schemas["Agent"]["properties"]), set(&AGENT_KEYS));
    assert_eq!(
        keys(&schemas["AgentStatus"]["properties"]),
        set(&STATE_KEYS)
    );
    let required = |name: &str| -> BTreeSet<String> {
        schemas[name]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        required("Agent"),
        set(&AGENT_KEYS),
        "every field is always present"
    );
    assert_eq!(required("AgentStatus"), set(&STATE_KEYS));
    // The signed webhook's body (no route's) is served for its receivers.
    assert_eq!(required("SignedWebhookBody"), set(&["version", "events"]));
    assert_eq!(
        keys(&schemas["SignedWebhookBody"]["properties"]),
        set(&["version", "events", "digest"])
    );
    assert_eq!(
        required("SignedEvent"),
        set(&[
            "id",
            "at",
            "agent_id",
            "kind",
            "from_status",
            "to_status",
            "summary"
        ])
    );
    assert_eq!(required("CreateAgent"), set(&["agent_id"]));
    assert!(
        schemas["UpdateAgent"]["required"].is_null(),
        "every PATCH field is optional"
    );
    assert_eq!(
        keys(&schemas["UpdateAgent"]["properties"]),
        set(&[
            "name",
            "slack_webhook_url",
            "discord_webhook_url",
            "teams_webhook_url",
            "webhook_url",
            "muted",
            "muted_until"
        ])
    );
    assert_eq!(
        keys(&schemas["CreateAgent"]["properties"]),
        set(&[
            "agent_id",
            "name",
            "slack_webhook_url",
            "discord_webhook_url",
            "teams_webhook_url",
            "webhook_url",
            "muted"
        ])
    );
    for s in ["CreateAgent", "UpdateAgent"] {
        assert_eq!(
            schemas[s]["additionalProperties"], false,
            "{s}: unknown fields are refused"
        );
    }
    let codes: BTreeSet<String> = schemas["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        codes,
        set(&[
            "invalid_request",
            "unauthorized",
            "not_found",
            "conflict",
            "payload_too_large",
            "unsupported_media_type",
            "internal"
        ])
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["status_page"]["scheme"],
        "basic"
    );

    // Real answers validate against the document's schemas.
    let agent = app
        .create(json!({"agent_id": AGENT_A, "name": "A", "slack_webhook_url": SLACK}))
        .await;
    let agent_schema = validator(&doc, "Agent");
    assert!(
        agent_schema.is_valid(&agent),
        "{:?}",
        agent_schema
            .iter_errors(&agent)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let mut broken = agent.clone();
    broken["state"].as_object_mut().unwrap().remove("accounts");
    assert!(!agent_schema.is_valid(&broken), "the check can fail");
    let list: Value = common::json_of(app.authed(Method::GET, "/agents")).await;
    assert!(validator(&doc, "AgentList").is_valid(&list));
    let error: Value = app.get_agent(AGENT_B).await.json().await.unwrap();
    assert!(validator(&doc, "ErrorBody").is_valid(&error), "{error}");
    let ready: Value = common::json_of(app.anon(Method::GET, "/readyz")).await;
    assert!(validator(&doc, "Readiness").is_valid(&ready), "{ready}");
    let health: Value = common::json_of(app.anon(Method::GET, "/healthz")).await;
    assert!(validator(&doc, "Health").is_valid(&health), "{health}");
    let create_schema = validator(&doc, "CreateAgent");
    assert!(create_schema.is_valid(&json!({"agent_id": AGENT_B, "muted": true})));
    assert!(!create_schema.is_valid(&json!({"agent_id": AGENT_B, "nmae": "typo"})));
    let window: Value = common::json_of(
        app.authed(Method::POST, "/maintenance")
            .json(&json!({"name": "Sunday", "schedule": "0 2 * * SUN", "duration": "2h"})),
    )
    .await;
    let window_schema = validator(&doc, "Window");
    assert!(window_schema.is_valid(&window), "{window}");
    let mut broken = window.clone();
    broken.as_object_mut().unwrap().remove("next_start");
    assert!(!window_schema.is_valid(&broken), "the check can fail");
    assert_eq!(
        keys(&schemas["Window"]["properties"]),
        set(&[
            "id",
            "name",
            "schedule",
            "duration",
            "start_at",
            "end_at",
            "timezone",
            "agent_ids",
            "active",
            "next_start"
        ])
    );
    assert_eq!(required("Window"), keys(&schemas["Window"]["properties"]));
    assert_eq!(
        keys(&schemas["CreateWindow"]["properties"]),
        set(&[
            "name",
            "schedule",
            "duration",
            "start_at",
            "end_at",
            "timezone",
            "agent_ids"
        ])
    );
    let list: Value = common::json_of(app.authed(Method::GET, "/maintenance")).await;
    assert!(validator(&doc, "WindowList").is_valid(&list), "{list}");
    assert_eq!(required("CreateWindow"), set(&["name"]));
    assert_eq!(schemas["CreateWindow"]["additionalProperties"], false);
    let create_window = validator(&doc, "CreateWindow");
    assert!(
        create_window.is_valid(&json!({"name": "n", "start_at": "2030-01-01T00:00:00Z",
        "end_at": "2030-01-01T01:00:00Z", "agent_ids": [AGENT_A]}))
    );
    assert!(!create_window.is_valid(&json!({"schedule": "0 2 * * SUN", "duration": "2h"})));
    assert!(!create_window.is_valid(&json!({"name": "n", "agent_ids": ["x"], "typo": 1})));
    let update_schema = validator(&doc, "UpdateAgent");
    assert!(update_schema.is_valid(&json!({"name": null, "muted_until": "2030-01-01T00:00:00Z"})));
    assert!(!update_schema.is_valid(&json!({"muted": null})));
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let app = TestApp::start().await;
    let doc: Value = common::json_of(app.anon(Method::GET, "/openapi.json")).await;
    app.create(json!({"agent_id": AGENT_A})).await;
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((path.clone(), method.clone()));
        }
    }
    let window: Value = common::json_of(app.authed(Method::POST, "/maintenance").json(
        &json!({"name": "n", "start_at": "2030-01-01T00:00:00Z", "end_at": "2030-01-01T01:00:00Z"}),
    ))
    .await;
    let window_id = window["id"].as_str().unwrap().to_owned();
    // DELETE last, so the agent exists for the others.
    routes.sort_by_key(|(_, m)| m == "delete");
    for (path, method) in routes {
        let concrete = path
            .replace("{agent_id}", AGENT_A)
            .replace("{id}", &window_id);
        let method: Method = method.to_uppercase().parse().unwrap();
        let mut req = if bearer(&path) {
            app.authed(method.clone(), &concrete)
        } else {
            app.anon(method.clone(), &concrete)
                .basic_auth("x", Some(TOKEN))
        };
        if method == Method::POST && path == "/maintenance" {
            req = req.json(&json!({"name": "n", "schedule": "0 2 * * *", "duration": "1h"}));
        } else if method == Method::POST {
            req = req.json(&json!({"agent_id": AGENT_B}));
        } else if method == Method::PATCH {
            req = req.json(&json!({"muted": true}));
        }
        let status = req.send().await.unwrap().status();
        assert!(status.is_success(), "{method} {path}: {status}");
    }
}

/// The schema of the query parameter `name` of `GET path`, as the served document states it.
fn query_schema<'d>(doc: &'d Value, path: &str, name: &str) -> &'d Value {
    doc["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name && p["in"] == "query")
        .map(|p| &p["schema"])
        .unwrap_or_else(|| panic!("GET {path} documents no query parameter {name}"))
}

/// A client generated from the document never sends a `limit` or `before` the server
/// refuses: the document states their bounds, and the server accepts every value inside them
/// (the edges included) and refuses those just outside.
#[tokio::test]
async fn the_documented_query_limits_are_the_servers() {
    let app = TestApp::start().await;
    let doc: Value = common::json_of(app.anon(Method::GET, "/openapi.json")).await;
    app.create(json!({"agent_id": AGENT_A})).await;
    let agent_events = format!("/agents/{AGENT_A}/events");
    for (documented, served) in [
        ("/events", "/events"),
        ("/agents/{agent_id}/events", agent_events.as_str()),
    ] {
        let limit = query_schema(&doc, documented, "limit");
        assert_eq!(limit["type"], "integer", "{documented}: {limit}");
        assert_eq!(
            (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
            (Some(1), Some(500)),
            "{documented}: {limit}"
        );
        let before = query_schema(&doc, documented, "before");
        assert_eq!(before["type"], "string", "{documented}: {before}");
        let pattern = before["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{documented}: `before` has no pattern: {before}"));
        assert_eq!(pattern, "^[0-9]+$", "{documented}");
        let max_length = before["maxLength"]
            .as_u64()
            .unwrap_or_else(|| panic!("{documented}: `before` has no maxLength: {before}"))
            as usize;
        // A validator of the documented schema, to show each value sent below is (or is not)
        // one a generated client may send.
        let before_ok = jsonschema::validator_for(before).unwrap();
        let limit_ok = jsonschema::validator_for(limit).unwrap();

        let status = |query: String| {
            let req = app.authed(Method::GET, &format!("{served}?{query}"));
            async move { req.send().await.unwrap().status() }
        };
        for n in [1, 2, 499, 500] {
            assert!(limit_ok.is_valid(&json!(n)));
            assert_eq!(
                status(format!("limit={n}")).await,
                StatusCode::OK,
                "{served} limit={n}"
            );
        }
        for n in [0, 501, -1] {
            assert!(!limit_ok.is_valid(&json!(n)), "{n} is outside the schema");
            assert_eq!(
                status(format!("limit={n}")).await,
                StatusCode::BAD_REQUEST,
                "{served} limit={n}"
            );
        }
        // Every string of the pattern up to maxLength is accepted, the largest included.
        let largest = "9".repeat(max_length);
        for before in [
            "0",
            "1",
            "17",
            "0017",
            "9223372036854775807",
            largest.as_str(),
        ] {
            assert!(
                before_ok.is_valid(&json!(before)),
                "{before} fits the schema"
            );
            assert_eq!(
                status(format!("before={before}")).await,
                StatusCode::OK,
                "{served} before={before}"
            );
        }
        let too_long = "1".repeat(max_length + 1);
        for before in ["", "-3", "+5", "abc", "1.5", too_long.as_str()] {
            assert!(
                !before_ok.is_valid(&json!(before)),
                "{before:?} is outside the schema"
            );
            assert_eq!(
                status(format!("before={before}")).await,
                StatusCode::BAD_REQUEST,
                "{served} before={before:?}"
            );
        }
    }
}
