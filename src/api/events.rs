//! `GET /events` and `GET /agents/{agent_id}/events`: the event log, newest first, a page at a
//! time.
//!
//! The cursor is the id of the last event of a page: the next page is every event committed
//! before it. Ids only grow, so a cursor stays valid when its event is deleted by retention in
//! between, and events committed while a client pages never shift the pages it has not read
//! yet. Query parameters are checked like bodies: an unknown one, or a value that does not
//! parse, is a 400 naming it.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::error::{AgentIdPath, ApiError, ErrorBody};
use crate::domain::AgentId;
use crate::notify::signed::SignedEvent;
use crate::store::{Event, EventDelivery, EventQuery, EventsAbout};

/// Events per page when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most events one page holds.
pub const MAX_LIMIT: u32 = 500;
/// The most digits a `before` may have: the document states it (`maxLength`, beside the
/// pattern `^[0-9]+$`), and every value it admits is accepted, those above the largest id
/// included (they mean "from the newest").
pub const MAX_BEFORE_DIGITS: usize = 20;

/// `GET /events` and `GET /agents/{agent_id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventJson>,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    #[schema(required = true, example = "1234")]
    pub next: Option<String>,
}

/// One alert the service decided, and what each destination did with it: the event a signed
/// webhook receives (the same type, so the two cannot drift) and its `deliveries`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventJson {
    #[serde(flatten)]
    pub event: SignedEvent,
    /// One per destination the alert went to; empty when it had none (no webhook set).
    pub deliveries: Vec<DeliveryJson>,
}

/// One destination's part of an event.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeliveryJson {
    /// `slack`, `discord` or `teams`.
    #[schema(example = "slack")]
    pub platform: String,
    /// The webhook URL, its secret part masked.
    #[schema(example = "https://hooks.slack.com/services/T0/B0/***")]
    pub webhook: String,
    /// `pending`, `delivered` or `failed`.
    #[schema(example = "delivered")]
    pub outcome: &'static str,
    /// When it was delivered or given up on; `null` while pending.
    #[schema(required = true)]
    pub at: Option<DateTime<Utc>>,
    /// Why it failed, or (while pending) why the last attempt did.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// The query of `GET /events`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Only this agent's events, from whenever it was watched (also after it was removed).
    #[param(value_type = Option<String>, format = Uuid)]
    agent_id: Option<String>,
    /// Events per page, 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The `next` of the previous page: only events older than it. Digits, at most 20.
    #[param(value_type = Option<String>, pattern = "^[0-9]+$", max_length = 20)]
    before: Option<String>,
}

/// The query of `GET /agents/{agent_id}/events`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AgentEventsParams {
    /// Events per page, 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The `next` of the previous page: only events older than it. Digits, at most 20.
    #[param(value_type = Option<String>, pattern = "^[0-9]+$", max_length = 20)]
    before: Option<String>,
}

/// The event log, newest first.
#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    params(EventsParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "A page of events, newest first", body = EventPage),
        (status = 400, description = "A bad `limit`, `before` or `agent_id`, or an unknown parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn list_events(
    State(state): State<ApiState>,
    query: Result<Query<EventsParams>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let Query(p) = query.map_err(bad_query)?;
    let (limit, before) = (parse_limit(p.limit)?, parse_before(p.before)?);
    let about = match p.agent_id {
        None => EventsAbout::All,
        Some(raw) => EventsAbout::Agent(
            raw.parse::<AgentId>()
                .map_err(|_| ApiError::invalid_field("agent_id", "must be a UUID"))?,
        ),
    };
    fetch(&state, about, limit, before).await
}

