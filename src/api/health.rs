//! Probes and metrics, without authentication: `/healthz` (the process answers), `/readyz` (the
//! database answers and the scheduler runs; and whether this process leads or stands by),
//! `/metrics` (Prometheus text).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use crate::leader::Role;

/// How long `/readyz` waits for the database before calling it unavailable.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The Prometheus text format's content type.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// `GET /healthz`: `{"status": "ok"}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// `GET /readyz`: the verdict, this process's role, and each check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    pub status: Ready,
    pub role: RoleName,
    pub checks: ReadinessChecks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    Ready,
    Unavailable,
}

/// `leader`: this process holds the lease, and polls and delivers; `standby`: another does,
/// and this one serves the API (and takes over if the leader goes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Leader,
    Standby,
}

impl From<Role> for RoleName {
    fn from(role: Role) -> Self {
        match role {
            Role::Leader => RoleName::Leader,
            Role::Standby => RoleName::Standby,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadinessChecks {
    pub database: DatabaseCheck,
    pub scheduler: SchedulerCheck,
    pub delivery: DeliveryCheck,
}

/// The delivery worker: `failing` when it panicked 3 times within 10 minutes (it is restarted
/// each time, but alerts are not going out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryCheck {
    Running,
    Failing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseCheck {
    Ok,
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerCheck {
    Running,
    NotRunning,
}

/// Liveness: the process answers HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// Readiness: the database answers and the poll scheduler runs. A standby is ready too: it
/// serves the API.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; `checks` says which part", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, Json<Readiness>) {
    let database = match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => DatabaseCheck::Ok,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            DatabaseCheck::Unavailable
        }
        Err(_) => {
            tracing::warn!("readiness: the database did not answer within {PING_TIMEOUT:?}");
            DatabaseCheck::Unavailable
        }
    };
    let scheduler = if state.scheduler_running.load(Ordering::Acquire) {
        SchedulerCheck::Running
    } else {
        SchedulerCheck::NotRunning
    };
    let delivery = if state.delivery.failing(chrono::Utc::now()) {
        DeliveryCheck::Failing
    } else {
        DeliveryCheck::Running
    };
    let ready = database == DatabaseCheck::Ok
        && scheduler == SchedulerCheck::Running
        && delivery == DeliveryCheck::Running;
    let (code, status) = if ready {
        (StatusCode::OK, Ready::Ready)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Ready::Unavailable)
    };
    (
        code,
        Json(Readiness {
            status,
            role: state.leadership.role().into(),
            checks: ReadinessChecks {
                database,
                scheduler,
                delivery,
            },
        }),
    )
}

/// The process's metrics in Prometheus text format; the outbox, dead-webhook and size gauges
/// are read from the database first (when it does not answer, the last values stay).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String,
        content_type = "text/plain; version=0.0.4"))
)]
pub async fn metrics(State(state): State<ApiState>) -> Response {
    // Installs the recorder first, so the gauge below is recorded rather than dropped.
    crate::metrics::handle();
    let leading = state.leadership.role() == Role::Leader;
    ::metrics::gauge!(crate::metrics::LEADER).set(if leading { 1.0 } else { 0.0 });
    // A database that does not answer must not hold the scrape past Prometheus's timeout:
    // the gauges keep their last values.
    let read = futures::future::join3(
        state.store.outbox_pending(),
        state.store.database_bytes(),
        state.store.dead_webhooks(),
    );
    match tokio::time::timeout(PING_TIMEOUT, read).await {
        Ok((pending, bytes, dead)) => {
            match dead {
                Ok(dead) => ::metrics::gauge!(crate::metrics::WEBHOOKS_DEAD).set(dead.len() as f64),
                Err(e) => tracing::warn!(error = %e, "metrics: cannot count the dead webhooks"),
            }
            match pending {
                Ok(n) => ::metrics::gauge!(crate::metrics::OUTBOX_PENDING).set(n as f64),
                Err(e) => tracing::warn!(error = %e, "metrics: cannot count the outbox"),
            }
            match bytes {
                Ok(n) => ::metrics::gauge!(crate::metrics::DATABASE_BYTES).set(n as f64),
                Err(e) => tracing::warn!(error = %e, "metrics: cannot size the database"),
            }
        }
        Err(_) => tracing::warn!(
            "metrics: the database did not answer within {PING_TIMEOUT:?}; its gauges keep their last values"
        ),
    }
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        crate::metrics::render(),
    )
        .into_response()
}
