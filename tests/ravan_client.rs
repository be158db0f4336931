//! The Ravan client against a wiremock Ravan: every documented answer, and the ways an answer
//! can be unusable.

mod common;

use std::time::Duration;

use common::ids::agent_id;
use common::{
    AGENT_A, FakeRavan, LISTED_SECRET, Shape, info_body, listed_agent, no_private_body, status_body,
};
use ravan_watch::domain::secret::Secret;
use ravan_watch::domain::{AgentId, Connection, OrgId};
use ravan_watch::ravan::RavanAuth;
use ravan_watch::ravan::{
    DEFAULT_THROTTLE_WAIT, LISTING_PAGE, ListingError, MAX_THROTTLE_WAIT, PollFailure, RavanClient,
};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PATH: &str = "/api/v1/calcom/agents/3f2504e0-4f89-11d3-9a0c-0305e82c3301/status";

fn agent() -> AgentId {
    AGENT_A.parse().unwrap()
}

fn client(server: &MockServer, auth: RavanAuth, timeout: Duration) -> RavanClient {
    RavanClient::new(server.uri().parse().unwrap(), &auth, timeout).unwrap()
}

fn bearer() -> RavanAuth {
    RavanAuth::Bearer(Secret::new("tok-123"))
}

async fn answer(
    template: ResponseTemplate,
) -> Result<ravan_watch::domain::Observation, PollFailure> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .respond_with(template)
        .mount(&server)
        .await;
    client(&server, bearer(), Duration::from_secs(5))
        .status(&agent())
        .await
}

#[tokio::test]
async fn bearer_token_user_agent_and_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .and(header("authorization", "Bearer tok-123"))
        .and(header("user-agent", ravan_watch::ravan::USER_AGENT))
        .respond_with(ResponseTemplate::new(200).set_body_json(status_body("active", None)))
        .expect(1)
        .mount(&server)
        .await;
    let obs = client(&server, bearer(), Duration::from_secs(5))
        .status(&agent())
        .await
        .unwrap();
    assert!(obs.is_healthy());
    let req = &server.received_requests().await.unwrap()[0];
    assert!(req.headers.get("x-api-key").is_none());
}

#[tokio::test]
async fn api_key_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .and(header("x-api-key", "key-456"))
        .respond_with(ResponseTemplate::new(200).set_body_json(status_body("active", None)))
        .expect(1)
        .mount(&server)
        .await;
    let auth = RavanAuth::ApiKey(Secret::new("key-456"));
    client(&server, auth, Duration::from_secs(5))
        .status(&agent())
        .await
        .unwrap();
    let req = &server.received_requests().await.unwrap()[0];
    assert!(req.headers.get("authorization").is_none());
}

#[tokio::test]
async fn base_url_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/ravan{PATH}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(status_body("active", None)))
        .expect(1)
        .mount(&server)
        .await;
    let base = format!("{}/ravan/", server.uri()).parse().unwrap();
    RavanClient::new(base, &bearer(), Duration::from_secs(5))
        .unwrap()
        .status(&agent())
        .await
        .unwrap();
}

#[tokio::test]
async fn connected_answer_is_an_observation() {
    let obs = answer(
        ResponseTemplate::new(200).set_body_json(status_body("errored", Some("Token revoked"))),
    )
    .await
    .unwrap();
    assert_eq!(obs.status, "errored");
    assert!(!obs.connected);
    assert_eq!(obs.accounts[0].error.as_deref(), Some("Token revoked"));
}

#[tokio::test]
async fn no_connection_answer_is_an_unhealthy_observation() {
    let body = json!({"success": true, "message": "No agent-level connection found",
        "data": {"connected": false, "status": "not_connected", "accounts": []}});
    let obs = answer(ResponseTemplate::new(200).set_body_json(body))
        .await
        .unwrap();
    assert_eq!(obs.status, "not_connected");
    assert!(obs.accounts.is_empty());
    assert!(!obs.is_healthy());
}

#[tokio::test]
async fn bad_request_is_a_rejected_poll() {
    let body = json!({"success": false, "message": "Invalid agent id", "code": "INVALID_REQUEST"});
    let err = answer(ResponseTemplate::new(400).set_body_json(body))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PollFailure::Rejected {
            status: 400,
            code: Some("INVALID_REQUEST".into()),
            message: "Invalid agent id".into()
        }
    );
    assert!(!err.is_auth());
}

