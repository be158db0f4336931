//! Wording and length rules shared by the Slack and Discord formatters, so both platforms say the
//! same thing and there is exactly one truncation that never cuts an escape sequence in half.

use chrono::{DateTime, Duration, Utc};

use crate::domain::alert::{
    AgentAlert, AgentAlertKind, AgentRef, Alert, IntegrationAlert, IntegrationAlertKind,
    IntegrationName, MonitorAlertKind, WebhookAlert,
};
use crate::domain::{Account, CLIPPED, Clipped, Connection, HEALTHY_STATUS, Zone};
pub use crate::util::{MARKER, fit, truncate};
use crate::util::{UnitNames, two_units};

/// Shown instead of a blank string, so no field is ever empty.
pub const EMPTY: &str = "(empty)";
/// U+200B: breaks `@everyone` and markup without changing what a reader sees.
pub const ZWSP: char = '\u{200B}';

/// Colours of the alert bar: Slack's brand red, green and amber.
pub const RED: u32 = 0xE01E5A;
pub const GREEN: u32 = 0x2EB67D;
pub const AMBER: u32 = 0xECB22E;

/// Caps of the untrusted parts of the headline, so it stays one short line whatever Ravan sends.
const HEADLINE_NAME_MAX: usize = 40;
const HEADLINE_STATUS_MAX: usize = 24;

/// Turns `s` into escape units, one per character: `escape(previous, c, next)` gives the text for
/// `c`. Control characters (newlines included) become spaces first, so untrusted text stays on
/// one line and cannot start a quote, heading or list on a line of its own.
pub fn escaped<'a, F>(s: &'a str, escape: F) -> impl Iterator<Item = String> + 'a
where
    F: Fn(Option<char>, char, Option<char>) -> String + 'a,
{
    let flat = |c: char| if c.is_control() { ' ' } else { c };
    let mut chars = s.chars().map(flat).peekable();
    let mut prev = None;
    std::iter::from_fn(move || {
        let c = chars.next()?;
        let unit = escape(prev, c, chars.peek().copied());
        prev = Some(c);
        Some(unit)
    })
}

/// Untrusted `s`, escaped by `escape` and cut to `max_chars`: the one path every piece of Ravan
/// text takes into a message. A blank string shows as [`EMPTY`].
pub fn render<F>(s: &str, max_chars: usize, escape: F) -> String
where
    F: Fn(Option<char>, char, Option<char>) -> String,
{
    let s = if s.trim().is_empty() { EMPTY } else { s };
    fit(escaped(s, escape), max_chars)
}

/// An account's error (or other clipped Ravan text) rendered by `render` into `max_chars`,
/// ending with [`CLIPPED`] when anything of it was cut: where it entered, or here to fit the
/// message. A bare "…" would not tell the reader that Ravan said more.
pub fn clipped<const N: usize>(
    s: &Clipped<N>,
    max_chars: usize,
    render: impl Fn(&str, usize) -> String,
) -> String {
    let whole = render(s.as_str(), max_chars);
    let cut_here = whole.ends_with(MARKER) && !s.kept().ends_with(MARKER);
    if !s.is_clipped() && !cut_here {
        return whole;
    }
    let room = max_chars.saturating_sub(CLIPPED.chars().count());
    let body = render(s.kept(), room);
    let body = body.strip_suffix(MARKER).unwrap_or(&body);
    format!("{body}{CLIPPED}")
}

/// `s` on one line, cut to `max_chars`, without escaping: for plain-text contexts.
pub fn one_line(s: &str, max_chars: usize) -> String {
    render(s, max_chars, |_, c, _| c.to_string())
}

/// True when `c` sits inside a word (`not_connected`), where `_` cannot open or close emphasis
/// on either platform, so it can stay as it is.
pub fn intraword(prev: Option<char>, next: Option<char>) -> bool {
    prev.is_some_and(char::is_alphanumeric) && next.is_some_and(char::is_alphanumeric)
}

/// A duration in alerts, two units at most: "45s", "12m 5s", "3h 5m", "2d 4h".
pub fn human_duration(d: Duration) -> String {
    const SHORT: UnitNames = UnitNames {
        day: "d",
        hour: "h",
        minute: "m",
        second: "s",
        gap: "",
    };
    two_units(d.num_seconds(), &SHORT)
}

