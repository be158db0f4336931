//! The Slack and Discord payloads of every kind of alert, with normal and hostile input: they say
//! what happened, cannot mention or link, and stay inside the platforms' limits (Discord's checked
//! against its published schema too), since a payload over a limit is a lost alert.

use chrono::{DateTime, TimeZone, Utc};
use ravan_watch::domain::alert::{
    AgentAlert, AgentAlertKind, AgentRef, Alert, IntegrationAlert, IntegrationAlertKind,
    IntegrationName, MonitorAlert, MonitorAlertKind, WebhookAlert,
};
use ravan_watch::domain::{Account, Connection, Platform, Zone};
use ravan_watch::notify::{discord, slack, teams};
use serde_json::{Value, json};

mod common;
use common::AGENT_A as ID;
use common::alerts::{agent_alert, monitor_alert};
use common::ids::agent_id;
use common::limits::*;

const ERROR: &str = "Invalid API key";
const REASON: &str = "Ravan API refused the credentials (HTTP 401): invalid token";
const HOSTILE: &str = "<!channel> @everyone <https://x|y>";
const HOSTILE_2: &str = "<!here> @here <@U123> <#C42> <@&7> <!everyone>";
const MARKUP: &str = "*bold* _it_ ~st~ `code` [x](https://e.com) # h > q ||sp|| __u__";
const ZWSP: char = '\u{200B}';

fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, h, m, s).unwrap()
}

fn account(name: &str, status: &str, error: Option<&str>) -> Account {
    Account {
        id: format!("acc-{name}").into(),
        account_name: name.into(),
        status: status.into(),
        error: error.map(Into::into),
    }
}

/// A normal agent alert of `kind`: unhealthy since 12:00:00, seen at 12:12:05.
fn agent(kind: AgentAlertKind) -> AgentAlert {
    let (from, to) = match kind {
        AgentAlertKind::Down => ("active", "errored"),
        AgentAlertKind::Changed => ("errored", "not_connected"),
        AgentAlertKind::Reminder => ("active", "errored"),
        AgentAlertKind::Recovered => ("errored", "active"),
        AgentAlertKind::Missing => ("errored", "not_found"),
        AgentAlertKind::Found => ("not_found", "errored"),
    };
    AgentAlert {
        accounts: vec![
            account("Main calendar", "errored", Some(ERROR)),
            account("Backup", "active", None),
        ],
        connection: Some(Connection::Private),
        unhealthy_since: t(12, 0, 0),
        ..agent_alert(kind, ID, Some("Sales bot"), (from, to), t(12, 12, 5))
    }
}

/// A monitor alert of `kind` for `REASON`: polling broken since 12:00:00, seen at 12:12:05.
fn monitor(kind: MonitorAlertKind) -> MonitorAlert {
    MonitorAlert {
        since: t(12, 0, 0),
        ..monitor_alert(kind, REASON, t(12, 12, 5))
    }
}

const AGENT_KINDS: [AgentAlertKind; 6] = [
    AgentAlertKind::Down,
    AgentAlertKind::Changed,
    AgentAlertKind::Reminder,
    AgentAlertKind::Recovered,
    AgentAlertKind::Missing,
    AgentAlertKind::Found,
];
const MONITOR_KINDS: [MonitorAlertKind; 2] = [MonitorAlertKind::Down, MonitorAlertKind::Recovered];

/// Fillers for long text: ASCII, two-byte and four-byte characters, and the characters whose
/// escapes are longest on each platform.
const FILLERS: [&str; 7] = ["x", "é", "🔥", "<", "&", "*", "@"];

/// Every kind of alert with every awkward input, labelled for failure messages.
fn variants() -> Vec<(String, Alert)> {
    let mut out = Vec::new();
    for kind in AGENT_KINDS {
        let mut add = |label: String, f: &dyn Fn(&mut AgentAlert)| {
            let mut a = agent(kind);
            f(&mut a);
            out.push((format!("{kind:?} {label}"), Alert::Agent(a)));
        };
        add("normal".into(), &|_| {});
        add("empty accounts".into(), &|a| a.accounts.clear());
        add("from None".into(), &|a| a.from = None);
        add("no name".into(), &|a| a.agent.name = None);
        add("no connection recorded".into(), &|a| a.connection = None);
        add("org-linked".into(), &|a| {
            org_linked(a, "Acme team calendar")
        });
        add("connection none".into(), &|a| {
            a.connection = Some(Connection::None)
        });
        add("blank strings".into(), &|a| {
            a.agent.name = Some(" ".into());
            a.from = Some(String::new());
            a.to = String::new();
            a.accounts = vec![Account {
                id: Default::default(),
                account_name: Default::default(),
                status: Default::default(),
                error: Some(" \n".into()),
            }];
        });
        add("hostile".into(), &|a| hostile_agent(a, HOSTILE));
        add("hostile 2".into(), &|a| hostile_agent(a, HOSTILE_2));
        add("200 accounts".into(), &|a| {
            a.accounts = (0..200)
                .map(|i| account(&format!("cal {i}"), "errored", Some(ERROR)))
                .collect();
        });
        for filler in FILLERS {
            let long = filler.repeat(5000);
            add(format!("5000 {filler:?} errors"), &|a| {
                for acc in &mut a.accounts {
                    acc.error = Some(long.as_str().into());
                }
            });
            add(format!("5000 {filler:?} names and statuses"), &|a| {
                hostile_agent(a, &long)
            });
            add(format!("200 accounts with 5000 {filler:?}"), &|a| {
                a.accounts = (0..200)
                    .map(|_| account(&long, &long, Some(&long)))
                    .collect();
            });
            add(format!("everything 5000 {filler:?}, 200 accounts"), &|a| {
                a.accounts = vec![account("", "", None); 200];
                hostile_agent(a, &long);
            });
        }
    }
    for kind in MONITOR_KINDS {
        let mut add = |label: String, reason: &str| {
            let mut m = monitor(kind);
            m.reason = reason.into();
            out.push((format!("Monitor {kind:?} {label}"), Alert::Monitor(m)));
        };
        add("normal".into(), REASON);
        add("hostile".into(), HOSTILE);
        add("hostile 2".into(), HOSTILE_2);
        add("empty reason".into(), "");
        for filler in FILLERS {
            add(format!("5000 {filler:?} reason"), &filler.repeat(5000));
        }
    }
    let mut add = |label: String, answer: &str, name: &str, routed: usize, default: bool| {
        let w = WebhookAlert {
            platform: Platform::Slack,
            webhook: "https://hooks.slack.com/services/T0/B0/***".into(),
            answer: answer.into(),
            default,
            agents: (0..routed.min(WebhookAlert::NAMED))
                .map(|i| AgentRef {
                    id: format!("00000000-0000-4000-8000-{i:012}").parse().unwrap(),
                    name: Some(name.into()),
                })
                .collect(),
            agents_routed: routed,
            at: t(12, 0, 0),
        };
        out.push((format!("Webhook dead {label}"), Alert::Webhook(w)));
    };
    add(
        "normal".into(),
        "HTTP 404: no_service",
        "Sales line",
        2,
        false,
    );
    add(
        "a default, no agents".into(),
        "HTTP 410: channel_is_archived",
        "",
        0,
        true,
    );
    add("hostile".into(), HOSTILE, HOSTILE_2, 3, false);
    for filler in FILLERS {
        let long = filler.repeat(5000);
        add(
            format!("5000 {filler:?}, 1000 agents"),
            &long,
            &long,
            1000,
            false,
        );
    }
    for kind in INTEGRATION_KINDS {
        for name in IntegrationName::ALL {
            let label = format!("Integration {name} {kind:?}");
            out.push((
                format!("{label} normal"),
                Alert::Integration(integration(kind, name)),
            ));
            let mut i = integration(kind, name);
            hostile_integration(&mut i, HOSTILE, 3);
            out.push((format!("{label} hostile"), Alert::Integration(i)));
            let mut i = integration(kind, name);
            hostile_integration(&mut i, MARKUP, 1);
            out.push((format!("{label} markup"), Alert::Integration(i)));
            let mut i = integration(kind, name);
            i.detail = None;
            i.from = None;
            i.token_expires = None;
            out.push((format!("{label} bare"), Alert::Integration(i)));
            for filler in FILLERS {
                let mut i = integration(kind, name);
                hostile_integration(&mut i, &filler.repeat(5000), 1000);
                out.push((
                    format!("{label} 5000 {filler:?}, 1000 agents"),
                    Alert::Integration(i),
                ));
            }
        }
    }
    out
}

