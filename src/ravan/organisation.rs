//! The organisation-level requests: the organisation's own Cal.com connection
//! (`GET /api/v1/calcom/status?org_id=…`), its GoHighLevel setup (`GET /api/v1/ghl/setup/status`),
//! the organisation an agent belongs to (`GET /api/v1/agents/{id}/`) and Ravan's own health
//! check (`GET /health`, without credentials).
//!
//! Each answer is classified by a pure function here, as `/status`'s are in `classify`: every
//! documented shape, and every error shape these endpoints add (a numeric `code`, the
//! `{success:false, error:{…}}` envelope), become a domain value or a [`PollFailure`] of the kinds
//! the polls already use. The single-agent answer carries secrets (`calcomApiKey`): only
//! `organization_id` is deserialized, and no text of that answer reaches a failure.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use url::Url;

use super::classify::ok_data;
use super::{PollFailure, RavanClient};
use crate::domain::integration::IntegrationMessage;
use crate::domain::{AgentId, CalcomOrg, ErrorText, GhlSetup, OrgId, RavanHealth, StatusWord};

/// A single agent carries its prompts and settings: roomier than a status.
const MAX_AGENT_BODY_BYTES: usize = 4 << 20;
/// `/health` answers a few dozen bytes.
const MAX_HEALTH_BODY_BYTES: usize = 64 << 10;
/// A timestamp longer than this is not one: it is not parsed.
const MAX_TIMESTAMP_CHARS: usize = 64;
/// What `/health`'s `status` says when Ravan runs.
const HEALTHY: &str = "healthy";

/// `{success: false, …}` on a 200: Ravan says it failed, whatever else the body holds.
#[derive(Debug, Deserialize)]
struct Success {
    #[serde(default)]
    success: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<IntegrationMessage>,
}

/// A 200 whose envelope says `success: false` is a failure, not an answer.
fn refused_200(status: u16, body: &[u8]) -> Result<(), PollFailure> {
    if status != 200 {
        return Ok(());
    }
    match serde_json::from_slice::<Success>(body) {
        Ok(Success {
            success: Some(serde_json::Value::Bool(false)),
            message,
        }) => Err(PollFailure::BadBody(format!(
            "200 with `success: false`{}",
            message.map(|m| format!(": {m}")).unwrap_or_default()
        ))),
        _ => Ok(()),
    }
}

/// A string field's text, trimmed and clipped to `N`; nothing when blank or not a string.
fn text<const N: usize>(value: Option<serde_json::Value>) -> Option<crate::domain::Clipped<N>> {
    match value {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
            Some(crate::domain::Clipped::new(s.trim()))
        }
        _ => None,
    }
}

