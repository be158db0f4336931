//! `GET /integrations` through the real router: both organisation-level checks in the
//! contract's shape, before the first check and after one.

mod common;

use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::api::TestApp;
use ravan_watch::domain::alert::IntegrationName;
use ravan_watch::store::Fence;
use ravan_watch::tracker::{IntegrationObservation, IntegrationState};

async fn integrations(app: &TestApp) -> Value {
    let resp = app
        .authed(Method::GET, "/integrations")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn both_integrations_in_the_contracts_shape() {
    let app = TestApp::start().await;
    let never = json!({"integrations": [
        {"name": "calcom_org", "status": null, "healthy": null, "since": null,
         "last_checked_at": null, "detail": null, "token_expires": null},
        {"name": "ghl", "status": null, "healthy": null, "since": null,
         "last_checked_at": null, "detail": null, "token_expires": null},
    ]});
    assert_eq!(integrations(&app).await, never, "before the first check");

    let at = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
    let expires = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
    let mut state = IntegrationState::default();
    let obs = IntegrationObservation {
        healthy: false,
        status: "errored".into(),
        detail: Some("Cal.com refused the token".into()),
        token_expires: Some(expires),
    };
    let th = common::thresholds(2);
    state.observe(
        IntegrationName::CalcomOrg,
        &obs,
        at,
        &th,
        chrono::Duration::days(3),
    );
    app.store
        .save_integration(
            Fence::Unchecked,
            IntegrationName::CalcomOrg,
            &state,
            &[],
            at,
        )
        .await
        .unwrap();
    let body = integrations(&app).await;
    assert_eq!(
        body["integrations"][0],
        json!({"name": "calcom_org", "status": "errored", "healthy": false,
               "since": "2026-12-07T12:00:00Z", "last_checked_at": "2026-12-07T12:00:00Z",
               "detail": "Cal.com refused the token", "token_expires": "2027-01-01T00:00:00Z"})
    );
    assert_eq!(body["integrations"][1]["name"], "ghl");
    assert_eq!(body["integrations"][1]["status"], Value::Null);
}