const INTEGRATION_KINDS: [IntegrationAlertKind; 3] = [
    IntegrationAlertKind::Down,
    IntegrationAlertKind::Recovered,
    IntegrationAlertKind::TokenExpiring,
];

/// A normal integration alert of `kind`: unhealthy (or its expiry steady) since 12:00:00, seen
/// at 12:12:05, the token expiring on the 30th at noon.
fn integration(kind: IntegrationAlertKind, integration: IntegrationName) -> IntegrationAlert {
    let (from, status, detail) = match kind {
        IntegrationAlertKind::Down => (Some("active"), "errored", Some("Token refresh failed")),
        IntegrationAlertKind::Recovered => (Some("errored"), "active", None),
        IntegrationAlertKind::TokenExpiring => (None, "active", None),
    };
    IntegrationAlert {
        kind,
        integration,
        from: from.map(Into::into),
        status: status.into(),
        detail: detail.map(Into::into),
        at: t(12, 12, 5),
        since: t(12, 0, 0),
        token_expires: Some(Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()),
        affected: vec![],
        affected_count: 0,
        org_linked: None,
    }
}

/// Puts `s` into every untrusted string of the alert, and `affected` agents named `s`.
fn hostile_integration(i: &mut IntegrationAlert, s: &str, affected: usize) {
    i.from = Some(s.into());
    i.status = s.into();
    i.detail = Some(s.into());
    i.affected = (0..affected.min(IntegrationAlert::NAMED))
        .map(|n| AgentRef {
            id: format!("00000000-0000-4000-8000-{n:012}").parse().unwrap(),
            name: Some(s.into()),
        })
        .collect();
    i.affected_count = affected;
    i.org_linked = Some(affected.max(1) * 10);
}

#[test]
fn integration_alerts_name_the_integration_its_status_and_what_to_do() {
    let cal = |kind| {
        Alert::Integration(IntegrationAlert {
            org_linked: Some(14),
            ..integration(kind, IntegrationName::CalcomOrg)
        })
    };
    let ghl = |kind| Alert::Integration(integration(kind, IntegrationName::Ghl));
    let (s, d) = assert_valid("calcom down", &cal(IntegrationAlertKind::Down));
    for text in [all_text(&s), discord_rendered(&d)] {
        assert!(
            text.contains("14 watched agents book through it"),
            "how many are org-linked: {text}"
        );
        assert!(
            text.contains("Cal.com integration is down: active → errored"),
            "{text}"
        );
        assert!(text.contains("calcom_org"), "{text}");
        assert!(text.contains("Token refresh failed"), "{text}");
        assert!(text.contains("Reconnect Cal.com in Ravan"), "{text}");
        assert!(text.contains("2026-11-28 12:00:00 UTC"), "since: {text}");
    }
    let (s, d) = assert_valid("ghl down", &ghl(IntegrationAlertKind::Down));
    for text in [all_text(&s), discord_rendered(&d)] {
        assert!(text.contains("GoHighLevel integration is down"), "{text}");
        assert!(text.contains("Reconnect GoHighLevel in Ravan"), "{text}");
    }
    let (s, d) = assert_valid("recovered", &cal(IntegrationAlertKind::Recovered));
    for text in [all_text(&s), discord_rendered(&d)] {
        assert!(text.contains("recovered (down for 12m 5s)"), "{text}");
    }
    assert_eq!(s["attachments"][0]["color"], "#2EB67D");
    let (s, d) = assert_valid("token", &cal(IntegrationAlertKind::TokenExpiring));
    for text in [all_text(&s), discord_rendered(&d)] {
        assert!(text.contains("token expires in 1d 23h"), "{text}");
        assert!(text.contains("2026-11-30 12:00:00 UTC"), "{text}");
        assert!(text.contains("Reconnect Cal.com in Ravan"), "{text}");
    }
    assert_eq!(d["embeds"][0]["color"], 0xECB22E);
    let down = cal(IntegrationAlertKind::Down);
    assert_eq!(
        down.summary(),
        "Integration calcom_org: down, active → errored (Token refresh failed)"
    );
    assert_eq!(down.kind_name(), "integration_down");
    assert_eq!(down.agent_id(), None);
}

