//! The platforms' limits as checkers over a payload, shared by every test that builds one.
#![allow(dead_code)]

use std::sync::LazyLock;

use chrono::DateTime;
use serde_json::{Value, json};

const ZWSP: char = '\u{200B}';

/// Every string in `v`, keys excluded.
pub fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Object(o) => o.values().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// Every string in `v` on lines of their own, to search a payload's text.
pub fn all_text(v: &Value) -> String {
    strings(v).join("\n")
}

/// Discord text roughly as it renders: backslash escapes and zero-width spaces removed.
pub fn discord_rendered(v: &Value) -> String {
    let mut out = String::new();
    let mut chars = all_text(v)
        .chars()
        .collect::<Vec<_>>()
        .into_iter()
        .peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|n| n.is_ascii_punctuation()) => {
                out.push(chars.next().unwrap())
            }
            ZWSP => {}
            c => out.push(c),
        }
    }
    out
}

/// The length of the string `v` in characters (0 when it is not a string).
pub fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

// ---------------------------------------------------------------- Slack checker

/// Every Block Kit limit this crate relies on, plus: no `<` or `>` anywhere (the payload never
/// contains control sequences) and every `&` in mrkdwn starts an entity.
pub fn slack_violations(p: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let top = p["text"].as_str().unwrap_or("");
    let n = top.chars().count();
    bad_if(
        &mut bad,
        !(1..=4000).contains(&n),
        format!("top-level text has {n} chars"),
    );
    let mut mrkdwn = vec![top];
    // Text objects to check: (where, object, max chars).
    let mut texts: Vec<(String, &Value, usize)> = Vec::new();
    let empty = vec![];
    let attachments = p["attachments"].as_array().unwrap_or(&empty);
    bad_if(
        &mut bad,
        attachments.len() != 1,
        format!("{} attachments", attachments.len()),
    );
    for att in attachments {
        let colour = att["color"].as_str().unwrap_or("");
        bad_if(
            &mut bad,
            colour.len() != 7
                || !colour.starts_with('#')
                || !colour[1..].chars().all(|c| c.is_ascii_hexdigit()),
            format!("colour {colour:?}"),
        );
        let blocks = att["blocks"].as_array().unwrap_or(&empty);
        bad_if(
            &mut bad,
            !(1..=50).contains(&blocks.len()),
            format!("{} blocks", blocks.len()),
        );
        for (i, b) in blocks.iter().enumerate() {
            match b["type"].as_str().unwrap_or("") {
                "header" => {
                    bad_if(
                        &mut bad,
                        b["text"]["type"] != "plain_text",
                        format!("block {i}: header not plain_text"),
                    );
                    texts.push((format!("block {i} header"), &b["text"], 150));
                }
                "section" => {
                    let fields = b["fields"].as_array().unwrap_or(&empty);
                    bad_if(
                        &mut bad,
                        b["text"].is_null() && fields.is_empty(),
                        format!("block {i}: section with neither text nor fields"),
                    );
                    if !b["text"].is_null() {
                        texts.push((format!("block {i} section text"), &b["text"], 3000));
                    }
                    bad_if(
                        &mut bad,
                        fields.len() > 10,
                        format!("block {i}: {} fields", fields.len()),
                    );
                    texts.extend(fields.iter().map(|f| (format!("block {i} field"), f, 2000)));
                }
                "context" => {
                    let elements = b["elements"].as_array().unwrap_or(&empty);
                    bad_if(
                        &mut bad,
                        !(1..=10).contains(&elements.len()),
                        format!("block {i}: {} context elements", elements.len()),
                    );
                    texts.extend(
                        elements
                            .iter()
                            .map(|e| (format!("block {i} context"), e, 3000)),
                    );
                }
                other => bad.push(format!("block {i}: unexpected type {other:?}")),
            }
        }
    }
    for (at, t, max) in texts {
        let n = chars(&t["text"]);
        let kind = t["type"].as_str().unwrap_or("");
        bad_if(
            &mut bad,
            !(1..=max).contains(&n) || !["mrkdwn", "plain_text"].contains(&kind),
            format!("{at}: {kind:?} text of {n} chars (1..={max})"),
        );
        if kind == "mrkdwn" {
            mrkdwn.extend(t["text"].as_str());
        }
    }
    for s in strings(p) {
        if s.contains(['<', '>']) {
            bad.push(format!("angle bracket in {:?}", short(s)));
        }
    }
    for s in mrkdwn {
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            rest = &rest[i..];
            if !["&amp;", "&lt;", "&gt;"]
                .iter()
                .any(|e| rest.starts_with(e))
            {
                bad.push(format!("bare & in {:?}", short(s)));
                break;
            }
            rest = &rest[1..];
        }
    }
    bad
}

