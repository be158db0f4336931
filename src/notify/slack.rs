//! Slack incoming-webhook payloads. Blocks sit inside one attachment because that is the only way
//! to get a coloured bar; every string from Ravan is mrkdwn-escaped so it can neither mention
//! anyone nor break the markup, and every block stays inside Block Kit's limits.
//!
//! Escaping: `&`, `<`, `>` become entities; `@` is followed by a zero-width space; the formatting
//! characters `*`, `~`, `` ` `` and `_` are wrapped in zero-width spaces, which stops them opening
//! or closing bold, strike, code or italics (except `_` inside a word, like `not_connected`, which
//! Slack never treats as italics). Code spans are not used for untrusted text, because a backtick
//! inside it would close the span.

use serde_json::{Value, json};

use crate::domain::alert::{
    AgentAlert, AgentAlertKind, Alert, IntegrationAlert, MonitorAlert, WebhookAlert,
};
use crate::domain::{Account, Digest, Zone};
use crate::notify::deliver::{self, DeliveryError, RetryPolicy};
use crate::notify::destination::{Destination, Item};
use crate::notify::text::{self, ZWSP};

/// Slack behind the [`Destination`] trait: success is `200 ok` only, a gone webhook says so in
/// the body (`no_service` …), and one message a second per webhook.
pub struct Slack;

/// Slack answers that mean the webhook is gone, whatever the status code.
const DEAD: &[&str] = &[
    "no_service",
    "no_active_hooks",
    "channel_not_found",
    "channel_is_archived",
    "invalid_token",
    "team_disabled",
    "action_prohibited",
];

impl Destination for Slack {
    fn message(&self, item: Item<'_>, zone: Zone) -> Value {
        message(item.alert, zone)
    }

    fn group_message(&self, items: &[Item<'_>], zone: Zone) -> Value {
        group_message(&crate::notify::alerts_of(items), zone)
    }

    fn digest_message(&self, digest: &Digest, zone: Zone) -> Value {
        self::digest(digest, zone)
    }

    fn success(&self, status: u16, body: &str) -> Option<Result<(), DeliveryError>> {
        (status == 200).then(|| {
            if body.trim() == "ok" {
                Ok(())
            } else {
                Err(DeliveryError::Permanent(format!(
                    "unexpected answer {}",
                    deliver::short_answer(status, body)
                )))
            }
        })
    }

    fn says_gone(&self, _status: u16, body: &str) -> bool {
        DEAD.contains(&body.trim())
    }

    fn interval(&self, policy: &RetryPolicy) -> Option<std::time::Duration> {
        Some(policy.slack_interval)
    }
}

/// The notification fallback; Slack advises at most 4000.
const TEXT_MAX: usize = 3000;
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
/// Accounts listed in full; with header, facts, "more" and context that is 24 of the 50 blocks.
const ACCOUNTS_MAX: usize = 20;
/// Characters of account text, so 200 long errors still make a message people can read.
const ACCOUNTS_BUDGET: usize = 12_000;
/// An account's error; the rest of its section is bounded by the caps in `account`.
const ERROR_MAX: usize = 1500;

/// The webhook body for `alert`.
pub fn message(alert: &Alert, zone: Zone) -> Value {
    let headline = text::headline(alert);
    let mut blocks = vec![header(&headline)];
    match alert {
        Alert::Agent(a) => agent_blocks(a, zone, &mut blocks),
        Alert::Monitor(m) => monitor_blocks(m, zone, &mut blocks),
        Alert::Webhook(w) => webhook_blocks(w, &mut blocks),
        Alert::Integration(i) => integration_blocks(i, zone, &mut blocks),
    }
    blocks.push(json!({
        "type": "context",
        "elements": [mrkdwn("ravan-watch · Cal.com connection monitor for Ravan agents".into())],
    }));
    json!({
        "text": escape(&headline, TEXT_MAX),
        "attachments": [{
            "color": format!("#{:06X}", text::colour(alert)),
            "blocks": blocks,
        }],
    })
}

/// Sections a grouped message may use for its list.
const GROUP_SECTIONS: usize = 4;

/// One message for several alerts of the same poll cycle: the exact counts as the header, then
/// one line per alert, most severe first, as far as the limits allow, then "…and N more".
pub fn group_message(alerts: &[Alert], zone: Zone) -> Value {
    let headline = text::group_headline(alerts);
    // Each section holds whole lines; 200 characters of slack per section for the packing.
    let (lines, left_out) = text::group_lines(
        alerts,
        zone,
        GROUP_SECTIONS * (SECTION_MAX - 200),
        escape,
        |id| format!("`{id}`"),
    );
    let mut blocks = vec![header(&headline)];
    let mut current = String::new();
    for line in lines {
        if !current.is_empty() && current.chars().count() + 1 + line.chars().count() > SECTION_MAX {
            blocks.push(section(std::mem::take(&mut current)));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        blocks.push(section(current));
    }
    if left_out > 0 {
        blocks.push(section(format!("_{}_", text::and_more(left_out))));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [mrkdwn("ravan-watch · Cal.com connection monitor for Ravan agents".into())],
    }));
    json!({
        "text": escape(&headline, TEXT_MAX),
        "attachments": [{
            "color": format!("#{:06X}", text::group_colour(alerts)),
            "blocks": blocks,
        }],
    })
}

