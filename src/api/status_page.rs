//! The status pages, server-rendered with askama and behind HTTP basic auth (any user name,
//! the admin token as password); no JavaScript, every piece of text HTML-escaped (names come
//! from operators, statuses, errors and summaries from the Ravan API):
//!
//! - `GET /`, the overview: the fleet's counts, a GET form to filter by health and search by
//!   name or id, one compact table row per agent (unhealthy first) with its uptime and a
//!   48-hour history bar, and the monitor's own health and last events. It must stay fast and
//!   small at 1,000 agents, so the health intervals are read once for every agent (never per
//!   agent), and each bar is run-length encoded ([`bar`]): a steady agent's bar is one element.
//! - `GET /status/{agent_id}`, one agent ([`detail`]): its state, accounts, mute, delivery
//!   problems, uptime over 24 h, 7 d and 30 d, the bar, and its event timeline with what each
//!   destination did with each alert, 50 events a page.
//!
//! Both refresh themselves every 30 s. [`render`] and [`render_agent`] are pure (the time is
//! passed in); the handlers only read the store. Basic auth is [`router`]'s layer, not the
//! handlers' business: a page added there is behind it.

mod bar;
mod detail;
mod filter;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::atomic;

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use self::bar::{Bar, percent};
use self::detail::EventView;
pub use self::detail::{__path_agent_page, agent_page, render_agent};
pub use self::filter::{Filter, HealthFilter};
use super::ApiState;
use super::agents::Agent;
use super::auth::{Gate, behind_basic_auth};
use super::error::{ApiError, ErrorBody};
use crate::domain::alert::IntegrationName;
use crate::domain::history::{self, HealthInterval};
use crate::domain::maintenance::{Timing, format_duration};
use crate::domain::{
    AgentId, Connection, Coverage, MaintenanceWindow, Platform, Webhook, Zone, muted_at,
};
use crate::leader::Role;
use crate::store::{DeadWebhook, Event, EventQuery, EventsAbout};
use crate::tracker::IntegrationState;
use crate::tracker::{MonitorState, Overrun};
use crate::util::{UnitNames, truncate, two_units};

/// How many of the monitor's own events the overview lists.
const MONITOR_EVENTS: u32 = 10;

/// Every status page, behind basic auth with the gate's admin token (none: open).
pub fn router(gate: Gate) -> Router<ApiState> {
    let pages = Router::new()
        .route("/", get(status_page))
        .route("/status/{agent_id}", get(agent_page));
    behind_basic_auth(pages, gate)
}

/// The overview.
#[utoipa::path(
    get,
    path = "/",
    tag = "status page",
    security(("status_page" = [])),
    params(
        ("health" = Option<String>, Query,
            description = "Only agents of this health: `unhealthy`, `unknown` or `healthy`"),
        ("q" = Option<String>, Query,
            description = "Only agents whose name or id contains this (any case; at most 100 characters)"),
    ),
    responses(
        (status = 200, description = "The status page", body = String, content_type = "text/html"),
        (status = 400, description = "A bad `health` or `q`", body = ErrorBody),
        (status = 401, description = "Sign in: any user name, the admin token as password",
            body = ErrorBody),
        (status = 500, description = "Internal error", body = ErrorBody),
    )
)]
pub async fn status_page(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let filter = Filter::parse(query.as_deref())?;
    let now = Utc::now();
    let records = state.store.agents().await?;
    let dead = state.store.dead_webhooks().await?;
    // One read for every agent: the bar needs 48 h, the uptime columns 7 days.
    let mut intervals: HashMap<AgentId, Vec<HealthInterval>> = HashMap::new();
    for (id, i) in state.store.health_intervals(now - history::WEEK).await? {
        intervals.entry(id).or_default().push(i);
    }
    let windows = state.store.maintenance_windows().await?;
    let open = Coverage::at(&windows, now);
    let agents: Vec<AgentView> = records
        .iter()
        .map(|r| {
            let intervals = intervals.remove(&r.agent_id).unwrap_or_default();
            AgentView {
                agent: Agent::new(r, &state.default_webhooks, &dead, &intervals, now)
                    .in_windows(&open),
                intervals,
            }
        })
        .collect();
    let mut health = monitor_health(&state, &agents).await?;
    health.maintenance = windows;
    health.dead_webhooks = dead
        .iter()
        .map(|d| DeadWebhookView::new(d, &state.default_webhooks))
        .collect();
    health.integrations = state.store.integrations().await?;
    let events = state
        .store
        .events(&EventQuery {
            about: EventsAbout::Monitor,
            before: None,
            limit: MONITOR_EVENTS,
        })
        .await?;
    Ok(html(render(
        &agents, &filter, &health, &events, now, state.zone,
    )))
}

/// The monitor's health as this process sees it.
async fn monitor_health(state: &ApiState, agents: &[AgentView]) -> Result<MonitorHealth, ApiError> {
    let monitor = state.store.monitor_state().await?;
    let deaths = state.delivery.deaths();
    let leadership = match state.leadership.role() {
        Role::Leader => "leader: this process polls and delivers".to_owned(),
        Role::Standby => match state
            .store
            .lease()
            .await?
            .filter(|l| l.expires_at > Utc::now())
        {
            Some(lease) => format!("standby: {} leads", lease.holder),
            None => {
                "standby: no process leads right now (one takes over within seconds)".to_owned()
            }
        },
    };
    let agents: Vec<&Agent> = agents.iter().map(|a| &a.agent).collect();
    Ok(MonitorHealth {
        leadership: Some(leadership),
        delivery_deaths: deaths.count,
        delivery_last_death: deaths.last,
        delivery_failing: state.delivery.failing(Utc::now()),
        ..MonitorHealth::new(
            &monitor,
            state.scheduler_running.load(atomic::Ordering::Acquire),
            agents.iter().copied(),
        )
    })
}

/// A page as the answer: HTML, never cached, no scripts, no framing.
fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

/// An agent as answered, and its health intervals: those the page needs (the overview reads
/// the last 7 days, the detail page 30), for the bar.
#[derive(Debug, Clone)]
pub struct AgentView {
    pub agent: Agent,
    pub intervals: Vec<HealthInterval>,
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
    /// The last poll cycle that ran past the next tick of the schedule, and how many have.
    pub last_overrun: Option<Overrun>,
    pub overruns: u64,
    /// The delivery worker's panics (it is restarted after each), and whether it keeps dying.
    pub delivery_deaths: u64,
    pub delivery_last_death: Option<(DateTime<Utc>, String)>,
    pub delivery_failing: bool,
    /// What this process does when several share the database: leads, or stands by (and who
    /// leads). `None` shows nothing.
    pub leadership: Option<String>,
    /// Webhooks their platform declared gone, shown until their URL is set again.
    pub dead_webhooks: Vec<DeadWebhookView>,
    /// The organisation-level checks as last seen; empty when never checked
    /// (`CHECK_INTEGRATIONS` off): then the page has no Organisation panel.
    pub integrations: Vec<(IntegrationName, IntegrationState)>,
    /// The maintenance windows; none: no Maintenance panel.
    pub maintenance: Vec<MaintenanceWindow>,
}