/// Records `what` as a broken limit when `cond` holds.
pub fn bad_if(bad: &mut Vec<String>, cond: bool, what: String) {
    if cond {
        bad.push(what);
    }
}

/// The first 80 characters of `s`, to quote it in a failure.
pub fn short(s: &str) -> String {
    s.chars().take(80).collect()
}

// ---------------------------------------------------------------- Discord checker

/// Discord's execute-webhook body schema, from Discord's own API spec. Kept in the repository so
/// the tests run from a fresh clone; `schema_fixture_matches_the_shared_reference` keeps it equal
/// to the team's reference copy wherever that copy is present.
pub const DISCORD_SCHEMA_JSON: &str =
    include_str!("../fixtures/discord-execute-webhook.schema.json");

static DISCORD_SCHEMA: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(DISCORD_SCHEMA_JSON).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
});

/// The schema, then the rest of [`discord_limit_violations`].
pub fn discord_violations(p: &Value) -> Vec<String> {
    let mut bad: Vec<String> = DISCORD_SCHEMA
        .iter_errors(p)
        .map(|e| format!("schema: {e} at {}", e.instance_path()))
        .collect();
    bad.extend(discord_limit_violations(p));
    bad
}

/// Every limit Discord enforces, including those the schema does not model (non-blank fields,
/// the 6000 total), and no mentions.
pub fn discord_limit_violations(p: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    bad_if(
        &mut bad,
        p["allowed_mentions"] != json!({"parse": []}),
        format!("allowed_mentions {}", p["allowed_mentions"]),
    );
    bad_if(
        &mut bad,
        !(1..=80).contains(&chars(&p["username"])),
        "username".into(),
    );
    bad_if(&mut bad, chars(&p["content"]) > 2000, "content".into());
    let empty = vec![];
    let embeds = p["embeds"].as_array().unwrap_or(&empty);
    bad_if(
        &mut bad,
        !(1..=10).contains(&embeds.len()),
        format!("{} embeds", embeds.len()),
    );
    let mut total = 0;
    for e in embeds {
        let mut limit = |v: &Value, max: usize, what: &str| {
            let n = chars(v);
            total += n;
            bad_if(
                &mut bad,
                n > max,
                format!("{what} has {n} chars (max {max})"),
            );
        };
        limit(&e["title"], 256, "title");
        limit(&e["description"], 4096, "description");
        limit(&e["footer"]["text"], 2048, "footer");
        limit(&e["author"]["name"], 256, "author");
        let fields = e["fields"].as_array().unwrap_or(&empty);
        bad_if(
            &mut bad,
            fields.len() > 25,
            format!("{} fields", fields.len()),
        );
        for f in fields {
            for (key, max) in [("name", 256), ("value", 1024)] {
                let s = f[key].as_str().unwrap_or("");
                let n = s.chars().count();
                total += n;
                bad_if(
                    &mut bad,
                    s.trim().is_empty() || n > max,
                    format!("field {key} has {n} chars (1..={max}): {:?}", short(s)),
                );
            }
        }
        bad_if(
            &mut bad,
            e["color"].as_u64().is_none_or(|c| c > 0xFF_FFFF),
            "color".into(),
        );
        bad_if(
            &mut bad,
            DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap_or("")).is_err(),
            "timestamp".into(),
        );
    }
    bad_if(
        &mut bad,
        total > 6000,
        format!("embed total {total} > 6000"),
    );
    for s in strings(p) {
        let lower = s.to_lowercase();
        bad_if(
            &mut bad,
            lower.contains("@everyone") || lower.contains("@here"),
            format!("mention in {:?}", short(s)),
        );
        let unescaped_lt = s
            .char_indices()
            .any(|(i, c)| c == '<' && !s[..i].ends_with('\\'));
        bad_if(
            &mut bad,
            unescaped_lt,
            format!("unescaped < in {:?}", short(s)),
        );
    }
    bad
}