#[tokio::test]
async fn unauthorised_is_an_auth_failure() {
    let body = json!({"success": false, "message": "Unauthorized"});
    let err = answer(ResponseTemplate::new(401).set_body_json(body))
        .await
        .unwrap_err();
    assert!(err.is_auth());
    assert!(err.to_string().contains("401"));
    let err = answer(ResponseTemplate::new(403).set_body_string("Forbidden"))
        .await
        .unwrap_err();
    assert!(err.is_auth());
}

#[tokio::test]
async fn server_error_is_a_server_failure() {
    let body = json!({"success": false, "message": "Something broke", "code": "INTERNAL_ERROR"});
    let err = answer(ResponseTemplate::new(500).set_body_json(body))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PollFailure::Server {
            status: 500,
            message: "Something broke".into()
        }
    );
    let err = answer(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PollFailure::Server {
            status: 502,
            message: String::new()
        }
    );
}

#[tokio::test]
async fn malformed_json_is_a_bad_body() {
    let err = answer(ResponseTemplate::new(200).set_body_string("{\"success\": true, \"data\": {"))
        .await
        .unwrap_err();
    assert!(matches!(err, PollFailure::BadBody(_)), "{err:?}");
    let err = answer(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .await
        .unwrap_err();
    assert!(matches!(err, PollFailure::BadBody(_)), "{err:?}");
}

#[tokio::test]
async fn huge_body_is_refused() {
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    let err = answer(ResponseTemplate::new(200).set_body_string(big))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PollFailure::BadBody(ref m) if m.contains("larger")),
        "{err:?}"
    );
}

#[tokio::test]
async fn slow_answer_past_the_timeout_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(status_body("active", None))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let err = client(&server, bearer(), Duration::from_millis(200))
        .status(&agent())
        .await
        .unwrap_err();
    assert_eq!(err, PollFailure::Timeout(Duration::from_millis(200)));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "gave up at the timeout, not at the answer"
    );
}

#[tokio::test]
async fn connection_refused_is_a_connection_failure() {
    // Bind then drop a listener: nothing listens on that port afterwards.
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}").parse().unwrap();
    let err = RavanClient::new(base, &bearer(), Duration::from_secs(2))
        .unwrap()
        .status(&agent())
        .await
        .unwrap_err();
    assert!(matches!(err, PollFailure::Connection(_)), "{err:?}");
    assert!(!err.to_string().contains("tok-123"));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let err =
        answer(ResponseTemplate::new(302).insert_header("location", "http://127.0.0.1:1/steal"))
            .await
            .unwrap_err();
    assert!(
        matches!(err, PollFailure::BadBody(ref m) if m.contains("302")),
        "{err:?}"
    );
}

// ----- The organisation's listing -----

fn org(shape: Shape, n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| listed_agent(shape, &agent_id(i), &format!("Agent {i}"), i % 7 != 3))
        .collect()
}

fn fake_client(fake: &FakeRavan) -> RavanClient {
    RavanClient::new(
        fake.uri().parse().unwrap(),
        &bearer(),
        Duration::from_secs(5),
    )
    .unwrap()
}

/// The (limit, offset) of every listing request the fake received, in order.
async fn listing_queries(fake: &FakeRavan) -> Vec<(String, String)> {
    let requests = fake.server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|r| r.url.path() == "/api/v1/agents/")
        .map(|r| {
            let q: std::collections::HashMap<String, String> =
                r.url.query_pairs().into_owned().collect();
            (
                q.get("limit").cloned().unwrap_or_default(),
                q.get("offset").cloned().unwrap_or_default(),
            )
        })
        .collect()
}

/// A listing page as the fake serves it: `agents`, of `total` in all.
fn listing_page(agents: &[serde_json::Value], total: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "success": true, "message": "Agents retrieved", "data": agents,
        "meta": {"total": total, "limit": LISTING_PAGE, "offset": 0},
    }))
}