/// A plain time in `zone` with its abbreviation, e.g. `2026-11-28 13:00:05 CET` (no platform
/// date markup: it is a control sequence in Slack, and it would show the reader's zone, not
/// the team's).
pub fn timestamp(t: DateTime<Utc>, zone: Zone) -> String {
    zone.write(t)
}

/// The status change, `from → to`, or `first seen to` when the agent was never seen healthy.
/// `show` renders each (untrusted) status for the target context.
pub fn change(from: Option<&str>, to: &str, show: impl Fn(&str) -> String) -> String {
    match from {
        Some(from) => format!("{} → {}", show(from), show(to)),
        None => format!("first seen {}", show(to)),
    }
}

/// How long the agent has been (or was) unhealthy at the time of the alert.
pub fn unhealthy_for(a: &AgentAlert) -> Duration {
    a.at - a.unhealthy_since
}

/// "12m 5s (since 2026-11-28 12:00:00 UTC)": how long, and since when, the agent is unhealthy.
pub fn unhealthy_summary(a: &AgentAlert, zone: Zone) -> String {
    format!(
        "{} (since {})",
        human_duration(unhealthy_for(a)),
        timestamp(a.unhealthy_since, zone)
    )
}

/// The label of the time an agent alert was seen.
pub fn seen_label(kind: AgentAlertKind) -> &'static str {
    match kind {
        AgentAlertKind::Recovered => "Healthy again at",
        AgentAlertKind::Found => "Answering again at",
        _ => "Seen",
    }
}

/// The label of `at - unhealthy_since` in an agent alert.
pub fn duration_label(kind: AgentAlertKind) -> &'static str {
    match kind {
        AgentAlertKind::Missing => "Not found for",
        AgentAlertKind::Found => "Was missing for",
        _ => "Unhealthy for",
    }
}

/// What a missing alert tells the reader to do.
pub fn missing_hint(a: &AgentAlert) -> String {
    format!(
        "Ravan answers 404 Not Found for this agent: it was deleted, or its id is wrong. \
         Check the id in Ravan; to stop watching it, DELETE /agents/{}.",
        a.agent.id
    )
}

/// Which connection the alert's status is of, e.g. `org-linked (Acme Team)`; the account's
/// name rendered by `show`. `None` when the alert does not know (a missing alert, or one queued
/// before connections were recorded).
pub fn connection(a: &AgentAlert, show: impl Fn(&str) -> String) -> Option<String> {
    let connection = a.connection?;
    let named = match connection {
        Connection::OrgLinked => a
            .accounts
            .first()
            .map(|acc| acc.account_name.as_str())
            .filter(|n| !n.trim().is_empty()),
        _ => None,
    };
    Some(match named {
        Some(name) => format!("{} ({})", connection.label(), show(name)),
        None => connection.label().to_owned(),
    })
}

/// Labels of a monitor alert's reason, time seen and duration (`at - since`).
pub fn monitor_labels(kind: MonitorAlertKind) -> [&'static str; 3] {
    match kind {
        MonitorAlertKind::Down => ["Reason", "Seen", "Failing for"],
        MonitorAlertKind::Recovered => [
            "It was failing because",
            "Working again at",
            "Was broken for",
        ],
    }
}

/// The bar colour of an alert.
pub fn colour(alert: &Alert) -> u32 {
    match alert {
        Alert::Agent(a) if matches!(a.kind, AgentAlertKind::Recovered | AgentAlertKind::Found) => {
            GREEN
        }
        Alert::Agent(a) if a.kind == AgentAlertKind::Missing => AMBER,
        Alert::Agent(_) => RED,
        Alert::Monitor(m) if m.kind == MonitorAlertKind::Recovered => GREEN,
        Alert::Monitor(_) | Alert::Webhook(_) => AMBER,
        Alert::Integration(i) => match i.kind {
            IntegrationAlertKind::Down => RED,
            IntegrationAlertKind::Recovered => GREEN,
            IntegrationAlertKind::TokenExpiring => AMBER,
        },
    }
}

/// The short name of an integration in headlines and lists.
fn integration_short(name: IntegrationName) -> &'static str {
    match name {
        IntegrationName::CalcomOrg => "The organisation's Cal.com",
        IntegrationName::Ghl => "GoHighLevel",
    }
}

