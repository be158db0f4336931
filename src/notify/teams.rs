//! Microsoft Teams through a Workflows (Power Automate) webhook: one Adaptive Card 1.4 in a
//! `message` envelope, the only body the Workflows trigger "When a Teams webhook request is
//! received" takes. A coloured headline (`attention`, `warning`, `good`), a FactSet with the
//! facts Slack shows as fields, then each account and its error.
//!
//! Escaping: Teams renders a Markdown subset in TextBlocks and FactSet values (`**`, `_`, lists
//! at a line's start, `[text](url)`, `<at>` mentions). Every string from elsewhere has `*`, `_`
//! (not inside a word), `~`, `` ` ``, `#`, `[`, `]`, `|`, `\` wrapped in zero-width spaces, `<`
//! followed and `>` preceded by one (so no `<at>` tag can form), `@` followed by one, and `-`,
//! `+` or a digit opening a word wrapped too (no list can start); newlines were already
//! flattened (see `text::escaped`). Zero-width spaces are invisible and, unlike a backslash,
//! mean the same to every Markdown renderer Teams has shipped.
//!
//! Size: Teams refuses a message over about 28 KB. Lists (accounts, a group's lines) are cut by
//! their JSON size, so an alert, a group of any size and a digest stay under [`MAX_BYTES`].

use serde_json::{Value, json};

use crate::domain::alert::{
    AgentAlert, AgentAlertKind, Alert, IntegrationAlertKind, MonitorAlertKind,
};
use crate::domain::{Account, Digest, Zone};
use crate::notify::destination::{Destination, Item};
use crate::notify::text::{self, ZWSP};

/// Teams behind the [`Destination`] trait: any 2xx (Workflows answers 202) is delivered; a 4xx
/// whose Azure error code says the flow is gone, disabled or its `sig` refused is dead; no
/// pacing beyond what a 429's `Retry-After` asks (Workflows documents no fixed rate).
pub struct Teams;

/// The Azure Logic Apps / Power Automate error codes (`{"error":{"code":…}}`) that mean the
/// webhook's flow will never take a message again: deleted, turned off, or its URL's signature
/// no longer valid. Anything else (a proxy's bare 404, a throttled flow) is not.
pub const DEAD_CODES: &[&str] = &[
    "WorkflowNotFound",
    "WorkflowDisabled",
    "WorkflowTriggerNotFound",
    "WorkflowTriggerIsNotEnabled",
    "DirectApiAuthorizationRequired",
    "DirectApiInvalidAuthorizationSignature",
];

/// The size Teams takes for a whole message, with room to spare under its ~28 KB.
pub const MAX_BYTES: usize = 27 * 1024;

/// JSON bytes of the accounts' blocks in one alert.
const ACCOUNTS_BUDGET: usize = 14_000;
/// Accounts listed in full.
const ACCOUNTS_MAX: usize = 20;
/// An account's error.
const ERROR_MAX: usize = 1000;
/// JSON bytes of a group's lines.
const GROUP_BUDGET: usize = 20_000;
/// The headline of a card.
const HEADLINE_MAX: usize = 200;
const FOOTER: &str = "ravan-watch · Cal.com connection monitor for Ravan agents";

#[derive(serde::Deserialize)]
struct AzureError {
    error: AzureErrorCode,
}

#[derive(serde::Deserialize)]
struct AzureErrorCode {
    code: String,
}

impl Destination for Teams {
    fn message(&self, item: Item<'_>, zone: Zone) -> Value {
        message(item.alert, zone)
    }

    fn group_message(&self, items: &[Item<'_>], zone: Zone) -> Value {
        group_message(&crate::notify::alerts_of(items), zone)
    }

    fn digest_message(&self, digest: &Digest, zone: Zone) -> Value {
        self::digest(digest, zone)
    }

    fn says_gone(&self, status: u16, body: &str) -> bool {
        (400..=499).contains(&status)
            && serde_json::from_str::<AzureError>(body)
                .is_ok_and(|e| DEAD_CODES.contains(&e.error.code.as_str()))
    }
}

/// The Adaptive Card colour of a headline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tone {
    Good,
    Warning,
    Attention,
}

impl Tone {
    fn name(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Warning => "warning",
            Self::Attention => "attention",
        }
    }

    /// Something broke (attention), needs a look (warning), or works again (good).
    fn of(alert: &Alert) -> Self {
        match alert {
            Alert::Agent(a) => match a.kind {
                AgentAlertKind::Down | AgentAlertKind::Missing => Self::Attention,
                AgentAlertKind::Changed | AgentAlertKind::Reminder => Self::Warning,
                AgentAlertKind::Recovered | AgentAlertKind::Found => Self::Good,
            },
            Alert::Monitor(m) => match m.kind {
                MonitorAlertKind::Down => Self::Attention,
                MonitorAlertKind::Recovered => Self::Good,
            },
            Alert::Webhook(_) => Self::Attention,
            Alert::Integration(i) => match i.kind {
                IntegrationAlertKind::Down => Self::Attention,
                IntegrationAlertKind::TokenExpiring => Self::Warning,
                IntegrationAlertKind::Recovered => Self::Good,
            },
        }
    }
}