#[tokio::test]
async fn the_listing_is_read_page_by_page_in_both_shapes() {
    for shape in [Shape::Camel, Shape::Snake] {
        let fake = FakeRavan::start().await;
        fake.set_listing(shape, org(shape, 250));
        let listing = fake_client(&fake).list_agents().await.unwrap();
        assert_eq!(listing.unusable_ids, 0, "{shape:?}");
        assert_eq!(listing.agents.len(), 250, "{shape:?}");
        for (i, agent) in listing.agents.iter().enumerate() {
            assert_eq!(agent.id.to_string(), agent_id(i), "{shape:?}");
            assert_eq!(agent.name.as_deref(), Some(format!("Agent {i}").as_str()));
            assert_eq!(agent.is_inactive(), i % 7 == 3, "{shape:?} {i}");
        }
        assert_eq!(LISTING_PAGE, 100);
        let limit = LISTING_PAGE.to_string();
        assert_eq!(
            listing_queries(&fake).await,
            [
                (limit.clone(), "0".to_owned()),
                (limit.clone(), "100".to_owned()),
                (limit.clone(), "200".to_owned()),
            ],
            "{shape:?}"
        );
        assert_eq!(fake.requests("listing").await, 3);
        assert_eq!(
            fake.requests("status").await + fake.requests("info").await,
            0
        );
        assert!(
            !format!("{listing:?}").contains(LISTED_SECRET),
            "the secret of every listed agent is dropped"
        );
    }
}

#[tokio::test]
async fn a_listing_that_fits_its_pages_exactly_asks_no_further() {
    for (n, pages) in [(0, 1), (1, 1), (100, 1), (200, 2), (201, 3)] {
        let fake = FakeRavan::start().await;
        fake.set_listing(Shape::Snake, org(Shape::Snake, n));
        let listing = fake_client(&fake).list_agents().await.unwrap();
        assert_eq!(listing.agents.len(), n);
        assert_eq!(fake.requests("listing").await, pages, "{n} agents");
    }
}

#[tokio::test]
async fn a_listing_that_repeats_a_page_is_incomplete() {
    let fake = FakeRavan::start().await;
    let agents = org(Shape::Snake, 250);
    fake.set_listing(Shape::Snake, agents.clone());
    fake.set_listing_page(100, Some(listing_page(&agents[..100], json!(250))));
    let err = fake_client(&fake).list_agents().await.unwrap_err();
    assert!(matches!(err, ListingError::Incomplete(_)), "{err:?}");
    assert!(err.to_string().contains("repeated"), "{err}");
    assert!(fake.requests("listing").await <= 3);
}

#[tokio::test]
async fn a_listing_that_ignores_the_offset_is_incomplete_and_stops() {
    let fake = FakeRavan::start().await;
    let agents = org(Shape::Camel, 250);
    fake.set_listing(Shape::Camel, agents.clone());
    fake.set_listing_all(Some(listing_page(&agents[..100], json!("250"))));
    let err = fake_client(&fake).list_agents().await.unwrap_err();
    assert!(matches!(err, ListingError::Incomplete(_)), "{err:?}");
    assert!(fake.requests("listing").await <= 3);
}

#[tokio::test]
async fn a_listing_that_serves_one_agent_again_and_again_stops_soon() {
    // A broken server: the same single agent at every offset, with a believable total.
    let fake = FakeRavan::start().await;
    let agents = org(Shape::Snake, 1);
    fake.set_listing(Shape::Snake, agents.clone());
    fake.set_listing_all(Some(listing_page(&agents, json!(5000))));
    let err = fake_client(&fake).list_agents().await.unwrap_err();
    assert!(matches!(err, ListingError::Incomplete(_)), "{err:?}");
    let asked = fake.requests("listing").await;
    assert!(asked <= 3, "{asked} listing requests");
}

#[tokio::test]
async fn a_listing_failing_mid_way_is_a_request_failure_at_its_offset() {
    let fake = FakeRavan::start().await;
    fake.set_listing(Shape::Snake, org(Shape::Snake, 250));
    fake.set_listing_page(
        100,
        Some(
            ResponseTemplate::new(500).set_body_json(
                json!({"success": false, "message": "boom", "code": "INTERNAL_ERROR"}),
            ),
        ),
    );
    let err = fake_client(&fake).list_agents().await.unwrap_err();
    assert_eq!(
        err,
        ListingError::Request {
            offset: 100,
            failure: PollFailure::Server {
                status: 500,
                message: "boom".into()
            }
        }
    );
    assert_eq!(
        fake.requests("listing").await,
        2,
        "no page after the failure"
    );
}

