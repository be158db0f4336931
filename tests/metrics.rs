//! `/metrics` from a running service: it parses as Prometheus text, and its counters move as
//! agents are polled and alerts are sent. Alone in its test binary, because the metrics
//! recorder is process-wide.

mod common;

use std::time::Duration;

use common::{AGENT_A, FakeRavan, TestSettings, wait_until};
use ravan_watch::store::Fence;
use wiremock::ResponseTemplate;

const LIMIT: Duration = Duration::from_secs(20);

async fn scrape(api: &str) -> prometheus_parse::Scrape {
    let text = reqwest::get(format!("{api}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines)
        .unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{text}"))
}

/// The value of `name` with the given labels (0 when absent); histograms give their count.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_as_alerts_are_sent() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let slack = common::webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
    let (_db, database) = common::temp_database();
    let hook = format!("{}/services/T0/B0/secret", slack.uri());
    let service = TestSettings::new(&ravan.uri())
        .agents(AGENT_A)
        .every_second()
        .failure(1)
        .slack(&hook)
        .database(&database)
        .any_port()
        .start()
        .await;
    let api = format!("http://{}", service.addr());

    wait_until(LIMIT, "a first poll", || async { ravan.polls().await >= 1 }).await;
    wait_until(LIMIT, "the cycle's metrics", || async {
        value(
            &scrape(&api).await,
            "ravan_watch_agents",
            &[("health", "healthy")],
        ) == 1.0
    })
    .await;
    wait_until(LIMIT, "the organisation checks' gauges", || async {
        let now = scrape(&api).await;
        ["calcom_org", "ghl"].iter().all(|i| {
            value(
                &now,
                "ravan_watch_integration_healthy",
                &[("integration", i)],
            ) == 1.0
        })
    })
    .await;
    let before = scrape(&api).await;
    assert!(
        value(
            &before,
            "ravan_watch_polls_total",
            &[("outcome", "observation")]
        ) >= 1.0
    );
    assert!(
        value(&before, "ravan_watch_poll_duration_seconds", &[]) >= 1.0,
        "latency histogram"
    );
    assert!(
        value(
            &before,
            "ravan_watch_last_successful_cycle_timestamp_seconds",
            &[]
        ) > 1.7e9
    );
    assert_eq!(
        value(&before, "ravan_watch_alerts_total", &[("kind", "down")]),
        0.0
    );

    ravan.set_status(AGENT_A, "errored", Some("revoked"));
    wait_until(LIMIT, "the alert delivered", || async {
        !slack
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    })
    .await;
    wait_until(LIMIT, "the delivery counted", || async {
        value(
            &scrape(&api).await,
            "ravan_watch_deliveries_total",
            &[("platform", "slack"), ("outcome", "delivered")],
        ) == 1.0
    })
    .await;
    let after = scrape(&api).await;
    assert_eq!(
        value(&after, "ravan_watch_alerts_total", &[("kind", "down")]),
        1.0
    );
    assert_eq!(
        value(&after, "ravan_watch_agents", &[("health", "unhealthy")]),
        1.0
    );
    assert_eq!(value(&after, "ravan_watch_outbox_pending", &[]), 0.0);
    assert!(
        value(
            &after,
            "ravan_watch_polls_total",
            &[("outcome", "observation")]
        ) > value(
            &before,
            "ravan_watch_polls_total",
            &[("outcome", "observation")]
        )
    );
    service.stop().await;
}

/// At start the service deletes finished deliveries older than `OUTBOX_RETENTION` (pending ones
/// stay), counts them, and `/metrics` shows the database's size (issue 12, item 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_finished_deliveries_are_deleted_and_the_database_size_is_shown() {
    use common::alerts::{monitor_alert, webhook};
    use ravan_watch::domain::Platform;
    use ravan_watch::domain::alert::{Alert, MonitorAlertKind};
    use ravan_watch::store::Store;
    use ravan_watch::tracker::MonitorState;

    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let (_db, database) = common::temp_database();
    let long_ago = chrono::Utc::now() - chrono::Duration::days(30);
    {
        let store = Store::open(&database).await.unwrap();
        let hook = webhook(Platform::Slack, "https://hooks.slack.com/services/T/B/old");
        let alert = Alert::Monitor(monitor_alert(MonitorAlertKind::Down, "old", long_ago));
        for _ in 0..3 {
            store
                .commit_cycle(
                    Fence::Unchecked,
                    None,
                    &[],
                    &MonitorState::default(),
                    &[(alert.clone(), vec![hook.clone()])],
                    long_ago,
                )
                .await
                .unwrap();
        }
        let ids: Vec<i64> = store.outbox().await.unwrap().iter().map(|e| e.id).collect();
        store
            .mark_delivered(Fence::Unchecked, &ids[..1], long_ago)
            .await
            .unwrap();
        store
            .mark_failed(Fence::Unchecked, &ids[1..2], "gone", long_ago)
            .await
            .unwrap();
        store.close().await;
    }
    let service = TestSettings::new(&ravan.uri())
        .agents(AGENT_A)
        .never_polling()
        .database(&database)
        .any_port()
        .set("OUTBOX_RETENTION", "7d")
        .start()
        .await;
    let api = format!("http://{}", service.addr());
    let store = Store::open(&database).await.unwrap();
    wait_until(LIMIT, "the old finished deliveries to go", || async {
        store.outbox().await.unwrap().len() == 1
    })
    .await;
    // The one that was pending stays (the worker gives it up, past its 24 h, but it finished
    // only now, so its retention starts now).
    let left = store.outbox().await.unwrap();
    assert_eq!(left[0].id, 3, "{left:?}");
    let scrape = scrape(&api).await;
    assert!(value(&scrape, "ravan_watch_database_bytes", &[]) > 4096.0);
    assert!(value(&scrape, "ravan_watch_outbox_pruned_total", &[]) >= 2.0);
    service.stop().await;
}