/// A maintenance window as the Maintenance panel shows it: open (until when), or when it
/// next opens, or over.
struct WindowRow {
    name: String,
    /// `every agent`, or how many.
    scope: String,
    /// What it is: the schedule and duration, or the one-off's span.
    what: String,
    active_until: Option<Stamp>,
    next_start: Option<Stamp>,
}

impl WindowRow {
    fn new(w: &MaintenanceWindow, now: DateTime<Utc>, zone: Zone) -> Self {
        let what = match &w.timing {
            Timing::Recurring { schedule, duration } => format!(
                "{} ({}) for {}",
                schedule.as_str(),
                w.timezone.name(),
                format_duration(*duration)
            ),
            Timing::OneOff { .. } => "once".to_owned(),
        };
        let scope = match &w.agent_ids {
            None => "every agent".to_owned(),
            Some(ids) if ids.len() == 1 => "1 agent".to_owned(),
            Some(ids) => format!("{} agents", ids.len()),
        };
        Self {
            name: w.name.clone(),
            scope,
            what,
            active_until: w.open_at(now).map(|(_, end)| Stamp::new(end, now, zone)),
            next_start: w.next_start(now).map(|t| Stamp::new(t, now, zone)),
        }
    }
}

/// One organisation-level check as the Organisation panel shows it.
struct OrgRow {
    label: &'static str,
    /// `h`, `u` or `n`, and its word.
    class: &'static str,
    health: &'static str,
    status: String,
    since: Option<Stamp>,
    token: Option<Stamp>,
    detail: Option<String>,
}

impl OrgRow {
    fn new(name: IntegrationName, s: &IntegrationState, now: DateTime<Utc>, zone: Zone) -> Self {
        let (class, health) = match s.healthy {
            Some(true) => ("h", "healthy"),
            Some(false) => ("u", "unhealthy"),
            None => ("n", "unknown"),
        };
        Self {
            label: name.label(),
            class,
            health,
            status: s
                .status
                .clone()
                .unwrap_or_else(|| "not checked yet".to_owned()),
            since: s.since.map(|t| Stamp::new(t, now, zone)),
            token: s.token_expires.map(|t| Stamp::new(t, now, zone)),
            detail: s
                .last_error
                .as_ref()
                .map(|e| format!("last check failed: {e}"))
                .or_else(|| s.detail.clone()),
        }
    }
}

/// A dead webhook as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadWebhookView {
    pub platform: Platform,
    /// The URL, its secret part masked.
    pub webhook: String,
    pub answer: String,
    pub since: DateTime<Utc>,
    /// A default destination (fixed in the settings), not only agents' own (fixed by `PATCH`).
    pub default: bool,
}

impl DeadWebhookView {
    pub fn new(dead: &DeadWebhook, defaults: &[Webhook]) -> Self {
        Self {
            platform: dead.webhook.platform,
            webhook: dead.webhook.url.masked(),
            answer: dead.reason.clone(),
            since: dead.since,
            default: defaults.contains(&dead.webhook),
        }
    }

    /// What to do about it, in one sentence.
    fn todo(&self) -> String {
        let name = self.platform.label();
        if self.default {
            let setting = self.platform.setting();
            format!("Make a new {name} webhook, set it as {setting} and restart ravan-watch.")
        } else {
            let field = self.platform.agent_field();
            format!(
                "Make a new {name} webhook and PATCH each agent that used this one with it as {field}."
            )
        }
    }
}

/// A dead webhook's banner line.
struct DeadBanner {
    label: &'static str,
    webhook: String,
    answer: String,
    since: Stamp,
    todo: String,
}

impl MonitorHealth {
    /// From the stored monitor state (written with every poll cycle) and the agents' last polls.
    pub fn new<'a>(
        state: &MonitorState,
        scheduler_running: bool,
        agents: impl IntoIterator<Item = &'a Agent>,
    ) -> Self {
        let failing_since = (state.trouble_streak > 0)
            .then(|| state.trouble_since.or(state.alerted_since))
            .flatten();
        let last_poll_error = agents
            .into_iter()
            .filter_map(|a| Some((a.state.last_checked_at?, a.state.last_error.as_ref()?)))
            .max_by_key(|(at, _)| *at)
            .map(|(_, e)| e.clone());
        Self {
            scheduler_running,
            last_good_cycle_at: state.last_good_cycle_at,
            failing_since,
            last_poll_error,
            last_overrun: state.last_overrun.clone(),
            overruns: state.overruns,
            ..Self::default()
        }
    }
}

/// The overview for `agents` (filtered by `filter`; the counts are the whole fleet's), the
/// monitor's `health` and its last `events`, as of `now`.
pub fn render(
    agents: &[AgentView],
    filter: &Filter,
    health: &MonitorHealth,
    events: &[Event],
    now: DateTime<Utc>,
    zone: Zone,
) -> String {
    let mut ranked: Vec<(Rank, Option<String>, &AgentView)> = agents
        .iter()
        .map(|a| {
            let key = a.agent.name.as_deref().map(str::to_lowercase);
            (Rank::of(&a.agent).0, key, a)
        })
        .collect();
    ranked.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| compare_names(a.1.as_deref(), b.1.as_deref()))
            .then_with(|| a.2.agent.agent_id.cmp(&b.2.agent.agent_id))
    });
    let count = |rank: Rank| ranked.iter().filter(|r| r.0 == rank).count();
    let rows: Vec<Row> = ranked
        .iter()
        .filter(|(rank, _, a)| {
            filter.matches(rank.filter(), a.agent.name.as_deref(), &a.agent.agent_id)
        })
        .map(|(_, _, a)| Row::new(a, now, zone))
        .collect();
    let rows = fit_tooltips(rows);
    let page = Page {
        now: Stamp::new(now, now, zone),
        all: agents.len(),
        unhealthy: count(Rank::Unhealthy),
        unknown: count(Rank::Unknown),
        healthy: count(Rank::Healthy),
        muted: agents
            .iter()
            .filter(|a| muted_at(a.agent.muted, a.agent.muted_until, now))
            .count(),
        health: filter.health.map(HealthFilter::as_str).unwrap_or(""),
        q: filter.q.clone().unwrap_or_default(),
        filtered: !filter.is_empty(),
        monitor: MonitorView::new(health, now, zone),
        events: events
            .iter()
            .map(|e| EventView::new(e, now, zone))
            .collect(),
        rows,
    };
    page.render()
        .expect("the page's values are plain strings and numbers, which always format")
}

#[derive(Template)]
#[template(path = "status.html")]
struct Page {
    now: Stamp,
    all: usize,
    unhealthy: usize,
    unknown: usize,
    healthy: usize,
    muted: usize,
    /// The form's current values.
    health: &'static str,
    q: String,
    filtered: bool,
    monitor: MonitorView,
    events: Vec<EventView>,
    rows: Vec<Row>,
}

/// A time, absolute and relative to the page's `now`.
struct Stamp {
    /// RFC 3339, for the `datetime` attribute.
    iso: String,
    /// `2026-11-28 13:00:00 CET`: in `TIMEZONE`, with its abbreviation.
    text: String,
    ago: String,
}