#[test]
fn integration_alerts_name_ten_affected_agents_and_count_the_rest() {
    let mut i = integration(IntegrationAlertKind::Down, IntegrationName::CalcomOrg);
    hostile_integration(&mut i, "Sales line", 37);
    i.status = "errored".into();
    let (s, d) = assert_valid("affected", &Alert::Integration(i));
    for text in [all_text(&s), discord_rendered(&d)] {
        assert_eq!(text.matches("Sales line (").count(), 10, "{text}");
        assert!(text.contains("…and 27 more"), "{text}");
    }
}

#[test]
fn integration_text_from_ravan_cannot_mention_link_or_break_the_markup() {
    for hostile in [HOSTILE, HOSTILE_2] {
        for kind in INTEGRATION_KINDS {
            let mut i = integration(kind, IntegrationName::Ghl);
            hostile_integration(&mut i, hostile, 2);
            let (s, d) = assert_valid(hostile, &Alert::Integration(i));
            let raw = s.to_string();
            for forbidden in ["<!", "<http", "<@", "<#"] {
                assert!(!raw.contains(forbidden), "{forbidden:?} in {raw}");
            }
            let raw = all_text(&d);
            for forbidden in ["@everyone", "@here"] {
                assert!(!raw.contains(forbidden), "{forbidden:?} in {raw}");
            }
            assert!(discord_rendered(&d).contains(hostile), "{raw}");
        }
    }
}

#[test]
fn a_group_with_an_integration_down_counts_it_and_lists_it_first_after_polling() {
    let alerts = vec![
        down_of(1, Some("Sales".into()), ERROR),
        Alert::Integration(integration(
            IntegrationAlertKind::TokenExpiring,
            IntegrationName::CalcomOrg,
        )),
        Alert::Integration(integration(
            IntegrationAlertKind::Down,
            IntegrationName::Ghl,
        )),
    ];
    let (s, d) = assert_group_valid("integration group", &alerts);
    let headline = ravan_watch::notify::text::group_headline(&alerts);
    assert!(headline.contains("🔴 1 integration down"), "{headline}");
    assert!(
        headline.contains("⏳ 1 integration with an expiring token"),
        "{headline}"
    );
    let sorted = ravan_watch::notify::text::group_sorted(&alerts);
    assert_eq!(
        sorted.iter().map(|a| a.kind_name()).collect::<Vec<_>>(),
        ["integration_down", "down", "token_expiring"]
    );
    assert_eq!(d["embeds"][0]["color"], 0xE01E5A);
    assert!(all_text(&s).contains("GoHighLevel integration — active → errored"));
}

/// Makes the alert one of an org-linked connection through the account `name`.
fn org_linked(a: &mut AgentAlert, name: &str) {
    a.connection = Some(Connection::OrgLinked);
    a.accounts = vec![account(name, &a.to.clone(), None)];
}

/// Puts `s` into every untrusted string of the alert (an org-linked one, so the account's
/// name is in the connection too).
fn hostile_agent(a: &mut AgentAlert, s: &str) {
    a.connection = Some(Connection::OrgLinked);
    a.agent.name = Some(s.into());
    a.from = Some(s.into());
    a.to = s.into();
    for acc in &mut a.accounts {
        acc.id = s.into();
        acc.account_name = s.into();
        acc.status = s.into();
        acc.error = Some(s.into());
    }
}

#[test]
fn schema_fixture_matches_the_shared_reference() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/discord-execute-webhook.schema.json"
    );
    match std::fs::read_to_string(path) {
        Ok(reference) => assert_eq!(
            serde_json::from_str::<Value>(&reference).unwrap(),
            serde_json::from_str::<Value>(DISCORD_SCHEMA_JSON).unwrap(),
            "tests/fixtures/ differs from {path}: copy the reference again"
        ),
        Err(_) => eprintln!("no shared reference at {path}: checked against the fixture only"),
    }
}

/// Checks a Slack and a Discord payload against every limit (`label` names the case in a
/// failure) and hands them back.
fn assert_both_valid(label: &str, s: Value, d: Value) -> (Value, Value) {
    let bad = slack_violations(&s);
    assert!(bad.is_empty(), "Slack, {label}: {bad:#?}");
    let bad = discord_violations(&d);
    assert!(bad.is_empty(), "Discord, {label}: {bad:#?}");
    (s, d)
}

/// Both platforms' messages for one alert, checked by [`assert_both_valid`].
fn assert_valid(label: &str, alert: &Alert) -> (Value, Value) {
    assert_both_valid(
        label,
        slack::message(alert, Zone::UTC),
        discord::message(alert, Zone::UTC),
    )
}

// ---------------------------------------------------------------- tests

#[test]
fn checkers_catch_broken_payloads() {
    let slack_bad = json!({
        "text": "",
        "attachments": [{"color": "red", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "<!channel> & co"}},
            {"type": "section", "fields": (0..11).map(|_| json!({"type": "mrkdwn", "text": "f"})).collect::<Vec<_>>()},
            {"type": "context", "elements": []},
        ]}],
    });
    let bad = slack_violations(&slack_bad);
    for want in [
        "top-level text",
        "colour",
        "header",
        "angle bracket",
        "bare &",
        "11 fields",
        "0 context elements",
    ] {
        assert!(
            bad.iter().any(|b| b.contains(want)),
            "missed {want}: {bad:#?}"
        );
    }

    let many = |n: usize| {
        (0..n)
            .map(|_| json!({"name": "n", "value": "v".repeat(1000)}))
            .collect::<Vec<_>>()
    };
    let discord_bad = json!({
        "username": "ravan-watch",
        "allowed_mentions": {"parse": ["everyone"]},
        "embeds": [{"title": "@everyone <@1>", "color": 1, "timestamp": "2026-11-28T12:00:00Z",
                    "fields": many(7)}],
    });
    let bad = discord_violations(&discord_bad);
    for want in [
        "allowed_mentions",
        "embed total 7021",
        "mention in",
        "unescaped <",
    ] {
        assert!(
            bad.iter().any(|b| b.contains(want)),
            "missed {want}: {bad:#?}"
        );
    }
    let schema_bad = json!({"username": "", "embeds": [{"title": "t".repeat(257), "color": -1,
                            "fields": [{"name": "n", "value": ""}]}]});
    let bad = discord_violations(&schema_bad);
    assert!(
        bad.iter().filter(|b| b.starts_with("schema:")).count() >= 3,
        "{bad:#?}"
    );
    assert!(bad.iter().any(|b| b.contains("field value")), "{bad:#?}");
}