/// What an integration's alert tells the reader to do.
pub fn integration_todo(i: &IntegrationAlert) -> &'static str {
    match (i.kind, i.integration) {
        (IntegrationAlertKind::Recovered, _) => "Nothing: bookings through it work again.",
        (IntegrationAlertKind::TokenExpiring, _) => {
            "Reconnect Cal.com in Ravan (the organisation's Cal.com integration) before then: \
             its token has not been renewed for a day, so Ravan may not renew it by itself."
        }
        (IntegrationAlertKind::Down, IntegrationName::CalcomOrg) => {
            "Reconnect Cal.com in Ravan (the organisation's Cal.com integration): every \
             org-linked agent books through it."
        }
        (IntegrationAlertKind::Down, IntegrationName::Ghl) => {
            "Reconnect GoHighLevel in Ravan: agents with GoHighLevel calendars cannot book."
        }
    }
}

/// What an integration's alert says, as (label, text) pairs for both platforms: which
/// integration, its status, what Ravan said, the token's expiry, since when, the agents it
/// stands for, and what to do. `show(s, max)` escapes and bounds text from outside (statuses,
/// the detail, agents' names). Each text stays under 1,024 characters (a Discord field).
pub fn integration_facts(
    i: &IntegrationAlert,
    zone: Zone,
    show: impl Fn(&str, usize) -> String,
) -> Vec<(&'static str, String)> {
    let status = |s: &str| show(s, 60);
    let mut facts = vec![(
        "Integration",
        format!("{} ({})", i.integration.label(), i.integration.as_str()),
    )];
    let change_text = match (i.kind, i.from.as_deref()) {
        (IntegrationAlertKind::TokenExpiring, _) | (_, None) => status(&i.status),
        (_, Some(from)) => format!("{} → {}", status(from), status(&i.status)),
    };
    facts.push(("Status", change_text));
    if let Some(detail) = &i.detail {
        facts.push(("Ravan says", show(detail, 600)));
    }
    if let Some(expires) = i.token_expires {
        let left = if expires > i.at {
            format!(" (in {})", human_duration(expires - i.at))
        } else {
            " (already past)".to_owned()
        };
        facts.push((
            "Token expires",
            format!("{}{left}", timestamp(expires, zone)),
        ));
    }
    match i.kind {
        IntegrationAlertKind::Down => {
            facts.push(("Unhealthy since", timestamp(i.since, zone)));
            facts.push(("Seen", timestamp(i.at, zone)));
        }
        IntegrationAlertKind::Recovered => {
            facts.push(("Healthy again at", timestamp(i.at, zone)));
            facts.push(("Was down for", human_duration(i.at - i.since)));
        }
        IntegrationAlertKind::TokenExpiring => {
            facts.push(("Expiry unchanged since", timestamp(i.since, zone)));
        }
    }
    if let Some(n) = i
        .org_linked
        .filter(|_| i.kind != IntegrationAlertKind::TokenExpiring)
    {
        let agents = if n == 1 { "agent" } else { "agents" };
        facts.push((
            "Org-linked agents",
            format!("{n} watched {agents} book through it"),
        ));
    }
    if i.affected_count > 0 {
        let (names, _) = take_fitting(
            &i.affected,
            IntegrationAlert::NAMED,
            900,
            |a| show(&agent_label(a), 80),
            |n| n.chars().count() + 2,
        );
        let more = i.affected_count.saturating_sub(names.len());
        let more = (more > 0).then(|| format!(", {}", and_more(more)));
        let names = format!("{}{}", names.join(", "), more.unwrap_or_default());
        facts.push(("Agents affected", names));
    }
    facts.push(("What to do", integration_todo(i).to_owned()));
    facts
}