#[tokio::test]
async fn a_listing_whose_total_moves_or_that_runs_dry_is_incomplete() {
    let agents = org(Shape::Snake, 250);
    for (what, page) in [
        ("total changed", listing_page(&agents[100..200], json!(251))),
        (
            "total changed, as text",
            listing_page(&agents[100..200], json!("249")),
        ),
        ("empty page", listing_page(&[], json!(250))),
    ] {
        let fake = FakeRavan::start().await;
        fake.set_listing(Shape::Snake, agents.clone());
        fake.set_listing_page(100, Some(page));
        let err = fake_client(&fake).list_agents().await.unwrap_err();
        assert!(
            matches!(err, ListingError::Incomplete(_)),
            "{what}: {err:?}"
        );
        assert_eq!(fake.requests("listing").await, 2, "{what}: stops at once");
    }
}

#[tokio::test]
async fn an_unreadable_listing_page_is_a_bad_page() {
    let agents = org(Shape::Snake, 250);
    for (what, offset, answer) in [
        (
            "absurd total",
            0,
            listing_page(&agents[..100], json!(1_000_000_000_000u64)),
        ),
        (
            "not json",
            0,
            ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
        ),
        (
            "not json mid-way",
            100,
            ResponseTemplate::new(200).set_body_string("{\"data\": ["),
        ),
        (
            "data not an array",
            0,
            ResponseTemplate::new(200).set_body_json(json!({"data": {}, "meta": {"total": 1}})),
        ),
        (
            "no total",
            0,
            ResponseTemplate::new(200).set_body_json(json!({"data": [], "meta": {}})),
        ),
    ] {
        let fake = FakeRavan::start().await;
        fake.set_listing(Shape::Snake, agents.clone());
        fake.set_listing_page(offset, Some(answer));
        let err = fake_client(&fake).list_agents().await.unwrap_err();
        assert!(
            matches!(&err, ListingError::BadPage { offset: o, .. } if *o == offset),
            "{what}: {err:?}"
        );
        assert_eq!(
            fake.requests("listing").await,
            offset / LISTING_PAGE + 1,
            "{what}: stops at the bad page"
        );
    }
}

#[tokio::test]
async fn a_refused_listing_is_a_request_failure() {
    let fake = FakeRavan::start().await;
    fake.set_listing_all(Some(
        ResponseTemplate::new(401).set_body_json(json!({"success": false, "message": "no"})),
    ));
    let err = fake_client(&fake).list_agents().await.unwrap_err();
    assert!(
        matches!(&err, ListingError::Request { offset: 0, failure } if failure.is_auth()),
        "{err:?}"
    );
}

// ----- /status, then /info -----

#[tokio::test]
async fn a_private_agent_costs_one_request() {
    let fake = FakeRavan::start().await;
    fake.set_status(AGENT_A, "errored", Some("Token revoked"));
    let obs = fake_client(&fake).poll(&agent(), true).await.unwrap();
    assert_eq!(obs.status, "errored");
    assert_eq!(obs.connection, Some(Connection::Private));
    assert_eq!(obs.accounts[0].error.as_deref(), Some("Token revoked"));
    assert_eq!(fake.requests("status").await, 1);
    assert_eq!(fake.requests("info").await, 0);
}

#[tokio::test]
async fn an_org_linked_agent_costs_two_and_reads_its_status_from_info() {
    for (status, connected) in [("active", true), ("errored", false)] {
        let fake = FakeRavan::start().await;
        fake.set_org_linked(AGENT_A, status, "Org calendar");
        let obs = fake_client(&fake).poll(&agent(), true).await.unwrap();
        assert_eq!(obs.status, status);
        assert_eq!(obs.connected, connected);
        assert_eq!(obs.is_healthy(), connected);
        assert_eq!(obs.connection(), Connection::OrgLinked);
        assert_eq!(obs.connection, Some(Connection::OrgLinked));
        let account = obs.org_account().expect("the org-linked account");
        assert_eq!(account.account_name, "Org calendar");
        assert_eq!(account.id, "4242");
        assert_eq!(fake.requests("status").await, 1, "{status}");
        assert_eq!(fake.requests("info").await, 1, "{status}");
        let info = &fake.server.received_requests().await.unwrap()[1];
        assert_eq!(
            info.url.path(),
            format!("/api/v1/calcom/agents/{AGENT_A}/info")
        );
        assert_eq!(
            info.headers.get("authorization").unwrap(),
            "Bearer tok-123",
            "/info is asked with the same credentials"
        );
    }
}