#[test]
fn every_kind_and_input_stays_within_limits() {
    let variants = variants();
    assert!(variants.len() > 100, "{} variants", variants.len());
    for (label, alert) in &variants {
        assert_valid(label, alert);
    }
}

#[test]
fn agent_alerts_name_the_agent_the_change_and_the_accounts() {
    for kind in AGENT_KINDS
        .into_iter()
        .filter(|k| *k != AgentAlertKind::Missing)
    {
        let a = agent(kind);
        let change = format!("{} → {}", a.from.as_deref().unwrap(), a.to);
        let (s, d) = assert_valid(&format!("{kind:?}"), &Alert::Agent(a));
        for (platform, text) in [("Slack", all_text(&s)), ("Discord", all_text(&d))] {
            for want in [
                ID,
                "Sales bot",
                change.as_str(),
                "Connected",
                "`false`",
                "Connection",
                "private",
                "Main calendar",
                "errored",
                ERROR,
                "Backup",
                "2026-11-28 12:12:05 UTC",
                "12m 5s",
            ] {
                assert!(
                    text.contains(want),
                    "{platform} {kind:?} lacks {want:?}:\n{text}"
                );
            }
        }
        assert_eq!(d["embeds"][0]["timestamp"], "2026-11-28T12:12:05Z");
        assert_eq!(d["username"], "ravan-watch");
    }
}

#[test]
fn headlines_by_kind() {
    let cases = [
        (
            AgentAlertKind::Down,
            "Sales bot (3f2504e0…) lost its Cal.com connection: active → errored",
        ),
        (
            AgentAlertKind::Changed,
            "Sales bot (3f2504e0…)'s Cal.com connection changed: errored → not_connected",
        ),
        (
            AgentAlertKind::Reminder,
            "Sales bot (3f2504e0…) is still errored (for 4h 2m)",
        ),
        (
            AgentAlertKind::Recovered,
            "Sales bot (3f2504e0…) recovered: errored → active (unhealthy for 4h 2m)",
        ),
        (
            AgentAlertKind::Missing,
            "Sales bot (3f2504e0…) not found at Ravan: deleted, or a wrong id?",
        ),
        (
            AgentAlertKind::Found,
            "Sales bot (3f2504e0…) is found at Ravan again (missing for 4h 2m)",
        ),
    ];
    for (kind, want) in cases {
        let mut a = agent(kind);
        a.unhealthy_since = t(8, 10, 5);
        let (s, d) = assert_valid(&format!("{kind:?}"), &Alert::Agent(a));
        assert!(s["text"].as_str().unwrap().contains(want), "{}", s["text"]);
        let header = &s["attachments"][0]["blocks"][0]["text"]["text"];
        assert!(header.as_str().unwrap().contains(want), "{header}");
        let title = discord_rendered(&d["embeds"][0]["title"]);
        assert!(title.contains(want), "{title}");
    }
}

#[test]
fn colours_follow_the_kind() {
    let red = ("#E01E5A", 0xE01E5A);
    let green = ("#2EB67D", 0x2EB67D);
    let amber = ("#ECB22E", 0xECB22E);
    let cases = [
        (Alert::Agent(agent(AgentAlertKind::Down)), red),
        (Alert::Agent(agent(AgentAlertKind::Changed)), red),
        (Alert::Agent(agent(AgentAlertKind::Reminder)), red),
        (Alert::Agent(agent(AgentAlertKind::Recovered)), green),
        (Alert::Agent(agent(AgentAlertKind::Missing)), amber),
        (Alert::Agent(agent(AgentAlertKind::Found)), green),
        (Alert::Monitor(monitor(MonitorAlertKind::Down)), amber),
        (Alert::Monitor(monitor(MonitorAlertKind::Recovered)), green),
    ];
    for (alert, (hex, int)) in cases {
        assert_eq!(
            slack::message(&alert, Zone::UTC)["attachments"][0]["color"],
            hex,
            "{alert:?}"
        );
        assert_eq!(
            discord::message(&alert, Zone::UTC)["embeds"][0]["color"],
            int,
            "{alert:?}"
        );
    }
}

#[test]
fn first_observation_and_unnamed_agents() {
    let mut a = agent(AgentAlertKind::Down);
    a.from = None;
    a.agent.name = None;
    let (s, d) = assert_valid("first seen", &Alert::Agent(a));
    for text in [all_text(&s), all_text(&d)] {
        assert!(text.contains("first seen errored"), "{text}");
        assert!(
            text.contains(&format!("{ID} lost its Cal.com connection")),
            "{text}"
        );
        assert!(!text.contains("(empty)"), "{text}");
        assert!(!text.contains("Sales bot"), "{text}");
    }
}

#[test]
fn monitor_alerts_say_polling_is_broken_and_name_no_agent() {
    let (s, d) = assert_valid(
        "monitor down",
        &Alert::Monitor(monitor(MonitorAlertKind::Down)),
    );
    let discord_text = discord_rendered(&d);
    for text in [all_text(&s), discord_text] {
        for want in [
            "ravan-watch cannot poll the Ravan API",
            REASON,
            "2026-11-28 12:00:00 UTC",
            "12m 5s",
        ] {
            assert!(text.contains(want), "lacks {want:?}:\n{text}");
        }
        for unwanted in ["lost its", "Agent", "Cal.com connection:", ID] {
            assert!(!text.contains(unwanted), "has {unwanted:?}:\n{text}");
        }
    }

    let (s, d) = assert_valid(
        "monitor recovered",
        &Alert::Monitor(monitor(MonitorAlertKind::Recovered)),
    );
    for text in [all_text(&s), discord_rendered(&d)] {
        assert!(
            text.contains("ravan-watch can poll the Ravan API again (broken for 12m 5s)"),
            "{text}"
        );
        assert!(!text.contains("cannot"), "{text}");
    }
}

