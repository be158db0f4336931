//! `GET /status/{agent_id}`: one agent's page. What the overview's row cannot hold: every
//! account, the mute, delivery problems, uptime over 30 days too, and the event timeline:
//! each alert the tracker decided about the agent (newest first, [`PAGE`] a page, an "older"
//! link with `?before=<event id>`), with what each destination did with it. The timeline is
//! the agent's as watched now ([`EventsAbout::Watched`]): an agent removed and added again
//! starts afresh. An unknown or malformed id is a 404, like any page that does not exist.

use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::bar::{Bar, percent};
use super::{AgentView, Stamp, connection, filter, html};
use crate::api::ApiState;
use crate::api::agents::{AccountStatus, Agent};
use crate::api::error::{ApiError, ErrorBody};
use crate::domain::history;
use crate::domain::{AgentId, Coverage, EventKind, Source, Zone, muted_at};
use crate::store::{Event, EventQuery, EventsAbout};

/// Events a page of the timeline.
pub const PAGE: usize = 50;

/// One agent's page.
#[utoipa::path(
    get,
    path = "/status/{agent_id}",
    tag = "status page",
    security(("status_page" = [])),
    params(
        ("agent_id" = uuid::Uuid, Path, description = "The agent's UUID"),
        ("before" = Option<i64>, Query,
            description = "Only events older than this event id (the \"older\" link's cursor)"),
    ),
    responses(
        (status = 200, description = "The agent's page", body = String, content_type = "text/html"),
        (status = 400, description = "A bad `before`", body = ErrorBody),
        (status = 401, description = "Sign in: any user name, the admin token as password",
            body = ErrorBody),
        (status = 404, description = "No watched agent has this id (or it is not a UUID)",
            body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn agent_page(
    State(state): State<ApiState>,
    raw: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let id: AgentId = raw
        .ok()
        .and_then(|Path(raw)| raw.parse().ok())
        .ok_or_else(|| ApiError::not_found("no watched agent has this id"))?;
    let before = filter::before(query.as_deref())?;
    let record = state
        .store
        .agent(id)
        .await?
        .ok_or_else(|| ApiError::agent_not_found(id))?;
    let now = Utc::now();
    let dead = state.store.dead_webhooks().await?;
    let intervals = state
        .store
        .agent_health_intervals(&id, now - history::MONTH)
        .await?;
    let windows = state.store.maintenance_windows().await?;
    let view = AgentView {
        agent: Agent::new(&record, &state.default_webhooks, &dead, &intervals, now)
            .in_windows(&Coverage::at(&windows, now)),
        intervals,
    };
    let events = state
        .store
        .events(&EventQuery {
            about: EventsAbout::Watched(id),
            before,
            limit: PAGE as u32 + 1,
        })
        .await?;
    Ok(html(render_agent(&view, &events, before, now, state.zone)))
}

/// The page of `v`, with `events` (newest first; one more than [`PAGE`] means there are
/// older ones) of the page before the event id `before`, as of `now`.
pub fn render_agent(
    v: &AgentView,
    events: &[Event],
    before: Option<i64>,
    now: DateTime<Utc>,
    zone: Zone,
) -> String {
    let a = &v.agent;
    let (_, class, health) = super::Rank::of(a);
    let shown = &events[..events.len().min(PAGE)];
    let muted = muted_at(a.muted, a.muted_until, now);
    let page = AgentPage {
        now: Stamp::new(now, now, zone),
        class,
        health,
        name: a.name.clone(),
        id: a.agent_id.clone(),
        source: match a.source.parse() {
            Ok(Source::Env) => "from WATCH_AGENT_IDS",
            Ok(Source::Api) => "added over the API",
            Ok(Source::Discovered) | Err(_) => "discovered in the organisation",
        },
        status: a.state.status.clone(),
        connected: a.state.connected,
        connection: connection(a),
        missing_since: a.state.missing_since.map(|t| Stamp::new(t, now, zone)),
        since: a.state.since.map(|t| Stamp::new(t, now, zone)),
        last_checked: a.state.last_checked_at.map(|t| Stamp::new(t, now, zone)),
        last_error: a.state.last_error.clone(),
        accounts: a.state.accounts.clone(),
        muted,
        muted_until: a
            .muted_until
            .filter(|_| muted)
            .map(|t| Stamp::new(t, now, zone)),
        in_maintenance: a.in_maintenance,
        delivery_error: a.delivery_error.clone(),
        uptime: [
            ("24 h", percent(a.uptime.day)),
            ("7 d", percent(a.uptime.week)),
            ("30 d", percent(a.uptime.month)),
        ],
        bar: Bar::new(&v.intervals, a.state.last_checked_at, now),
        events: shown.iter().map(|e| EventView::new(e, now, zone)).collect(),
        older: (events.len() > PAGE)
            .then(|| shown.last().map(|e| e.id))
            .flatten(),
        paged: before.is_some(),
    };
    page.render()
        .expect("the page's values are plain strings and numbers, which always format")
}

#[derive(Template)]
#[template(path = "status_agent.html")]
struct AgentPage {
    now: Stamp,
    class: &'static str,
    health: &'static str,
    name: Option<String>,
    id: String,
    source: &'static str,
    status: Option<String>,
    connected: Option<bool>,
    connection: Option<String>,
    missing_since: Option<Stamp>,
    since: Option<Stamp>,
    last_checked: Option<Stamp>,
    last_error: Option<String>,
    accounts: Vec<AccountStatus>,
    muted: bool,
    muted_until: Option<Stamp>,
    /// A maintenance window covers the agent now.
    in_maintenance: bool,
    delivery_error: Option<String>,
    uptime: [(&'static str, String); 3],
    bar: Bar,
    events: Vec<EventView>,
    /// The cursor of the next (older) page, when there is one.
    older: Option<i64>,
    /// Whether this is an older page (so a link to the newest is shown).
    paged: bool,
}

/// One event as a timeline (or the monitor's list) shows it.
pub(super) struct EventView {
    pub at: Stamp,
    /// `u` for bad news, `h` for good.
    pub class: &'static str,
    pub kind: &'static str,
    /// `active → errored`; `None` for the monitor's events.
    pub change: Option<String>,
    pub summary: String,
    pub deliveries: Vec<DeliveryView>,
}

pub(super) struct DeliveryView {
    pub platform: String,
    pub webhook: String,
    /// `pending`, `delivered`, `failed`; also the CSS class.
    pub outcome: &'static str,
    pub at: Option<Stamp>,
    pub error: Option<String>,
}

impl EventView {
    pub fn new(e: &Event, now: DateTime<Utc>, zone: Zone) -> Self {
        let (class, kind) = kind(&e.kind);
        let change = match (&e.from_status, &e.to_status) {
            (None, None) => None,
            (from, to) => Some(format!(
                "{} → {}",
                from.as_deref().unwrap_or("first seen"),
                to.as_deref().unwrap_or("?")
            )),
        };
        Self {
            at: Stamp::new(e.at, now, zone),
            class,
            kind,
            change,
            summary: e.summary.clone(),
            deliveries: e
                .deliveries
                .iter()
                .map(|d| DeliveryView {
                    platform: d.platform.to_string(),
                    webhook: d.webhook.clone(),
                    outcome: d.outcome.as_str(),
                    at: d.at.map(|t| Stamp::new(t, now, zone)),
                    error: d.error.clone(),
                })
                .collect(),
        }
    }
}

/// An event kind ([`crate::domain::Alert::kind_name`]) in words, and whether it is bad
/// (`u`) or good (`h`) news. An unknown kind (from a newer version) reads `other`.
fn kind(name: &str) -> (&'static str, &'static str) {
    let Ok(kind) = name.parse::<EventKind>() else {
        return ("n", "other");
    };
    match kind {
        EventKind::Down => ("u", "down"),
        EventKind::Changed => ("u", "changed"),
        EventKind::Reminder => ("u", "still down"),
        EventKind::Recovered => ("h", "recovered"),
        EventKind::Missing => ("u", "not found at Ravan"),
        EventKind::Found => ("h", "found again"),
        EventKind::MonitorDown => ("u", "polling failed"),
        EventKind::MonitorRecovered => ("h", "polling works again"),
        EventKind::WebhookDead => ("u", "webhook dead"),
        EventKind::IntegrationDown => ("u", "integration down"),
        EventKind::IntegrationRecovered => ("h", "integration recovered"),
        EventKind::TokenExpiring => ("u", "token expiring"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Alert;

    #[test]
    fn every_event_kind_has_words_and_a_colour() {
        for name in Alert::KIND_NAMES {
            let (class, words) = kind(name);
            assert_ne!(words, "other", "{name} has no words");
            assert!(["u", "h"].contains(&class), "{name}: {class}");
        }
        assert_eq!(kind("from_the_future"), ("n", "other"));
    }
}