/// The Workflows envelope around one Adaptive Card 1.4 with `body`.
pub fn card(body: Vec<Value>) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    })
}

/// The webhook body for `alert`.
pub fn message(alert: &Alert, zone: Zone) -> Value {
    let mut body = vec![headline(&text::headline(alert), Tone::of(alert))];
    match alert {
        Alert::Agent(a) => agent_blocks(a, zone, &mut body),
        Alert::Monitor(m) => {
            let [why, seen, lasted] = text::monitor_labels(m.kind);
            body.push(fact_set(vec![
                (why.to_owned(), escape(&m.reason, 1500)),
                ("Failing since".into(), text::timestamp(m.since, zone)),
                (seen.to_owned(), text::timestamp(m.at, zone)),
                (lasted.to_owned(), text::human_duration(m.at - m.since)),
            ]));
        }
        Alert::Webhook(w) => body.push(labelled(text::webhook_facts(w, escape))),
        Alert::Integration(i) => body.push(labelled(text::integration_facts(i, zone, escape))),
    }
    body.push(footer(FOOTER.to_owned()));
    card(body)
}

/// One card for several alerts of the same poll cycle: the exact counts as the headline, then
/// one line per alert, most severe first, as many as fit, then "…and N more".
pub fn group_message(alerts: &[Alert], zone: Zone) -> Value {
    let tone = alerts.iter().map(Tone::of).max().unwrap_or(Tone::Good);
    let mut body = vec![headline(&text::group_headline(alerts), tone)];
    let sorted = text::group_sorted(alerts);
    let (lines, left_out) = text::take_fitting(
        &sorted,
        text::GROUP_LINES_MAX,
        GROUP_BUDGET,
        |a| block(text::group_line(a, zone, escape, str::to_owned)),
        json_size,
    );
    body.extend(lines);
    if left_out > 0 {
        body.push(subtle(text::and_more(left_out)));
    }
    body.push(footer(FOOTER.to_owned()));
    card(body)
}

/// The digest: its headline, then a FactSet of its parts, times in `zone`.
pub fn digest(d: &Digest, zone: Zone) -> Value {
    let tone = match super::digest::colour(d) {
        text::RED => Tone::Attention,
        text::GREEN => Tone::Good,
        _ => Tone::Warning,
    };
    let mut facts = vec![("Agents".to_owned(), super::digest::agents_line(d))];
    if let Some(list) = super::digest::unhealthy_lines(d, zone, escape, str::to_owned) {
        facts.push(("Unhealthy agents".into(), list));
    }
    facts.push((
        super::digest::alerts_label(d, zone),
        super::digest::alerts_line(d),
    ));
    if let Some(list) = super::digest::integration_lines(d, zone, escape) {
        facts.push(("Integrations".into(), list));
    }
    facts.push((
        "Undelivered alerts".into(),
        super::digest::undelivered_line(d, zone),
    ));
    facts.push((
        "Dead webhooks".into(),
        super::digest::dead_lines(d, zone, escape),
    ));
    // Lists are joined with single newlines, which Teams' Markdown folds: a blank line each.
    let facts = facts
        .into_iter()
        .map(|(title, value)| (title, value.replace('\n', "\n\n")))
        .collect();
    card(vec![
        headline(&super::digest::headline(d), tone),
        fact_set(facts),
        footer(format!(
            "ravan-watch · digest of {} · it arrives at each DIGEST_SCHEDULE tick: when it stops, look",
            text::timestamp(d.tick, zone)
        )),
    ])
}

/// One character of untrusted text for Teams' Markdown (see the module doc).
fn unit(prev: Option<char>, c: char, next: Option<char>) -> String {
    let word_start = prev.is_none_or(char::is_whitespace);
    match c {
        '@' => format!("@{ZWSP}"),
        '<' => format!("<{ZWSP}"),
        '>' => format!("{ZWSP}>"),
        '_' if text::intraword(prev, next) => "_".into(),
        '*' | '_' | '~' | '`' | '#' | '[' | ']' | '|' | '\\' => format!("{ZWSP}{c}{ZWSP}"),
        '-' | '+' if word_start => format!("{ZWSP}{c}{ZWSP}"),
        c if c.is_ascii_digit() && word_start => format!("{ZWSP}{c}"),
        c => c.to_string(),
    }
}

/// Untrusted `s` for Teams' Markdown, at most `max` characters.
pub fn escape(s: &str, max: usize) -> String {
    text::render(s, max, unit)
}

/// The headline: bold, coloured by `tone`. It is Ravan's text too (names, statuses).
fn headline(s: &str, tone: Tone) -> Value {
    json!({
        "type": "TextBlock",
        "text": escape(s, HEADLINE_MAX),
        "weight": "Bolder",
        "size": "Medium",
        "color": tone.name(),
        "wrap": true,
    })
}

/// A TextBlock of already escaped text.
fn block(text: String) -> Value {
    json!({"type": "TextBlock", "text": text, "wrap": true, "spacing": "Small"})
}