#[tokio::test]
async fn info_type_none_is_not_connected_with_no_connection() {
    let fake = FakeRavan::start().await;
    fake.set_answer(
        AGENT_A,
        ResponseTemplate::new(200).set_body_json(no_private_body()),
    );
    fake.set_info(
        AGENT_A,
        ResponseTemplate::new(200).set_body_json(info_body("none", "", "")),
    );
    let obs = fake_client(&fake).poll(&agent(), true).await.unwrap();
    assert_eq!(obs.status, "not_connected");
    assert!(!obs.connected);
    assert!(obs.accounts.is_empty());
    assert_eq!(obs.connection, Some(Connection::None));
    assert_eq!(fake.requests("info").await, 1);
}

#[tokio::test]
async fn without_org_linked_checks_info_is_never_asked() {
    let fake = FakeRavan::start().await;
    fake.set_org_linked(AGENT_A, "active", "Org calendar");
    let client = fake_client(&fake);
    for _ in 0..3 {
        let obs = client.poll(&agent(), false).await.unwrap();
        assert_eq!(obs.status, "not_connected");
        assert_eq!(obs.connection, Some(Connection::None));
    }
    assert_eq!(fake.requests("status").await, 3);
    assert_eq!(fake.requests("info").await, 0);
}

#[tokio::test]
async fn a_failed_info_is_a_failure_not_an_observation() {
    for (what, answer) in [
        (
            "500",
            ResponseTemplate::new(500).set_body_json(json!({"success": false, "message": "boom"})),
        ),
        (
            "unknown type",
            ResponseTemplate::new(200).set_body_json(info_body("team_pool", "active", "Pool")),
        ),
        (
            "not json",
            ResponseTemplate::new(200).set_body_string("<html>"),
        ),
        ("404", ResponseTemplate::new(404)),
    ] {
        let fake = FakeRavan::start().await;
        fake.set_org_linked(AGENT_A, "active", "Org calendar");
        fake.set_info(AGENT_A, answer);
        let err = fake_client(&fake).poll(&agent(), true).await.unwrap_err();
        let PollFailure::Info(inner) = &err else {
            panic!("{what}: {err:?}");
        };
        match what {
            "500" => assert!(
                matches!(**inner, PollFailure::Server { status: 500, .. }),
                "{err:?}"
            ),
            "unknown type" => assert!(
                matches!(&**inner, PollFailure::BadBody(m) if m.contains("team_pool")),
                "{err:?}"
            ),
            "not json" => assert!(matches!(**inner, PollFailure::BadBody(_)), "{err:?}"),
            _ => assert!(
                matches!(**inner, PollFailure::Rejected { status: 404, .. }),
                "{err:?}"
            ),
        }
        assert!(
            !err.is_not_found(),
            "{what}: the agent was found by /status"
        );
        assert!(!err.is_auth());
        assert_eq!(err.kind(), inner.kind());
    }
}

#[tokio::test]
async fn a_status_404_is_not_found_and_asks_no_info() {
    let fake = FakeRavan::start().await;
    // The fake answers 404 for an agent it was told nothing about.
    let err = fake_client(&fake).poll(&agent(), true).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(fake.requests("info").await, 0);
}

// ----- 429 -----

/// 429 with `Retry-After: value`.
fn throttle(value: &str) -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("retry-after", value)
        .set_body_json(json!({"success": false, "message": "slow down"}))
}

#[tokio::test]
async fn a_429_holds_every_clone_of_the_client_for_its_retry_after() {
    let fake = FakeRavan::start().await;
    fake.set_answer(AGENT_A, throttle("1"));
    let client = fake_client(&fake);
    let before = tokio::time::Instant::now();
    let err = client.poll(&agent(), true).await.unwrap_err();
    let after = tokio::time::Instant::now();
    assert_eq!(
        err,
        PollFailure::Throttled {
            retry_after: Duration::from_secs(1)
        }
    );
    assert_eq!(err.kind(), "throttled");
    let until = client.throttled_until().expect("the gate is closed");
    assert!(until >= before + Duration::from_secs(1), "{until:?}");
    assert!(until <= after + Duration::from_secs(1), "{until:?}");
    let clone = client.clone();
    assert_eq!(
        clone.throttled_until(),
        Some(until),
        "clones share the gate"
    );

    // Three requests at once, from the client and two clones: none arrives before the wait
    // is over.
    fake.set_status(AGENT_A, "active", None);
    let other = client.clone();
    let id = agent();
    let (a, b, c) = tokio::join!(
        client.poll(&id, true),
        clone.status(&id),
        other.poll(&id, false),
    );
    for got in [a, b, c] {
        assert!(got.unwrap().is_healthy());
    }
    let arrivals = fake.arrivals();
    assert_eq!(arrivals.len(), 4, "one 429, three after it");
    let slack = Duration::from_millis(5);
    for later in &arrivals[1..] {
        let gap = later.duration_since(arrivals[0]);
        assert!(
            gap + slack >= Duration::from_secs(1),
            "a request arrived {gap:?} after the 429"
        );
        assert!(gap < DEFAULT_THROTTLE_WAIT, "waited {gap:?}: the default");
    }
    assert_eq!(client.throttled_until(), None, "the gate opened");
}

