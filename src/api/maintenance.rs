//! `/maintenance`: add, list and remove maintenance windows (planned work during which agents'
//! alerts are held back; the rules are in [`crate::domain::maintenance`] and
//! [`crate::tracker::Hold`]). Windows are not edited: remove one and add another.
//!
//! A body is deserialized strictly (unknown fields refused, a wrong JSON type names its field),
//! then parsed once into a [`MaintenanceWindow`], whose rules name the field they are about.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::error::{ApiError, ApiJson, ErrorBody};
use crate::domain::maintenance::{Timing, WindowRequest, format_duration};
use crate::domain::{MaintenanceWindow, WindowId};

/// `POST /maintenance`: either `schedule` with `duration` (recurring) or `start_at` and
/// `end_at` (one-off).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWindow {
    /// Trimmed, 1 to 200 characters. Required (read as optional, so that leaving it out is a
    /// 400 naming it like every other broken rule).
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 200, min_length = 1, example = "Cal.com migration")]
    pub name: Option<String>,
    /// Cron, 5 fields (minute hour day-of-month month day-of-week), read in `timezone`; when
    /// both days are restricted, both must match.
    #[serde(default)]
    #[schema(example = "0 2 * * SUN")]
    pub schedule: Option<String>,
    /// How long each occurrence lasts, with `schedule`: whole seconds, more than 0, at most 7d.
    #[serde(default)]
    #[schema(example = "2h")]
    pub duration: Option<String>,
    /// RFC 3339, for a one-off window (with `end_at`).
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub start_at: Option<String>,
    /// RFC 3339, after `start_at` and at most 31 days after it; the window ends just before.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub end_at: Option<String>,
    /// IANA zone the schedule is read in; default the `TIMEZONE` setting.
    #[serde(default)]
    #[schema(example = "Europe/Berlin")]
    pub timezone: Option<String>,
    /// The agents it covers (1 to 1,000 UUIDs, watched or not yet); `null` or absent: every
    /// agent.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub agent_ids: Option<Vec<String>>,
}

/// A maintenance window, with whether it is open now and when it next opens.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Window {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    #[schema(required = true, example = "0 2 * * SUN")]
    pub schedule: Option<String>,
    #[schema(required = true, example = "2h")]
    pub duration: Option<String>,
    #[schema(required = true)]
    pub start_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub end_at: Option<DateTime<Utc>>,
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
    /// `null`: every agent.
    #[schema(required = true)]
    pub agent_ids: Option<Vec<String>>,
    /// Open now.
    pub active: bool,
    /// The next start after now; `null` for a one-off window that has started.
    #[schema(required = true)]
    pub next_start: Option<DateTime<Utc>>,
}

impl Window {
    pub fn new(w: &MaintenanceWindow, now: DateTime<Utc>) -> Self {
        let (schedule, duration, start_at, end_at) = match &w.timing {
            Timing::Recurring { schedule, duration } => (
                Some(schedule.as_str().to_owned()),
                Some(format_duration(*duration)),
                None,
                None,
            ),
            Timing::OneOff { start_at, end_at } => (None, None, Some(*start_at), Some(*end_at)),
        };
        Self {
            id: w.id.to_string(),
            name: w.name.clone(),
            schedule,
            duration,
            start_at,
            end_at,
            timezone: w.timezone.name().to_owned(),
            agent_ids: w
                .agent_ids
                .as_ref()
                .map(|ids| ids.iter().map(ToString::to_string).collect()),
            active: w.active(now),
            next_start: w.next_start(now),
        }
    }
}

/// `GET /maintenance`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WindowList {
    pub windows: Vec<Window>,
}

impl CreateWindow {
    fn parse(self, state: &ApiState, now: DateTime<Utc>) -> Result<MaintenanceWindow, ApiError> {
        let request = WindowRequest {
            name: self.name,
            schedule: self.schedule,
            duration: self.duration,
            start_at: self.start_at,
            end_at: self.end_at,
            timezone: self.timezone,
            agent_ids: self.agent_ids,
        };
        request
            .parse(WindowId::new_v4(), state.zone.tz(), now)
            .map_err(|e| ApiError::invalid_field(e.field, e.rule))
    }
}

/// A window's id from the path; anything but a UUID (one that is not even text too) names no
/// window.
fn window_id(raw: Result<Path<String>, PathRejection>) -> Result<WindowId, ApiError> {
    raw.ok()
        .and_then(|Path(raw)| raw.parse().ok())
        .ok_or_else(|| ApiError::not_found("no such maintenance window"))
}

/// Add a maintenance window.
#[utoipa::path(
    post,
    path = "/maintenance",
    tag = "maintenance",
    request_body = CreateWindow,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The window, with its `Location`", body = Window,
            headers(("Location" = String, description = "/maintenance/{id}"))),
        (status = 400, description = "Bad body: the message names the field", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "Body is not application/json", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "The database stayed busy; retry after `Retry-After` seconds (code `internal`)", body = ErrorBody),
    )
)]
pub async fn create_window(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<CreateWindow>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let window = body.parse(&state, now)?;
    state.store.insert_window(&window).await?;
    tracing::info!(id = %window.id, name = %window.name, "maintenance window added over the API");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/maintenance/{}", window.id))],
        Json(Window::new(&window, now)),
    )
        .into_response())
}

/// Every maintenance window, oldest first; ended one-off windows too, until removed.
#[utoipa::path(
    get,
    path = "/maintenance",
    tag = "maintenance",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The windows", body = WindowList),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "The database stayed busy; retry after `Retry-After` seconds (code `internal`)", body = ErrorBody),
    )
)]
pub async fn list_windows(State(state): State<ApiState>) -> Result<Json<WindowList>, ApiError> {
    let now = Utc::now();
    let windows = state.store.maintenance_windows().await?;
    Ok(Json(WindowList {
        windows: windows.iter().map(|w| Window::new(w, now)).collect(),
    }))
}

/// Remove a maintenance window: from the next poll cycle on it holds nothing back.
#[utoipa::path(
    delete,
    path = "/maintenance/{id}",
    tag = "maintenance",
    params(("id" = uuid::Uuid, Path, description = "The window's id")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "No such window", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
        (status = 503, description = "The database stayed busy; retry after `Retry-After` seconds (code `internal`)", body = ErrorBody),
    )
)]
pub async fn delete_window(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = window_id(id)?;
    if state.store.delete_window(id).await? {
        tracing::info!(%id, "maintenance window removed over the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such maintenance window"))
    }
}
