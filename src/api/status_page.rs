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
use crate::domain::muted_at;
use crate::leader::Role;
use crate::tracker::{MonitorState, Overrun};
use crate::util::{UnitNames, two_units};

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
        .map(|r| Agent::new(r, &state.default_webhooks, &dead, &[], Utc::now()))
        .collect();
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
    let health = MonitorHealth {
        leadership: Some(leadership),
        delivery_deaths: deaths.count,
        delivery_last_death: deaths.last,
        delivery_failing: state.delivery.failing(Utc::now()),
        ..MonitorHealth::new(
            &monitor,
            state.scheduler_running.load(atomic::Ordering::Acquire),
            &agents,
        )
    };
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
            last_overrun: state.last_overrun.clone(),
            overruns: state.overruns,
            ..Self::default()
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
        now: Stamp::new(now, now),
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
    now: Stamp,
    unhealthy: usize,
    unknown: usize,
    healthy: usize,
    monitor: MonitorView,
    agents: Vec<Card>,
}

/// A time, absolute and relative to the page's `now`.
struct Stamp {
    /// RFC 3339, for the `datetime` attribute.
    iso: String,
    /// `2026-11-28 12:00:00 UTC`.
    text: String,
    ago: String,
}

impl Stamp {
    fn new(t: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            iso: iso(t),
            text: t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
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
}

/// An overrun older than this no longer shows on the page.
const OVERRUN_SHOWN_FOR: TimeDelta = TimeDelta::hours(24);

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
            leadership: h.leadership.clone(),
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
                    (Stamp::new(o.started_at, now), said)
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

/// One agent's card.
struct Card {
    rank: Rank,
    class: &'static str,
    health: &'static str,
    name: Option<String>,
    id: String,
    status: Option<String>,
    connected: Option<bool>,
    /// `private`, `org-linked (Acme Team)`, `none`.
    connection: Option<String>,
    source: &'static str,
    missing_since: Option<Stamp>,
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
            _ if a.state.missing_alerted => (Rank::Unhealthy, "unhealthy", "not found at Ravan"),
            Some(false) => (Rank::Unhealthy, "unhealthy", "unhealthy"),
            Some(true) => (Rank::Healthy, "healthy", "healthy"),
            None if a.state.last_error.is_some() => {
                (Rank::Unknown, "unknown", "unknown: polls fail")
            }
            None => (Rank::Unknown, "unknown", "unknown: not polled yet"),
        };
        let muted = muted_at(a.muted, a.muted_until, now);
        Self {
            rank,
            class,
            health,
            name: a.name.clone(),
            id: a.agent_id.clone(),
            status: a.state.status.clone(),
            connected: a.state.connected,
            connection: a.state.connection.map(|c| {
                let named = a
                    .state
                    .accounts
                    .first()
                    .map(|acc| acc.account_name.as_str())
                    .filter(|n| c == "org_linked" && !n.trim().is_empty());
                match named {
                    Some(name) => format!("org-linked ({name})"),
                    None => c.replace('_', "-"),
                }
            }),
            source: match a.source {
                "env" => "from WATCH_AGENT_IDS",
                "api" => "added over the API",
                _ => "discovered in the organisation",
            },
            missing_since: a.state.missing_since.map(|t| Stamp::new(t, now)),
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
    use crate::domain::secret::SecretUrl;
    use crate::domain::{Account, AgentId, Observation};
    use crate::domain::{Platform, Webhook};
    use crate::store::{AgentRecord, DeadWebhook};
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
            status: status.to_owned(),
            connected: status == "active",
            accounts: vec![Account {
                id: "acc-1".into(),
                account_name: "Sales calendar".into(),
                status: status.to_owned(),
                error: error.map(str::to_owned),
            }],
            connection: None,
        });
        r.state.observed_at = Some(t(m));
        r.state.health_since = Some(t(m - 10));
        r.state.last_checked_at = Some(t(m));
        r
    }

    fn view(r: &AgentRecord) -> Agent {
        Agent::new(r, &[], &[], &[], Utc::now())
    }

    fn ok_monitor() -> MonitorHealth {
        MonitorHealth {
            scheduler_running: true,
            last_good_cycle_at: Some(t(59)),
            failing_since: None,
            last_poll_error: None,
            last_overrun: None,
            overruns: 0,
            ..MonitorHealth::default()
        }
    }

    fn page(records: &[AgentRecord]) -> String {
        let agents: Vec<Agent> = records.iter().map(view).collect();
        render(&agents, &ok_monitor(), now())
    }

    /// The HTML of one agent's card.
    fn card<'h>(html: &'h str, id: &str) -> &'h str {
        let start = html
            .find(&format!("id=\"agent-{id}\""))
            .unwrap_or_else(|| panic!("no card for {id} in {html}"));
        let end = start + html[start..].find("</article>").unwrap();
        &html[start..end]
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
        let html = page(&[r]);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b>") && !html.contains("<img") && !html.contains("<i>"));
        assert!(
            html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; co"),
            "{html}"
        );
        assert!(html.contains("&#60;b&#62;errored&#60;/b&#62;"), "{html}");
        assert!(
            html.contains("&#60;img src=x onerror=alert(1)&#62;"),
            "{html}"
        );
        assert!(html.contains("&#34;quoted&#34; &#60;i&#62;"), "{html}");
    }

    #[test]
    fn unhealthy_first_then_unknown_then_healthy() {
        let html = page(&[
            observed(record(A, Some("alpha")), "active", None, 59),
            record(B, Some("beta")),
            observed(record(C, Some("gamma")), "errored", Some("expired"), 59),
        ]);
        let pos = |id: &str| html.find(&format!("id=\"agent-{id}\"")).unwrap();
        assert!(pos(C) < pos(B) && pos(B) < pos(A), "{html}");
        assert!(html.contains("1 unhealthy, 1 unknown, 1 healthy"), "{html}");
        assert!(html.contains("3 watched agents"));
        assert!(
            html.contains("<title>(1 unhealthy) ravan-watch</title>"),
            "{html}"
        );
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
        assert!(card(&html, A).contains("(no name)"));
    }

    #[test]
    fn healthy_agent_shows_status_since_and_last_check() {
        let html = page(&[observed(record(A, Some("Sales bot")), "active", None, 58)]);
        let c = card(&html, A);
        assert!(c.contains("data-health=\"healthy\""), "{c}");
        assert!(c.contains(">healthy<"), "{c}");
        assert!(c.contains("active (connected)"), "{c}");
        assert!(c.contains("Sales bot") && c.contains(A));
        // Since 12:48, last checked 12:58, the page at 13:00.
        assert!(
            c.contains("2026-11-28T12:48:00Z") && c.contains("12 min ago"),
            "{c}"
        );
        assert!(
            c.contains("2026-11-28T12:58:00Z") && c.contains("2 min ago"),
            "{c}"
        );
        assert!(c.contains(">2026-11-28 12:58:00 UTC</time>"), "{c}");
        assert!(c.contains("Muted</dt><dd>no"), "{c}");
        assert!(!c.contains("Delivery"), "{c}");
    }

    #[test]
    fn unhealthy_agent_shows_status_and_account_errors() {
        let html = page(&[observed(
            record(A, Some("Support")),
            "not_connected",
            Some("Cal.com token revoked"),
            59,
        )]);
        let c = card(&html, A);
        assert!(c.contains("data-health=\"unhealthy\""), "{c}");
        assert!(c.contains("not_connected (not connected)"), "{c}");
        assert!(c.contains("Sales calendar: not_connected"), "{c}");
        assert!(c.contains("Cal.com token revoked"), "{c}");
    }

    #[test]
    fn never_polled_agent_is_unknown() {
        let html = page(&[record(A, Some("New"))]);
        let c = card(&html, A);
        assert!(c.contains("data-health=\"unknown\""), "{c}");
        assert!(c.contains("unknown: not polled yet"), "{c}");
        assert!(
            c.contains("Status</dt><dd class=\"status\">not polled yet"),
            "{c}"
        );
        assert!(c.contains("Last checked</dt><dd>never"), "{c}");
        assert!(!c.contains("Accounts"), "{c}");
    }

    #[test]
    fn agent_whose_polls_fail_before_any_observation_says_why() {
        let mut r = record(A, Some("Ghost"));
        r.state
            .poll_failed("Ravan answered 404: Agent not found".into(), t(59));
        let c = &card(&page(&[r]), A).to_owned();
        assert!(c.contains("unknown: polls fail"), "{c}");
        assert!(
            c.contains("failed: Ravan answered 404: Agent not found"),
            "{c}"
        );
        assert!(c.contains("2026-11-28T12:59:00Z"), "{c}");
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
        let html = page(&[until, forever, expired]);
        let c = card(&html, A);
        assert!(
            c.contains("Muted</dt><dd>yes, until <time datetime=\"2026-11-28T15:00:00Z\">"),
            "{c}"
        );
        assert!(c.contains("in 2 h"), "{c}");
        assert!(card(&html, B).contains("Muted</dt><dd>yes</dd>"));
        assert!(card(&html, C).contains("Muted</dt><dd>no</dd>"));
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
        let html = render(&[agent], &ok_monitor(), now());
        let c = card(&html, A);
        assert!(c.contains("Delivery</dt><dd class=\"warn\">"), "{c}");
        assert!(
            c.contains("no_service") && c.contains("hooks.slack.com"),
            "{c}"
        );
        assert!(!html.contains("secret"), "{html}");
    }

    #[test]
    fn empty_list_says_so() {
        let html = page(&[]);
        assert!(html.contains("0 watched agents"), "{html}");
        assert!(html.contains("No agents are watched yet"), "{html}");
        assert!(!html.contains("<article"));
    }

    #[test]
    fn monitor_health_is_shown() {
        let agents: Vec<Agent> = Vec::new();
        let ok = render(&agents, &ok_monitor(), now());
        assert!(ok.contains("Ravan API</dt><dd>reachable"), "{ok}");
        assert!(
            ok.contains("2026-11-28T12:59:00Z") && ok.contains("1 min ago"),
            "{ok}"
        );
        assert!(ok.contains("Scheduler</dt><dd>running"), "{ok}");

        let failing = MonitorHealth {
            failing_since: Some(t(50)),
            last_poll_error: Some("Ravan answered 500 <db down>".into()),
            ..ok_monitor()
        };
        let html = render(&agents, &failing, now());
        assert!(
            html.contains("class=\"card unhealthy\" id=\"monitor\""),
            "{html}"
        );
        assert!(
            html.contains("unreachable or refusing the credentials since"),
            "{html}"
        );
        assert!(html.contains("2026-11-28T12:50:00Z"), "{html}");
        assert!(
            html.contains("Ravan answered 500 &#60;db down&#62;"),
            "{html}"
        );

        let starting = MonitorHealth {
            last_good_cycle_at: None,
            ..ok_monitor()
        };
        let html = render(&agents, &starting, now());
        assert!(html.contains("no poll cycle yet") && html.contains("none yet"));

        let stopped = MonitorHealth {
            scheduler_running: false,
            ..ok_monitor()
        };
        assert!(render(&agents, &stopped, now()).contains("not running"));
    }

    #[test]
    fn monitor_health_comes_from_the_stored_state_and_the_agents() {
        let mut failing = record(A, None);
        failing.state.poll_failed("older".into(), t(10));
        let mut latest = record(B, None);
        latest.state.poll_failed("latest".into(), t(20));
        let agents = [view(&failing), view(&latest)];
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
    fn page_refreshes_itself_fits_a_phone_and_has_a_dark_mode_without_scripts() {
        let html = page(&[record(A, None)]);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains(r#"<meta http-equiv="refresh" content="30">"#));
        assert!(
            html.contains(
                r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
            )
        );
        assert!(html.contains("@media (prefers-color-scheme:dark)"));
        assert!(!html.contains("<script"));
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
}
