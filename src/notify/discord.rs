//! Discord execute-webhook payloads: one embed, coloured by the kind of alert. Every string from
//! Ravan is markdown-escaped and mention-proofed, and the embed stays inside Discord's per-field
//! limits and its 6000-character total, which Discord enforces with a 400.
//!
//! Escaping: markdown characters get a backslash (`\*`, `\<`, `\[` …; `-` and `+` only where they
//! could start a list, `_` not inside a word), and `@` is followed by a zero-width space so
//! `@everyone` and `@here` never appear. Parentheses are left alone: a masked link needs `](`,
//! and `]` is always escaped. Newlines were already flattened (see `text::escaped`).
//! `allowed_mentions: {"parse": []}` is a second line of defence, not the only one.

use serde_json::{Value, json};

use crate::domain::alert::{
    AgentAlert, AgentAlertKind, Alert, IntegrationAlert, MonitorAlert, WebhookAlert,
};
use crate::domain::{Account, Digest, Zone};
use crate::notify::destination::{Destination, Item};
use crate::notify::text::{self, ZWSP};

/// Discord behind the [`Destination`] trait: any 2xx is delivered, a gone webhook answers its
/// JSON error code, and pacing follows its rate-limit headers (read by the sender).
pub struct Discord;

/// Discord's JSON error codes that mean the webhook is gone: unknown webhook, invalid token.
const DEAD: &[u64] = &[10015, 50027];

/// Discord's error body: `{"message": …, "code": …}`.
#[derive(serde::Deserialize)]
struct DiscordError {
    code: u64,
}

impl Destination for Discord {
    fn message(&self, item: Item<'_>, zone: Zone) -> Value {
        message(item.alert, zone)
    }

    fn group_message(&self, items: &[Item<'_>], zone: Zone) -> Value {
        group_message(&crate::notify::alerts_of(items), zone)
    }

    fn digest_message(&self, digest: &Digest, zone: Zone) -> Value {
        self::digest(digest, zone)
    }

    fn says_gone(&self, _status: u16, body: &str) -> bool {
        serde_json::from_str::<DiscordError>(body).is_ok_and(|e| DEAD.contains(&e.code))
    }
}

const TITLE_MAX: usize = 256;
const FIELDS_MAX: usize = 25;
const FIELD_NAME_MAX: usize = 256;
const FIELD_VALUE_MAX: usize = 1024;
/// Sum of title, description, field names and values, and footer text over the message.
const EMBED_TOTAL_MAX: usize = 6000;
/// An account's error: short enough that several accounts fit in the total.
const ERROR_MAX: usize = 600;
/// Room kept for the "…and N more accounts" field.
const MORE_RESERVE: usize = 64;
const FOOTER: &str = "ravan-watch";

/// The webhook body for `alert`.
pub fn message(alert: &Alert, zone: Zone) -> Value {
    let title = escape(&text::headline(alert), TITLE_MAX);
    let (description, fields) = match alert {
        Alert::Agent(a) => (None, agent_fields(a, zone, title.chars().count())),
        Alert::Monitor(m) => monitor_parts(m, zone),
        Alert::Webhook(w) => (None, webhook_fields(w)),
        Alert::Integration(i) => (None, integration_fields(i, zone)),
    };
    let at = alert.at();
    let mut embed = json!({
        "title": title,
        "color": text::colour(alert),
        "fields": fields.iter().map(Field::to_json).collect::<Vec<_>>(),
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "footer": {"text": FOOTER},
    });
    if let Some(d) = description {
        embed["description"] = json!(d);
    }
    json!({
        "username": "ravan-watch",
        "allowed_mentions": {"parse": []},
        "embeds": [embed],
    })
}

/// Discord's description limit.
const DESCRIPTION_MAX: usize = 4096;

/// One message for several alerts of the same poll cycle: the exact counts as the title, then
/// one line per alert, most severe first, as far as the limits allow, then "…and N more".
pub fn group_message(alerts: &[Alert], zone: Zone) -> Value {
    let title = escape(&text::group_headline(alerts), TITLE_MAX);
    // Room for "\n…and N more" at the end.
    let (lines, left_out) = text::group_lines(alerts, zone, DESCRIPTION_MAX - 32, escape, |id| {
        format!("`{id}`")
    });
    let mut description = lines.join("\n");
    if left_out > 0 {
        description.push('\n');
        description.push_str(&text::and_more(left_out));
    }
    let at = alerts.iter().map(Alert::at).max().unwrap_or_default();
    json!({
        "username": "ravan-watch",
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": title,
            "description": description,
            "color": text::group_colour(alerts),
            "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "footer": {"text": FOOTER},
        }],
    })
}

