//! Property tests for every parser of outside input (issue 12, "Also"): arbitrary bytes never
//! panic and always classify. Ravan's answers (`/status`, `/info`), webhook answers and their
//! headers, the API's request bodies and values, `Retry-After`, and settings from the
//! environment.

use std::time::Duration;

use proptest::prelude::*;
use ravan_watch::api::agents::{CreateAgent, UpdateAgent};
use ravan_watch::api::values::{AgentName, WebhookUrl, parse_rfc3339};
use ravan_watch::config::Config;
use ravan_watch::domain::Platform;
use ravan_watch::domain::{AllowedHosts, DEFAULT_ALLOWED_HOSTS};
use ravan_watch::notify::deliver::classify as classify_webhook;
use ravan_watch::ravan::{MAX_THROTTLE_WAIT, classify, classify_info, retry_after};

/// JSON-ish bytes are likelier to reach the deeper branches than uniform noise.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "\\{\"(success|data|message|code|type|status|accounts|connected)\":[^}]{0,80}\\}"
            .prop_map(String::into_bytes),
        any::<String>().prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ravan_answers_always_classify(status in 100u16..600, body in bodies()) {
        // Either is fine; what matters is an answer, not a panic.
        let _ = classify(status, &body);
        let _ = classify_info(status, &body);
        if status != 200 {
            prop_assert!(classify(status, &body).is_err());
        }
    }

    #[test]
    fn retry_after_is_bounded(value in any::<String>(), secs in any::<f64>()) {
        let now = chrono::Utc::now();
        for v in [value, secs.to_string()] {
            if let Some(wait) = retry_after(&v, now) {
                prop_assert!(wait <= MAX_THROTTLE_WAIT);
            }
        }
    }

    #[test]
    fn webhook_answers_always_classify_with_bounded_waits(
        status in 100u16..600,
        header in proptest::option::of(any::<f64>()),
        body in any::<String>(),
    ) {
        for platform in [Platform::Slack, Platform::Discord] {
            if let Err(ravan_watch::notify::DeliveryError::RateLimited(wait)) =
                classify_webhook(platform, status, header, &body)
            {
                prop_assert!(wait <= Duration::from_secs(300));
            }
        }
    }

    #[test]
    fn api_bodies_and_values_never_panic(body in bodies(), raw in any::<String>()) {
        let allowed = AllowedHosts::parse(DEFAULT_ALLOWED_HOSTS).unwrap();
        if let Ok(create) = serde_json::from_slice::<CreateAgent>(&body) {
            let _ = create.parse(&allowed);
        }
        if let Ok(update) = serde_json::from_slice::<UpdateAgent>(&body) {
            let _ = update.parse(&allowed);
        }
        let _ = AgentName::parse(&raw);
        let _ = WebhookUrl::parse("slack_webhook_url", &raw, &allowed);
        let _ = parse_rfc3339("muted_until", &raw);
    }

    #[test]
    fn every_setting_takes_any_value_without_panicking(value in any::<String>()) {
        for var in [
            "RAVAN_API_TOKEN", "RAVAN_API_BASE_URL", "SLACK_WEBHOOK_URL", "WATCH_AGENT_IDS",
            "WATCH_ALL_AGENTS", "DISCOVERY_INTERVAL", "CHECK_ORG_LINKED", "POLL_SCHEDULE",
            "POLL_TIMEOUT", "POLL_CONCURRENCY", "FAILURE_THRESHOLD", "SUCCESS_THRESHOLD",
            "REMINDER_INTERVAL", "LISTEN_ADDR", "DATABASE_URL", "OUTBOX_RETENTION",
            "WEBHOOK_ALLOWED_HOSTS", "LOG_FORMAT", "ADMIN_TOKEN",
        ] {
            if let Err(e) = Config::from_pairs([(var, value.as_str())]) {
                prop_assert_eq!(e.var, var, "the error names the variable");
            }
        }
    }
}
