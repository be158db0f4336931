//! The management HTTP API (axum): `/agents` to manage watched agents (bearer token), the status
//! page `/` (basic auth), and `/healthz`, `/readyz`, `/metrics`, `/openapi.json` (no auth).
//!
//! Every error, including axum's own rejections, unknown routes and wrong methods, is the
//! envelope `{"error": {"code", "message"}}` ([`error::ApiError`]). `serve` runs
//! `axum::serve(listener, api::router(state))`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;

pub mod agents;
pub mod auth;
pub mod error;
pub mod health;
pub mod openapi;
pub mod status_page;
pub mod values;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: crate::store::Store,
    /// `None`: no auth required (serve allows this only on loopback).
    pub admin_token: Option<crate::secret::Secret>,
    /// Hosts a webhook URL given over the API may point at (`WEBHOOK_ALLOWED_HOSTS`).
    pub allowed_hosts: crate::config::AllowedHosts,
    /// Set true by `serve` once the scheduler runs; /readyz needs it and a database that answers.
    pub scheduler_running: Arc<AtomicBool>,
}

/// The whole API. Request bodies are limited to 64 KiB ([`error::MAX_BODY_BYTES`]).
pub fn router(state: ApiState) -> Router {
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
        // route_layer: only matched routes need the token, so an unknown path is a 404.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_bearer,
        ));
    Router::new()
        .merge(agents)
        .route("/", get(status_page::status_page))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(error::MAX_BODY_BYTES))
        .with_state(state)
}