/// The digest: one embed, the unhealthy agents in its description (up to about 2,100
/// characters), a field for each other part (each under 1,024 characters, five at most), so the
/// total stays under 6,000; times in `zone`.
pub fn digest(d: &Digest, zone: Zone) -> Value {
    let title = escape(&super::digest::headline(d), TITLE_MAX);
    let code = |id: &str| format!("`{id}`");
    let mut fields = vec![Field::new("Agents", super::digest::agents_line(d), false)];
    let description = super::digest::unhealthy_lines(d, zone, escape, code)
        .map(|list| format!("**Unhealthy agents**\n{list}"));
    fields.push(Field::new(
        super::digest::alerts_label(d, zone),
        super::digest::alerts_line(d),
        false,
    ));
    if let Some(list) = super::digest::integration_lines(d, zone, escape) {
        fields.push(Field::new("Integrations", list, false));
    }
    fields.push(Field::new(
        "Undelivered alerts",
        super::digest::undelivered_line(d, zone),
        false,
    ));
    fields.push(Field::new(
        "Dead webhooks",
        super::digest::dead_lines(d, zone, escape),
        false,
    ));
    let mut embed = json!({
        "title": title,
        "color": super::digest::colour(d),
        "fields": fields.iter().map(Field::to_json).collect::<Vec<_>>(),
        "timestamp": d.tick.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "footer": {"text": format!("{FOOTER} · digest of {}", text::timestamp(d.tick, zone))},
    });
    if let Some(description) = description {
        embed["description"] = json!(description);
    }
    json!({
        "username": "ravan-watch",
        "allowed_mentions": {"parse": []},
        "embeds": [embed],
    })
}

/// One character of untrusted text as Discord markdown (see the module doc).
fn unit(prev: Option<char>, c: char, next: Option<char>) -> String {
    match c {
        '@' => format!("@{ZWSP}"),
        '_' if text::intraword(prev, next) => "_".into(),
        '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '>' | '#' | '[' | ']' => format!("\\{c}"),
        '-' | '+' if prev.is_none_or(char::is_whitespace) => format!("\\{c}"),
        c => c.to_string(),
    }
}

/// Untrusted `s` as Discord markdown of at most `max` characters.
fn escape(s: &str, max: usize) -> String {
    text::render(s, max, unit)
}

struct Field {
    name: String,
    value: String,
    inline: bool,
}

impl Field {
    fn new(name: impl Into<String>, value: impl Into<String>, inline: bool) -> Self {
        let (name, value) = (name.into(), value.into());
        debug_assert!((1..=FIELD_NAME_MAX).contains(&name.chars().count()));
        debug_assert!((1..=FIELD_VALUE_MAX).contains(&value.chars().count()));
        Field {
            name,
            value,
            inline,
        }
    }

    /// What the field adds to the embed total.
    fn len(&self) -> usize {
        self.name.chars().count() + self.value.chars().count()
    }

    fn to_json(&self) -> Value {
        json!({"name": self.name, "value": self.value, "inline": self.inline})
    }
}

