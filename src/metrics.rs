//! Prometheus metrics through the `metrics` facade. The recorder is process-wide (the facade
//! has one global recorder), installed on first use; `/metrics` renders it.
//!
//! Names follow Prometheus conventions: `ravan_watch_` prefix, `_total` on counters.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const POLLS: &str = "ravan_watch_polls_total";
pub const ALERTS: &str = "ravan_watch_alerts_total";
pub const DELIVERIES: &str = "ravan_watch_deliveries_total";
pub const OUTBOX_PENDING: &str = "ravan_watch_outbox_pending";
pub const WEBHOOKS_DEAD: &str = "ravan_watch_webhooks_dead";
pub const POLL_DURATION: &str = "ravan_watch_poll_duration_seconds";
pub const AGENTS: &str = "ravan_watch_agents";
pub const DATABASE_BYTES: &str = "ravan_watch_database_bytes";
pub const OUTBOX_PRUNED: &str = "ravan_watch_outbox_pruned_total";
pub const EVENTS_PRUNED: &str = "ravan_watch_events_pruned_total";
pub const CYCLE_OVERRUNS: &str = "ravan_watch_cycle_overruns_total";
pub const DISCOVERIES: &str = "ravan_watch_discoveries_total";
pub const LEADER: &str = "ravan_watch_leader";
pub const LAST_GOOD_CYCLE: &str = "ravan_watch_last_successful_cycle_timestamp_seconds";
pub const INTEGRATION_HEALTHY: &str = "ravan_watch_integration_healthy";
pub const CONFIRM_POLLS: &str = "ravan_watch_confirm_polls_total";

/// Poll latency buckets, seconds: a healthy API answers in tens of milliseconds, the default
/// timeout is 10 s.
const POLL_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder the first time.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(POLL_DURATION.to_owned()), POLL_BUCKETS)
            .expect("buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may exist when the library is embedded; then ours only renders
        // what it has, which is nothing, rather than failing the service.
        let _ = metrics::set_global_recorder(recorder);
        metrics::describe_counter!(
            POLLS,
            "Polls of the Ravan API, by outcome (observation or failure kind)."
        );
        metrics::describe_counter!(ALERTS, "Alerts produced, by kind.");
        metrics::describe_counter!(
            CONFIRM_POLLS,
            "Polls made before the next tick to confirm an agent's changed answer (CONFIRM_INTERVAL)."
        );
        metrics::describe_gauge!(
            INTEGRATION_HEALTHY,
            "The organisation-level checks, by integration: 1 healthy, 0 unhealthy (absent before the first answer)."
        );
        metrics::describe_gauge!(
            DATABASE_BYTES,
            "The database's size in bytes."
        );
        metrics::describe_counter!(
            OUTBOX_PRUNED,
            "Delivered and failed outbox entries deleted after OUTBOX_RETENTION."
        );
        metrics::describe_counter!(
            EVENTS_PRUNED,
            "Events deleted after HISTORY_RETENTION."
        );
        metrics::describe_counter!(
            CYCLE_OVERRUNS,
            "Poll cycles that ran past the next tick of POLL_SCHEDULE (that tick was skipped)."
        );
        metrics::describe_counter!(
            DISCOVERIES,
            "Listings of the organisation's agents (WATCH_ALL_AGENTS), by outcome."
        );
        metrics::describe_counter!(
            DELIVERIES,
            "Webhook delivery attempts, by platform and outcome."
        );
        metrics::describe_gauge!(
            LEADER,
            "1 while this process holds the leader lease (polls and delivers), 0 while it stands by."
        );
        metrics::describe_gauge!(OUTBOX_PENDING, "Alerts in the outbox not yet delivered.");
        metrics::describe_gauge!(
            WEBHOOKS_DEAD,
            "Webhooks that answered gone (no_service, 404 …) and get nothing more."
        );
        handle
    })
}

/// Folds the samples recorded since the last call (poll latencies) into their histogram's
/// buckets. The recorder keeps each sample until then (it is built without the exporter's
/// upkeep task), so a service nobody scrapes would grow with every poll without this: the
/// monitor calls it after every cycle.
pub fn upkeep() {
    handle().run_upkeep();
}

/// The current metrics in Prometheus text format.
pub fn render() -> String {
    handle().render()
}