#[tokio::test]
async fn hostile_retry_after_values_give_a_bounded_wait() {
    let fake = FakeRavan::start().await;
    let in_a_year = (chrono::Utc::now() + chrono::Duration::days(365)).to_rfc2822();
    for (value, want) in [
        ("1e20", MAX_THROTTLE_WAIT),
        ("99999999999999999999999999", MAX_THROTTLE_WAIT),
        (in_a_year.as_str(), MAX_THROTTLE_WAIT),
        ("NaN", DEFAULT_THROTTLE_WAIT),
        ("inf", DEFAULT_THROTTLE_WAIT),
        ("-3", DEFAULT_THROTTLE_WAIT),
        ("", DEFAULT_THROTTLE_WAIT),
        ("soon", DEFAULT_THROTTLE_WAIT),
        ("\u{e9}t\u{e9}", DEFAULT_THROTTLE_WAIT),
        ("12", Duration::from_secs(12)),
    ] {
        fake.set_answer(AGENT_A, throttle(value));
        // A client of its own each: the gate of the one before stays closed.
        let client = fake_client(&fake);
        let before = tokio::time::Instant::now();
        let err = client.poll(&agent(), true).await.unwrap_err();
        let after = tokio::time::Instant::now();
        assert_eq!(
            err,
            PollFailure::Throttled { retry_after: want },
            "{value:?}"
        );
        let until = client.throttled_until().expect("the gate is closed");
        assert!(until >= before + want && until <= after + want, "{value:?}");
    }
    // No Retry-After at all: the default.
    fake.set_answer(AGENT_A, ResponseTemplate::new(429));
    let client = fake_client(&fake);
    assert_eq!(
        client.poll(&agent(), true).await.unwrap_err(),
        PollFailure::Throttled {
            retry_after: DEFAULT_THROTTLE_WAIT
        }
    );
}

#[tokio::test]
async fn a_429_from_info_or_the_listing_closes_the_gate_too() {
    let fake = FakeRavan::start().await;
    fake.set_org_linked(AGENT_A, "active", "Org calendar");
    fake.set_info(AGENT_A, throttle("30"));
    let client = fake_client(&fake);
    let err = client.poll(&agent(), true).await.unwrap_err();
    assert_eq!(
        err,
        PollFailure::Info(Box::new(PollFailure::Throttled {
            retry_after: Duration::from_secs(30)
        }))
    );
    assert_eq!(err.kind(), "throttled");
    assert!(client.throttled_until().is_some());

    let client = fake_client(&fake);
    fake.set_listing_all(Some(throttle("30")));
    let err = client.list_agents().await.unwrap_err();
    assert_eq!(
        err,
        ListingError::Request {
            offset: 0,
            failure: PollFailure::Throttled {
                retry_after: Duration::from_secs(30)
            }
        }
    );
    assert!(client.throttled_until().is_some());
}

// ----- the organisation-level requests (issue 26) -----

fn org_id() -> OrgId {
    common::FAKE_ORG_ID.parse().unwrap()
}

fn api_key_client(fake: &FakeRavan, timeout: Duration) -> RavanClient {
    let auth = RavanAuth::ApiKey(Secret::new("key-456"));
    RavanClient::new(fake.uri().parse().unwrap(), &auth, timeout).unwrap()
}

/// The one request of `path` the fake received.
async fn only_request(fake: &FakeRavan, path: &str) -> wiremock::Request {
    let got: Vec<_> = fake
        .server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path)
        .collect();
    assert_eq!(got.len(), 1, "requests of {path}");
    got.into_iter().next().unwrap()
}