/// The digest: the headline as the header, then one section per part (each well under
/// `SECTION_MAX`; eight blocks at most), times in `zone`.
pub fn digest(d: &Digest, zone: Zone) -> Value {
    let headline = super::digest::headline(d);
    let code = |id: &str| format!("`{id}`");
    let mut blocks = vec![
        header(&headline),
        section(format!("*Agents*\n{}", super::digest::agents_line(d))),
    ];
    if let Some(list) = super::digest::unhealthy_lines(d, zone, escape, code) {
        blocks.push(section(format!("*Unhealthy agents*\n{list}")));
    }
    blocks.push(section(format!(
        "*{}*\n{}",
        super::digest::alerts_label(d, zone),
        super::digest::alerts_line(d)
    )));
    if let Some(list) = super::digest::integration_lines(d, zone, escape) {
        blocks.push(section(format!("*Integrations*\n{list}")));
    }
    blocks.push(section(format!(
        "*Undelivered alerts*\n{}",
        super::digest::undelivered_line(d, zone)
    )));
    blocks.push(section(format!(
        "*Dead webhooks*\n{}",
        super::digest::dead_lines(d, zone, escape)
    )));
    blocks.push(json!({
        "type": "context",
        "elements": [mrkdwn(format!(
            "ravan-watch · digest of {} · it arrives at each DIGEST_SCHEDULE tick: when it stops, look",
            text::timestamp(d.tick, zone)
        ))],
    }));
    json!({
        "text": escape(&headline, TEXT_MAX),
        "attachments": [{
            "color": format!("#{:06X}", super::digest::colour(d)),
            "blocks": blocks,
        }],
    })
}

/// One character of untrusted text as mrkdwn (see the module doc).
fn unit(prev: Option<char>, c: char, next: Option<char>) -> String {
    match c {
        '&' => "&amp;".into(),
        '<' => "&lt;".into(),
        '>' => "&gt;".into(),
        '@' => format!("@{ZWSP}"),
        '_' if text::intraword(prev, next) => "_".into(),
        '*' | '_' | '~' | '`' => format!("{ZWSP}{c}{ZWSP}"),
        c => c.to_string(),
    }
}

/// Untrusted `s` as mrkdwn of at most `max` characters.
fn escape(s: &str, max: usize) -> String {
    text::render(s, max, unit)
}

