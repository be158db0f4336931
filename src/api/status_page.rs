//! `GET /`: the server-rendered status page (askama, `templates/status.html`), behind HTTP basic
//! auth (any user name, the admin token as password). It shows every watched agent as a card,
//! unhealthy ones first, and the monitor's own health; it refreshes itself every 30 s and needs
//! no JavaScript. Every piece of text is HTML-escaped by askama: names come from operators,
//! statuses and errors from the Ravan API.
//!
//! [`render`] is pure (the time is passed in); [`status_page`] only reads the store.

use std::cmp::Ordering;
use std::sync::atomic;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use super::ApiState;
use super::agents::{AccountStatus, Agent};
use super::auth::check_basic;
use super::error::{ApiError, ErrorBody};
use crate::tracker::MonitorState;

/// The status page.
#[utoipa::path(
    get,
    path = "/",
    tag = "status page",
    security(("status_page" = [])),
    responses(
        (status = 200, description = "The status page", body = String, content_type = "text/html"),
        (status = 401, description = "Sign in: any user name, the admin token as password",
            body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn status_page(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_basic(&headers, state.admin_token.as_ref())?;
    let records = state.store.agents().await?;
    let dead = state.store.dead_webhooks().await?;
    let monitor = state.store.monitor_state().await?;
    let agents: Vec<Agent> = records
        .iter()
        .map(|r| Agent::new(r, &state.default_webhooks, &dead))
        .collect();
    let health = MonitorHealth::new(
        &monitor,
        state.scheduler_running.load(atomic::Ordering::Acquire),
        &agents,
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        render(&agents, &health, Utc::now()),
    )
        .into_response())
}

/// The monitor's own health, as the page shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorHealth {
    /// The poll scheduler runs (what `/readyz` checks).
    pub scheduler_running: bool,
    /// When the last cycle with at least one successful poll ended.
    pub last_good_cycle_at: Option<DateTime<Utc>>,
    /// Since when polling has been broken (every poll failing, or Ravan refusing the
    /// credentials); `None` while it works.
    pub failing_since: Option<DateTime<Utc>>,
    /// The most recent poll error of any agent, to say why.
    pub last_poll_error: Option<String>,
}

impl MonitorHealth {
    /// From the stored monitor state (written with every poll cycle) and the agents' last polls.
    pub fn new(state: &MonitorState, scheduler_running: bool, agents: &[Agent]) -> Self {
        let failing_since = (state.trouble_streak > 0)
            .then(|| state.trouble_since.or(state.alerted_since))
            .flatten();
        let last_poll_error = agents
            .iter()
            .filter_map(|a| Some((a.state.last_checked_at?, a.state.last_error.as_ref()?)))
            .max_by_key(|(at, _)| *at)
            .map(|(_, e)| e.clone());
        Self {
            scheduler_running,
            last_good_cycle_at: state.last_good_cycle_at,
            failing_since,
            last_poll_error,
        }
    }
}

/// The page for `agents` and the monitor's `health`, as of `now`.
pub fn render(agents: &[Agent], health: &MonitorHealth, now: DateTime<Utc>) -> String {
    let mut cards: Vec<Card> = agents.iter().map(|a| Card::new(a, now)).collect();
    cards.sort_by(|a, b| {
        a.rank
            .cmp(&b.rank)
            .then_with(|| compare_names(a.name.as_deref(), b.name.as_deref()))
            .then_with(|| a.id.cmp(&b.id))
    });
    let count = |rank: Rank| cards.iter().filter(|c| c.rank == rank).count();
    let page = Page {
        now: iso(now),
        unhealthy: count(Rank::Unhealthy),
        unknown: count(Rank::Unknown),
        healthy: count(Rank::Healthy),
        monitor: MonitorView::new(health, now),
        agents: cards,
    };
    page.render()
        .expect("the page's values are plain strings and numbers, which always format")
}

#[derive(Template)]
#[template(path = "status.html")]
struct Page {
    now: String,
    unhealthy: usize,
    unknown: usize,
    healthy: usize,
    monitor: MonitorView,
    agents: Vec<Card>,
}

