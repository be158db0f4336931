//! The organisation's agent listing, `GET /api/v1/agents/?limit=&offset=`, for watch-all and
//! `check --all`.
//!
//! A listing is only worth acting on when it is complete, because an agent missing from it is
//! unwatched: so every page is checked against `meta.total` (present, believable, the same on
//! every page) and the agents received must add up to it, with none repeated. Both shapes the
//! Ravan docs show are read (camelCase `agentName` with `meta.total` a string; snake_case
//! `name`/`agent_name` with a number). Each agent object carries secrets (`calcomApiKey`), so
//! only `id`, the name and `status` are deserialized at all.

use serde::Deserialize;
use url::Url;

use super::classify::ok_data;
use super::{PollFailure, RavanClient};
use crate::domain::{AgentId, Name, StatusWord};

/// A page of the agent listing carries whole agent objects (prompts, settings): roomier.
const MAX_LISTING_BODY_BYTES: usize = 16 << 20;
/// Agents asked for per page of the listing.
pub const LISTING_PAGE: usize = 100;
/// A `meta.total` above this is not believed: no organisation has that many agents, and
/// paging through it would never end.
pub const MAX_LISTED_AGENTS: u64 = 100_000;

/// Why the organisation's agents could not be listed completely. Any of these leaves the
/// watched agents as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    #[error("the request for agents at offset {offset} failed: {failure}")]
    Request { offset: usize, failure: PollFailure },
    #[error("the page at offset {offset} is unusable: {why}")]
    BadPage { offset: usize, why: String },
    #[error("the listing is incomplete: {0}")]
    Incomplete(String),
}

/// One agent of the organisation's listing: only what the service needs. The listing's agent
/// objects carry secrets (`calcomApiKey`); they are never deserialized, stored or logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAgent {
    pub id: AgentId,
    /// Trimmed and clipped.
    pub name: Option<Name>,
    /// The agent's own status (`ACTIVE`, `AGENT_STATUS_ACTIVE`, `INACTIVE` …), raw (trimmed
    /// and clipped).
    pub status: Option<StatusWord>,
}

impl ListedAgent {
    /// Whether the listing says the agent is switched off (`INACTIVE` or
    /// `AGENT_STATUS_INACTIVE`, any case). Such an agent takes no calls and books nothing, so
    /// watch-all leaves it alone; any other status, or none, is watched.
    pub fn is_inactive(&self) -> bool {
        self.status.as_deref().is_some_and(|s| {
            let s = s.trim().to_ascii_lowercase();
            s.strip_prefix("agent_status_").unwrap_or(&s) == "inactive"
        })
    }
}

/// The complete listing of the organisation's agents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    pub agents: Vec<ListedAgent>,
    /// Entries whose `id` is not a UUID: counted (the listing is still complete) but not
    /// watchable.
    pub unusable_ids: usize,
}

/// One page of the listing: its `meta.total`, and each entry (`None`: its id is no UUID).
#[derive(Debug)]
struct ListingPage {
    total: u64,
    entries: Vec<Option<ListedAgent>>,
}

/// Only the fields the service reads; serde skips the rest of each agent object unread into
/// any value, secrets included. Both documented shapes: camelCase (`agentName`) and
/// snake_case (`name` or `agent_name`).
#[derive(Debug, Deserialize)]
struct ListedEntry {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default, rename = "agentName")]
    agent_name_camel: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<serde_json::Value>,
    #[serde(default)]
    agent_name: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ListingMeta {
    total: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct ListingBody {
    data: Option<Vec<ListedEntry>>,
    meta: Option<ListingMeta>,
}

fn text_of(value: Option<serde_json::Value>) -> Option<String> {
    match value {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s),
        _ => None,
    }
}

/// Reads one page of `GET /api/v1/agents/`. Not JSON, no `data` array, or no believable
/// `meta.total` is a [`PollFailure::BadBody`] saying which.
fn classify_listing_page(status: u16, body: &[u8]) -> Result<ListingPage, PollFailure> {
    let page = ok_data::<ListingBody, _>(status, body, Some)?;
    let entries = page
        .data
        .ok_or_else(|| PollFailure::BadBody("no `data` array of agents".into()))?;
    let total = match page.meta.and_then(|m| m.total) {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        None | Some(serde_json::Value::Null) => {
            return Err(PollFailure::BadBody(
                "no `meta.total`: cannot tell whether the listing is complete".into(),
            ));
        }
        Some(_) => None,
    }
    .ok_or_else(|| PollFailure::BadBody("`meta.total` is not a whole number".into()))?;
    if total > MAX_LISTED_AGENTS {
        return Err(PollFailure::BadBody(format!(
            "`meta.total` of {total} is not believable (more than {MAX_LISTED_AGENTS})"
        )));
    }
    let entries = entries
        .into_iter()
        .map(|e| {
            let id = text_of(e.id)?.parse::<AgentId>().ok()?;
            let name = text_of(e.agent_name_camel)
                .or_else(|| text_of(e.name))
                .or_else(|| text_of(e.agent_name))
                .map(|n| Name::new(n.trim()));
            Some(ListedAgent {
                id,
                name,
                status: text_of(e.status).map(|s| StatusWord::new(s.trim())),
            })
        })
        .collect();
    Ok(ListingPage { total, entries })
}