/// Panics with every broken limit of a payload for `platform` (`"slack"` or `"discord"`).
pub fn assert_within_limits(platform: &str, body: &Value) {
    let bad = match platform {
        "slack" => slack_violations(body),
        _ => discord_violations(body),
    };
    assert!(bad.is_empty(), "{platform}: {bad:#?}");
}

// ---------------------------------------------------------------- Teams checker

/// The Adaptive Card 1.4 subset ravan-watch emits, in its Workflows envelope: hand-written from
/// the 1.4 documentation (its `description` says why it is not the official file).
pub const TEAMS_SCHEMA_JSON: &str =
    include_str!("../fixtures/adaptive-card-1.4.subset.schema.json");

static TEAMS_SCHEMA: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(TEAMS_SCHEMA_JSON).unwrap();
    jsonschema::validator_for(&schema).unwrap()
});

/// Microsoft's Adaptive Card 1.4 schema, vendored unchanged (its source:
/// `tests/fixtures/adaptive-card-1.4.schema.md`). It allows extra properties, so the subset
/// above is checked too.
pub const ADAPTIVE_CARD_1_4_JSON: &str = include_str!("../fixtures/adaptive-card-1.4.schema.json");

static ADAPTIVE_CARD_1_4: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(ADAPTIVE_CARD_1_4_JSON).unwrap();
    jsonschema::validator_for(&schema).unwrap()
});

/// Teams takes a message of about 28 KB at most.
pub const TEAMS_MAX_BYTES: usize = 28 * 1024;

/// Schema errors, a message over Teams' size, and any text that could mention or link in
/// Teams' Markdown: `<at`, `@` followed by a letter, `](`, `**` outside ravan-watch's own bold
/// labels.
pub fn teams_violations(p: &Value) -> Vec<String> {
    let mut bad: Vec<String> = TEAMS_SCHEMA
        .iter_errors(p)
        .map(|e| format!("schema: {e} at {}", e.instance_path()))
        .collect();
    let cards = p["attachments"].as_array().into_iter().flatten();
    for card in cards.map(|a| &a["content"]) {
        // `msteams` (the card's width) is Teams' own extension, documented by Teams and not in
        // the 1.4 schema: checked by the subset schema, left out here.
        let mut card = card.clone();
        if let Some(fields) = card.as_object_mut() {
            fields.remove("msteams");
        }
        bad.extend(
            (ADAPTIVE_CARD_1_4.iter_errors(&card))
                .map(|e| format!("Adaptive Card 1.4: {e} at {}", e.instance_path())),
        );
    }
    let size = serde_json::to_vec(p).unwrap().len();
    bad_if(&mut bad, size > TEAMS_MAX_BYTES, format!("{size} bytes"));
    let text = all_text(p);
    for mark in ["<at", "](", "@everyone", "@channel", "@here"] {
        bad_if(
            &mut bad,
            text.contains(mark),
            format!("{mark:?} in the text"),
        );
    }
    bad
}

/// Panics with every violation of [`teams_violations`].
pub fn assert_teams_valid(label: &str, p: &Value) {
    let bad = teams_violations(p);
    assert!(bad.is_empty(), "{label}: {bad:?}");
}