/// What a dead webhook's announcement says, as (label, text) pairs for both platforms: which
/// webhook, what it answered, whose alerts it carried, and what to do. `show(s, max)` escapes
/// and bounds text from outside (the answer, agents' names).
pub fn webhook_facts(
    w: &WebhookAlert,
    show: impl Fn(&str, usize) -> String,
) -> Vec<(&'static str, String)> {
    let name = w.platform.label();
    let agents = if w.agents.is_empty() {
        "none of the watched agents (it is a default destination)".to_owned()
    } else {
        // Within Discord's 1024 characters a field, whatever the names.
        let (names, _) = take_fitting(
            &w.agents,
            WebhookAlert::NAMED,
            900,
            |a| show(&agent_label(a), 80),
            |n| n.chars().count() + 2,
        );
        let more = w.agents_routed.saturating_sub(names.len());
        let more = (more > 0).then(|| format!(", {}", and_more(more)));
        format!("{}{}", names.join(", "), more.unwrap_or_default())
    };
    let (setting, field) = (w.platform.setting(), w.platform.agent_field());
    let todo = match (w.default, w.agents.first()) {
        (true, _) => {
            format!("Make a new {name} webhook, set it as {setting} and restart ravan-watch.")
        }
        (false, Some(a)) => format!(
            "Make a new {name} webhook and set it on each agent listed: \
             PATCH /agents/{} with {{\"{field}\": …}}.",
            a.id
        ),
        (false, None) => format!("Make a new {name} webhook and set it where this one was."),
    };
    vec![
        ("Webhook", show(&w.webhook, 300)),
        ("It answered", show(&w.answer, 300)),
        ("Agents whose alerts went to it", agents),
        ("What to do", todo),
    ]
}

/// An agent as a list names it: `Sales bot (3f2504e0-…)`, or its id.
fn agent_label(agent: &AgentRef) -> String {
    match agent_name(agent) {
        Some(name) => format!("{} ({})", one_line(name, 60), agent.id),
        None => agent.id.to_string(),
    }
}

/// Accounts that need attention first (unhealthy status or an error), otherwise in Ravan's order,
/// so a long list that has to be cut still shows the broken ones.
pub fn worst_first(accounts: &[Account]) -> Vec<&Account> {
    let mut sorted: Vec<&Account> = accounts.iter().collect();
    sorted.sort_by_key(|a| a.status == HEALTHY_STATUS && a.error.is_none());
    sorted
}

/// Renders `items` in order while at most `max_items` of them, costing at most `budget` in all,
/// fit; returns the rendered ones and how many were left out. Stops at the first that does not
/// fit, so the list is always a prefix, and renders nothing after it.
pub fn take_fitting<T, R>(
    items: &[T],
    max_items: usize,
    budget: usize,
    render: impl Fn(&T) -> R,
    cost: impl Fn(&R) -> usize,
) -> (Vec<R>, usize) {
    let mut kept = Vec::new();
    let mut used = 0;
    for item in items.iter().take(max_items) {
        let r = render(item);
        used += cost(&r);
        if used > budget {
            break;
        }
        kept.push(r);
    }
    let left_out = items.len() - kept.len();
    (kept, left_out)
}

/// The agent's name, unless it has none (a blank name counts as none: the id then names it).
pub fn agent_name(agent: &AgentRef) -> Option<&str> {
    agent.name.as_deref().filter(|n| !n.trim().is_empty())
}

/// The agent as the headline names it: `Sales bot (3f2504e0…)`, or the full id when unnamed.
fn who(agent: &AgentRef) -> String {
    let id = agent.id.to_string();
    match agent_name(agent) {
        Some(name) => format!(
            "{} ({}{MARKER})",
            one_line(name, HEADLINE_NAME_MAX),
            &id[..8]
        ),
        None => id,
    }
}