impl Stamp {
    fn new(t: DateTime<Utc>, now: DateTime<Utc>, zone: Zone) -> Self {
        Self {
            iso: iso(t),
            text: zone.write(t),
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
    /// The last overrun within a day: when, and what it says.
    overrun: Option<(Stamp, String)>,
    /// `None` when the delivery worker never died; else what to say, and whether it is failing.
    delivery: Option<(String, bool)>,
    leadership: Option<String>,
    dead: Vec<DeadBanner>,
    org: Vec<OrgRow>,
    /// Open windows first, then by next start; those over last.
    maintenance: Vec<WindowRow>,
}

/// An overrun older than this no longer shows on the page.
const OVERRUN_SHOWN_FOR: TimeDelta = TimeDelta::hours(24);

impl MonitorView {
    fn new(h: &MonitorHealth, now: DateTime<Utc>, zone: Zone) -> Self {
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
            failing_since: h.failing_since.map(|t| Stamp::new(t, now, zone)),
            error: h.last_poll_error.clone().filter(|_| failing),
            last_good: h.last_good_cycle_at.map(|t| Stamp::new(t, now, zone)),
            scheduler_running: h.scheduler_running,
            leadership: h.leadership.clone(),
            org: h
                .integrations
                .iter()
                .map(|(name, state)| OrgRow::new(*name, state, now, zone))
                .collect(),
            maintenance: {
                let mut rows: Vec<WindowRow> = h
                    .maintenance
                    .iter()
                    .map(|w| WindowRow::new(w, now, zone))
                    .collect();
                rows.sort_by_key(|r| {
                    let next = r.next_start.as_ref().map(|s| s.iso.clone());
                    (r.active_until.is_none(), next.is_none(), next)
                });
                rows
            },
            dead: h
                .dead_webhooks
                .iter()
                .map(|d| DeadBanner {
                    label: d.platform.label(),
                    webhook: d.webhook.clone(),
                    answer: d.answer.clone(),
                    since: Stamp::new(d.since, now, zone),
                    todo: d.todo(),
                })
                .collect(),
            delivery: h.delivery_last_death.as_ref().map(|(at, why)| {
                let said = format!(
                    "restarted after {} panic{}; the last {}: {why}",
                    h.delivery_deaths,
                    if h.delivery_deaths == 1 { "" } else { "s" },
                    relative(*at, now)
                );
                (said, h.delivery_failing)
            }),
            overrun: h
                .last_overrun
                .as_ref()
                .filter(|o| now - o.started_at < OVERRUN_SHOWN_FOR)
                .map(|o| {
                    let said = format!(
                        "took {:.1} s of the {:.1} s between ticks ({} overrun{} in all): {}",
                        o.took_ms as f64 / 1000.0,
                        o.interval_ms as f64 / 1000.0,
                        h.overruns,
                        if h.overruns == 1 { "" } else { "s" },
                        o.advice()
                    );
                    (Stamp::new(o.started_at, now, zone), said)
                }),
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

impl Rank {
    /// The agent's rank, its CSS class and its health in words.
    fn of(a: &Agent) -> (Self, &'static str, &'static str) {
        match a.state.healthy {
            _ if a.state.missing_alerted => (Rank::Unhealthy, "u", "not found at Ravan"),
            Some(false) => (Rank::Unhealthy, "u", "unhealthy"),
            Some(true) => (Rank::Healthy, "h", "healthy"),
            None if a.state.last_error.is_some() => (Rank::Unknown, "n", "unknown: polls fail"),
            None => (Rank::Unknown, "n", "unknown: not polled yet"),
        }
    }

    fn filter(self) -> HealthFilter {
        match self {
            Rank::Unhealthy => HealthFilter::Unhealthy,
            Rank::Unknown => HealthFilter::Unknown,
            Rank::Healthy => HealthFilter::Healthy,
        }
    }
}

/// `private`, `org-linked (Acme Team)`, `none`.
fn connection(a: &Agent) -> Option<String> {
    let c: Connection = a.state.connection?.parse().ok()?;
    let named = a
        .state
        .accounts
        .first()
        .map(|acc| acc.account_name.as_str())
        .filter(|n| c == Connection::OrgLinked && !n.trim().is_empty());
    Some(match named {
        Some(name) => format!("{} ({name})", c.label()),
        None => c.label().to_owned(),
    })
}

/// Characters of an unhealthy row's reason; the whole of it is in the tooltip and on the
/// agent's page.
const WHY_CHARS: usize = 120;

/// Characters the rows' tooltips may hold in all: the whole reasons of a few unhealthy agents,
/// while a thousand of them with Ravan's longest errors (2,000 characters) still make a page
/// under 1 MB (the rows alone are about 0.8 MB then).
const TOOLTIPS_CHARS: usize = 60_000;

/// The rows, their tooltips cut to share [`TOOLTIPS_CHARS`] when the whole reasons do not fit
/// it, and dropped when a share is no longer than what the row shows already (the agent's page
/// has the whole text).
fn fit_tooltips(mut rows: Vec<Row>) -> Vec<Row> {
    let full = || rows.iter().filter_map(|r| r.why.as_ref()?.full.as_ref());
    let (n, chars) = full().fold((0, 0), |(n, c), t| (n + 1, c + t.chars().count()));
    if chars <= TOOLTIPS_CHARS {
        return rows;
    }
    let share = TOOLTIPS_CHARS / n;
    for why in rows.iter_mut().filter_map(|r| r.why.as_mut()) {
        why.full = why
            .full
            .take()
            .filter(|_| share > WHY_CHARS)
            .map(|t| truncate(&t, share));
    }
    rows
}

/// Why an unhealthy agent is down, as its row says it.
struct Why {
    /// At most [`WHY_CHARS`].
    shown: String,
    /// The whole text, when `shown` had to cut it: the row's tooltip.
    full: Option<String>,
}

impl Why {
    /// The first account's error Ravan reported; without one, the last poll's failure (the
    /// status word is in the row already). `None` for an agent that is not unhealthy: a
    /// healthy row stays compact.
    fn of(a: &Agent, rank: Rank) -> Option<Self> {
        if rank != Rank::Unhealthy {
            return None;
        }
        let text = match a.state.accounts.iter().find_map(|acc| acc.error.as_deref()) {
            Some(error) => error.to_owned(),
            None => format!("last poll failed: {}", a.state.last_error.as_deref()?),
        };
        let shown = truncate(&text, WHY_CHARS);
        let full = (shown != text).then_some(text);
        Some(Self { shown, full })
    }
}

/// One agent's row of the overview: kept small, a page holds a thousand.
struct Row {
    /// `u` unhealthy, `n` unknown, `h` healthy.
    class: &'static str,
    /// `unhealthy`, `unknown`, `healthy`: the row's `data-health`.
    group: &'static str,
    health: &'static str,
    name: Option<String>,
    id: String,
    /// Ravan's status, when it says more than the health (not for `active`).
    status: Option<String>,
    /// Why an unhealthy agent is down.
    why: Option<Why>,
    connection: Option<String>,
    since: Option<Stamp>,
    last_checked: Option<Stamp>,
    muted: bool,
    in_maintenance: bool,
    day: String,
    week: String,
    bar: Bar,
}

impl Row {
    fn new(v: &AgentView, now: DateTime<Utc>, zone: Zone) -> Self {
        let a = &v.agent;
        let (rank, class, health) = Rank::of(a);
        Self {
            class,
            group: rank.filter().as_str(),
            health,
            name: a.name.clone(),
            id: a.agent_id.clone(),
            status: a.state.status.clone().filter(|s| s != "active"),
            why: Why::of(a, rank),
            connection: connection(a),
            since: a.state.since.map(|t| Stamp::new(t, now, zone)),
            last_checked: a.state.last_checked_at.map(|t| Stamp::new(t, now, zone)),
            muted: muted_at(a.muted, a.muted_until, now),
            in_maintenance: a.in_maintenance,
            day: percent(a.uptime.day),
            week: percent(a.uptime.week),
            bar: Bar::new(&v.intervals, a.state.last_checked_at, now),
        }
    }
}

/// Named agents by name (already lowercased), unnamed ones after them.
fn compare_names(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `5 min ago`, `in 2 h 5 min`, `just now`: to the minute once past one.
fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    const SPACED: UnitNames = UnitNames {
        day: "d",
        hour: "h",
        minute: "min",
        second: "s",
        gap: " ",
    };
    let delta = now - t;
    let (span, past) = if delta >= TimeDelta::zero() {
        (delta, true)
    } else {
        (-delta, false)
    };
    let secs = span.num_seconds();
    if secs < 5 {
        return "just now".to_owned();
    }
    let text = two_units(if secs < 60 { secs } else { secs / 60 * 60 }, &SPACED);
    if past {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{Alert, MonitorAlert, MonitorAlertKind};
    use crate::domain::secret::SecretUrl;
    use crate::domain::{Account, Observation};
    use crate::domain::{Platform, Webhook};
    use crate::store::{AgentRecord, DeadWebhook, EventDelivery, OutboxStatus};
    use crate::tracker::AgentState;

    const A: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    const B: &str = "9b2c7a10-1d2e-4f3a-8b4c-5d6e7f809102";
    const C: &str = "0d4e5f60-7a8b-4c9d-8e0f-112233445566";

    /// Minute `m` after a fixed start.
    fn t(m: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + TimeDelta::minutes(m)
    }

    fn now() -> DateTime<Utc> {
        t(60)
    }

    fn record(id: &str, name: Option<&str>) -> AgentRecord {
        AgentRecord {
            agent_id: id.parse::<AgentId>().unwrap(),
            name: name.map(str::to_owned),
            slack_webhook_url: None,
            discord_webhook_url: None,
            teams_webhook_url: None,
            webhook_url: None,
            muted: false,
            muted_until: None,
            created_at: t(0),
            added_version: 0,
            listed_name: None,
            source: crate::store::Source::Api,
            state: AgentState::default(),
        }
    }

    /// `r` after an observation of `status` at minute `m` (healthy since minute `since`).
    fn observed(mut r: AgentRecord, status: &str, error: Option<&str>, m: i64) -> AgentRecord {
        r.state.last = Some(Observation {
            status: status.into(),
            connected: status == "active",
            accounts: vec![Account {
                id: "acc-1".into(),
                account_name: "Sales calendar".into(),
                status: status.into(),
                error: error.map(Into::into),
            }],
            connection: None,
        });
        r.state.observed_at = Some(t(m));
        r.state.health_since = Some(t(m - 10));
        r.state.last_checked_at = Some(t(m));
        r
    }

    /// `r` as the pages see it, with `intervals`.
    fn view_with(r: &AgentRecord, intervals: Vec<HealthInterval>) -> AgentView {
        AgentView {
            agent: Agent::new(r, &[], &[], &intervals, now()),
            intervals,
        }
    }

    fn view(r: &AgentRecord) -> AgentView {
        view_with(r, Vec::new())
    }

    fn ok_monitor() -> MonitorHealth {
        MonitorHealth {
            scheduler_running: true,
            last_good_cycle_at: Some(t(59)),
            ..MonitorHealth::default()
        }
    }

    fn page_with(records: &[AgentRecord], filter: &Filter) -> String {
        let agents: Vec<AgentView> = records.iter().map(view).collect();
        render(&agents, filter, &ok_monitor(), &[], now(), Zone::UTC)
    }

    fn page(records: &[AgentRecord]) -> String {
        page_with(records, &Filter::default())
    }

    /// The HTML of one agent's row.
    fn row<'h>(html: &'h str, id: &str) -> &'h str {
        let start = html
            .find(&format!("id=\"agent-{id}\""))
            .unwrap_or_else(|| panic!("no row for {id} in {html}"));
        let end = start + html[start..].find('\n').unwrap();
        &html[start..end]
    }

    fn rows(html: &str) -> usize {
        html.matches("<div id=\"agent-").count()
    }

    fn detail(r: &AgentRecord, events: &[Event]) -> String {
        render_agent(&view(r), events, None, now(), Zone::UTC)
    }

    fn event(id: i64, kind: &str, deliveries: Vec<EventDelivery>) -> Event {
        Event {
            id,
            at: t(id),
            agent_id: Some(A.parse().unwrap()),
            kind: kind.to_owned(),
            from_status: Some("active".into()),
            to_status: Some("errored".into()),
            summary: format!("Sales line ({A}): {kind}, active → errored"),
            webhook: None,
            integration: None,
            deliveries,
        }
    }

    #[test]
    fn untrusted_text_is_escaped() {
        let mut r = observed(
            record(A, Some("<script>alert('x')</script> & co")),
            "<b>errored</b>",
            Some("<img src=x onerror=alert(1)>"),
            59,
        );
        r.state.last_error = Some("\"quoted\" <i>".into());
        let html = page(std::slice::from_ref(&r));
        let agent = detail(&r, &[]);
        for html in [&html, &agent] {
            assert!(!html.contains("<script"), "{html}");
            assert!(!html.contains("<b>errored") && !html.contains("<img"));
            assert!(
                html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; co"),
                "{html}"
            );
            assert!(html.contains("&#60;b&#62;errored&#60;/b&#62;"), "{html}");
        }
        assert!(
            agent.contains("&#60;img src=x onerror=alert(1)&#62;"),
            "{agent}"
        );
        assert!(agent.contains("&#34;quoted&#34; &#60;i&#62;"), "{agent}");
        assert!(!agent.contains("<i>"), "{agent}");
        // The search box echoes the query escaped.
        let filter = Filter::parse(Some("q=%22%3E%3Cb%3E")).unwrap();
        let html = page_with(&[], &filter);
        assert!(html.contains("value=\"&#34;&#62;&#60;b&#62;\""), "{html}");
    }

    /// An unhealthy row says why (the account's error, cut to about 120 characters, the whole
    /// of it in the tooltip), escaped; a healthy row stays compact.
    #[test]
    fn an_unhealthy_row_says_why_and_a_healthy_row_does_not() {
        let long = format!("Cal.com refused <the> token & \"{}\" end", "x".repeat(300));
        let down = observed(record(A, Some("Down")), "errored", Some(&long), 59);
        let up = observed(record(B, Some("Up")), "active", None, 59);
        let html = page(&[down.clone(), up]);
        let row_a = row(&html, A);
        let escaped = |s: &str| {
            s.replace('&', "&#38;")
                .replace('<', "&#60;")
                .replace('>', "&#62;")
                .replace('"', "&#34;")
        };
        assert!(
            row_a.contains(&format!("title=\"{}\"", escaped(&long))),
            "the whole error in the tooltip: {row_a}"
        );
        let shown_from = row_a.find("class=\"why\"").expect("a reason");
        let shown = &row_a[shown_from..];
        let shown = &shown[shown.find('>').unwrap() + 1..shown.find("</").unwrap()];
        assert!(
            shown.starts_with("Cal.com refused &#60;the&#62; token &#38; &#34;xxx"),
            "{shown}"
        );
        assert!(shown.ends_with('…'), "{shown}");
        let visible = shown
            .replace("&#38;", "&")
            .replace("&#60;", "<")
            .replace("&#62;", ">");
        let visible = visible.replace("&#34;", "\"");
        assert!((100..=120).contains(&visible.chars().count()), "{visible}");
        assert!(!row_a.contains("<the>"), "{row_a}");
        let row_b = row(&html, B);
        assert!(
            !row_b.contains("why") && !row_b.contains("title="),
            "{row_b}"
        );
        // A short error shows whole, with no tooltip to repeat it; without an account error,
        // the last poll error says why.
        let short = observed(record(C, None), "errored", Some("token revoked"), 59);
        let html = page(&[short]);
        assert!(row(&html, C).contains(">token revoked</"), "{html}");
        let mut polls_fail = observed(record(C, None), "errored", None, 59);
        polls_fail.state.last_error = Some("Ravan API server error (HTTP 502)".into());
        let html = page(&[polls_fail]);
        assert!(
            row(&html, C).contains("last poll failed: Ravan API server error (HTTP 502)"),
            "{html}"
        );
        // The agent's page shows the whole error.
        assert!(detail(&down, &[]).contains(&escaped(&long)));
    }

    #[test]
    fn unhealthy_first_then_unknown_then_healthy_with_counts_of_the_fleet() {
        let mut muted = observed(record(A, Some("alpha")), "active", None, 59);
        muted.muted = true;
        let html = page(&[
            muted,
            record(B, Some("beta")),
            observed(record(C, Some("gamma")), "errored", Some("expired"), 59),
        ]);
        let pos = |id: &str| html.find(&format!("id=\"agent-{id}\"")).unwrap();
        assert!(pos(C) < pos(B) && pos(B) < pos(A), "{html}");
        assert!(
            html.contains("3 watched agents: 1 unhealthy, 1 unknown, 1 healthy, 1 muted"),
            "{html}"
        );
        assert!(html.contains("Showing 3 of 3 agents."), "{html}");
        assert!(
            html.contains("<title>(1 unhealthy) ravan-watch</title>"),
            "{html}"
        );
        assert!(row(&html, A).contains("<span class=\"mt\">muted</span>"));
        assert!(!row(&html, C).contains("muted"));
    }

    #[test]
    fn within_a_health_named_agents_go_by_name_then_unnamed() {
        let html = page(&[
            observed(record(A, None), "active", None, 59),
            observed(record(B, Some("zulu")), "active", None, 59),
            observed(record(C, Some("Alpha")), "active", None, 59),
        ]);
        let pos = |id: &str| html.find(&format!("id=\"agent-{id}\"")).unwrap();
        assert!(pos(C) < pos(B) && pos(B) < pos(A));
        assert!(row(&html, A).contains("(no name)"));
    }

    #[test]
    fn the_filter_shows_matching_rows_and_keeps_the_fleet_counts() {
        let records = [
            observed(record(A, Some("Sales line")), "active", None, 59),
            record(B, Some("New line")),
            observed(record(C, Some("Support")), "errored", None, 59),
        ];
        let only = |query: &str| page_with(&records, &Filter::parse(Some(query)).unwrap());
        let html = only("health=unhealthy");
        assert_eq!(rows(&html), 1, "{html}");
        assert!(row(&html, C).contains("data-health=\"unhealthy\""));
        assert!(html.contains("Showing 1 of 3 agents."), "{html}");
        assert!(html.contains("1 unhealthy, 1 unknown, 1 healthy"), "{html}");
        assert!(
            html.contains("<option value=\"unhealthy\" selected>"),
            "{html}"
        );
        assert!(html.contains("<a href=\"/\">clear</a>"), "{html}");
        let html = only("q=LINE");
        assert_eq!(rows(&html), 2, "{html}");
        assert!(html.contains(&format!("agent-{A}")) && html.contains(&format!("agent-{B}")));
        assert!(html.contains("value=\"LINE\""), "{html}");
        let html = only("q=0d4e5f60");
        assert_eq!(rows(&html), 1, "{html}");
        assert!(html.contains(&format!("agent-{C}")));
        let html = only("health=healthy&q=support");
        assert_eq!(rows(&html), 0, "{html}");
        assert!(html.contains("No agent matches."), "{html}");
        assert!(!page(&records).contains("clear</a>"));
    }

    #[test]
    fn a_row_shows_health_connection_times_uptime_and_a_link() {
        // Healthy for the last 12 h of observation, unhealthy 2 h before that.
        let h = |n: i64| now() + TimeDelta::hours(n);
        let intervals = vec![
            HealthInterval {
                healthy: false,
                start: h(-14),
                end: Some(h(-12)),
            },
            HealthInterval {
                healthy: true,
                start: h(-12),
                end: None,
            },
        ];
        let r = observed(record(A, Some("Sales bot")), "active", None, 58);
        let html = render(
            &[view_with(&r, intervals)],
            &Filter::default(),
            &ok_monitor(),
            &[],
            now(),
            Zone::UTC,
        );
        let c = row(&html, A);
        assert!(c.contains("data-health=\"healthy\""), "{c}");
        assert!(c.contains(">healthy</span></div>"), "{c}");
        assert!(
            c.contains(&format!("<a href=\"/status/{A}\">Sales bot</a>")),
            "{c}"
        );
        assert!(c.contains("<div role=\"cell\">private</div>"), "{c}");
        // Since 12:48, last checked 12:58, the page at 13:00.
        assert!(
            c.contains("<time datetime=\"2026-11-28T12:48:00Z\">12 min ago</time>"),
            "{c}"
        );
        assert!(c.contains(">2 min ago</time>"), "{c}");
        // 12 h healthy of 14 h observed (the open interval ends at the last poll, 12:58).
        let day = 100.0 * (12.0 * 60.0 - 2.0) / (14.0 * 60.0 - 2.0);
        assert!(c.contains(&format!(">{}</div>", percent(Some(day)))), "{c}");
        assert!(
            c.contains("aria-label=\"Last 48 h: 12 h healthy, 2 h unhealthy, 34 h no data\""),
            "{c}"
        );
        assert!(
            c.contains("<i class=\"n\" style=\"flex:34\"></i><i class=\"u\" style=\"flex:2\"></i><i class=\"h\" style=\"flex:12\"></i>"),
            "{c}"
        );
    }

    #[test]
    fn a_steady_rows_bar_is_one_element_and_a_row_stays_small() {
        let r = observed(record(A, Some("Steady")), "active", None, 59);
        let iv = HealthInterval {
            healthy: true,
            start: now() - TimeDelta::days(40),
            end: None,
        };
        let html = render(
            &[view_with(&r, vec![iv])],
            &Filter::default(),
            &ok_monitor(),
            &[],
            now(),
            Zone::UTC,
        );
        let c = row(&html, A);
        assert_eq!(c.matches("<i class=").count(), 1, "{c}");
        assert!(c.contains("style=\"flex:48\""), "{c}");
        assert!(c.len() < 900, "a row of {} bytes: {c}", c.len());
    }

    #[test]
    fn never_polled_agent_is_unknown() {
        let r = record(A, Some("New"));
        let html = page(std::slice::from_ref(&r));
        let c = row(&html, A);
        assert!(c.contains("data-health=\"unknown\""), "{c}");
        assert!(c.contains("unknown: not polled yet"), "{c}");
        assert!(c.contains("<div role=\"cell\">never</div>"), "{c}");
        assert!(c.contains("48 h no data"), "{c}");
        let d = detail(&r, &[]);
        assert!(
            d.contains("Status</dt><dd class=\"status\">not polled yet"),
            "{d}"
        );
        assert!(d.contains("Last checked</dt><dd>never"), "{d}");
        assert!(!d.contains("Accounts"), "{d}");
        assert!(d.contains("24 h: <b>—</b>"), "{d}");
    }

    #[test]
    fn agent_whose_polls_fail_before_any_observation_says_why() {
        let mut r = record(A, Some("Ghost"));
        r.state
            .poll_failed("Ravan answered 404: Agent not found".into(), t(59));
        assert!(row(&page(&[r.clone()]), A).contains("unknown: polls fail"));
        let d = detail(&r, &[]);
        assert!(
            d.contains("failed: Ravan answered 404: Agent not found"),
            "{d}"
        );
        assert!(d.contains("2026-11-28T12:59:00Z"), "{d}");
    }

    #[test]
    fn the_detail_page_shows_state_accounts_and_uptime() {
        let r = observed(
            record(A, Some("Support")),
            "not_connected",
            Some("Cal.com token revoked"),
            59,
        );
        let d = detail(&r, &[]);
        assert!(d.contains("<a href=\"/\">← All agents</a>"), "{d}");
        assert!(d.contains("<span class=\"b u\">unhealthy</span>"), "{d}");
        assert!(d.contains("not_connected (not connected)"), "{d}");
        assert!(d.contains("Sales calendar: not_connected"), "{d}");
        assert!(d.contains("Cal.com token revoked"), "{d}");
        assert!(d.contains("Muted</dt><dd>no"), "{d}");
        assert!(
            d.contains("24 h: <b>—</b> · 7 d: <b>—</b> · 30 d: <b>—</b>"),
            "{d}"
        );
        assert!(d.contains("No events yet"), "{d}");
        assert!(!d.contains("Older events"), "{d}");
    }

    #[test]
    fn muted_until_is_shown_and_an_expired_mute_is_not() {
        let mut until = observed(record(A, None), "errored", None, 59);
        until.muted = true;
        until.muted_until = Some(t(180));
        let mut forever = observed(record(B, None), "errored", None, 59);
        forever.muted = true;
        let mut expired = observed(record(C, None), "errored", None, 59);
        expired.muted = true;
        expired.muted_until = Some(t(30));
        let d = detail(&until, &[]);
        assert!(
            d.contains("Muted</dt><dd>yes, until <time datetime=\"2026-11-28T15:00:00Z\">"),
            "{d}"
        );
        assert!(d.contains("in 2 h"), "{d}");
        assert!(detail(&forever, &[]).contains("Muted</dt><dd>yes</dd>"));
        assert!(detail(&expired, &[]).contains("Muted</dt><dd>no</dd>"));
        let html = page(&[until, forever, expired]);
        assert!(html.contains("2 muted"), "{html}");
        assert!(!row(&html, C).contains("muted"));
    }

    #[test]
    fn delivery_error_is_shown_with_the_masked_webhook() {
        let mut r = record(A, Some("Routed"));
        let url = SecretUrl::new(
            "https://hooks.slack.com/services/T0/B0/secret"
                .parse()
                .unwrap(),
        );
        r.slack_webhook_url = Some(url.clone());
        let dead = DeadWebhook {
            webhook: Webhook::new(Platform::Slack, url),
            reason: "no_service".into(),
            since: t(50),
        };
        let agent = Agent::new(&r, &[], &[dead], &[], Utc::now());
        assert!(agent.delivery_error.is_some());
        let v = AgentView {
            agent,
            intervals: Vec::new(),
        };
        let d = render_agent(&v, &[], None, now(), Zone::UTC);
        assert!(d.contains("Delivery</dt><dd class=\"warn\">"), "{d}");
        assert!(
            d.contains("no_service") && d.contains("hooks.slack.com"),
            "{d}"
        );
        assert!(!d.contains("secret"), "{d}");
    }

    #[test]
    fn the_timeline_shows_each_event_and_each_destinations_outcome() {
        let r = observed(record(A, Some("Sales line")), "errored", None, 59);
        let deliveries = vec![
            EventDelivery {
                platform: Platform::Slack,
                webhook: "https://hooks.slack.com/services/T0/B0/***".into(),
                outcome: OutboxStatus::Delivered,
                at: Some(t(31)),
                error: None,
            },
            EventDelivery {
                platform: Platform::Discord,
                webhook: "https://discord.com/api/webhooks/1/***".into(),
                outcome: OutboxStatus::Failed,
                at: Some(t(35)),
                error: Some("HTTP 404 <gone>".into()),
            },
        ];
        let events = [
            event(40, "recovered", vec![]),
            event(30, "down", deliveries),
        ];
        let d = detail(&r, &events);
        let at = |s: &str| d.find(s).unwrap_or_else(|| panic!("{s} not in {d}"));
        assert!(at("<span class=\"b h\">recovered</span>") < at("<span class=\"b u\">down</span>"));
        assert!(
            d.contains("<span class=\"change\">active → errored</span>"),
            "{d}"
        );
        assert!(d.contains("Sales line (3f2504e0"), "{d}");
        assert!(d.contains("slack <span class=\"id\">https://hooks.slack.com/services/T0/B0/***</span>: <span class=\"o delivered\">delivered</span> <time datetime=\"2026-11-28T12:31:00Z\">"), "{d}");
        assert!(d.contains("<span class=\"o failed\">failed</span>"), "{d}");
        assert!(d.contains("— HTTP 404 &#60;gone&#62;"), "{d}");
        assert_eq!(d.matches("<li class=\"ev\">").count(), 2);
    }

    #[test]
    fn the_timeline_pages_by_fifty_with_an_older_link() {
        let r = observed(record(A, None), "errored", None, 59);
        // 51 events (ids 100 down to 50): the 51st says there is an older page.
        let events: Vec<Event> = (50..=100)
            .rev()
            .map(|i| event(i, "reminder", vec![]))
            .collect();
        let d = detail(&r, &events);
        assert_eq!(d.matches("<li class=\"ev\">").count(), 50, "{d}");
        assert!(
            d.contains(&format!(
                "<a href=\"/status/{A}?before=51\" rel=\"next\">Older events →</a>"
            )),
            "{d}"
        );
        assert!(!d.contains("Newest events"), "{d}");
        // The last page: no older link, a link back to the newest.
        let d = render_agent(&view(&r), &events[..3], Some(200), now(), Zone::UTC);
        assert_eq!(d.matches("<li class=\"ev\">").count(), 3);
        assert!(!d.contains("Older events"), "{d}");
        assert!(
            d.contains(&format!("<a href=\"/status/{A}\">Newest events</a>")),
            "{d}"
        );
        let d = render_agent(&view(&r), &[], Some(5), now(), Zone::UTC);
        assert!(d.contains("No older events."), "{d}");
    }

    #[test]
    fn empty_list_says_so() {
        let html = page(&[]);
        assert!(html.contains("0 watched agents"), "{html}");
        assert!(html.contains("No agents are watched yet"), "{html}");
        assert!(!html.contains("role=\"table\""));
    }

    #[test]
    fn monitor_health_and_its_events_are_shown() {
        let agents: Vec<AgentView> = Vec::new();
        let none = Filter::default();
        let ok = render(&agents, &none, &ok_monitor(), &[], now(), Zone::UTC);
        assert!(ok.contains("Ravan API</dt><dd>reachable"), "{ok}");
        assert!(
            ok.contains("2026-11-28T12:59:00Z") && ok.contains("1 min ago"),
            "{ok}"
        );
        assert!(ok.contains("Scheduler</dt><dd>running"), "{ok}");
        assert!(ok.contains("<dd id=\"monitor-events\">none</dd>"), "{ok}");

        let down = Alert::Monitor(MonitorAlert {
            kind: MonitorAlertKind::Down,
            reason: "Ravan answered 500 <db down>".into(),
            at: t(50),
            since: t(50),
        });
        let up = Alert::Monitor(MonitorAlert {
            kind: MonitorAlertKind::Recovered,
            reason: String::new(),
            at: t(55),
            since: t(50),
        });
        let events: Vec<Event> = [(2, &up), (1, &down)]
            .into_iter()
            .map(|(id, a)| Event {
                id,
                at: a.at(),
                agent_id: None,
                kind: a.kind_name().to_owned(),
                from_status: None,
                to_status: None,
                summary: a.summary(),
                webhook: None,
                integration: None,
                deliveries: vec![],
            })
            .collect();
        let html = render(&agents, &none, &ok_monitor(), &events, now(), Zone::UTC);
        let list = &html[html.find("monitor-events").unwrap()..];
        let at = |s: &str| list.find(s).unwrap_or_else(|| panic!("{s} not in {list}"));
        assert!(at("polling works again") < at("polling failed"), "{list}");
        assert!(list.contains("Monitor: polling fails: Ravan answered 500 &#60;db down&#62;"));
        assert!(list.contains("2026-11-28 12:50:00 UTC"), "{list}");
        // In TIMEZONE, with its abbreviation: the overview and the agent's page alike.
        let berlin = Zone::from(chrono_tz::Europe::Berlin);
        let local = render(&agents, &none, &ok_monitor(), &events, now(), berlin);
        let list = &local[local.find("monitor-events").unwrap()..];
        assert!(list.contains("2026-11-28 13:50:00 CET"), "{list}");
        assert!(!local.contains(" UTC<"), "no time left in UTC");
        let r = observed(record(A, Some("x")), "errored", None, 58);
        let page = render_agent(&view(&r), &[], None, now(), berlin);
        assert!(page.contains("2026-11-28 13:58:00 CET"), "{page}");

        let failing = MonitorHealth {
            failing_since: Some(t(50)),
            last_poll_error: Some("Ravan answered 500 <db down>".into()),
            ..ok_monitor()
        };
        let html = render(&agents, &none, &failing, &[], now(), Zone::UTC);
        assert!(
            html.contains("class=\"card unhealthy\" id=\"monitor\""),
            "{html}"
        );
        assert!(
            html.contains("unreachable or refusing the credentials since"),
            "{html}"
        );
        assert!(
            html.contains("Ravan answered 500 &#60;db down&#62;"),
            "{html}"
        );

        let starting = MonitorHealth {
            last_good_cycle_at: None,
            ..ok_monitor()
        };
        let html = render(&agents, &none, &starting, &[], now(), Zone::UTC);
        assert!(html.contains("no poll cycle yet") && html.contains("none yet"));

        let stopped = MonitorHealth {
            scheduler_running: false,
            ..ok_monitor()
        };
        assert!(render(&agents, &none, &stopped, &[], now(), Zone::UTC).contains("not running"));
    }

    /// A dead webhook is a banner at the top of the page until it is fixed: which one
    /// (masked), what it answered, since when, and what to do.
    /// A few unhealthy rows carry their whole reason as a tooltip; a thousand with Ravan's
    /// longest errors share a budget, so the page stays under 1 MB (the agent's page has the
    /// whole text).
    #[test]
    fn tooltips_share_a_budget_so_a_thousand_long_reasons_stay_under_a_megabyte() {
        let error = "Cal.com token revoked; reconnect it ".repeat(60)[..2000].to_owned();
        let records: Vec<AgentRecord> = (0..1000)
            .map(|i| {
                let id = format!("00000000-0000-4000-8000-{i:012}");
                observed(record(&id, Some("Sales")), "errored", Some(&error), 30)
            })
            .collect();
        let few = page_with(&records[..20], &Filter::default());
        assert_eq!(few.matches(&error).count(), 20, "whole reasons as tooltips");
        let all = page_with(&records, &Filter::default());
        assert!(all.len() < 1_000_000, "{} bytes", all.len());
        assert_eq!(
            all.matches("class=\"why\"").count(),
            1000,
            "every row says why"
        );
        assert!(!all.contains(&error), "no whole reason fits");
    }

    /// The Organisation panel shows each integration's state, since when, the token's expiry
    /// and what Ravan said; without any check there is no panel.
    #[test]
    fn the_organisation_panel_shows_each_integration() {
        let agents: Vec<AgentView> = [record(A, Some("Sales"))].iter().map(view).collect();
        let none = Filter::default();
        let html = render(&agents, &none, &ok_monitor(), &[], now(), Zone::UTC);
        assert!(
            !html.contains("id=\"organisation\""),
            "never checked: no panel"
        );

        let calcom = IntegrationState {
            status: Some("errored".into()),
            healthy: Some(false),
            since: Some(t(30)),
            detail: Some("token <revoked>".into()),
            token_expires: Some(t(90)),
            ..IntegrationState::default()
        };
        let ghl = IntegrationState {
            status: Some("connected".into()),
            healthy: Some(true),
            last_error: Some("HTTP 502".into()),
            ..IntegrationState::default()
        };
        let health = MonitorHealth {
            integrations: vec![
                (IntegrationName::CalcomOrg, calcom),
                (IntegrationName::Ghl, ghl),
            ],
            ..ok_monitor()
        };
        let html = render(&agents, &none, &health, &[], now(), Zone::UTC);
        let start = html.find("id=\"organisation\"").expect("a panel");
        let panel = &html[start..start + html[start..].find("</section>").unwrap()];
        assert!(panel.contains("unhealthy</span> errored"), "{panel}");
        assert!(
            panel.contains("token &#60;revoked&#62;"),
            "escaped: {panel}"
        );
        assert!(panel.contains("token expires"), "{panel}");
        assert!(panel.contains("healthy</span> connected"), "{panel}");
        assert!(panel.contains("last check failed: HTTP 502"), "{panel}");
    }

    #[test]
    fn a_dead_webhook_is_a_banner_until_fixed() {
        let agents: Vec<AgentView> = [record(A, Some("Sales"))].iter().map(view).collect();
        let none = Filter::default();
        let html = render(&agents, &none, &ok_monitor(), &[], now(), Zone::UTC);
        assert!(!html.contains("id=\"dead-webhooks\""), "none: no banner");

        let dead = |url: &str, default| DeadWebhookView {
            platform: Platform::Slack,
            webhook: url.to_owned(),
            answer: "HTTP 404: <no_service>".into(),
            since: t(30),
            default,
        };
        let health = MonitorHealth {
            dead_webhooks: vec![
                dead("https://hooks.slack.com/services/T0/B0/***", true),
                dead("https://hooks.slack.com/services/T0/B1/***", false),
            ],
            ..ok_monitor()
        };
        let html = render(&agents, &none, &health, &[], now(), Zone::UTC);
        let start = html.find("id=\"dead-webhooks\"").expect("a banner");
        let banner = &html[start..start + html[start..].find("</section>").unwrap()];
        assert!(
            banner.contains("T0/B0/***") && banner.contains("T0/B1/***"),
            "{banner}"
        );
        assert!(
            banner.contains("HTTP 404: &#60;no_service&#62;"),
            "escaped: {banner}"
        );
        assert!(
            banner.contains("SLACK_WEBHOOK_URL"),
            "a default: fix the setting: {banner}"
        );
        assert!(
            banner.contains("PATCH"),
            "an agent's own: PATCH it: {banner}"
        );
        assert!(start < html.find("id=\"monitor\"").unwrap(), "at the top");
    }

    #[test]
    fn monitor_health_comes_from_the_stored_state_and_the_agents() {
        let mut failing = record(A, None);
        failing.state.poll_failed("older".into(), t(10));
        let mut latest = record(B, None);
        latest.state.poll_failed("latest".into(), t(20));
        let agents = [view(&failing).agent, view(&latest).agent];
        let state = MonitorState {
            trouble_streak: 3,
            trouble_since: Some(t(8)),
            last_good_cycle_at: Some(t(5)),
            ..MonitorState::default()
        };
        let h = MonitorHealth::new(&state, true, &agents);
        assert_eq!(h.failing_since, Some(t(8)));
        assert_eq!(h.last_good_cycle_at, Some(t(5)));
        assert_eq!(h.last_poll_error.as_deref(), Some("latest"));
        let fine = MonitorState {
            last_good_cycle_at: Some(t(5)),
            ..MonitorState::default()
        };
        assert_eq!(MonitorHealth::new(&fine, true, &agents).failing_since, None);
    }

    #[test]
    fn pages_refresh_themselves_fit_a_phone_and_have_a_dark_mode_without_scripts() {
        let r = record(A, None);
        for html in [page(std::slice::from_ref(&r)), detail(&r, &[])] {
            assert!(html.starts_with("<!DOCTYPE html>"));
            assert!(html.contains(r#"<meta http-equiv="refresh" content="30">"#));
            assert!(html.contains(
                r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
            ));
            assert!(html.contains("@media (prefers-color-scheme:dark)"));
            assert!(!html.contains("<script"));
        }
    }

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(relative(now(), now()), "just now");
        assert_eq!(relative(now() - TimeDelta::seconds(42), now()), "42 s ago");
        assert_eq!(relative(t(55), now()), "5 min ago");
        assert_eq!(relative(t(0), now()), "1 h ago");
        assert_eq!(relative(t(-65), now()), "2 h 5 min ago");
        assert_eq!(relative(t(60 + 26 * 60), now()), "in 1 d 2 h");
    }

    #[test]
    fn the_maintenance_panel_lists_windows_and_covered_agents_are_marked() {
        use crate::domain::maintenance::WindowRequest;
        let made = |r: WindowRequest| r.parse(uuid::Uuid::nil(), chrono_tz::UTC, t(0)).unwrap();
        let open = made(WindowRequest {
            name: Some("Re-connect <A>".into()),
            start_at: Some(t(30).to_rfc3339()),
            end_at: Some(t(90).to_rfc3339()),
            agent_ids: Some(vec![A.into()]),
            ..WindowRequest::default()
        });
        let sunday = made(WindowRequest {
            name: Some("Sunday".into()),
            schedule: Some("0 2 * * SUN".into()),
            duration: Some("2h".into()),
            timezone: Some("Europe/Berlin".into()),
            ..WindowRequest::default()
        });
        let over = made(WindowRequest {
            name: Some("Last week".into()),
            start_at: Some(t(-600).to_rfc3339()),
            end_at: Some(t(-500).to_rfc3339()),
            ..WindowRequest::default()
        });
        let windows = vec![over, sunday, open];
        let agents: Vec<AgentView> = [record(A, Some("alpha")), record(B, Some("beta"))]
            .iter()
            .map(|r| {
                let mut v = view(r);
                v.agent = v.agent.in_windows(&Coverage::at(&windows, now()));
                v
            })
            .collect();
        let health = MonitorHealth {
            maintenance: windows,
            ..ok_monitor()
        };
        let html = render(&agents, &Filter::default(), &health, &[], now(), Zone::UTC);
        assert!(
            row(&html, A).contains("<span class=\"mt\">maintenance</span>"),
            "{html}"
        );
        assert!(!row(&html, B).contains("maintenance"), "{html}");
        let panel = &html[html.find("id=\"maintenance\"").expect("a panel")..];
        let panel = &panel[..panel.find("</section>").unwrap()];
        // Open first (until when), then the next to open, then those over; names escaped.
        let at = |text: &str| {
            panel
                .find(text)
                .unwrap_or_else(|| panic!("{text}: {panel}"))
        };
        assert!(at("Re-connect &#60;A&#62;") < at("Sunday") && at("Sunday") < at("Last week"));
        assert!(
            panel.contains("active</span> until <time datetime=\"2026-11-28T13:30:00Z\""),
            "{panel}"
        );
        // 29 November 2026, a Sunday: 02:00 in Berlin is 01:00 UTC.
        assert!(panel.contains("0 2 * * SUN (Europe/Berlin) for 2h, every agent; next <time datetime=\"2026-11-29T01:00:00Z\""), "{panel}");
        assert!(panel.contains("once, every agent; over"), "{panel}");
        assert!(panel.contains("once, 1 agent"), "{panel}");
        let none = render(
            &agents,
            &Filter::default(),
            &ok_monitor(),
            &[],
            now(),
            Zone::UTC,
        );
        assert!(!none.contains("id=\"maintenance\""), "no windows, no panel");
        // The agent's own page says so too.
        let covered = render_agent(&agents[0], &[], None, now(), Zone::UTC);
        assert!(covered.contains("<dt>Maintenance</dt>"), "{covered}");
        let free = render_agent(&agents[1], &[], None, now(), Zone::UTC);
        assert!(!free.contains("<dt>Maintenance</dt>"), "{free}");
    }
}
