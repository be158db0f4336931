//! `GET /integrations`: the organisation-level checks (`calcom_org`, `ghl`) as last seen, in
//! the contract's shape. An integration never checked shows with nulls, so a client always
//! finds both names.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use crate::domain::alert::IntegrationName;
use crate::tracker::IntegrationState;

/// Both integrations.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList {
    pub integrations: Vec<IntegrationJson>,
}

/// One organisation-level integration as last checked.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub struct IntegrationJson {
    /// `calcom_org` (the organisation's own Cal.com connection) or `ghl` (GoHighLevel).
    #[schema(example = "calcom_org")]
    pub name: &'static str,
    /// The raw word: `active`, `not_connected` … for Cal.com; `connected`, `token_invalid`,
    /// `not_connected` for GoHighLevel; `null` before the first check that answered.
    #[schema(required = true, example = "active")]
    pub status: Option<String>,
    #[schema(required = true)]
    pub healthy: Option<bool>,
    /// Since when it has had that health.
    #[schema(required = true)]
    pub since: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub last_checked_at: Option<DateTime<Utc>>,
    /// Ravan's error or message about it, or why the last check failed.
    #[schema(required = true)]
    pub detail: Option<String>,
    /// The Cal.com OAuth token's expiry, when Ravan reports it.
    #[schema(required = true)]
    pub token_expires: Option<DateTime<Utc>>,
}

impl IntegrationJson {
    fn new(name: IntegrationName, s: Option<&IntegrationState>) -> Self {
        let s = s.cloned().unwrap_or_default();
        Self {
            name: name.as_str(),
            status: s.status,
            healthy: s.healthy,
            since: s.since,
            last_checked_at: s.last_checked_at,
            detail: s.last_error.or(s.detail),
            token_expires: s.token_expires,
        }
    }
}

/// The organisation-level checks.
#[utoipa::path(
    get,
    path = "/integrations",
    tag = "integrations",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Both integrations as last checked", body = IntegrationList),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn list_integrations(
    State(state): State<ApiState>,
) -> Result<Json<IntegrationList>, ApiError> {
    let stored = state.store.integrations().await?;
    let integrations = IntegrationName::ALL
        .into_iter()
        .map(|name| {
            let s = stored.iter().find(|(n, _)| *n == name).map(|(_, s)| s);
            IntegrationJson::new(name, s)
        })
        .collect();
    Ok(Json(IntegrationList { integrations }))
}
