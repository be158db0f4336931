//! What a digest says, shared by the Slack and Discord formatters (each renders and escapes it
//! for its markup): the headline, its colour, and its parts as labelled texts. Pure. Every
//! list is bounded (names and dead webhooks [`Digest::NAMED`] at most, and a budget of
//! characters), so 1,000 unhealthy agents still make one message within the platforms' limits.

use crate::domain::digest::{DeadFact, Digest, IntegrationFact, UnhealthyAgent};
use crate::domain::{EventKind, Zone};

use super::text::{self, AMBER, GREEN, RED};

/// Characters the unhealthy agents' lines may take in all: ten of the longest (about 170
/// characters each) always fit, and with "…and N more" it stays well under a Slack section's
/// 3,000 and Discord's description of 4,096.
pub const AGENTS_BUDGET: usize = 2_000;
/// Characters the dead webhooks' lines may take: with "…and N more", under a Discord field's
/// 1,024.
pub const DEAD_BUDGET: usize = 980;

/// One plain line for the header and the notification: how the fleet is.
pub fn headline(d: &Digest) -> String {
    let icon = if d.unhealthy_count > 0 {
        "📋🔴"
    } else {
        "📋✅"
    };
    let agents = if d.watched == 1 { "agent" } else { "agents" };
    format!(
        "{icon} ravan-watch digest: {} of {} {agents} healthy",
        d.healthy, d.watched
    )
}

/// Red when an agent or integration is unhealthy, amber when something did not get through
/// (or is not known), else green.
pub fn colour(d: &Digest) -> u32 {
    let integration_down = d.integrations.iter().any(|i| i.healthy == Some(false));
    if d.unhealthy_count > 0 || integration_down {
        RED
    } else if d.dead_count > 0 || d.failed > 0 || d.unknown > 0 {
        AMBER
    } else {
        GREEN
    }
}

/// "42 watched · 40 healthy · 1 unhealthy · 1 not known yet".
pub fn agents_line(d: &Digest) -> String {
    let mut parts = vec![
        format!("{} watched", d.watched),
        format!("{} healthy", d.healthy),
        format!("{} unhealthy", d.unhealthy_count),
    ];
    if d.unknown > 0 {
        parts.push(format!("{} not known yet", d.unknown));
    }
    parts.join(" · ")
}

/// The unhealthy agents' lines, as many as fit [`AGENTS_BUDGET`] (ten), then "…and N more" when any
/// is left out; `None` when none is unhealthy. `show(s, max)` escapes untrusted text for the
/// platform; `code(id)` renders an id.
pub fn unhealthy_lines(
    d: &Digest,
    zone: Zone,
    show: impl Fn(&str, usize) -> String,
    code: impl Fn(&str) -> String,
) -> Option<String> {
    if d.unhealthy_count == 0 {
        return None;
    }
    let line = |u: &UnhealthyAgent| {
        let id = u.agent.id.to_string();
        let who = match text::agent_name(&u.agent) {
            Some(name) => format!("{} {}", show(name, 60), code(&id)),
            None => code(&id),
        };
        let since = u
            .since
            .map(|t| format!(" since {}", text::timestamp(t, zone)))
            .unwrap_or_default();
        format!("• {who} — {}{since}", show(&u.status, 24))
    };
    let (lines, _) = text::take_fitting(&d.unhealthy, Digest::NAMED, AGENTS_BUDGET, line, |l| {
        l.chars().count() + 1
    });
    Some(with_more(lines, d.unhealthy_count))
}

/// The label of the alert counts: since the previous digest, or since a time.
pub fn alerts_label(d: &Digest, zone: Zone) -> String {
    if d.since_previous {
        format!(
            "Alerts since the previous digest ({})",
            text::timestamp(d.since, zone)
        )
    } else {
        format!("Alerts since {}", text::timestamp(d.since, zone))
    }
}

/// "3 down · 2 recovered · 1 webhook_dead", or "none".
pub fn alerts_line(d: &Digest) -> String {
    if d.alerts.is_empty() {
        return "none".to_owned();
    }
    // The kinds come from the store: only known names are shown as they are.
    d.alerts
        .iter()
        .map(|k| {
            let known = k.kind.parse::<EventKind>().is_ok();
            let kind = if known { k.kind.as_str() } else { "other" };
            format!("{} {kind}", k.count)
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The integrations' lines; `None` when none was ever checked.
pub fn integration_lines(
    d: &Digest,
    zone: Zone,
    show: impl Fn(&str, usize) -> String,
) -> Option<String> {
    if d.integrations.is_empty() {
        return None;
    }
    let line = |i: &IntegrationFact| {
        let health = match i.healthy {
            Some(true) => "healthy",
            Some(false) => "unhealthy",
            None => "not checked yet",
        };
        let status = i
            .status
            .as_deref()
            .map(|s| format!(" ({})", show(s, 24)))
            .unwrap_or_default();
        let since = i
            .since
            .map(|t| format!(" since {}", text::timestamp(t, zone)))
            .unwrap_or_default();
        format!("• {}: {health}{status}{since}", i.name.label())
    };
    Some(
        d.integrations
            .iter()
            .map(line)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// "2 pending · 1 failed since …", or "none".
pub fn undelivered_line(d: &Digest, zone: Zone) -> String {
    if d.pending == 0 && d.failed == 0 {
        return "none".to_owned();
    }
    format!(
        "{} pending · {} failed since {}",
        d.pending,
        d.failed,
        text::timestamp(d.since, zone)
    )
}

/// The dead webhooks' lines (masked), or "none".
pub fn dead_lines(d: &Digest, zone: Zone, show: impl Fn(&str, usize) -> String) -> String {
    if d.dead_count == 0 {
        return "none".to_owned();
    }
    let line = |w: &DeadFact| {
        format!(
            "• {} {} since {}",
            w.platform.label(),
            show(&w.webhook, 100),
            text::timestamp(w.since, zone)
        )
    };
    let (lines, _) = text::take_fitting(&d.dead_webhooks, Digest::NAMED, DEAD_BUDGET, line, |l| {
        l.chars().count() + 1
    });
    with_more(lines, d.dead_count)
}

/// `lines`, then "…and N more" for those of `all` not among them.
fn with_more(lines: Vec<String>, all: usize) -> String {
    let more = all.saturating_sub(lines.len());
    let mut out = lines.join("\n");
    if more > 0 {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&text::and_more(more));
    }
    out
}