impl RavanClient {
    /// `{base}/api/v1/agents/?limit=…&offset=…`.
    pub fn listing_url(&self, offset: usize) -> Url {
        let mut url = self.listing_url.clone();
        url.query_pairs_mut()
            .append_pair("limit", &LISTING_PAGE.to_string())
            .append_pair("offset", &offset.to_string());
        url
    }

    /// Every agent the credentials can list, page by page. The listing counts only when it is
    /// complete: `meta.total` believable, the same on every page, and that many distinct
    /// agents received. Anything less is a [`ListingError`].
    pub async fn list_agents(&self) -> Result<Listing, ListingError> {
        let mut listing = Listing::default();
        let mut seen = std::collections::HashSet::new();
        let mut repeated = 0usize;
        let mut offset = 0usize;
        let mut total: Option<u64> = None;
        loop {
            let (status, body) = self
                .get(self.listing_url(offset), MAX_LISTING_BODY_BYTES, None)
                .await
                .map_err(|failure| ListingError::Request { offset, failure })?;
            let page = classify_listing_page(status, &body).map_err(|failure| match failure {
                PollFailure::BadBody(why) => ListingError::BadPage { offset, why },
                failure => ListingError::Request { offset, failure },
            })?;
            let expected = *total.get_or_insert(page.total);
            if page.total != expected {
                return Err(ListingError::Incomplete(format!(
                    "meta.total changed from {expected} to {} while listing",
                    page.total
                )));
            }
            let received = page.entries.len();
            if received == 0 && (offset as u64) < expected {
                return Err(ListingError::Incomplete(format!(
                    "the page at offset {offset} is empty, but meta.total is {expected}"
                )));
            }
            for entry in page.entries {
                match entry {
                    Some(agent) => {
                        if seen.insert(agent.id) {
                            listing.agents.push(agent);
                        } else {
                            repeated += 1;
                        }
                    }
                    None => listing.unusable_ids += 1,
                }
            }
            // A page that brings agents again will not add up: stop now rather than page on
            // through a server that ignores `offset` (up to `MAX_LISTED_AGENTS` requests).
            if repeated > 0 {
                return Err(ListingError::Incomplete(format!(
                    "the page at offset {offset} brought {repeated} agents already received (repeated across pages)"
                )));
            }
            offset += received;
            if offset as u64 >= expected {
                break;
            }
        }
        let expected = total.unwrap_or_default();
        let distinct = (listing.agents.len() + listing.unusable_ids) as u64;
        if distinct != expected {
            return Err(ListingError::Incomplete(format!(
                "{distinct} agents received, but meta.total is {expected}"
            )));
        }
        Ok(listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(status: Option<&str>) -> ListedAgent {
        ListedAgent {
            id: "3f2504e0-4f89-11d3-9a0c-0305e82c3301".parse().unwrap(),
            name: None,
            status: status.map(StatusWord::from),
        }
    }

    #[test]
    fn listed_agent_inactive_statuses() {
        for (status, inactive) in [
            (Some("INACTIVE"), true),
            (Some("AGENT_STATUS_INACTIVE"), true),
            (Some("inactive"), true),
            (Some("agent_status_inactive"), true),
            (Some(" Inactive "), true),
            (Some("ACTIVE"), false),
            (Some("AGENT_STATUS_ACTIVE"), false),
            (Some("active"), false),
            (Some("AGENT_STATUS_UNSPECIFIED"), false),
            (Some("PAUSED"), false),
            (Some("INACTIVE_SOON"), false),
            (Some("AGENT_STATUS_"), false),
            (Some(""), false),
            (None, false),
        ] {
            assert_eq!(listed(status).is_inactive(), inactive, "{status:?}");
        }
    }

    const ID_1: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    const ID_2: &str = "9b2c7a10-1d2e-4f3a-8b4c-5d6e7f809102";

    fn page_of(value: serde_json::Value) -> Result<ListingPage, PollFailure> {
        classify_listing_page(200, &serde_json::to_vec(&value).unwrap())
    }

    fn ids_and_names(page: &ListingPage) -> Vec<(String, Option<String>)> {
        page.entries
            .iter()
            .map(|e| {
                let e = e.as_ref().expect("a usable entry");
                (e.id.to_string(), e.name.as_ref().map(ToString::to_string))
            })
            .collect()
    }

    #[test]
    fn listing_both_shapes_read_alike() {
        let camel = page_of(serde_json::json!({
            "success": true, "message": "Agents retrieved",
            "data": [
                {"id": ID_1, "agentName": "Sales", "status": "ACTIVE",
                 "calcomApiKey": "cal_live_x", "prompt": "…"},
                {"id": ID_2, "agentName": "Support", "status": "INACTIVE"},
            ],
            "meta": {"total": "2", "limit": "100", "offset": "0"},
        }))
        .unwrap();
        let snake = page_of(serde_json::json!({
            "success": true,
            "data": [
                {"id": ID_1, "name": "Sales", "status": "AGENT_STATUS_ACTIVE"},
                {"id": ID_2, "agent_name": "Support", "status": "AGENT_STATUS_INACTIVE",
                 "voice": {"id": 3}},
            ],
            "meta": {"total": 2, "limit": 100, "offset": 0},
        }))
        .unwrap();
        let want = vec![
            (ID_1.to_owned(), Some("Sales".to_owned())),
            (ID_2.to_owned(), Some("Support".to_owned())),
        ];
        for (shape, page) in [("camel", &camel), ("snake", &snake)] {
            assert_eq!(page.total, 2, "{shape}");
            assert_eq!(ids_and_names(page), want, "{shape}");
            let inactive: Vec<bool> = page
                .entries
                .iter()
                .map(|e| e.as_ref().unwrap().is_inactive())
                .collect();
            assert_eq!(inactive, [false, true], "{shape}");
        }
        assert_eq!(
            camel.entries[0].as_ref().unwrap().status.as_deref(),
            Some("ACTIVE")
        );
        assert_eq!(
            snake.entries[0].as_ref().unwrap().status.as_deref(),
            Some("AGENT_STATUS_ACTIVE")
        );
    }

    #[test]
    fn listing_names_are_trimmed_cut_and_optional() {
        let page = page_of(serde_json::json!({
            "data": [
                {"id": ID_1, "agentName": "  ", "name": " Fallback ", "status": 7},
                {"id": ID_2, "agentName": "n".repeat(1000), "status": "s".repeat(1000)},
                {"id": ID_1.to_uppercase()},
            ],
            "meta": {"total": 3},
        }))
        .unwrap();
        let first = page.entries[0].as_ref().unwrap();
        assert_eq!(first.name.as_deref(), Some("Fallback"));
        assert_eq!(first.status, None, "a status that is no string is none");
        let second = page.entries[1].as_ref().unwrap();
        let name = second.name.as_ref().unwrap();
        assert_eq!(name.chars().count(), 200);
        assert!(name.is_clipped() && name.starts_with("nnn"), "{name}");
        let status = second.status.as_ref().unwrap();
        assert_eq!(status.chars().count(), 64);
        assert!(status.is_clipped(), "{status}");
        let third = page.entries[2].as_ref().unwrap();
        assert_eq!(third.id.to_string(), ID_1, "any UUID spelling");
        assert_eq!((third.name.as_ref(), third.status.as_ref()), (None, None));
    }

    #[test]
    fn listing_entries_without_a_uuid_are_none() {
        let page = page_of(serde_json::json!({
            "data": [
                {"id": "agent-1", "name": "Not a UUID"},
                {"id": 12, "name": "A number"},
                {"id": null},
                {"name": "No id"},
                {"id": ""},
                {"id": "../../etc/passwd"},
                {"id": ID_1, "name": "Good"},
            ],
            "meta": {"total": 7},
        }))
        .unwrap();
        let usable: Vec<bool> = page.entries.iter().map(Option::is_some).collect();
        assert_eq!(usable, [false, false, false, false, false, false, true]);
    }

    #[test]
    fn listing_pages_without_a_believable_total_are_bad_bodies() {
        let data = serde_json::json!([{"id": ID_1, "name": "A"}]);
        let cases = [
            (
                "missing",
                serde_json::json!({"data": data, "meta": {}}),
                "no `meta.total`",
            ),
            (
                "no meta",
                serde_json::json!({"data": data}),
                "no `meta.total`",
            ),
            (
                "null",
                serde_json::json!({"data": data, "meta": {"total": null}}),
                "no `meta.total`",
            ),
            (
                "meta null",
                serde_json::json!({"data": data, "meta": null}),
                "no `meta.total`",
            ),
            (
                "negative",
                serde_json::json!({"data": data, "meta": {"total": -1}}),
                "not a whole number",
            ),
            (
                "negative string",
                serde_json::json!({"data": data, "meta": {"total": "-1"}}),
                "not a whole number",
            ),
            (
                "fraction",
                serde_json::json!({"data": data, "meta": {"total": 1.5}}),
                "not a whole number",
            ),
            (
                "text",
                serde_json::json!({"data": data, "meta": {"total": "abc"}}),
                "not a whole number",
            ),
            (
                "empty text",
                serde_json::json!({"data": data, "meta": {"total": ""}}),
                "not a whole number",
            ),
            (
                "bool",
                serde_json::json!({"data": data, "meta": {"total": true}}),
                "not a whole number",
            ),
            (
                "object",
                serde_json::json!({"data": data, "meta": {"total": {"n": 1}}}),
                "not a whole number",
            ),
            (
                "10^12",
                serde_json::json!({"data": data, "meta": {"total": 1_000_000_000_000u64}}),
                "not believable",
            ),
            (
                "10^12 as text",
                serde_json::json!({"data": data, "meta": {"total": "1000000000000"}}),
                "not believable",
            ),
            (
                "past u64",
                serde_json::json!({"data": data, "meta": {"total": "18446744073709551616"}}),
                "not a whole number",
            ),
            (
                "no data",
                serde_json::json!({"meta": {"total": 1}}),
                "no `data` array",
            ),
            (
                "data null",
                serde_json::json!({"data": null, "meta": {"total": 1}}),
                "no `data` array",
            ),
            (
                "data an object",
                serde_json::json!({"data": {"id": ID_1}, "meta": {"total": 1}}),
                "expected a sequence",
            ),
            (
                "data a string",
                serde_json::json!({"data": "agents", "meta": {"total": 1}}),
                "expected a sequence",
            ),
            (
                "an entry no object",
                serde_json::json!({"data": [1], "meta": {"total": 1}}),
                "does not parse",
            ),
        ];
        for (what, body, want) in cases {
            match page_of(body) {
                Err(PollFailure::BadBody(m)) => assert!(m.contains(want), "{what}: {m}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        // The largest believable total is believed.
        let page = page_of(serde_json::json!({
            "data": [], "meta": {"total": MAX_LISTED_AGENTS}
        }))
        .unwrap();
        assert_eq!(page.total, MAX_LISTED_AGENTS);
        assert!(
            page_of(serde_json::json!({"data": [], "meta": {"total": MAX_LISTED_AGENTS + 1}}))
                .is_err()
        );
        assert_eq!(
            page_of(serde_json::json!({"data": [], "meta": {"total": " 0 "}}))
                .unwrap()
                .total,
            0
        );
    }

    #[test]
    fn listing_answers_that_are_not_a_page_are_failures() {
        for body in [
            &b"not json"[..],
            b"",
            b"<html>",
            b"{\"data\": [",
            b"[]",
            b"null",
        ] {
            let got = classify_listing_page(200, body);
            assert!(
                matches!(&got, Err(PollFailure::BadBody(m)) if m.contains("does not parse")),
                "{:?}: {got:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(classify_listing_page(401, b"").unwrap_err().is_auth());
        assert!(matches!(
            classify_listing_page(500, b""),
            Err(PollFailure::Server { status: 500, .. })
        ));
        assert!(matches!(
            classify_listing_page(404, b""),
            Err(PollFailure::Rejected { status: 404, .. })
        ));
        assert!(matches!(
            classify_listing_page(302, b""),
            Err(PollFailure::BadBody(_))
        ));
    }

    #[test]
    fn a_listed_secret_is_not_kept() {
        let secret = "cal_live_SECRET";
        let page = page_of(serde_json::json!({
            "data": [
                {"id": ID_1, "agentName": "Sales", "status": "ACTIVE", "calcomApiKey": secret,
                 "calcom": {"apiKey": secret}},
                {"id": ID_2, "name": "Support", "calcom_api_key": secret},
            ],
            "meta": {"total": 2},
        }))
        .unwrap();
        assert!(!format!("{page:?}").contains(secret), "{page:?}");
        for entry in &page.entries {
            let agent = entry.as_ref().unwrap();
            assert!(!format!("{agent:?}").contains(secret), "{agent:?}");
            assert!(!format!("{agent:#?}").contains("SECRET"));
        }
        // So it is the secret that is absent, not the whole entry.
        assert_eq!(
            page.entries[0].as_ref().unwrap().name.as_deref(),
            Some("Sales")
        );
    }
}