/// An ISO 8601 instant: RFC 3339, or without an offset (read as UTC). Anything else, or an
/// absurdly long string, is no instant.
fn instant(value: Option<serde_json::Value>) -> Option<DateTime<Utc>> {
    let serde_json::Value::String(s) = value? else {
        return None;
    };
    let s = s.trim();
    if s.chars().count() > MAX_TIMESTAMP_CHARS {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// `/api/v1/calcom/status`'s `data`, as sent. Optional text fields are read as any JSON value,
/// so one of an odd type loses only itself, not the answer.
#[derive(Debug, Deserialize)]
struct CalcomOrgData {
    #[serde(default)]
    connected: Option<bool>,
    #[serde(default)]
    status: Option<StatusWord>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    token_expires: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct CalcomOrgBody {
    data: Option<CalcomOrgData>,
}

/// Turns an answer of `GET /api/v1/calcom/status` into the organisation's Cal.com connection.
/// A `status` is required (health is judged by it); without `connected`, it is taken from the
/// status. A `token_expires` that is no instant is left out, not a failure.
pub fn classify_calcom_org(status: u16, body: &[u8]) -> Result<CalcomOrg, PollFailure> {
    refused_200(status, body)?;
    let data = ok_data::<CalcomOrgBody, _>(status, body, |b| b.data)?;
    let word = data
        .status
        .map(|s| StatusWord::new(s.trim()))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| PollFailure::BadBody("the Cal.com status without a `status`".into()))?;
    Ok(CalcomOrg {
        connected: data
            .connected
            .unwrap_or(word == crate::domain::HEALTHY_STATUS),
        error: text::<{ ErrorText::MAX_CHARS }>(data.error),
        message: text(data.message),
        token_expires: instant(data.token_expires),
        status: word,
    })
}

/// `/api/v1/ghl/setup/status`'s `data`, as sent.
#[derive(Debug, Deserialize)]
struct GhlData {
    #[serde(default)]
    ghl_connected: Option<bool>,
    #[serde(default)]
    token_valid: Option<bool>,
    #[serde(default)]
    agent_count: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    next_step: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct GhlBody {
    data: Option<GhlData>,
}

/// Turns an answer of `GET /api/v1/ghl/setup/status` into the organisation's GoHighLevel
/// setup. `ghl_connected` is required; `token_valid` too when connected (an organisation that
/// never connected has no token to judge: `false`).
pub fn classify_ghl(status: u16, body: &[u8]) -> Result<GhlSetup, PollFailure> {
    refused_200(status, body)?;
    let data = ok_data::<GhlBody, _>(status, body, |b| b.data)?;
    let ghl_connected = data
        .ghl_connected
        .ok_or_else(|| PollFailure::BadBody("the GHL setup without `ghl_connected`".into()))?;
    let token_valid = match (ghl_connected, data.token_valid) {
        (_, Some(valid)) => valid,
        (false, None) => false,
        (true, None) => {
            return Err(PollFailure::BadBody(
                "the GHL setup is connected, without `token_valid`".into(),
            ));
        }
    };
    let agent_count = match data.agent_count {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(GhlSetup {
        ghl_connected,
        token_valid,
        agent_count,
        message: text(data.message),
        next_step: text(data.next_step),
    })
}

/// Of the single agent's `data`, only the organisation: the rest (prompts, `calcomApiKey`) is
/// skipped unread ([`serde::de::IgnoredAny`]). The docs write snake_case; the agent's other
/// fields are camelCase, so `organizationId` is read too. Only an object is read: serde's
/// derive would also take an array, whose first element (anything) would become the id.
#[derive(Debug, Default)]
struct AgentOrgData {
    organization_id: Option<serde_json::Value>,
}

impl<'de> Deserialize<'de> for AgentOrgData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AgentOrgData;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an agent object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut data = AgentOrgData::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "organization_id" || key == "organizationId" {
                        data.organization_id = Some(map.next_value()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(data)
            }
        }

        deserializer.deserialize_map(Visitor)
    }
}

#[derive(Debug, Deserialize)]
struct AgentOrgBody {
    data: Option<AgentOrgData>,
}

/// Turns an answer of `GET /api/v1/agents/{id}/` into the agent's organisation. A 200 that does
/// not parse is a failure that quotes nothing of the body: it holds secrets.
pub fn classify_agent_org(status: u16, body: &[u8]) -> Result<OrgId, PollFailure> {
    refused_200(status, body)?;
    let data = ok_data::<AgentOrgBody, _>(status, body, |b| b.data).map_err(|e| match e {
        PollFailure::BadBody(_) if status == 200 => PollFailure::BadBody(
            "the agent's answer does not parse (not quoted: it holds secrets)".into(),
        ),
        other => other,
    })?;
    let id = match data.organization_id {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => {
            return Err(PollFailure::BadBody(
                "the agent's answer has no `organization_id`".into(),
            ));
        }
    };
    id.parse::<OrgId>()
        .map_err(|e| PollFailure::BadBody(format!("the agent's `organization_id`: {e}")))
}

#[derive(Debug, Deserialize)]
struct HealthBody {
    #[serde(default)]
    status: Option<serde_json::Value>,
}

/// Turns an answer of `GET /health` into a failure unless it is `{"status": "healthy"}`.
pub fn classify_health(status: u16, body: &[u8]) -> Result<(), PollFailure> {
    let said = ok_data::<HealthBody, _>(status, body, |b| Some(b.status))?;
    match text::<64>(said) {
        Some(s) if s.eq_ignore_ascii_case(HEALTHY) => Ok(()),
        Some(s) => Err(PollFailure::BadBody(format!(
            "/health says status {:?}",
            s.as_str()
        ))),
        None => Err(PollFailure::BadBody("/health without a `status`".into())),
    }
}

/// What a health check's outcome means for the monitor alert.
fn health_of(outcome: Result<(), PollFailure>) -> RavanHealth {
    match outcome {
        Ok(()) => RavanHealth::Healthy,
        Err(e) if e.is_throttled() => RavanHealth::NotAsked,
        Err(e) => RavanHealth::Down(e.to_string().into()),
    }
}

impl RavanClient {
    /// `{base}/api/v1/calcom/status?org_id=…`.
    pub fn calcom_org_url(&self, org: &OrgId) -> Url {
        let mut url = self.org_urls.calcom.clone();
        url.query_pairs_mut().append_pair("org_id", org.as_str());
        url
    }

    /// `{base}/api/v1/agents/{id}/`.
    pub fn single_agent_url(&self, agent: &AgentId) -> Url {
        let mut url = self.listing_url.clone();
        // A UUID needs no escaping.
        url.set_path(&format!("{}{agent}/", self.listing_url.path()));
        url
    }

    /// The organisation's own Cal.com connection, once, waiting at the throttle gate no later
    /// than `deadline`.
    pub async fn calcom_org(
        &self,
        org: &OrgId,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<CalcomOrg, PollFailure> {
        let (status, body) = self
            .get(
                self.calcom_org_url(org),
                super::client::MAX_BODY_BYTES,
                deadline,
            )
            .await?;
        classify_calcom_org(status, &body)
    }

    /// The organisation's GoHighLevel setup, once, waiting at the throttle gate no later than
    /// `deadline`.
    pub async fn ghl_setup(
        &self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<GhlSetup, PollFailure> {
        let (status, body) = self
            .get(
                self.org_urls.ghl.clone(),
                super::client::MAX_BODY_BYTES,
                deadline,
            )
            .await?;
        classify_ghl(status, &body)
    }

    /// The organisation `agent` belongs to (`organization_id` of the single agent). The body
    /// read is dropped here: only the id leaves.
    pub async fn agent_org(&self, agent: &AgentId) -> Result<OrgId, PollFailure> {
        let (status, body) = self
            .get(self.single_agent_url(agent), MAX_AGENT_BODY_BYTES, None)
            .await?;
        classify_agent_org(status, &body)
    }

    /// Ravan's own health check, without credentials: one request, unless a 429 pause is on
    /// (then [`RavanHealth::NotAsked`] at once). For a cycle whose polls all failed.
    pub async fn health(&self) -> RavanHealth {
        let now = Some(tokio::time::Instant::now());
        let outcome = match self
            .get_bare(self.org_urls.health.clone(), MAX_HEALTH_BODY_BYTES, now)
            .await
        {
            Ok((status, body)) => classify_health(status, &body),
            Err(e) => Err(e),
        };
        health_of(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bytes(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The error shapes these endpoints document, and what each becomes.
    fn error_shapes() -> Vec<(u16, Vec<u8>, PollFailure)> {
        let envelope = |message: &str| {
            bytes(json!({"success": false, "message": message,
                "error": {"code": "INTERNAL_ERROR", "message": "upstream said no"}}))
        };
        vec![
            (
                400,
                bytes(json!({"code": 3, "message": "Invalid request parameters", "details": []})),
                PollFailure::Rejected {
                    status: 400,
                    code: Some("3".into()),
                    message: "Invalid request parameters".into(),
                },
            ),
            (
                401,
                bytes(
                    json!({"code": 16, "message": "API key is missing or invalid", "details": []}),
                ),
                PollFailure::Unauthorized {
                    status: 401,
                    message: "API key is missing or invalid".into(),
                },
            ),
            (
                403,
                envelope("Forbidden"),
                PollFailure::Unauthorized {
                    status: 403,
                    message: "Forbidden: upstream said no".into(),
                },
            ),
            (
                500,
                envelope("Internal error"),
                PollFailure::Server {
                    status: 500,
                    message: "Internal error: upstream said no".into(),
                },
            ),
            (
                502,
                b"<html>Bad Gateway</html>".to_vec(),
                PollFailure::Server {
                    status: 502,
                    message: String::new(),
                },
            ),
        ]
    }

    // ----- the organisation's Cal.com connection -----

    #[test]
    fn calcom_org_documented_answers() {
        let connected = br#"{"success":true,"message":"Connection status retrieved","data":{"connected":true,"status":"active","accounts":[{"id":"acc_123","email":"user@example.com"}],"token_expires":"2026-04-20T12:00:00Z"}}"#;
        let org = classify_calcom_org(200, connected).unwrap();
        assert_eq!(
            org,
            CalcomOrg {
                connected: true,
                status: "active".into(),
                error: None,
                message: None,
                token_expires: Some(at("2026-04-20T12:00:00Z")),
            }
        );
        assert!(org.is_healthy());

        let not_connected = br#"{"success":true,"message":"Connection status retrieved","data":{"accounts":[],"connected":false,"message":"Cal.com is not connected","status":"not_connected"}}"#;
        let org = classify_calcom_org(200, not_connected).unwrap();
        assert_eq!(org.status, "not_connected");
        assert!(!org.connected && !org.is_healthy());
        assert_eq!(org.message.as_deref(), Some("Cal.com is not connected"));
        assert_eq!(org.token_expires, None);
    }

    #[test]
    fn calcom_org_error_is_kept_clipped_and_blank_is_none() {
        let body = |error: serde_json::Value| {
            bytes(
                json!({"success": true, "data": {"connected": true, "status": "errored", "error": error}}),
            )
        };
        let org = classify_calcom_org(200, &body(json!("  token revoked "))).unwrap();
        assert_eq!(org.error.as_deref(), Some("token revoked"));
        assert!(!org.is_healthy());
        for blank in [
            json!(""),
            json!("   "),
            json!(null),
            json!(7),
            json!({"a": 1}),
        ] {
            let org = classify_calcom_org(200, &body(blank.clone())).unwrap();
            assert_eq!(org.error, None, "{blank}");
        }
        let org = classify_calcom_org(200, &body(json!("e".repeat(100_000)))).unwrap();
        let error = org.error.unwrap();
        assert!(error.is_clipped());
        assert_eq!(error.chars().count(), ErrorText::MAX_CHARS);
    }

    #[test]
    fn calcom_org_token_expiry_is_read_when_it_is_an_instant() {
        let body = |expires: serde_json::Value| {
            bytes(
                json!({"data": {"connected": true, "status": "active", "token_expires": expires}}),
            )
        };
        for (sent, want) in [
            (
                json!("2026-04-20T12:00:00Z"),
                Some(at("2026-04-20T12:00:00Z")),
            ),
            (
                json!("2026-04-20T14:00:00+02:00"),
                Some(at("2026-04-20T12:00:00Z")),
            ),
            (
                json!("2026-04-20T12:00:00.250Z"),
                Some(at("2026-04-20T12:00:00.250Z")),
            ),
            (
                json!(" 2026-04-20T12:00:00 "),
                Some(at("2026-04-20T12:00:00Z")),
            ),
            (json!("tomorrow"), None),
            (json!(""), None),
            (json!(1_776_686_400), None),
            (json!(null), None),
            (
                json!(format!("2026-04-20T12:00:00Z{}", " ".repeat(1000))),
                Some(at("2026-04-20T12:00:00Z")),
            ),
            (
                json!(format!("2026-04-20T12:00:00{}Z", "0".repeat(1000))),
                None,
            ),
        ] {
            let org = classify_calcom_org(200, &body(sent.clone())).unwrap();
            assert_eq!(org.token_expires, want, "{sent}");
        }
    }

    #[test]
    fn calcom_org_without_connected_takes_it_from_the_status() {
        for (status, connected) in [("active", true), ("not_connected", false)] {
            let org =
                classify_calcom_org(200, &bytes(json!({"data": {"status": status}}))).unwrap();
            assert_eq!(org.connected, connected, "{status}");
        }
    }

    #[test]
    fn calcom_org_unusable_answers_are_failures() {
        for (what, body) in [
            ("no status", bytes(json!({"data": {"connected": true}}))),
            (
                "blank status",
                bytes(json!({"data": {"connected": true, "status": " "}})),
            ),
            ("status a number", bytes(json!({"data": {"status": 1}}))),
            (
                "connected a string",
                bytes(json!({"data": {"status": "active", "connected": "yes"}})),
            ),
            ("no data", bytes(json!({"success": true}))),
            ("data null", bytes(json!({"data": null}))),
            ("not json", b"<html>hi</html>".to_vec()),
            ("empty", Vec::new()),
            (
                "success false",
                bytes(
                    json!({"success": false, "message": "org not found", "data": {"status": "active"}}),
                ),
            ),
        ] {
            let got = classify_calcom_org(200, &body);
            assert!(
                matches!(got, Err(PollFailure::BadBody(_))),
                "{what}: {got:?}"
            );
        }
        let got = classify_calcom_org(
            200,
            &bytes(json!({"success": false, "message": "org not found"})),
        );
        assert!(
            matches!(&got, Err(PollFailure::BadBody(m)) if m.contains("org not found")),
            "{got:?}"
        );
        assert!(matches!(
            classify_calcom_org(302, b""),
            Err(PollFailure::BadBody(m)) if m.contains("302")
        ));
    }

    #[test]
    fn calcom_org_error_shapes() {
        for (status, body, want) in error_shapes() {
            assert_eq!(
                classify_calcom_org(status, &body).unwrap_err(),
                want,
                "{status}"
            );
        }
        let err = classify_calcom_org(
            401,
            &bytes(json!({"code": 16, "message": "API key is missing or invalid"})),
        )
        .unwrap_err();
        assert!(err.is_auth());
        assert_eq!(
            err.to_string(),
            "Ravan API refused the credentials (HTTP 401): API key is missing or invalid"
        );
        let long = bytes(json!({"code": 3, "message": "m".repeat(50_000)}));
        assert!(
            classify_calcom_org(400, &long)
                .unwrap_err()
                .to_string()
                .chars()
                .count()
                < 300
        );
    }

    // ----- GoHighLevel -----

    #[test]
    fn ghl_documented_answer() {
        let body = br#"{"success":true,"message":"GHL setup status fetched successfully","data":{"ghl_connected":true,"location_id":"loc_abc123def456","company_id":"comp_xyz789","token_valid":true,"agents_created":true,"agent_count":2,"setup_complete":true,"message":"GHL integration is fully configured","next_step":""}}"#;
        let ghl = classify_ghl(200, body).unwrap();
        assert_eq!(
            ghl,
            GhlSetup {
                ghl_connected: true,
                token_valid: true,
                agent_count: Some(2),
                message: Some("GHL integration is fully configured".into()),
                next_step: None,
            }
        );
        assert!(ghl.is_healthy());
    }

    #[test]
    fn ghl_not_connected_and_token_invalid_are_unhealthy() {
        let never = bytes(json!({"success": true, "data": {"ghl_connected": false,
            "token_valid": false, "agent_count": 0, "next_step": "CONNECT_GHL"}}));
        let ghl = classify_ghl(200, &never).unwrap();
        assert_eq!((ghl.is_healthy(), ghl.status()), (false, "not_connected"));
        assert_eq!(ghl.next_step.as_deref(), Some("CONNECT_GHL"));
        // Not connected: no token to judge, so it may be left out.
        let bare = bytes(json!({"data": {"ghl_connected": false}}));
        assert_eq!(classify_ghl(200, &bare).unwrap().status(), "not_connected");

        let invalid = bytes(json!({"data": {"ghl_connected": true, "token_valid": false,
            "agent_count": "3", "next_step": "CREATE_AGENT", "message": "Token expired"}}));
        let ghl = classify_ghl(200, &invalid).unwrap();
        assert_eq!((ghl.is_healthy(), ghl.status()), (false, "token_invalid"));
        assert_eq!(ghl.agent_count, Some(3));
        assert_eq!(ghl.message.as_deref(), Some("Token expired"));
    }

    #[test]
    fn ghl_odd_fields_lose_only_themselves() {
        for count in [
            json!(-1),
            json!(1.5),
            json!("many"),
            json!(null),
            json!([2]),
        ] {
            let body = bytes(json!({"data": {"ghl_connected": true, "token_valid": true,
                "agent_count": count.clone(), "message": 5, "next_step": {"x": 1}}}));
            let ghl = classify_ghl(200, &body).unwrap();
            assert_eq!(
                (ghl.agent_count, &ghl.message, &ghl.next_step),
                (None, &None, &None),
                "{count}"
            );
            assert!(ghl.is_healthy());
        }
        let long = bytes(json!({"data": {"ghl_connected": true, "token_valid": true,
            "message": "m".repeat(10_000), "next_step": "s".repeat(10_000)}}));
        let ghl = classify_ghl(200, &long).unwrap();
        assert!(ghl.message.unwrap().is_clipped());
        assert!(ghl.next_step.unwrap().is_clipped());
    }

    #[test]
    fn ghl_unusable_answers_are_failures() {
        for (what, body) in [
            (
                "no ghl_connected",
                bytes(json!({"data": {"token_valid": true}})),
            ),
            (
                "connected, no token_valid",
                bytes(json!({"data": {"ghl_connected": true}})),
            ),
            (
                "ghl_connected a string",
                bytes(json!({"data": {"ghl_connected": "true", "token_valid": true}})),
            ),
            ("no data", bytes(json!({"success": true}))),
            ("not json", b"nope".to_vec()),
            (
                "success false",
                bytes(json!({"success": false, "message": "x"})),
            ),
        ] {
            let got = classify_ghl(200, &body);
            assert!(
                matches!(got, Err(PollFailure::BadBody(_))),
                "{what}: {got:?}"
            );
        }
        for (status, body, want) in error_shapes() {
            assert_eq!(classify_ghl(status, &body).unwrap_err(), want, "{status}");
        }
    }

    // ----- an agent's organisation -----

    const SECRET: &str = "cal_live_SECRET_never_store_me";

    #[test]
    fn agent_org_reads_only_the_organisation() {
        for key in ["organization_id", "organizationId"] {
            let body = bytes(json!({"success": true, "data": {
                "id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "agentName": "Sales",
                "calcomApiKey": SECRET, "prompt": "p".repeat(10_000),
                key: "9b2c7a10-1d2e-4f3a-8b4c-5d6e7f809102",
            }}));
            let org = classify_agent_org(200, &body).unwrap();
            assert_eq!(
                org.as_str(),
                "9b2c7a10-1d2e-4f3a-8b4c-5d6e7f809102",
                "{key}"
            );
        }
        let numeric = bytes(json!({"data": {"organization_id": 42}}));
        assert_eq!(classify_agent_org(200, &numeric).unwrap().as_str(), "42");
    }

    #[test]
    fn agent_org_failures_never_quote_the_body() {
        for (what, body) in [
            (
                "no organisation",
                bytes(json!({"data": {"calcomApiKey": SECRET}})),
            ),
            (
                "null",
                bytes(json!({"data": {"organization_id": null, "calcomApiKey": SECRET}})),
            ),
            (
                "an object",
                bytes(json!({"data": {"organization_id": {"k": SECRET}}})),
            ),
            ("data a string", bytes(json!({"data": SECRET}))),
            ("data an array", bytes(json!({"data": [SECRET]}))),
            (
                "not json",
                format!("{{\"calcomApiKey\": \"{SECRET}\"").into_bytes(),
            ),
            (
                "success false",
                bytes(json!({"success": false, "data": {"calcomApiKey": SECRET}})),
            ),
        ] {
            let err = classify_agent_org(200, &body).unwrap_err();
            assert!(matches!(err, PollFailure::BadBody(_)), "{what}: {err:?}");
            assert!(
                !format!("{err} {err:?}").contains("SECRET"),
                "{what}: {err}"
            );
        }
        let bad_id = bytes(json!({"data": {"organization_id": "a/../b?x=1"}}));
        assert!(matches!(
            classify_agent_org(200, &bad_id),
            Err(PollFailure::BadBody(m)) if m.contains("organization_id")
        ));
        let missing =
            bytes(json!({"success": false, "message": "Agent not found", "code": "NOT_FOUND"}));
        assert_eq!(
            classify_agent_org(404, &missing).unwrap_err(),
            PollFailure::Rejected {
                status: 404,
                code: Some("NOT_FOUND".into()),
                message: "Agent not found".into()
            }
        );
        for (status, body, want) in error_shapes() {
            assert_eq!(
                classify_agent_org(status, &body).unwrap_err(),
                want,
                "{status}"
            );
        }
    }

    // ----- Ravan's health check -----

    #[test]
    fn health_is_healthy_only_when_it_says_so() {
        let documented =
            br#"{"status":"healthy","service":"integration_service","time":"2026-03-20T14:30:00Z"}"#;
        assert_eq!(classify_health(200, documented), Ok(()));
        assert_eq!(classify_health(200, br#"{"status":" Healthy "}"#), Ok(()));
        for (what, status, body) in [
            ("degraded", 200, br#"{"status":"degraded"}"#.to_vec()),
            ("no status", 200, br#"{"service":"x"}"#.to_vec()),
            ("status a number", 200, br#"{"status":1}"#.to_vec()),
            ("not json", 200, b"OK".to_vec()),
            ("500", 500, br#"{"success":false,"message":"down","error":{"code":"INTERNAL_ERROR","message":"db"}}"#.to_vec()),
            ("502", 502, b"Bad Gateway".to_vec()),
            ("404", 404, b"".to_vec()),
        ] {
            assert!(classify_health(status, &body).is_err(), "{what}");
        }
        let err = classify_health(200, br#"{"status":"degraded"}"#).unwrap_err();
        assert!(err.to_string().contains("\"degraded\""), "{err}");
    }

    #[test]
    fn health_outcomes_become_what_the_monitor_alert_says() {
        assert_eq!(health_of(Ok(())), RavanHealth::Healthy);
        let throttled = PollFailure::Throttled {
            retry_after: std::time::Duration::from_secs(3),
        };
        assert_eq!(health_of(Err(throttled)), RavanHealth::NotAsked);
        let down = health_of(Err(PollFailure::Server {
            status: 502,
            message: String::new(),
        }));
        assert!(
            matches!(&down, RavanHealth::Down(why) if why.contains("502")),
            "{down:?}"
        );
    }
}