/// One watched agent's events since it was last added, newest first.
#[utoipa::path(
    get,
    path = "/agents/{agent_id}/events",
    tag = "agents",
    params(("agent_id" = String, Path, format = Uuid), AgentEventsParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "A page of the agent's events, newest first", body = EventPage),
        (status = 400, description = "A bad agent id, `limit` or `before`, or an unknown parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "The agent is not watched (its past events stay in `/events?agent_id=`)", body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn agent_events(
    State(state): State<ApiState>,
    AgentIdPath(id): AgentIdPath,
    query: Result<Query<AgentEventsParams>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let Query(p) = query.map_err(bad_query)?;
    let (limit, before) = (parse_limit(p.limit)?, parse_before(p.before)?);
    if state.store.agent(id).await?.is_none() {
        return Err(ApiError::agent_not_found(id));
    }
    fetch(&state, EventsAbout::Watched(id), limit, before).await
}

/// One page: one event more than asked is read, to know whether another page follows.
async fn fetch(
    state: &ApiState,
    about: EventsAbout,
    limit: u32,
    before: Option<i64>,
) -> Result<Json<EventPage>, ApiError> {
    let mut events = state
        .store
        .events(&EventQuery {
            about,
            before,
            limit: limit + 1,
        })
        .await?;
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next = more
        .then(|| events.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(EventPage {
        events: events.iter().map(EventJson::from).collect(),
        next,
    }))
}

fn bad_query(rejection: QueryRejection) -> ApiError {
    use std::error::Error as _;
    let why = rejection
        .source()
        .map_or_else(|| rejection.body_text(), |s| s.to_string());
    ApiError::invalid(format!("invalid query: {why}"))
}

fn parse_limit(raw: Option<String>) -> Result<u32, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "limit",
                format!("must be a whole number from 1 to {MAX_LIMIT}"),
            )
        })
}

/// Exactly what the document admits: 1 to [`MAX_BEFORE_DIGITS`] ASCII digits (no sign, no
/// space). A value above every id (beyond `i64`, too) lists from the newest; `0` is before
/// every event: an empty page.
fn parse_before(raw: Option<String>) -> Result<Option<i64>, ApiError> {
    raw.map(|raw| {
        let digits = !raw.is_empty()
            && raw.len() <= MAX_BEFORE_DIGITS
            && raw.bytes().all(|b| b.is_ascii_digit());
        // 20 digits always fit a u128; above i64::MAX is "after every id" all the same.
        digits
            .then(|| raw.parse::<u128>().ok())
            .flatten()
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "before",
                    format!(
                        "must be the `next` of an earlier page (digits, at most {MAX_BEFORE_DIGITS})"
                    ),
                )
            })
    })
    .transpose()
}

impl From<&Event> for EventJson {
    fn from(e: &Event) -> Self {
        Self {
            event: SignedEvent::from(e),
            deliveries: e.deliveries.iter().map(DeliveryJson::from).collect(),
        }
    }
}

impl From<&EventDelivery> for DeliveryJson {
    fn from(d: &EventDelivery) -> Self {
        Self {
            platform: d.platform.to_string(),
            webhook: d.webhook.clone(),
            outcome: d.outcome.as_str(),
            at: d.at,
            error: d.error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_are_checked() {
        assert_eq!(parse_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(parse_limit(Some("1".into())).unwrap(), 1);
        assert_eq!(parse_limit(Some("500".into())).unwrap(), 500);
        for bad in ["0", "501", "-1", "ten", "", "1.5", "99999999999"] {
            let e = parse_limit(Some(bad.into())).unwrap_err();
            assert!(e.message().starts_with("limit:"), "{bad}: {}", e.message());
        }
        assert_eq!(parse_before(None).unwrap(), None);
        assert_eq!(parse_before(Some("17".into())).unwrap(), Some(17));
        assert_eq!(parse_before(Some("0017".into())).unwrap(), Some(17));
        assert_eq!(parse_before(Some("0".into())).unwrap(), Some(0));
        for above in [
            "9223372036854775807",
            "9223372036854775808",
            &"9".repeat(20),
        ] {
            assert_eq!(parse_before(Some(above.into())).unwrap(), Some(i64::MAX));
        }
        for bad in ["-3", "+3", " 3", "abc", "", "1.5", &"1".repeat(21)] {
            let e = parse_before(Some(bad.into())).unwrap_err();
            assert!(e.message().starts_with("before:"), "{bad}: {}", e.message());
        }
    }
}