#[test]
fn ravan_text_cannot_mention_or_link_in_slack() {
    for hostile in [HOSTILE, HOSTILE_2] {
        let mut a = agent(AgentAlertKind::Down);
        hostile_agent(&mut a, hostile);
        let mut m = monitor(MonitorAlertKind::Down);
        m.reason = hostile.into();
        for alert in [Alert::Agent(a), Alert::Monitor(m)] {
            let (s, _) = assert_valid(hostile, &alert);
            let raw = s.to_string();
            for forbidden in ["<!", "<http", "<@", "<#", "<", ">"] {
                assert!(!raw.contains(forbidden), "{forbidden:?} in {raw}");
            }
            let text = all_text(&s);
            // Shown, escaped, not dropped.
            let first = hostile.split(' ').next().unwrap();
            let shown = first.replace('<', "&lt;").replace('>', "&gt;");
            assert!(text.contains(&shown), "{shown:?} not in {text}");
            assert!(text.contains(&format!("@{ZWSP}")), "{text}");
        }
    }
}

#[test]
fn ravan_text_cannot_mention_or_link_in_discord() {
    for hostile in [HOSTILE, HOSTILE_2] {
        let mut a = agent(AgentAlertKind::Down);
        hostile_agent(&mut a, hostile);
        let mut m = monitor(MonitorAlertKind::Down);
        m.reason = hostile.into();
        for alert in [Alert::Agent(a), Alert::Monitor(m)] {
            let (_, d) = assert_valid(hostile, &alert);
            assert_eq!(d["allowed_mentions"], json!({"parse": []}));
            let raw = all_text(&d);
            for forbidden in ["@everyone", "@here"] {
                assert!(!raw.contains(forbidden), "{forbidden:?} in {raw}");
            }
            for tag in ["<@", "<#", "<!", "<http"] {
                let bare = raw
                    .match_indices(tag)
                    .any(|(i, _)| !raw[..i].ends_with('\\'));
                assert!(!bare, "unescaped {tag:?} in {raw}");
            }
            assert!(raw.contains(r"\<!channel\>") || raw.contains(r"\<!here\>"));
            // Still readable once rendered.
            assert!(discord_rendered(&d).contains(hostile), "{raw}");
        }
    }
}

#[test]
fn ravan_text_cannot_break_the_markup() {
    let mut a = agent(AgentAlertKind::Down);
    hostile_agent(&mut a, MARKUP);
    let mut m = monitor(MonitorAlertKind::Down);
    m.reason = MARKUP.into();
    for alert in [Alert::Agent(a), Alert::Monitor(m)] {
        let (s, d) = assert_valid("markup", &alert);
        // Everything Slack parses as mrkdwn: all but the plain_text header.
        let mut slack = s.clone();
        slack["attachments"][0]["blocks"][0] = Value::Null;
        let slack_text = all_text(&slack);
        for raw in ["*bold*", "_it_", "~st~", "`code`", "__u__"] {
            assert!(!slack_text.contains(raw), "Slack has {raw:?}: {slack_text}");
        }
        assert!(
            slack_text.contains(&format!("{ZWSP}*{ZWSP}bold{ZWSP}*{ZWSP}")),
            "{slack_text}"
        );

        let discord_text = all_text(&d);
        for raw in [
            "*bold*", "_it_", "~st~", "`code`", "[x](", "||sp||", "__u__",
        ] {
            assert!(
                !discord_text.contains(raw),
                "Discord has {raw:?}: {discord_text}"
            );
        }
        for escaped in [
            r"\*bold\*",
            r"\[x\](https://e.com)",
            r"\# h \> q",
            r"\|\|sp\|\|",
        ] {
            assert!(
                discord_text.contains(escaped),
                "Discord lacks {escaped:?}: {discord_text}"
            );
        }
        assert!(discord_rendered(&d).contains(MARKUP));
    }
}

#[test]
fn snake_case_statuses_stay_readable() {
    let (s, d) = assert_valid("changed", &Alert::Agent(agent(AgentAlertKind::Changed)));
    assert!(all_text(&s).contains("errored → not_connected"));
    assert!(all_text(&d).contains("errored → not_connected"));
}

#[test]
fn many_accounts_are_listed_as_far_as_they_fit_then_counted() {
    let mut a = agent(AgentAlertKind::Down);
    a.accounts = (0..200)
        .map(|i| account(&format!("cal {i}"), "errored", Some(ERROR)))
        .collect();
    let (s, d) = assert_valid("200 accounts", &Alert::Agent(a));

    let slack_text = all_text(&s);
    assert!(slack_text.contains("cal 19"), "{slack_text}");
    assert!(!slack_text.contains("cal 20"), "{slack_text}");
    assert!(
        slack_text.contains("…and 180 more accounts"),
        "{slack_text}"
    );

    let fields = d["embeds"][0]["fields"].as_array().unwrap();
    let listed = fields
        .iter()
        .filter(|f| f["name"].as_str().unwrap().starts_with("cal "))
        .count();
    assert!(listed >= 15, "only {listed} accounts listed");
    let more = format!("…and {} more accounts", 200 - listed);
    assert!(all_text(&d).contains(&more), "no {more:?}");
}

#[test]
fn a_broken_account_is_listed_even_behind_many_healthy_ones() {
    let mut a = agent(AgentAlertKind::Down);
    a.accounts = (0..200)
        .map(|i| account(&format!("cal {i}"), "active", None))
        .collect();
    a.accounts
        .push(account("the broken one", "errored", Some(ERROR)));
    let (s, d) = assert_valid("one broken of 201", &Alert::Agent(a));
    for text in [all_text(&s), all_text(&d)] {
        assert!(text.contains("the broken one"));
        assert!(text.contains(ERROR));
    }
}

#[test]
fn long_text_is_cut_with_a_marker_not_dropped() {
    let mut a = agent(AgentAlertKind::Down);
    a.accounts[0].error = Some("é".repeat(5000).into());
    let (s, d) = assert_valid("long error", &Alert::Agent(a));
    for text in [all_text(&s), all_text(&d)] {
        assert!(
            text.contains(&format!("{}…", "é".repeat(500))),
            "no cut error"
        );
    }

    let mut m = monitor(MonitorAlertKind::Down);
    m.reason = "<".repeat(5000);
    let (s, d) = assert_valid("long reason", &Alert::Monitor(m));
    // Cut between escapes: the text ends with a whole entity, then the marker.
    assert!(all_text(&s).contains("&lt;&lt;…"));
    assert!(all_text(&d).contains(r"\<\<…"));
}