#[tokio::test]
async fn the_organisations_calcom_connection_is_read_with_its_org_id_and_the_key() {
    let fake = FakeRavan::start().await;
    let client = api_key_client(&fake, Duration::from_secs(5));
    let got = client.calcom_org(&org_id(), None).await.unwrap();
    assert!(got.is_healthy() && got.connected);
    assert_eq!(
        got.token_expires,
        Some("2026-04-20T12:00:00Z".parse().unwrap())
    );
    let request = only_request(&fake, "/api/v1/calcom/status").await;
    let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        [("org_id".to_owned(), common::FAKE_ORG_ID.to_owned())]
    );
    assert_eq!(request.headers.get("x-api-key").unwrap(), "key-456");

    fake.set_calcom_org(
        ResponseTemplate::new(200).set_body_json(common::calcom_org_body("not_connected")),
    );
    let got = client.calcom_org(&org_id(), None).await.unwrap();
    assert_eq!(got.status, "not_connected");
    assert!(!got.is_healthy());
    assert_eq!(got.message.as_deref(), Some("Cal.com is not connected"));
}

#[tokio::test]
async fn the_organisation_checks_error_shapes_are_the_known_failures() {
    let fake = FakeRavan::start().await;
    let client = fake_client(&fake);
    let envelope = |status: u16| {
        ResponseTemplate::new(status).set_body_json(json!({"success": false,
            "message": "Request failed", "error": {"code": "INTERNAL_ERROR", "message": "boom"}}))
    };
    for (answer, want) in [
        (
            ResponseTemplate::new(401).set_body_json(
                json!({"code": 16, "message": "API key is missing or invalid", "details": []}),
            ),
            PollFailure::Unauthorized {
                status: 401,
                message: "API key is missing or invalid".into(),
            },
        ),
        (
            ResponseTemplate::new(400).set_body_json(
                json!({"code": 3, "message": "Invalid request parameters", "details": []}),
            ),
            PollFailure::Rejected {
                status: 400,
                code: Some("3".into()),
                message: "Invalid request parameters".into(),
            },
        ),
        (
            envelope(403),
            PollFailure::Unauthorized {
                status: 403,
                message: "Request failed: boom".into(),
            },
        ),
        (
            envelope(502),
            PollFailure::Server {
                status: 502,
                message: "Request failed: boom".into(),
            },
        ),
    ] {
        fake.set_calcom_org(answer.clone());
        fake.set_ghl(answer);
        assert_eq!(client.calcom_org(&org_id(), None).await.unwrap_err(), want);
        assert_eq!(client.ghl_setup(None).await.unwrap_err(), want);
    }
    let refused =
        ResponseTemplate::new(200).set_body_json(json!({"success": false, "message": "No org"}));
    fake.set_calcom_org(refused);
    let err = client.calcom_org(&org_id(), None).await.unwrap_err();
    assert!(
        matches!(&err, PollFailure::BadBody(m) if m.contains("No org")),
        "{err:?}"
    );
    fake.set_ghl(ResponseTemplate::new(200).set_body_string("<html>oops</html>"));
    assert!(matches!(
        client.ghl_setup(None).await,
        Err(PollFailure::BadBody(_))
    ));
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    fake.set_ghl(ResponseTemplate::new(200).set_body_string(big));
    assert!(matches!(
        client.ghl_setup(None).await,
        Err(PollFailure::BadBody(m)) if m.contains("larger")
    ));
}

#[tokio::test]
async fn the_organisation_checks_time_out_and_wait_at_the_throttle_gate() {
    let fake = FakeRavan::start().await;
    let client = api_key_client(&fake, Duration::from_millis(200));
    let slow = ResponseTemplate::new(200)
        .set_body_json(common::ghl_body(true, true))
        .set_delay(Duration::from_secs(3));
    fake.set_ghl(slow);
    assert_eq!(
        client.ghl_setup(None).await.unwrap_err(),
        PollFailure::Timeout(Duration::from_millis(200))
    );
    // A 429 from one closes the gate for all: the next check, with a deadline before the gate
    // opens, fails as throttled without a request.
    fake.set_calcom_org(throttle("30"));
    assert!(
        client
            .calcom_org(&org_id(), None)
            .await
            .unwrap_err()
            .is_throttled()
    );
    let soon = tokio::time::Instant::now() + Duration::from_secs(1);
    assert!(
        client
            .ghl_setup(Some(soon))
            .await
            .unwrap_err()
            .is_throttled()
    );
    assert_eq!(fake.requests("ghl").await, 1, "only the slow one");
    assert_eq!(
        client.health().await,
        ravan_watch::domain::RavanHealth::NotAsked
    );
    assert_eq!(fake.requests("health").await, 0);
}