/// One plain line saying what happened, shared by both platforms (which escape it for their
/// markup). Untrusted parts are capped, so it stays well under Slack's 150-char header.
pub fn headline(alert: &Alert) -> String {
    let status = |s: &str| one_line(s, HEADLINE_STATUS_MAX);
    match alert {
        Alert::Agent(a) => {
            let who = who(&a.agent);
            let change = change(a.from.as_deref(), &a.to, status);
            let dur = human_duration(unhealthy_for(a));
            // Named only when it is not the private one people assume.
            let via = match a.connection {
                Some(Connection::OrgLinked) => " (org-linked)",
                _ => "",
            };
            match a.kind {
                AgentAlertKind::Down => {
                    format!("🔴 {who} lost its{via} Cal.com connection: {change}")
                }
                AgentAlertKind::Changed => {
                    format!("🟠 {who}'s{via} Cal.com connection changed: {change}")
                }
                AgentAlertKind::Reminder => {
                    format!("⏰ {who} is still {} (for {dur})", status(&a.to))
                }
                AgentAlertKind::Recovered => {
                    format!("✅ {who} recovered: {change} (unhealthy for {dur})")
                }
                AgentAlertKind::Missing => {
                    format!("❓ {who} not found at Ravan: deleted, or a wrong id?")
                }
                AgentAlertKind::Found => {
                    format!("🔎 {who} is found at Ravan again (missing for {dur})")
                }
            }
        }
        Alert::Monitor(m) => match m.kind {
            MonitorAlertKind::Down => "⚠️ ravan-watch cannot poll the Ravan API".to_owned(),
            MonitorAlertKind::Recovered => format!(
                "✅ ravan-watch can poll the Ravan API again (broken for {})",
                human_duration(m.at - m.since)
            ),
        },
        Alert::Webhook(w) => format!(
            "📪 A {} webhook is dead: alerts sent to it no longer arrive",
            w.platform.label()
        ),
        Alert::Integration(i) => {
            let name = integration_short(i.integration);
            match i.kind {
                IntegrationAlertKind::Down => format!(
                    "🔴 {name} integration is down: {}",
                    change(i.from.as_deref(), &i.status, status)
                ),
                IntegrationAlertKind::Recovered => format!(
                    "✅ {name} integration recovered (down for {})",
                    human_duration(i.at - i.since)
                ),
                IntegrationAlertKind::TokenExpiring => match i.token_expires {
                    Some(at) => format!(
                        "⏳ {name} token expires in {}: reconnect Cal.com in Ravan",
                        human_duration(at - i.at)
                    ),
                    None => format!("⏳ {name} token expires soon: reconnect Cal.com in Ravan"),
                },
            }
        }
    }
}

// ------------------------------------------------------------------ grouped messages

/// Lines a grouped message lists before "…and N more": enough to see who, short enough to read.
pub const GROUP_LINES_MAX: usize = 40;

/// Severity order of a grouped message: what needs action first.
fn rank(alert: &Alert) -> u8 {
    match alert {
        Alert::Monitor(m) if m.kind == MonitorAlertKind::Down => 0,
        Alert::Agent(a) => match a.kind {
            AgentAlertKind::Down => 1,
            AgentAlertKind::Changed => 2,
            AgentAlertKind::Reminder => 3,
            AgentAlertKind::Missing => 4,
            AgentAlertKind::Recovered => 5,
            AgentAlertKind::Found => 6,
        },
        Alert::Monitor(_) => 7,
        Alert::Webhook(_) => 8,
        Alert::Integration(i) => match i.kind {
            IntegrationAlertKind::Down => 9,
            IntegrationAlertKind::TokenExpiring => 10,
            IntegrationAlertKind::Recovered => 11,
        },
    }
}

/// Where a [`rank`] comes in a grouped message: a broken integration right after broken
/// polling (it breaks many agents at once), its token warning with the other warnings, its
/// recovery with the other recoveries.
fn position(rank: u8) -> u8 {
    match rank {
        0 => 0,
        9 => 1,
        1..=4 => rank + 1,
        10 => 6,
        5 => 7,
        11 => 8,
        r => r + 3,
    }
}

/// The alerts, most severe first, each kind in its original order.
pub fn group_sorted(alerts: &[Alert]) -> Vec<&Alert> {
    let mut sorted: Vec<&Alert> = alerts.iter().collect();
    sorted.sort_by_key(|a| position(rank(a)));
    sorted
}

/// The counts of a grouped message, always exact however much of the list fits:
/// "🔴 37 agents lost their Cal.com connection · ✅ 5 recovered".
pub fn group_headline(alerts: &[Alert]) -> String {
    let count = |r: u8| alerts.iter().filter(|a| rank(a) == r).count();
    let agents = |n: usize| {
        if n == 1 {
            "1 agent".to_owned()
        } else {
            format!("{n} agents")
        }
    };
    let mut parts = Vec::new();
    if count(0) > 0 {
        parts.push("⚠️ ravan-watch cannot poll the Ravan API".to_owned());
    }
    for (r, say) in [
        (1, "🔴 {} lost their Cal.com connection"),
        (2, "🟠 {} changed status"),
        (3, "⏰ {} still unhealthy"),
        (4, "❓ {} not found at Ravan"),
        (5, "✅ {} recovered"),
        (6, "🔎 {} found again"),
    ] {
        let n = count(r);
        if n > 0 {
            parts.push(say.replace("{}", &agents(n)));
        }
    }
    if count(7) > 0 {
        parts.push("✅ ravan-watch can poll the Ravan API again".to_owned());
    }
    if count(8) > 0 {
        parts.push(format!("📪 {} dead webhooks", count(8)));
    }
    let integrations = |n: usize| match n {
        1 => "1 integration".to_owned(),
        n => format!("{n} integrations"),
    };
    for (r, say) in [
        (9, "🔴 {} down"),
        (10, "⏳ {} with an expiring token"),
        (11, "✅ {} recovered"),
    ] {
        let n = count(r);
        if n > 0 {
            parts.push(say.replace("{}", &integrations(n)));
        }
    }
    parts.join(" · ")
}