/// A time, absolute and relative to the page's `now`.
struct Stamp {
    iso: String,
    ago: String,
}

impl Stamp {
    fn new(t: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            iso: iso(t),
            ago: relative(t, now),
        }
    }
}

struct MonitorView {
    class: &'static str,
    label: &'static str,
    ravan: &'static str,
    failing_since: Option<Stamp>,
    error: Option<String>,
    last_good: Option<Stamp>,
    scheduler_running: bool,
}

impl MonitorView {
    fn new(h: &MonitorHealth, now: DateTime<Utc>) -> Self {
        let failing = h.failing_since.is_some();
        let (class, label, ravan) = if failing {
            (
                "unhealthy",
                "polling fails",
                "unreachable or refusing the credentials",
            )
        } else if !h.scheduler_running {
            ("unhealthy", "not running", "not polled")
        } else if h.last_good_cycle_at.is_none() {
            ("unknown", "starting", "no poll cycle yet")
        } else {
            ("healthy", "ok", "reachable")
        };
        Self {
            class,
            label,
            ravan,
            failing_since: h.failing_since.map(|t| Stamp::new(t, now)),
            error: h.last_poll_error.clone().filter(|_| failing),
            last_good: h.last_good_cycle_at.map(|t| Stamp::new(t, now)),
            scheduler_running: h.scheduler_running,
        }
    }
}

/// Display order: unhealthy agents first, then those not yet known, then healthy ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Unhealthy,
    Unknown,
    Healthy,
}

/// One agent's card.
struct Card {
    rank: Rank,
    class: &'static str,
    health: &'static str,
    name: Option<String>,
    id: String,
    status: Option<String>,
    connected: Option<bool>,
    since: Option<Stamp>,
    last_checked: Option<Stamp>,
    last_error: Option<String>,
    accounts: Vec<AccountStatus>,
    muted: bool,
    muted_until: Option<Stamp>,
    delivery_error: Option<String>,
}

impl Card {
    fn new(a: &Agent, now: DateTime<Utc>) -> Self {
        let (rank, class, health) = match a.state.healthy {
            Some(false) => (Rank::Unhealthy, "unhealthy", "unhealthy"),
            Some(true) => (Rank::Healthy, "healthy", "healthy"),
            None if a.state.last_error.is_some() => {
                (Rank::Unknown, "unknown", "unknown: polls fail")
            }
            None => (Rank::Unknown, "unknown", "unknown: not polled yet"),
        };
        // Muted now: `muted`, until `muted_until` when it has one (as the tracker decides).
        let muted = a.muted && a.muted_until.is_none_or(|until| now < until);
        Self {
            rank,
            class,
            health,
            name: a.name.clone(),
            id: a.agent_id.clone(),
            status: a.state.status.clone(),
            connected: a.state.connected,
            since: a.state.since.map(|t| Stamp::new(t, now)),
            last_checked: a.state.last_checked_at.map(|t| Stamp::new(t, now)),
            last_error: a.state.last_error.clone(),
            accounts: a.state.accounts.clone(),
            muted,
            muted_until: a.muted_until.filter(|_| muted).map(|t| Stamp::new(t, now)),
            delivery_error: a.delivery_error.clone(),
        }
    }
}

/// Named agents by name (case-insensitive), unnamed ones after them.
fn compare_names(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.to_lowercase().cmp(&b.to_lowercase()),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `5 min ago`, `in 2 h 5 min`, `just now`.
fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let delta = now - t;
    let (span, past) = if delta >= TimeDelta::zero() {
        (delta, true)
    } else {
        (-delta, false)
    };
    let secs = span.num_seconds();
    let text = match secs {
        0..=4 => return "just now".to_owned(),
        5..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=86_399 => match (secs / 3600, secs % 3600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
        _ => match (secs / 86_400, secs % 86_400 / 3600) {
            (d, 0) => format!("{d} d"),
            (d, h) => format!("{d} d {h} h"),
        },
    };
    if past {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}