#[tokio::test]
async fn the_ghl_setup_is_read_as_documented() {
    let fake = FakeRavan::start().await;
    let client = api_key_client(&fake, Duration::from_secs(5));
    let got = client.ghl_setup(None).await.unwrap();
    assert!(got.is_healthy());
    assert_eq!(got.agent_count, Some(2));
    assert_eq!(
        only_request(&fake, "/api/v1/ghl/setup/status")
            .await
            .headers
            .get("x-api-key")
            .unwrap(),
        "key-456"
    );
    fake.set_ghl(ResponseTemplate::new(200).set_body_json(common::ghl_body(true, false)));
    assert_eq!(
        client.ghl_setup(None).await.unwrap().status(),
        "token_invalid"
    );
    fake.set_ghl(ResponseTemplate::new(200).set_body_json(common::ghl_body(false, false)));
    let never = client.ghl_setup(None).await.unwrap();
    assert_eq!(
        (never.status(), never.next_step.as_deref()),
        ("not_connected", Some("CONNECT_GHL"))
    );
}

#[tokio::test]
async fn an_agents_organisation_is_read_and_its_secrets_are_not() {
    let (logs, _guard) = common::logs::capture_here();
    let fake = FakeRavan::start().await;
    let client = fake_client(&fake);
    let got = client.agent_org(&agent()).await.unwrap();
    assert_eq!(got.as_str(), common::FAKE_ORG_ID);
    assert!(!format!("{got:?}").contains(LISTED_SECRET));
    let request = only_request(&fake, &format!("/api/v1/agents/{AGENT_A}/")).await;
    assert_eq!(
        request.headers.get("authorization").unwrap(),
        "Bearer tok-123"
    );

    // An answer without the organisation names none of the secrets it has.
    fake.set_agent(
        AGENT_A,
        ResponseTemplate::new(200)
            .set_body_json(json!({"success": true, "data": {"calcomApiKey": LISTED_SECRET}})),
    );
    let err = client.agent_org(&agent()).await.unwrap_err();
    assert!(matches!(err, PollFailure::BadBody(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(LISTED_SECRET));
    fake.set_agent(
        AGENT_A,
        ResponseTemplate::new(404).set_body_json(
            json!({"success": false, "message": "Agent not found", "code": "NOT_FOUND"}),
        ),
    );
    assert!(matches!(
        client.agent_org(&agent()).await,
        Err(PollFailure::Rejected { status: 404, .. })
    ));
    assert!(!logs.text().contains(LISTED_SECRET), "{}", logs.text());
}

#[tokio::test]
async fn the_health_check_sends_no_credential_and_says_whether_ravan_runs() {
    use ravan_watch::domain::RavanHealth;

    let fake = FakeRavan::start().await;
    let client = api_key_client(&fake, Duration::from_secs(5));
    assert_eq!(client.health().await, RavanHealth::Healthy);
    let request = only_request(&fake, "/health").await;
    assert!(request.headers.get("x-api-key").is_none());
    assert!(request.headers.get("authorization").is_none());
    assert_eq!(
        request.headers.get("user-agent").unwrap(),
        ravan_watch::ravan::USER_AGENT
    );

    for answer in [
        ResponseTemplate::new(502).set_body_string("Bad Gateway"),
        ResponseTemplate::new(500).set_body_json(json!({"success": false, "message": "down",
            "error": {"code": "INTERNAL_ERROR", "message": "db"}})),
        ResponseTemplate::new(200).set_body_json(json!({"status": "degraded"})),
    ] {
        fake.set_health(answer);
        assert!(matches!(client.health().await, RavanHealth::Down(_)));
    }
    let port = common::free_port();
    let gone = RavanClient::new(
        format!("http://127.0.0.1:{port}").parse().unwrap(),
        &bearer(),
        Duration::from_secs(2),
    )
    .unwrap();
    let down = gone.health().await;
    assert!(
        matches!(&down, RavanHealth::Down(why) if why.contains("cannot reach")),
        "{down:?}"
    );
}