/// The colour of a grouped message: red if any agent is unhealthy, else amber if polling is
/// broken or an agent is missing, else green.
pub fn group_colour(alerts: &[Alert]) -> u32 {
    if alerts.iter().any(|a| matches!(rank(a), 1..=3 | 9)) {
        RED
    } else if alerts.iter().any(|a| matches!(rank(a), 0 | 4 | 8 | 10)) {
        AMBER
    } else {
        GREEN
    }
}

/// One line of a grouped message. `show(s, max)` escapes untrusted text for the platform and
/// bounds it; `code(id)` renders an agent id. Each line stays under about 300 characters.
pub fn group_line(
    alert: &Alert,
    zone: Zone,
    show: impl Fn(&str, usize) -> String,
    code: impl Fn(&str) -> String,
) -> String {
    match alert {
        Alert::Agent(a) => {
            let id = a.agent.id.to_string();
            let who = match agent_name(&a.agent) {
                Some(name) => format!("{} {}", show(name, 60), code(&id)),
                None => code(&id),
            };
            let status = |s: &str| show(s, 24);
            let first_error = worst_first(&a.accounts)
                .into_iter()
                .find_map(|acc| acc.error.as_deref())
                .map(|e| format!(" — {}", show(e, 120)))
                .unwrap_or_default();
            let dur = human_duration(unhealthy_for(a));
            let via = match a.connection {
                Some(Connection::OrgLinked) => " (org-linked)",
                _ => "",
            };
            match a.kind {
                AgentAlertKind::Down => format!(
                    "🔴 {who} — {}{via}{first_error}",
                    change(a.from.as_deref(), &a.to, status)
                ),
                AgentAlertKind::Changed => format!(
                    "🟠 {who} — {}{via}{first_error}",
                    change(a.from.as_deref(), &a.to, status)
                ),
                AgentAlertKind::Reminder => {
                    format!("⏰ {who} — still {} for {dur}{first_error}", status(&a.to))
                }
                AgentAlertKind::Recovered => format!("✅ {who} — recovered after {dur}"),
                AgentAlertKind::Missing => {
                    format!("❓ {who} — not found at Ravan (deleted, or a wrong id?)")
                }
                AgentAlertKind::Found => format!("🔎 {who} — found again after {dur}"),
            }
        }
        Alert::Monitor(m) if m.kind == MonitorAlertKind::Down => {
            format!(
                "⚠️ ravan-watch cannot poll the Ravan API: {}",
                show(&m.reason, 200)
            )
        }
        Alert::Monitor(m) => format!(
            "✅ ravan-watch can poll the Ravan API again (broken for {})",
            human_duration(m.at - m.since)
        ),
        Alert::Webhook(w) => format!(
            "📪 {} webhook {} is dead: {}",
            w.platform.label(),
            show(&w.webhook, 120),
            show(&w.answer, 120)
        ),
        Alert::Integration(i) => {
            let name = integration_short(i.integration);
            let status = |s: &str| show(s, 24);
            match i.kind {
                IntegrationAlertKind::Down => {
                    let detail = i
                        .detail
                        .as_deref()
                        .map(|d| format!(" — {}", show(d, 120)))
                        .unwrap_or_default();
                    format!(
                        "🔴 {name} integration — {}{detail}",
                        change(i.from.as_deref(), &i.status, status)
                    )
                }
                IntegrationAlertKind::Recovered => format!(
                    "✅ {name} integration — recovered after {}",
                    human_duration(i.at - i.since)
                ),
                IntegrationAlertKind::TokenExpiring => format!(
                    "⏳ {name} token — expires {}",
                    i.token_expires
                        .map_or_else(|| "soon".to_owned(), |t| timestamp(t, zone))
                ),
            }
        }
    }
}