/// The Discord total is the tightest limit: sweep account sizes so that the listed accounts land
/// at every distance from it, including the few characters the "…and N more" field needs.
#[test]
fn discord_total_holds_at_every_fill_level() {
    for len in 1..=700 {
        let mut a = agent(AgentAlertKind::Down);
        a.accounts = (0..200)
            .map(|i| account(&i.to_string(), "errored", Some(&"e".repeat(len))))
            .collect();
        let d = discord::message(&Alert::Agent(a), Zone::UTC);
        let bad = discord_limit_violations(&d);
        assert!(bad.is_empty(), "error length {len}: {bad:#?}");
    }
}

// ---------------------------------------------------------------- grouped messages

fn down_of(i: usize, name: Option<String>, error: &str) -> Alert {
    let mut a = agent(AgentAlertKind::Down);
    a.agent.id = agent_id(i).parse().unwrap();
    a.agent.name = name;
    a.accounts = vec![account("Main", "errored", Some(error))];
    Alert::Agent(a)
}

/// Both platforms' grouped messages for `alerts`, checked by [`assert_both_valid`].
fn assert_group_valid(label: &str, alerts: &[Alert]) -> (Value, Value) {
    assert_both_valid(
        label,
        slack::group_message(alerts, Zone::UTC),
        discord::group_message(alerts, Zone::UTC),
    )
}

#[test]
fn a_thousand_agent_outage_is_one_message_with_the_total_within_limits() {
    let alerts: Vec<Alert> = (0..1000)
        .map(|i| down_of(i, Some(format!("Agent {i}")), ERROR))
        .collect();
    let (s, d) = assert_group_valid("1000 downs", &alerts);
    for (name, text) in [("slack", all_text(&s)), ("discord", discord_rendered(&d))] {
        assert!(
            text.contains("1000 agents lost their Cal.com connection"),
            "{name}: {text}"
        );
        assert!(
            text.contains("00000000-0000-4000-8000-000000000000"),
            "{name}: the first agent listed"
        );
        assert!(text.contains(ERROR), "{name}: first errors shown");
        let listed = (0..1000)
            .filter(|i| text.contains(&format!("8000-{i:012}")))
            .count();
        assert!(listed >= 10, "{name}: only {listed} agents listed");
        assert!(
            text.contains(&format!("…and {} more", 1000 - listed)),
            "{name}: {listed} listed, no exact rest in {text}"
        );
    }
}

#[test]
fn a_small_group_names_every_agent() {
    let alerts: Vec<Alert> = (0..5).map(|i| down_of(i, None, ERROR)).collect();
    let (s, d) = assert_group_valid("5 downs", &alerts);
    for text in [all_text(&s), all_text(&d)] {
        for i in 0..5 {
            assert!(
                text.contains(&format!("00000000-0000-4000-8000-{i:012}")),
                "{text}"
            );
        }
        assert!(!text.contains("more"), "nothing cut: {text}");
    }
}

#[test]
fn a_mixed_group_counts_each_kind_exactly_and_is_red() {
    let mut alerts: Vec<Alert> = (0..7).map(|i| down_of(i, None, ERROR)).collect();
    for (kind, n) in [
        (AgentAlertKind::Recovered, 3),
        (AgentAlertKind::Changed, 2),
        (AgentAlertKind::Reminder, 4),
    ] {
        for _ in 0..n {
            alerts.push(Alert::Agent(agent(kind)));
        }
    }
    alerts.push(Alert::Monitor(monitor(MonitorAlertKind::Down)));
    let (s, d) = assert_group_valid("mixed", &alerts);
    let headline = ravan_watch::notify::text::group_headline(&alerts);
    for part in [
        "7 agents lost",
        "2 agents changed",
        "4 agents still unhealthy",
        "3 agents recovered",
        "cannot poll",
    ] {
        assert!(headline.contains(part), "{part} in {headline}");
    }
    assert_eq!(d["embeds"][0]["color"], json!(0xE01E5A));
    assert_eq!(s["attachments"][0]["color"], "#E01E5A");
    let recovered: Vec<Alert> = (0..4)
        .map(|_| Alert::Agent(agent(AgentAlertKind::Recovered)))
        .collect();
    assert_eq!(
        discord::group_message(&recovered, Zone::UTC)["embeds"][0]["color"],
        json!(0x2EB67D)
    );
}

#[test]
fn groups_of_every_size_with_hostile_and_long_text_stay_within_limits_and_escaped() {
    let long_error = format!("{HOSTILE} {}", "é🔥<&*@".repeat(900));
    let long_name = format!("{HOSTILE_2} {}", "x".repeat(5000));
    for n in [2, 3, 4, 10, 37, 100, 1000, 10_000] {
        let alerts: Vec<Alert> = (0..n)
            .map(|i| down_of(i, Some(long_name.clone()), &long_error))
            .collect();
        let (s, d) = assert_group_valid(&format!("{n} hostile"), &alerts);
        let slack_text = all_text(&s);
        assert!(
            !slack_text.contains("<!") && !slack_text.contains("<http"),
            "{n}: Slack control sequence"
        );
        let discord_text = all_text(&d);
        assert!(
            !discord_text.contains("@everyone") && !discord_text.contains("@here"),
            "{n}: Discord mention"
        );
        assert_eq!(d["allowed_mentions"], json!({"parse": []}));
    }
}

#[test]
fn missing_alerts_say_what_ravan_answers_and_what_to_do_not_a_broken_connection() {
    let a = agent(AgentAlertKind::Missing);
    let (s, d) = assert_valid("missing", &Alert::Agent(a));
    for (platform, text) in [("Slack", all_text(&s)), ("Discord", all_text(&d))] {
        for want in [
            ID,
            "Sales bot",
            "not found at Ravan: deleted, or a wrong id?",
            "404 Not Found",
            &format!("DELETE /agents/{ID}"),
            "Not found for",
            "12m 5s",
        ] {
            assert!(text.contains(want), "{platform} lacks {want:?}:\n{text}");
        }
        for unwanted in ["lost its Cal.com connection", "Connected", "Main calendar"] {
            assert!(
                !text.contains(unwanted),
                "{platform} has {unwanted:?}:\n{text}"
            );
        }
    }
    let found = agent(AgentAlertKind::Found);
    let (s, d) = assert_valid("found", &Alert::Agent(found));
    for text in [all_text(&s), all_text(&d)] {
        assert!(text.contains("Was missing for"), "{text}");
        assert!(text.contains("Answering again at"), "{text}");
    }
}