/// The headline as a plain_text header. Slack does not parse plain_text, but `<` and `>` become
/// look-alikes anyway so that no `<!…>`-shaped text appears anywhere in the payload.
fn header(headline: &str) -> Value {
    let plain = |_, c, _| match c {
        '<' => "‹".to_owned(),
        '>' => "›".to_owned(),
        c => c.to_string(),
    };
    json!({
        "type": "header",
        "text": {"type": "plain_text", "text": text::render(headline, HEADER_MAX, plain), "emoji": true},
    })
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

/// A labelled field; `value` is already escaped and bounded well under `FIELD_MAX`.
fn field(label: &str, value: String) -> Value {
    let text = format!("*{label}*\n{value}");
    debug_assert!(text.chars().count() <= FIELD_MAX);
    mrkdwn(text)
}

fn section(text: String) -> Value {
    debug_assert!((1..=SECTION_MAX).contains(&text.chars().count()));
    json!({"type": "section", "text": mrkdwn(text)})
}

fn agent_blocks(a: &AgentAlert, zone: Zone, blocks: &mut Vec<Value>) {
    let id = a.agent.id;
    let agent = match text::agent_name(&a.agent) {
        Some(name) => format!("{}\n`{id}`", escape(name, 1000)),
        None => format!("`{id}`"),
    };
    let seen = text::seen_label(a.kind);
    let mut facts = vec![
        field("Agent", agent),
        field(
            "Change",
            text::change(a.from.as_deref(), &a.to, |s| escape(s, 900)),
        ),
    ];
    if a.kind != AgentAlertKind::Missing {
        facts.push(field("Connected", format!("`{}`", a.connected)));
    }
    if let Some(connection) = text::connection(a, |s| escape(s, 300)) {
        facts.push(field("Connection", connection));
    }
    facts.push(field(seen, text::timestamp(a.at, zone)));
    facts.push(field(
        text::duration_label(a.kind),
        text::unhealthy_summary(a, zone),
    ));
    blocks.push(json!({"type": "section", "fields": facts}));

    if a.kind == AgentAlertKind::Missing {
        blocks.push(section(text::missing_hint(a)));
        return;
    }
    if a.accounts.is_empty() {
        blocks.push(section("_No Cal.com accounts reported._".into()));
        return;
    }
    let (shown, more) = text::take_fitting(
        &text::worst_first(&a.accounts),
        ACCOUNTS_MAX,
        ACCOUNTS_BUDGET,
        |acc| account(acc),
        |s| s.chars().count(),
    );
    blocks.extend(shown.into_iter().map(section));
    if more > 0 {
        let s = if more == 1 { "" } else { "s" };
        blocks.push(section(format!("_…and {more} more account{s}_")));
    }
}

/// One account as section text: at most 300 + 200 + 100 + 1500 escaped characters plus labels.
fn account(acc: &Account) -> String {
    let mut head = format!(
        "*{}* — status: {}",
        escape(&acc.account_name, 300),
        escape(&acc.status, 200)
    );
    if !acc.id.trim().is_empty() {
        head += &format!(" · id: {}", escape(&acc.id, 100));
    }
    let error = match &acc.error {
        Some(e) => text::clipped(e, ERROR_MAX, escape),
        None => "_no error reported_".into(),
    };
    format!("{head}\n{error}")
}

fn monitor_blocks(m: &MonitorAlert, zone: Zone, blocks: &mut Vec<Value>) {
    let duration = text::human_duration(m.at - m.since);
    let [why, seen, lasted] = text::monitor_labels(m.kind);
    blocks.push(section(format!(
        "*{why}*\n{}",
        escape(&m.reason, SECTION_MAX - 40)
    )));
    blocks.push(json!({"type": "section", "fields": [
        field("Failing since", text::timestamp(m.since, zone)),
        field(seen, text::timestamp(m.at, zone)),
        field(lasted, duration),
    ]}));
}

fn integration_blocks(i: &IntegrationAlert, zone: Zone, blocks: &mut Vec<Value>) {
    for (label, text) in text::integration_facts(i, zone, escape) {
        blocks.push(section(format!("*{label}*\n{text}")));
    }
}

fn webhook_blocks(w: &WebhookAlert, blocks: &mut Vec<Value>) {
    for (label, text) in text::webhook_facts(w, escape) {
        blocks.push(section(format!("*{label}*\n{text}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_sequences_and_mentions() {
        assert_eq!(
            escape("<!channel> @here <https://x|y> & co", 100),
            "&lt;!channel&gt; @\u{200B}here &lt;https://x|y&gt; &amp; co"
        );
    }

    #[test]
    fn neutralises_formatting_but_not_snake_case() {
        let z = ZWSP;
        assert_eq!(
            escape("*b* _i_ ~s~ `c`", 100),
            format!("{z}*{z}b{z}*{z} {z}_{z}i{z}_{z} {z}~{z}s{z}~{z} {z}`{z}c{z}`{z}")
        );
        assert_eq!(escape("not_connected", 100), "not_connected");
        assert_eq!(escape("a\nb", 100), "a b");
    }

    #[test]
    fn entities_are_never_cut() {
        assert_eq!(escape("<<<", 8), "&lt;…");
        assert_eq!(escape("<<<", 9), "&lt;&lt;…");
        assert_eq!(escape("<<<", 11), "&lt;&lt;…");
        assert_eq!(escape("<<<", 12), "&lt;&lt;&lt;");
        assert_eq!(escape("", 10), text::EMPTY);
    }

    #[test]
    fn header_has_no_angle_brackets() {
        let h = header("🔴 <!here> is down");
        assert_eq!(h["text"]["text"], "🔴 ‹!here› is down");
        assert_eq!(h["text"]["emoji"], true);
    }
}