/// The lines of a grouped message that fit `budget` characters (and [`GROUP_LINES_MAX`]), and
/// how many were left out.
pub fn group_lines(
    alerts: &[Alert],
    zone: Zone,
    budget: usize,
    show: impl Fn(&str, usize) -> String,
    code: impl Fn(&str) -> String,
) -> (Vec<String>, usize) {
    let sorted = group_sorted(alerts);
    take_fitting(
        &sorted,
        GROUP_LINES_MAX,
        budget,
        |a| group_line(a, zone, &show, &code),
        // Each line costs its length plus the newline that joins it.
        |l| l.chars().count() + 1,
    )
}

/// "…and 960 more", for the end of a cut list.
pub fn and_more(n: usize) -> String {
    format!("…and {n} more")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{AgentAlert, MonitorAlert};
    use chrono::TimeZone;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, h, m, s).unwrap()
    }

    fn agent(kind: AgentAlertKind, name: Option<&str>, from: Option<&str>, to: &str) -> Alert {
        Alert::Agent(AgentAlert {
            kind,
            agent: AgentRef {
                id: "3f2504e0-4f89-11d3-9a0c-0305e82c3301".parse().unwrap(),
                name: name.map(str::to_owned),
            },
            from: from.map(str::to_owned),
            to: to.to_owned(),
            connected: false,
            accounts: vec![],
            connection: None,
            at: t(12, 12, 5),
            unhealthy_since: t(12, 0, 0),
        })
    }

    #[test]
    fn truncate_keeps_short_text() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn truncate_counts_code_points_and_marks_the_cut() {
        let s = "é".repeat(300);
        let cut = truncate(&s, 256);
        assert_eq!(cut.chars().count(), 256);
        assert!(cut.ends_with(MARKER));
        assert_eq!(cut.trim_end_matches(MARKER), "é".repeat(255));

        let emoji = "🔥".repeat(10);
        assert_eq!(truncate(&emoji, 4), "🔥🔥🔥…");
        assert_eq!(truncate("abcd", 1), "…");
        assert_eq!(truncate("abcd", 0), "");
    }

    #[test]
    fn fit_never_splits_an_escape_sequence() {
        let units = ["a", "&lt;", "&lt;", "&lt;"];
        // "a&lt;" is 5 chars; the next unit would need 9 + 1 for the marker.
        assert_eq!(fit(units, 9), "a&lt;…");
        assert_eq!(fit(units, 13), "a&lt;&lt;&lt;");
        assert_eq!(fit(units, 12), "a&lt;&lt;…");
        assert_eq!(fit(units, 5), "a…");
    }

    #[test]
    fn escaped_flattens_control_characters_and_sees_neighbours() {
        let units: Vec<String> = escaped("a\nb", |p, c, n| {
            format!("{}{c}{}", p.unwrap_or('^'), n.unwrap_or('$'))
        })
        .collect();
        assert_eq!(units, ["^a ", "a b", " b$"]);
    }

    #[test]
    fn render_shows_blank_text_as_empty() {
        assert_eq!(one_line("  ", 50), EMPTY);
        assert_eq!(one_line("a\r\nb", 50), "a  b");
    }

    #[test]
    fn human_durations() {
        let cases = [
            (0, "0s"),
            (45, "45s"),
            (60, "1m"),
            (12 * 60 + 5, "12m 5s"),
            (12 * 60, "12m"),
            (3 * 3600 + 5 * 60 + 59, "3h 5m"),
            (4 * 3600, "4h"),
            (2 * 86_400 + 4 * 3600 + 30, "2d 4h"),
            (-30, "0s"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::seconds(secs)), want, "{secs}s");
        }
    }

    #[test]
    fn timestamps_are_plain_and_zoned() {
        assert_eq!(timestamp(t(12, 0, 5), Zone::UTC), "2026-11-28 12:00:05 UTC");
        let berlin = Zone::from(chrono_tz::Europe::Berlin);
        assert_eq!(timestamp(t(12, 0, 5), berlin), "2026-11-28 13:00:05 CET");
    }

    #[test]
    fn headlines_say_what_happened() {
        let down = agent(
            AgentAlertKind::Down,
            Some("Sales bot"),
            Some("active"),
            "errored",
        );
        assert_eq!(
            headline(&down),
            "🔴 Sales bot (3f2504e0…) lost its Cal.com connection: active → errored"
        );
        let first = agent(AgentAlertKind::Down, None, None, "errored");
        assert_eq!(
            headline(&first),
            "🔴 3f2504e0-4f89-11d3-9a0c-0305e82c3301 lost its Cal.com connection: first seen errored"
        );
        let changed = agent(
            AgentAlertKind::Changed,
            Some("Sales bot"),
            Some("errored"),
            "not_connected",
        );
        assert!(headline(&changed).contains("connection changed: errored → not_connected"));
        let reminder = agent(
            AgentAlertKind::Reminder,
            Some("Sales bot"),
            Some("active"),
            "errored",
        );
        assert!(headline(&reminder).ends_with("is still errored (for 12m 5s)"));
        let recovered = agent(
            AgentAlertKind::Recovered,
            Some("Sales bot"),
            Some("errored"),
            "active",
        );
        assert!(
            headline(&recovered).ends_with("recovered: errored → active (unhealthy for 12m 5s)")
        );
        let monitor = Alert::Monitor(MonitorAlert {
            kind: MonitorAlertKind::Recovered,
            reason: "x".into(),
            at: t(13, 0, 0),
            since: t(12, 0, 0),
        });
        assert!(headline(&monitor).ends_with("again (broken for 1h)"));
    }

    #[test]
    fn headline_stays_short_with_huge_untrusted_text() {
        let huge = "é\n".repeat(5000);
        let a = agent(AgentAlertKind::Changed, Some(&huge), Some(&huge), &huge);
        let h = headline(&a);
        assert!(h.chars().count() <= 150, "{} chars", h.chars().count());
        assert!(!h.contains('\n'));
    }

    /// Text clipped where it entered, or cut here to fit, says "[clipped]" at its end; text
    /// that fits is as it was.
    #[test]
    fn clipped_text_says_so_whoever_cut_it() {
        let plain = |s: &str, max: usize| render(s, max, |_, c, _| c.to_string());
        let short: Clipped<2000> = "token revoked".into();
        assert_eq!(clipped(&short, 100, plain), "token revoked");
        let at_entry: Clipped<30> = "x".repeat(100).into();
        assert_eq!(
            clipped(&at_entry, 100, plain),
            format!("{}{CLIPPED}", "x".repeat(19))
        );
        let here: Clipped<2000> = "y".repeat(1000).into();
        let out = clipped(&here, 50, plain);
        // The cut's own "…" gives way to the marker (one character short of the room).
        assert_eq!(out, format!("{}{CLIPPED}", "y".repeat(38)));
        let both: Clipped<2000> = "z".repeat(5000).into();
        let out = clipped(&both, 50, plain);
        assert!(out.ends_with(CLIPPED) && out.chars().count() <= 50, "{out}");
    }

    #[test]
    fn take_fitting_respects_count_and_budget() {
        let ten: Vec<usize> = (1..=10).collect();
        let (kept, out) = take_fitting(&ten, 3, 100, |&i| i * 10, |_| 1);
        assert_eq!((kept, out), (vec![10, 20, 30], 7));
        let (kept, out) = take_fitting(&[5, 5, 1, 1], 10, 10, |&c| c, |&c| c);
        assert_eq!((kept, out), (vec![5, 5], 2));
        let (kept, out) = take_fitting(&[1, 2], 10, 10, |&c| c, |&c| c);
        assert_eq!((kept, out), (vec![1, 2], 0));
        let (kept, out) = take_fitting(&[1, 2], 0, 10, |&c| c, |&c| c);
        assert_eq!((kept, out), (vec![], 2));
    }

    #[test]
    fn broken_accounts_come_first() {
        let acc = |status: &str, error: Option<&str>| Account {
            id: status.into(),
            account_name: Default::default(),
            status: status.into(),
            error: error.map(Into::into),
        };
        let list = [
            acc("active", None),
            acc("errored", None),
            acc("active", Some("x")),
        ];
        let order: Vec<_> = worst_first(&list)
            .iter()
            .map(|a| (a.status.as_str(), a.error.is_some()))
            .collect();
        assert_eq!(
            order,
            [("errored", false), ("active", true), ("active", false)]
        );
    }
}