#[test]
fn org_linked_alerts_say_so_and_name_the_account() {
    let mut a = agent(AgentAlertKind::Down);
    org_linked(&mut a, "Acme team calendar");
    let (s, d) = assert_valid("org-linked", &Alert::Agent(a));
    for text in [all_text(&s), all_text(&d)] {
        assert!(
            text.contains("lost its (org-linked) Cal.com connection"),
            "{text}"
        );
        assert!(text.contains("org-linked (Acme team calendar)"), "{text}");
    }
    let mut a = agent(AgentAlertKind::Down);
    a.connection = Some(Connection::None);
    a.accounts.clear();
    let (s, d) = assert_valid("none", &Alert::Agent(a));
    for text in [all_text(&s), all_text(&d)] {
        assert!(!text.contains("org-linked"), "{text}");
        assert!(text.contains("none"), "{text}");
    }
}

#[test]
fn a_group_counts_missing_and_found_agents_and_is_amber_without_outages() {
    let alerts = vec![
        Alert::Agent(agent(AgentAlertKind::Missing)),
        Alert::Agent(agent(AgentAlertKind::Missing)),
        Alert::Agent(agent(AgentAlertKind::Found)),
    ];
    let (s, d) = assert_group_valid("missing group", &alerts);
    let headline = ravan_watch::notify::text::group_headline(&alerts);
    assert!(
        headline.contains("2 agents not found at Ravan"),
        "{headline}"
    );
    assert!(headline.contains("1 agent found again"), "{headline}");
    assert_eq!(d["embeds"][0]["color"], json!(0xECB22E));
    assert_eq!(s["attachments"][0]["color"], "#ECB22E");
    let text = all_text(&s);
    assert!(
        text.contains("not found at Ravan (deleted, or a wrong id?)"),
        "{text}"
    );
}

/// With `TIMEZONE` set, a message's times are the team's local time with the zone's
/// abbreviation, on both platforms: CET in winter, CEST in summer; UTC stays as it was.
#[test]
fn times_are_written_in_the_configured_zone_on_both_platforms() {
    let berlin = Zone::from(chrono_tz::Europe::Berlin);
    let winter = Alert::Agent(agent_alert(
        AgentAlertKind::Down,
        ID,
        Some("Sales"),
        ("active", "errored"),
        Utc.with_ymd_and_hms(2026, 12, 7, 9, 15, 0).unwrap(),
    ));
    let summer = Alert::Agent(agent_alert(
        AgentAlertKind::Down,
        ID,
        Some("Sales"),
        ("active", "errored"),
        Utc.with_ymd_and_hms(2026, 7, 7, 9, 15, 0).unwrap(),
    ));
    for (alert, local, utc) in [
        (
            &winter,
            "2026-12-07 10:15:00 CET",
            "2026-12-07 09:15:00 UTC",
        ),
        (
            &summer,
            "2026-07-07 11:15:00 CEST",
            "2026-07-07 09:15:00 UTC",
        ),
    ] {
        let (s, d) = assert_both_valid(
            "zoned",
            slack::message(alert, berlin),
            discord::message(alert, berlin),
        );
        for text in [all_text(&s), discord_rendered(&d)] {
            assert!(text.contains(local), "{local} in {text}");
            assert!(!text.contains(" UTC"), "nothing left in UTC: {text}");
        }
        let (s, d) = assert_valid("utc", alert);
        for text in [all_text(&s), discord_rendered(&d)] {
            assert!(text.contains(utc), "{utc} in {text}");
        }
    }
    // The group message's times too (a token's expiry).
    let mut token = integration(
        IntegrationAlertKind::TokenExpiring,
        IntegrationName::CalcomOrg,
    );
    token.token_expires = Some(Utc.with_ymd_and_hms(2026, 12, 9, 8, 0, 0).unwrap());
    let alerts = vec![Alert::Integration(token), winter.clone()];
    let (s, d) = assert_both_valid(
        "zoned group",
        slack::group_message(&alerts, berlin),
        discord::group_message(&alerts, berlin),
    );
    for text in [all_text(&s), discord_rendered(&d)] {
        assert!(text.contains("2026-12-09 09:00:00 CET"), "{text}");
    }
}

// ---------------------------------------------------------------- Microsoft Teams

/// The headline TextBlock of a Teams card.
fn teams_headline(card: &Value) -> &Value {
    &card["attachments"][0]["content"]["body"][0]
}

/// The facts of a Teams card's first FactSet, as (title, value) pairs.
fn teams_facts(card: &Value) -> Vec<(String, String)> {
    let body = card["attachments"][0]["content"]["body"]
        .as_array()
        .unwrap();
    let set = body.iter().find(|b| b["type"] == "FactSet").unwrap();
    set["facts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |v: &Value| v.as_str().unwrap().replace(ZWSP, "");
            (s(&f["title"]), s(&f["value"]))
        })
        .collect()
}

#[test]
fn teams_checker_catches_broken_cards() {
    let good = teams::message(&Alert::Agent(agent(AgentAlertKind::Down)), Zone::UTC);
    assert_teams_valid("good", &good);
    let mut colour = good.clone();
    colour["attachments"][0]["content"]["body"][0]["color"] = json!("red");
    let mut extra = good.clone();
    extra["attachments"][0]["content"]["body"][0]["colour"] = json!("good");
    let mut version = good.clone();
    version["attachments"][0]["content"]["version"] = json!("1.5");
    let mut envelope = good.clone();
    envelope["attachments"][0]["contentType"] = json!("application/json");
    let mut big = good.clone();
    big["attachments"][0]["content"]["body"][0]["text"] = json!("x".repeat(30_000));
    let mut mention = good.clone();
    mention["attachments"][0]["content"]["body"][0]["text"] = json!("<at>all</at>");
    for (label, bad) in [
        ("colour", colour),
        ("extra", extra),
        ("version", version),
        ("envelope", envelope),
        ("big", big),
        ("mention", mention),
    ] {
        assert!(!teams_violations(&bad).is_empty(), "{label} not caught");
    }
    // Microsoft's own 1.4 schema is checked too: the colour and the extra property each break
    // it, not only the hand-written subset.
    for (label, field, value) in [
        ("colour", "color", json!("red")),
        ("extra", "colour", json!(1)),
    ] {
        let mut bad = good.clone();
        bad["attachments"][0]["content"]["body"][0][field] = value;
        let official: Vec<String> = (teams_violations(&bad).into_iter())
            .filter(|v| v.starts_with("Adaptive Card 1.4:"))
            .collect();
        assert!(
            !official.is_empty(),
            "{label}: not caught by the 1.4 schema"
        );
    }
}

