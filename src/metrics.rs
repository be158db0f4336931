//! Prometheus metrics through the `metrics` facade. The recorder is process-wide (the facade
//! has one global recorder), installed on first use; `/metrics` renders it.
//!
//! Names follow Prometheus conventions: `ravan_watch_` prefix, `_total` on counters.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const POLLS: &str = "ravan_watch_polls_total";
pub const ALERTS: &str = "ravan_watch_alerts_total";
pub const DELIVERIES: &str = "ravan_watch_deliveries_total";
pub const OUTBOX_PENDING: &str = "ravan_watch_outbox_pending";
pub const WEBHOOKS_DEAD: &str = "ravan_watch_webhooks_dead";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder the first time.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
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
            DELIVERIES,
            "Webhook delivery attempts, by platform and outcome."
        );
        metrics::describe_gauge!(OUTBOX_PENDING, "Alerts in the outbox not yet delivered.");
        metrics::describe_gauge!(
            WEBHOOKS_DEAD,
            "Webhooks that answered gone (no_service, 404 …) and get nothing more."
        );
        handle
    })
}

/// The current metrics in Prometheus text format.
pub fn render() -> String {
    handle().render()
}
