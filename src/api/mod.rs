//! The management HTTP API (axum): `/agents` to manage watched agents, `/maintenance` for
//! maintenance windows and `/events` to read what happened to them (bearer token), the status
//! page `/` (basic auth), and `/healthz`, `/readyz`, `/metrics`, `/openapi.json` (no auth).
//! `serve` runs `axum::serve(listener, api::router(state))` with the peers' addresses
//! (`into_make_service_with_connect_info`), which the failed-login log names.
//!
//! Choices where the contract is silent:
//! - Every error, including axum's own rejections, unknown routes (404 `not_found`) and wrong
//!   methods (405, code `invalid_request`, with `Allow`), is the envelope
//!   `{"error": {"code", "message"}}` ([`error::ApiError`]). Messages name the field and the rule
//!   (`name: must be 1 to 100 characters ...`); a 500 says only "internal error" and the detail
//!   goes to the log.
//! - Bodies: JSON objects only (`application/json` or `application/*+json`), at most 64 KiB,
//!   unknown fields refused. `POST` takes no `muted_until` (the contract lists the POST fields;
//!   set it with `PATCH`). `muted` may be absent but not `null`.
//! - `name`: trimmed, 1 to 100 characters (Unicode scalar values) after trimming, no control
//!   characters. An empty or blank name is a 400, not "no name": `null` (or leaving it out)
//!   means no name, and `null` in a PATCH removes it.
//! - Webhook URLs: `https`, or `http` to a loopback host (127.0.0.0/8, `::1`, `localhost`); no
//!   user name or password in them; host (or host:port) in `WEBHOOK_ALLOWED_HOSTS`. Errors may
//!   name the host, never the path.
//! - `muted_until`: RFC 3339 with any offset, stored and shown in UTC; a past time is accepted.
//! - `/readyz` answers `{"status": "ready"|"unavailable", "role": "leader"|"standby", "checks":
//!   {"database": "ok"|"unavailable", "scheduler": "running"|"not_running", "delivery":
//!   "running"|"failing"}}` with 200 or 503 (not the error envelope: 503 has no code in the
//!   contract's list). The database has 2 s to answer. A standby is ready: it serves the API.
//! - `/metrics` still renders when the outbox cannot be counted (the gauge keeps its last value).
//! - The status page answers 401 with the JSON envelope and `WWW-Authenticate: Basic`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;

pub mod agents;
pub mod auth;
pub mod error;
pub mod events;
pub mod health;
pub mod integrations;
pub mod maintenance;
pub mod openapi;
pub mod status_page;
pub mod values;

pub use crate::domain::{AllowedHosts, DEFAULT_ALLOWED_HOSTS};

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: crate::store::Store,
    /// `None`: no auth required (serve allows this only on loopback).
    pub admin_token: Option<crate::domain::secret::Secret>,
    /// Hosts a webhook URL given over the API may point at (`WEBHOOK_ALLOWED_HOSTS`).
    pub allowed_hosts: AllowedHosts,
    /// Set true by `serve` once the scheduler runs; /readyz needs it and a database that answers.
    pub scheduler_running: Arc<AtomicBool>,
    /// `SLACK_WEBHOOK_URL` / `DISCORD_WEBHOOK_URL` / `TEAMS_WEBHOOK_URL`: where agents without their own go, so an
    /// agent's `delivery_error` can report a dead default webhook too.
    pub default_webhooks: Vec<crate::domain::Webhook>,
    /// The delivery worker's deaths: `/readyz` and the status page show one that keeps dying.
    pub delivery: crate::supervise::TaskHealth,
    /// Whether this process leads (polls and delivers) or stands by: `/readyz`, `/metrics`.
    pub leadership: crate::leader::Leadership,
    /// `TIMEZONE`: the status pages write times in it (the JSON answers stay in UTC), and a
    /// maintenance window given without a zone is read in it.
    pub zone: crate::domain::Zone,
    /// Whether `WEBHOOK_SECRET` is set: an agent's signed `webhook_url` needs it.
    pub signing: bool,
}

/// The whole API. Request bodies are limited to 64 KiB ([`error::MAX_BODY_BYTES`]).
pub fn router(state: ApiState) -> Router {
    let gate = auth::Gate::new(state.admin_token.clone());
    let agents = Router::new()
        .route(
            "/agents",
            get(agents::list_agents).post(agents::create_agent),
        )
        .route(
            "/agents/{agent_id}",
            get(agents::get_agent)
                .patch(agents::update_agent)
                .delete(agents::delete_agent),
        )
        .route("/agents/{agent_id}/events", get(events::agent_events))
        .route("/events", get(events::list_events))
        .route("/integrations", get(integrations::list_integrations))
        .route(
            "/maintenance",
            get(maintenance::list_windows).post(maintenance::create_window),
        )
        .route(
            "/maintenance/{id}",
            axum::routing::delete(maintenance::delete_window),
        )
        // route_layer: only matched routes need the token, so an unknown path is a 404.
        .route_layer(middleware::from_fn_with_state(
            gate.clone(),
            auth::require_bearer,
        ));
    Router::new()
        .merge(agents)
        .merge(status_page::router(gate))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(error::MAX_BODY_BYTES))
        .with_state(state)
}