/// Every alert kind, with normal, blank, hostile and 5,000-character input, and 200 accounts:
/// a valid Adaptive Card 1.4 in the Workflows envelope, under 28 KB, nothing that mentions or
/// links, and the headline coloured by the kind.
#[test]
fn teams_cards_of_every_kind_and_input_are_valid_and_within_28_kb() {
    let variants = variants();
    assert!(variants.len() > 100);
    for (label, alert) in &variants {
        let card = teams::message(alert, Zone::UTC);
        assert_teams_valid(label, &card);
        let expected = match alert {
            Alert::Agent(a) => match a.kind {
                AgentAlertKind::Down | AgentAlertKind::Missing => "attention",
                AgentAlertKind::Changed | AgentAlertKind::Reminder => "warning",
                AgentAlertKind::Recovered | AgentAlertKind::Found => "good",
            },
            Alert::Monitor(m) if m.kind == MonitorAlertKind::Down => "attention",
            Alert::Monitor(_) => "good",
            Alert::Webhook(_) => "attention",
            Alert::Integration(i) => match i.kind {
                IntegrationAlertKind::Down => "attention",
                IntegrationAlertKind::TokenExpiring => "warning",
                IntegrationAlertKind::Recovered => "good",
            },
        };
        assert_eq!(teams_headline(&card)["color"], expected, "{label}");
    }
}

/// The same facts as Slack's fields: agent name and id, the change, connected, the connection,
/// when seen, how long; then each account with its error; recoveries say the downtime.
#[test]
fn teams_agent_cards_carry_slacks_facts_and_each_accounts_error() {
    let down = Alert::Agent(agent(AgentAlertKind::Down));
    let card = teams::message(&down, Zone::UTC);
    let facts = teams_facts(&card);
    let titles: Vec<&str> = facts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Agent",
            "Change",
            "Connected",
            "Connection",
            "Seen",
            "Unhealthy for"
        ]
    );
    assert_eq!(facts[0].1, format!("Sales bot ({ID})"));
    assert_eq!(facts[1].1, "active → errored");
    assert_eq!(facts[2].1, "false");
    assert_eq!(facts[4].1, "2026-11-28 12:12:05 UTC");
    let text = all_text(&card).replace(ZWSP, "");
    assert!(
        text.contains("**Main calendar** — status: errored"),
        "{text}"
    );
    assert!(text.contains(ERROR), "the account's error: {text}");
    assert!(text.contains("**Backup** — status: active"), "{text}");

    let recovered = teams::message(&Alert::Agent(agent(AgentAlertKind::Recovered)), Zone::UTC);
    let facts = teams_facts(&recovered);
    assert!(
        facts
            .iter()
            .any(|(t, v)| t == "Healthy again at" && v == "2026-11-28 12:12:05 UTC"),
        "{facts:?}"
    );
    assert!(
        facts
            .iter()
            .any(|(t, v)| t == "Unhealthy for" && v.starts_with("12m 5s")),
        "the downtime: {facts:?}"
    );
}

/// Text from Ravan cannot mention, link or format in Teams, and still reads as it was sent.
#[test]
fn teams_text_from_ravan_cannot_mention_link_or_format() {
    let mut a = agent(AgentAlertKind::Down);
    let hostile = "<at>General</at> @everyone **b** _i_ [x](https://e.vil) # h - 1. l";
    hostile_agent(&mut a, hostile);
    let card = teams::message(&Alert::Agent(a), Zone::UTC);
    assert_teams_valid("hostile", &card);
    let raw = all_text(&card);
    for bad in ["<at>", "**b**", "_i_", "](", "# h", "@everyone"] {
        assert!(!raw.contains(bad), "{bad:?} in {raw}");
    }
    assert!(
        raw.replace(ZWSP, "").contains(hostile),
        "the reader still sees what Ravan said: {raw}"
    );
}

/// 1,000 agents down with hostile, long names: one card, the exact count, as many named as fit,
/// then the exact rest, under 28 KB and valid.
#[test]
fn teams_a_thousand_agent_outage_with_hostile_names_is_one_card_within_28_kb() {
    for filler in FILLERS {
        let name = format!("{HOSTILE} <at>x</at> {MARKUP} {}", filler.repeat(300));
        let alerts: Vec<Alert> = (0..1000)
            .map(|i| down_of(i, Some(name.clone()), &filler.repeat(2000)))
            .collect();
        let card = teams::group_message(&alerts, Zone::UTC);
        assert_teams_valid(&format!("1000 {filler:?}"), &card);
        assert_eq!(teams_headline(&card)["color"], "attention");
        let text = all_text(&card).replace(ZWSP, "");
        assert!(
            text.contains("1000 agents lost their Cal.com connection"),
            "{text}"
        );
        let listed = (0..1000)
            .filter(|i| text.contains(&format!("8000-{i:012}")))
            .count();
        assert!(listed >= 10, "{filler:?}: only {listed} agents listed");
        assert!(
            text.contains(&format!("…and {} more", 1000 - listed)),
            "{filler:?}: {listed} listed, no exact rest"
        );
    }
    let recovered: Vec<Alert> = (0..5)
        .map(|i| {
            let mut a = agent(AgentAlertKind::Recovered);
            a.agent.id = agent_id(i).parse().unwrap();
            Alert::Agent(a)
        })
        .collect();
    let card = teams::group_message(&recovered, Zone::UTC);
    assert_teams_valid("5 recovered", &card);
    assert_eq!(teams_headline(&card)["color"], "good");
}