fn subtle(text: String) -> Value {
    json!({"type": "TextBlock", "text": text, "wrap": true, "isSubtle": true})
}

fn footer(text: String) -> Value {
    json!({
        "type": "TextBlock",
        "text": text,
        "wrap": true,
        "size": "Small",
        "isSubtle": true,
        "separator": true,
    })
}

/// A FactSet of (title, already escaped value).
fn fact_set(facts: Vec<(String, String)>) -> Value {
    let facts: Vec<Value> = facts
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": value}))
        .collect();
    json!({"type": "FactSet", "facts": facts})
}

fn labelled(facts: Vec<(&'static str, String)>) -> Value {
    fact_set(facts.into_iter().map(|(t, v)| (t.to_owned(), v)).collect())
}

/// Bytes a block adds to the message.
fn json_size(block: &Value) -> usize {
    serde_json::to_vec(block).map_or(usize::MAX, |b| b.len() + 1)
}

fn agent_blocks(a: &AgentAlert, zone: Zone, body: &mut Vec<Value>) {
    let id = a.agent.id;
    let agent = match text::agent_name(&a.agent) {
        Some(name) => format!("{} ({id})", escape(name, 300)),
        None => id.to_string(),
    };
    let mut facts = vec![
        ("Agent".to_owned(), agent),
        (
            "Change".into(),
            text::change(a.from.as_deref(), &a.to, |s| escape(s, 200)),
        ),
    ];
    if a.kind != AgentAlertKind::Missing {
        facts.push(("Connected".into(), a.connected.to_string()));
    }
    if let Some(connection) = text::connection(a, |s| escape(s, 300)) {
        facts.push(("Connection".into(), connection));
    }
    facts.push((
        text::seen_label(a.kind).to_owned(),
        text::timestamp(a.at, zone),
    ));
    facts.push((
        text::duration_label(a.kind).to_owned(),
        text::unhealthy_summary(a, zone),
    ));
    body.push(fact_set(facts));

    if a.kind == AgentAlertKind::Missing {
        body.push(block(text::missing_hint(a)));
        return;
    }
    if a.accounts.is_empty() {
        body.push(subtle("No Cal.com accounts reported.".into()));
        return;
    }
    let (shown, more) = text::take_fitting(
        &text::worst_first(&a.accounts),
        ACCOUNTS_MAX,
        ACCOUNTS_BUDGET,
        |acc| account(acc),
        |blocks| blocks.iter().map(json_size).sum(),
    );
    body.extend(shown.into_iter().flatten());
    if more > 0 {
        let s = if more == 1 { "" } else { "s" };
        body.push(subtle(format!("…and {more} more account{s}")));
    }
}

/// One account: its name, status and id in bold, then its error.
fn account(acc: &Account) -> [Value; 2] {
    let mut head = format!(
        "**{}** — status: {}",
        escape(&acc.account_name, 300),
        escape(&acc.status, 200)
    );
    if !acc.id.trim().is_empty() {
        head += &format!(" · id: {}", escape(&acc.id, 100));
    }
    let error = match &acc.error {
        Some(e) => json!({
            "type": "TextBlock",
            "text": text::clipped(e, ERROR_MAX, escape),
            "wrap": true,
            "color": "attention",
            "spacing": "None",
        }),
        None => json!({
            "type": "TextBlock",
            "text": "no error reported",
            "wrap": true,
            "isSubtle": true,
            "spacing": "None",
        }),
    };
    let mut head = block(head);
    head["separator"] = json!(true);
    [head, error]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_mentions_are_neutralised() {
        let z = ZWSP;
        assert_eq!(
            escape("<at>all</at> @team", 100),
            format!("<{z}at{z}>all<{z}/at{z}> @{z}team")
        );
        assert_eq!(
            escape("**b** [x](https://e.vil)", 100),
            format!("{z}*{z}{z}*{z}b{z}*{z}{z}*{z} {z}[{z}x{z}]{z}(https://e.vil)")
        );
        assert_eq!(
            escape("# h - 1. x", 100),
            format!("{z}#{z} h {z}-{z} {z}1. x")
        );
        assert_eq!(escape("not_connected a-b", 100), "not_connected a-b");
        assert_eq!(escape("a\nb", 100), "a b");
    }

    #[test]
    fn only_the_flows_own_words_make_it_dead() {
        let t = Teams;
        let gone =
            r#"{"error":{"code":"WorkflowNotFound","message":"The workflow could not be found."}}"#;
        assert!(t.says_gone(404, gone));
        assert!(t.says_gone(
            403,
            r#"{"error":{"code":"WorkflowTriggerIsNotEnabled","message":"x"}}"#
        ));
        assert!(!t.says_gone(404, "Not Found"), "a proxy's 404");
        assert!(!t.says_gone(500, gone), "a 5xx is never dead");
        assert!(!t.says_gone(
            400,
            r#"{"error":{"code":"InvalidRequestContent","message":"x"}}"#
        ));
    }
}