/// The facts, then as many accounts as fit beside them in the embed total.
fn agent_fields(a: &AgentAlert, zone: Zone, title_len: usize) -> Vec<Field> {
    let id = a.agent.id;
    let agent = match text::agent_name(&a.agent) {
        Some(name) => format!("{}\n`{id}`", escape(name, 900)),
        None => format!("`{id}`"),
    };
    let seen = text::seen_label(a.kind);
    let mut fields = vec![
        Field::new("Agent", agent, true),
        Field::new(
            "Change",
            text::change(a.from.as_deref(), &a.to, |s| escape(s, 500)),
            true,
        ),
    ];
    if a.kind != AgentAlertKind::Missing {
        fields.push(Field::new("Connected", format!("`{}`", a.connected), true));
    }
    if let Some(connection) = text::connection(a, |s| escape(s, 200)) {
        fields.push(Field::new("Connection", connection, true));
    }
    fields.push(Field::new(seen, text::timestamp(a.at, zone), true));
    fields.push(Field::new(
        text::duration_label(a.kind),
        text::unhealthy_summary(a, zone),
        true,
    ));
    if a.kind == AgentAlertKind::Missing {
        fields.push(Field::new("What to do", text::missing_hint(a), false));
        return fields;
    }
    if a.accounts.is_empty() {
        fields.push(Field::new(
            "Accounts",
            "No Cal.com accounts reported.",
            false,
        ));
        return fields;
    }

    let used = title_len + FOOTER.chars().count() + fields.iter().map(Field::len).sum::<usize>();
    let budget = EMBED_TOTAL_MAX.saturating_sub(used + MORE_RESERVE);
    let max_items = FIELDS_MAX - fields.len() - 1;
    let accounts = text::worst_first(&a.accounts);
    let (shown, more) =
        text::take_fitting(&accounts, max_items, budget, |a| account(a), Field::len);
    fields.extend(shown);
    if more > 0 {
        let s = if more == 1 { "" } else { "s" };
        fields.push(Field::new(
            "More accounts",
            format!("…and {more} more account{s}"),
            false,
        ));
    }
    fields
}

/// One account as a field: name and status in the name (≤ 150 + 3 + 100), error and id in the
/// value (≤ 600 + 5 + 200).
fn account(acc: &Account) -> Field {
    let name = format!(
        "{} — {}",
        escape(&acc.account_name, 150),
        escape(&acc.status, 100)
    );
    let mut value = match &acc.error {
        Some(e) => text::clipped(e, ERROR_MAX, escape),
        None => "no error reported".into(),
    };
    if !acc.id.trim().is_empty() {
        value += &format!("\nid: {}", escape(&acc.id, 200));
    }
    Field::new(name, value, false)
}

fn monitor_parts(m: &MonitorAlert, zone: Zone) -> (Option<String>, Vec<Field>) {
    let [why, seen, lasted] = text::monitor_labels(m.kind);
    let description = format!("**{why}**\n{}", escape(&m.reason, 2000));
    let fields = vec![
        Field::new("Failing since", text::timestamp(m.since, zone), true),
        Field::new(seen, text::timestamp(m.at, zone), true),
        Field::new(lasted, text::human_duration(m.at - m.since), true),
    ];
    (Some(description), fields)
}

fn integration_fields(i: &IntegrationAlert, zone: Zone) -> Vec<Field> {
    text::integration_facts(i, zone, escape)
        .into_iter()
        .map(|(label, text)| Field::new(label, text, false))
        .collect()
}

fn webhook_fields(w: &WebhookAlert) -> Vec<Field> {
    text::webhook_facts(w, escape)
        .into_iter()
        .map(|(label, text)| Field::new(label, text, false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markdown_and_mentions() {
        assert_eq!(
            escape("<@123> @everyone @here", 100),
            "\\<@\u{200B}123\\> @\u{200B}everyone @\u{200B}here"
        );
        assert_eq!(escape("[x](http://e)", 100), "\\[x\\](http://e)");
        assert_eq!(
            escape("*b* __u__ ~~s~~ `c` ||p|| \\", 100),
            "\\*b\\* \\_\\_u\\_\\_ \\~\\~s\\~\\~ \\`c\\` \\|\\|p\\|\\| \\\\"
        );
        assert_eq!(escape("# h\n> q\n-# s", 100), "\\# h \\> q \\-\\# s");
        assert_eq!(escape("- a - b+c", 100), "\\- a \\- b+c");
        assert_eq!(escape("not_connected _x_", 100), "not_connected \\_x\\_");
    }

    #[test]
    fn escapes_are_never_cut() {
        assert_eq!(escape("****", 6), "\\*\\*…");
        assert_eq!(escape("****", 5), "\\*\\*…");
        assert_eq!(escape("****", 4), "\\*…");
        assert_eq!(escape("", 10), text::EMPTY);
    }
}
