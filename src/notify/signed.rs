//! The signed JSON webhook (`WEBHOOK_URL`, or an agent's `webhook_url`), pure: the body, its
//! signature and what an answer means ([`Signed`], a [`Destination`]). No I/O here; the sender
//! posts the request's bytes with [`headers`] and classifies the answer by the common rules:
//! any 2xx delivered, 429 waits, 401/403/404/408/5xx retried, 410 dead, anything else final.
//!
//! The body is `{"version": 1, "events": [event, …]}`, each event as `GET /events` shows it
//! without `deliveries`, so a receiver that also reads the API sees one shape. A digest has no
//! event: it goes out as `{"version": 1, "events": [], "digest": {…}}`, because the contract
//! sends the digest to every default destination and its arrival is the proof the watcher
//! lives, for a machine as much as for a person.
//!
//! The signature follows Stripe's and GitHub's convention: HMAC-SHA256, keyed with
//! `WEBHOOK_SECRET`, over `"<timestamp>.<body>"`, sent as `v1=<lowercase hex>` beside the
//! timestamp, so a receiver can check it, and refuse a replay, in a few lines of any language.
//! The bytes signed are the bytes sent: the body is serialized once.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;
use utoipa::ToSchema;

use reqwest::header::HeaderName;
use serde_json::Value;

use super::deliver::DeliveryError;
use super::destination::{Destination, Item, Request};
use crate::domain::secret::Secret;
use crate::domain::{Alert, Digest, Webhook, Zone};
use crate::store::Event;

/// The body's format version: a receiver can refuse one it does not know.
pub const VERSION: u32 = 1;
/// Unix seconds of the moment the body was signed.
pub const TIMESTAMP_HEADER: &str = "X-Ravan-Watch-Timestamp";
/// `v1=<lowercase hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "X-Ravan-Watch-Signature";
/// The shortest `WEBHOOK_SECRET` accepted: 16 characters of `openssl rand -hex 32`'s 64 are
/// 64 bits, beyond guessing, as for `ADMIN_TOKEN`.
pub const MIN_SECRET_CHARS: usize = 16;

/// `WEBHOOK_SECRET`: the HMAC key. Printing it prints `***`; only [`sign`] reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Secret);

impl SigningSecret {
    /// At least [`MIN_SECRET_CHARS`] visible ASCII characters (no spaces: a receiver copies it
    /// into its own configuration, where a stray space is a signature that never matches).
    /// The error never repeats the value.
    pub fn parse(value: &str) -> Result<Self, String> {
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("contains spaces or characters other than visible ASCII".to_owned());
        }
        if value.len() < MIN_SECRET_CHARS {
            return Err(format!(
                "shorter than {MIN_SECRET_CHARS} characters, too easy to guess: make one with \
                 `openssl rand -hex 32`"
            ));
        }
        Ok(Self(Secret::new(value)))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

/// The body a signed webhook (`WEBHOOK_URL`, an agent's `webhook_url`) receives, `POST`ed as
/// `application/json` with `X-Ravan-Watch-Timestamp: <unix seconds>` and
/// `X-Ravan-Watch-Signature: v1=<lowercase hex HMAC-SHA256 of "<timestamp>.<body>">` keyed with
/// `WEBHOOK_SECRET`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SignedWebhookBody {
    /// Always 1 for this shape.
    #[schema(minimum = 1, maximum = 1, example = 1)]
    pub version: u32,
    /// The alerts, oldest first: one, or several when a poll cycle's alerts are grouped;
    /// empty for a digest.
    pub events: Vec<SignedEvent>,
    /// Present only on a digest's body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<SignedDigest>,
}

/// One alert, as `GET /events` shows its event, without `deliveries`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SignedEvent {
    /// The event's id, as in `GET /events`: a retried delivery carries the same one.
    pub id: i64,
    /// When the change was observed (for a recovery: the first healthy observation).
    pub at: DateTime<Utc>,
    /// `null` for the monitor's, an integration's and a dead webhook's events.
    #[schema(required = true, format = Uuid)]
    pub agent_id: Option<String>,
    /// `down`, `changed`, `reminder`, `recovered`, `missing`, `found`, `monitor_down`,
    /// `monitor_recovered`, `webhook_dead`, `integration_down`, `integration_recovered` or
    /// `token_expiring`.
    #[schema(example = "down")]
    pub kind: String,
    #[schema(required = true, example = "active")]
    pub from_status: Option<String>,
    #[schema(required = true, example = "errored")]
    pub to_status: Option<String>,
    #[schema(
        example = "Sales line (3f2504e0-4f89-11d3-9a0c-0305e82c3301): down, active → errored"
    )]
    pub summary: String,
    /// A `webhook_dead` event's webhook, its secret part masked; absent from other events.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "https://hooks.slack.com/services/T0/B0/***")]
    pub webhook: Option<String>,
    /// An integration's event's integration (`calcom_org` or `ghl`); absent from other events.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "calcom_org")]
    pub integration: Option<String>,
}

impl SignedEvent {
    /// The event `GET /events` shows for `alert` stored as event `id`: each field derived from
    /// the alert as the store derives its column, and `at` cut to the millisecond the store
    /// keeps, so both say the same to the nanosecond.
    pub fn new(id: i64, alert: &Alert) -> Self {
        let (from, to) = alert.statuses();
        let at = alert.at();
        Self {
            id,
            at: DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at),
            agent_id: alert.agent_id().map(ToString::to_string),
            kind: alert.kind_name().to_owned(),
            from_status: from.map(str::to_owned),
            to_status: to.map(str::to_owned),
            summary: alert.summary(),
            webhook: alert.webhook().map(str::to_owned),
            integration: alert.integration().map(|i| i.as_str().to_owned()),
        }
    }
}

/// A stored event as `GET /events` shows it (the API adds its deliveries).
impl From<&Event> for SignedEvent {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id,
            at: e.at,
            agent_id: e.agent_id.as_ref().map(ToString::to_string),
            kind: e.kind.clone(),
            from_status: e.from_status.clone(),
            to_status: e.to_status.clone(),
            summary: e.summary.clone(),
            webhook: e.webhook.clone(),
            integration: e.integration.clone(),
        }
    }
}

/// The digest's facts, as a machine reads them.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SignedDigest {
    /// The tick the digest is for.
    pub tick: DateTime<Utc>,
    /// Where the counts start: the previous digest's tick, or a day before this one.
    pub since: DateTime<Utc>,
    /// Whether `since` is a previous digest's tick.
    pub since_previous: bool,
    pub watched: usize,
    pub healthy: usize,
    /// Watched agents whose health is not known yet (not polled, or their polls fail).
    pub unknown: usize,
    /// The unhealthy agents, longest unhealthy first, at most 10…
    pub unhealthy: Vec<DigestAgent>,
    /// …and how many in all.
    pub unhealthy_count: usize,
    /// Alerts since `since`, by kind; kinds with none left out.
    pub alerts: Vec<DigestKindCount>,
    /// The organisation-level integrations ever checked.
    pub integrations: Vec<DigestIntegration>,
    /// Alert deliveries waiting to be sent (or retried) now.
    pub pending: u64,
    /// Alert deliveries given up on since `since`.
    pub failed: u64,
    /// Dead webhooks, at most 10…
    pub dead_webhooks: Vec<DigestDeadWebhook>,
    /// …and how many in all.
    pub dead_count: usize,
}

/// An unhealthy agent in a digest.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DigestAgent {
    #[schema(format = Uuid)]
    pub agent_id: String,
    #[schema(required = true)]
    pub name: Option<String>,
    /// Ravan's raw status (`errored` …), or `not found`.
    pub status: String,
    #[schema(required = true)]
    pub since: Option<DateTime<Utc>>,
}

/// How many alerts of one kind a digest counts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DigestKindCount {
    #[schema(example = "down")]
    pub kind: String,
    pub count: u64,
}

/// An integration's state in a digest.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DigestIntegration {
    /// `calcom_org` or `ghl`.
    pub name: String,
    /// `null` before the first check that answered.
    #[schema(required = true)]
    pub healthy: Option<bool>,
    #[schema(required = true)]
    pub status: Option<String>,
    #[schema(required = true)]
    pub since: Option<DateTime<Utc>>,
}

/// A dead webhook in a digest.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DigestDeadWebhook {
    #[schema(example = "slack")]
    pub platform: String,
    /// Masked: never the secret part.
    pub webhook: String,
    pub since: DateTime<Utc>,
}

impl From<&Digest> for SignedDigest {
    fn from(d: &Digest) -> Self {
        Self {
            tick: d.tick,
            since: d.since,
            since_previous: d.since_previous,
            watched: d.watched,
            healthy: d.healthy,
            unknown: d.unknown,
            unhealthy: d
                .unhealthy
                .iter()
                .map(|u| DigestAgent {
                    agent_id: u.agent.id.to_string(),
                    name: u.agent.name.clone(),
                    status: u.status.clone(),
                    since: u.since,
                })
                .collect(),
            unhealthy_count: d.unhealthy_count,
            alerts: d
                .alerts
                .iter()
                .map(|k| DigestKindCount {
                    kind: k.kind.clone(),
                    count: k.count,
                })
                .collect(),
            integrations: d
                .integrations
                .iter()
                .map(|i| DigestIntegration {
                    name: i.name.as_str().to_owned(),
                    healthy: i.healthy,
                    status: i.status.clone(),
                    since: i.since,
                })
                .collect(),
            pending: d.pending,
            failed: d.failed,
            dead_webhooks: d
                .dead_webhooks
                .iter()
                .map(|w| DigestDeadWebhook {
                    platform: w.platform.to_string(),
                    webhook: w.webhook.clone(),
                    since: w.since,
                })
                .collect(),
            dead_count: d.dead_count,
        }
    }
}

/// The signed webhook behind the [`Destination`] trait: the body names each alert's event, is
/// signed at each attempt (a fresh timestamp), any 2xx is delivered and only a 410 is dead;
/// no pacing beyond what a 429 asks. An outbox entry queued before the event log existed has
/// no event id, and is left out of the body.
pub struct Signed;

impl Destination for Signed {
    fn message(&self, item: Item<'_>, _zone: Zone) -> Value {
        self.group_message(&[item], Zone::UTC)
    }

    fn group_message(&self, items: &[Item<'_>], _zone: Zone) -> Value {
        let events = items
            .iter()
            .filter_map(|i| Some(SignedEvent::new(i.event_id?, i.alert)))
            .collect();
        to_value(&SignedWebhookBody {
            version: VERSION,
            events,
            digest: None,
        })
    }

    fn digest_message(&self, digest: &Digest, _zone: Zone) -> Value {
        to_value(&SignedWebhookBody {
            version: VERSION,
            events: Vec::new(),
            digest: Some(digest.into()),
        })
    }

    fn request(
        &self,
        _hook: &Webhook,
        body: &Value,
        now: DateTime<Utc>,
        secret: Option<&SigningSecret>,
    ) -> Result<Request, DeliveryError> {
        let secret = secret.ok_or_else(|| {
            DeliveryError::Permanent(
                "WEBHOOK_SECRET is not set: a signed webhook's body cannot be signed".into(),
            )
        })?;
        let mut request = Request::json(body);
        // The names are constants HeaderName takes (it writes them lowercase); the tests
        // send them.
        request.headers = headers(secret, now, &request.body)
            .into_iter()
            .filter_map(|(name, value)| {
                Some((HeaderName::from_bytes(name.as_bytes()).ok()?, value))
            })
            .collect();
        Ok(request)
    }

    fn says_gone(&self, status: u16, _body: &str) -> bool {
        status == 410
    }
}

fn to_value(body: &SignedWebhookBody) -> Value {
    // Strings, numbers and times only: serde_json fails only on maps with non-string keys or
    // a Serialize that errors, and neither is here, whatever the text holds.
    serde_json::to_value(body).unwrap_or(Value::Null)
}

/// The bytes sent for alerts stored as events: `(event id, alert)`, in the order they
/// happened. The same path as a delivery's ([`Signed`] and [`Request::json`]), so what the
/// tests check is what is sent.
pub fn body(events: &[(i64, &Alert)]) -> Vec<u8> {
    let items: Vec<Item<'_>> = (events.iter())
        .map(|(id, alert)| Item {
            event_id: Some(*id),
            alert,
        })
        .collect();
    Request::json(&Signed.group_message(&items, Zone::UTC)).body
}

/// The bytes sent for a digest: no events, the digest's facts.
pub fn digest_body(digest: &Digest) -> Vec<u8> {
    Request::json(&Signed.digest_message(digest, Zone::UTC)).body
}

/// `v1=<lowercase hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub fn sign(secret: &SigningSecret, timestamp: i64, body: &[u8]) -> String {
    // Any key length is valid for HMAC: the error case cannot happen.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.0.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(3 + 2 * digest.len());
    out.push_str("v1=");
    for byte in digest.iter() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The two headers beside `Content-Type: application/json`, signed at `now`.
pub fn headers(
    secret: &SigningSecret,
    now: DateTime<Utc>,
    body: &[u8],
) -> [(&'static str, String); 2] {
    let timestamp = now.timestamp();
    [
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, sign(secret, timestamp, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Platform;
    use crate::domain::alert::{
        AgentAlert, AgentAlertKind, AgentRef, IntegrationAlert, IntegrationAlertKind,
        IntegrationName, MonitorAlert, MonitorAlertKind, WebhookAlert,
    };
    use crate::domain::digest::{DeadFact, IntegrationFact, KindCount, UnhealthyAgent};
    use DeliveryError::*;
    use chrono::TimeZone;
    use serde_json::{Value, json};

    use crate::notify::deliver::MAX_PACE_WAIT;
    use std::time::Duration;

    const SECRET: &str = "whsec-0123456789abcdef";

    /// A receiver's answer as the sender classifies it (`deliver::classify`, whose common
    /// rules the signed webhook's [`Signed::says_gone`] completes).
    fn classify(status: u16, retry_after: Option<f64>, body: &str) -> Result<(), DeliveryError> {
        super::super::deliver::classify(Platform::Webhook, status, retry_after, body)
    }
    const ID: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";

    fn secret() -> SigningSecret {
        SigningSecret::parse(SECRET).unwrap()
    }

    fn at() -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 123_456_789).unwrap()
    }

    fn agent(kind: AgentAlertKind) -> Alert {
        Alert::Agent(AgentAlert {
            kind,
            agent: AgentRef {
                id: ID.parse().unwrap(),
                name: Some("Sales <line> \"1\"".into()),
            },
            from: Some("active".into()),
            to: "errored".into(),
            connected: false,
            accounts: vec![],
            connection: None,
            at: at(),
            unhealthy_since: at(),
        })
    }

    fn integration(kind: IntegrationAlertKind) -> Alert {
        Alert::Integration(IntegrationAlert {
            kind,
            integration: IntegrationName::Ghl,
            from: Some("connected".into()),
            status: "token_invalid".into(),
            detail: Some("token revoked".into()),
            at: at(),
            since: at(),
            token_expires: Some(at()),
            affected: vec![],
            affected_count: 0,
            org_linked: None,
        })
    }

    /// One alert of every kind the event log knows.
    pub(crate) fn every_kind() -> Vec<Alert> {
        let mut all: Vec<Alert> = [
            AgentAlertKind::Down,
            AgentAlertKind::Changed,
            AgentAlertKind::Reminder,
            AgentAlertKind::Recovered,
            AgentAlertKind::Missing,
            AgentAlertKind::Found,
        ]
        .into_iter()
        .map(agent)
        .collect();
        for kind in [MonitorAlertKind::Down, MonitorAlertKind::Recovered] {
            all.push(Alert::Monitor(MonitorAlert {
                kind,
                reason: "Ravan API refused the credentials (HTTP 401)".into(),
                at: at(),
                since: at(),
            }));
        }
        all.push(Alert::Webhook(WebhookAlert {
            platform: Platform::Slack,
            webhook: "https://hooks.slack.com/services/T0/B0/***".into(),
            answer: "HTTP 404: no_service".into(),
            default: true,
            agents: vec![],
            agents_routed: 3,
            at: at(),
        }));
        for kind in [
            IntegrationAlertKind::Down,
            IntegrationAlertKind::Recovered,
            IntegrationAlertKind::TokenExpiring,
        ] {
            all.push(integration(kind));
        }
        all
    }

    fn parsed(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn the_body_is_version_1_with_the_events_in_order_and_no_deliveries() {
        let (down, monitor) = (agent(AgentAlertKind::Down), &every_kind()[6]);
        let body = parsed(&body(&[(7, &down), (8, monitor)]));
        assert_eq!(body["version"], 1);
        let events = body["events"].as_array().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["id"], 7);
        assert_eq!(events[1]["id"], 8);
        assert_eq!(events[1]["kind"], "monitor_down");
        assert_eq!(
            events[0],
            json!({
                "id": 7,
                "at": "2027-01-15T08:00:00.123Z",
                "agent_id": ID,
                "kind": "down",
                "from_status": "active",
                "to_status": "errored",
                "summary": format!("Sales <line> \"1\" ({ID}): down, active → errored"),
            })
        );
        assert_eq!(events[1]["agent_id"], Value::Null);
        assert_eq!(events[1]["from_status"], Value::Null);
        assert!(body.get("digest").is_none(), "{body}");
        for e in events {
            assert!(e.get("deliveries").is_none(), "{e}");
        }
    }

    #[test]
    fn integration_and_dead_webhook_events_name_what_they_are_about() {
        let all = every_kind();
        let body = parsed(&body(&[(1, &all[8]), (2, &all[9])]));
        assert_eq!(
            body["events"][0]["webhook"],
            "https://hooks.slack.com/services/T0/B0/***"
        );
        assert!(body["events"][0].get("integration").is_none());
        assert_eq!(body["events"][1]["integration"], "ghl");
        assert_eq!(body["events"][1]["kind"], "integration_down");
        assert!(body["events"][1].get("webhook").is_none());
    }

    #[test]
    fn a_digest_has_no_events_and_its_facts() {
        let digest = Digest {
            tick: at(),
            since: at(),
            since_previous: true,
            watched: 5,
            healthy: 3,
            unknown: 1,
            unhealthy: vec![UnhealthyAgent {
                agent: AgentRef {
                    id: ID.parse().unwrap(),
                    name: None,
                },
                status: "errored".into(),
                since: None,
            }],
            unhealthy_count: 1,
            alerts: vec![KindCount {
                kind: "down".into(),
                count: 2,
            }],
            integrations: vec![IntegrationFact {
                name: IntegrationName::CalcomOrg,
                healthy: Some(true),
                status: Some("active".into()),
                since: None,
            }],
            pending: 4,
            failed: 1,
            dead_webhooks: vec![DeadFact {
                platform: Platform::Discord,
                webhook: "https://discord.com/api/webhooks/1/***".into(),
                since: at(),
            }],
            dead_count: 1,
        };
        let body = parsed(&digest_body(&digest));
        assert_eq!(body["version"], 1);
        assert_eq!(body["events"], json!([]));
        let d = &body["digest"];
        assert_eq!(d["watched"], 5);
        assert_eq!(d["unhealthy"][0]["agent_id"], ID);
        assert_eq!(d["unhealthy"][0]["name"], Value::Null);
        assert_eq!(d["alerts"], json!([{"kind": "down", "count": 2}]));
        assert_eq!(d["integrations"][0]["name"], "calcom_org");
        assert_eq!(d["dead_webhooks"][0]["platform"], "discord");
        assert_eq!(d["pending"], 4);
    }

    /// The signature, recomputed here with the `hmac` crate directly, not through [`sign`].
    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        let body = body(&[(1, &agent(AgentAlertKind::Down))]);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
        let mut signed = b"1800000000.".to_vec();
        signed.extend_from_slice(&body);
        mac.update(&signed);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sign(&secret(), 1_800_000_000, &body), format!("v1={hex}"));
        assert_ne!(
            sign(&secret(), 1_800_000_001, &body),
            format!("v1={hex}"),
            "the timestamp is signed"
        );
        let [(ts_name, ts), (sig_name, sig)] = headers(&secret(), at(), &body);
        assert_eq!((ts_name, ts.as_str()), (TIMESTAMP_HEADER, "1800000000"));
        assert_eq!((sig_name, sig), (SIGNATURE_HEADER, format!("v1={hex}")));
    }

    #[test]
    fn answers_are_classified_as_the_contract_says() {
        for ok in [200, 201, 202, 204, 299] {
            assert_eq!(classify(ok, None, ""), Ok(()), "{ok}");
        }
        assert_eq!(
            classify(429, Some(7.0), ""),
            Err(RateLimited(Duration::from_secs(7)))
        );
        assert_eq!(
            classify(429, None, "slow down"),
            Err(RateLimited(Duration::from_secs(1)))
        );
        assert_eq!(
            classify(429, Some(-3.0), ""),
            Err(RateLimited(Duration::from_secs(1)))
        );
        assert_eq!(
            classify(429, Some(f64::NAN), ""),
            Err(RateLimited(Duration::from_secs(1)))
        );
        assert_eq!(
            classify(429, Some(1e12), ""),
            Err(RateLimited(MAX_PACE_WAIT))
        );
        for transient in [500, 502, 503, 599, 408, 401, 403, 404] {
            let err = classify(transient, None, "busy").unwrap_err();
            assert!(matches!(err, Transient(_)), "{transient}: {err:?}");
            assert!(err.to_string().contains("busy"), "{err}");
        }
        let dead = classify(410, None, "gone").unwrap_err();
        assert!(matches!(dead, Dead(_)), "{dead:?}");
        for refused in [400, 405, 409, 413, 415, 422, 301, 100] {
            let err = classify(refused, None, "bad").unwrap_err();
            assert!(matches!(err, Permanent(_)), "{refused}: {err:?}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn any_answer_body_is_classified_without_panicking() {
        let huge = "é".repeat(1_000_000);
        let lossy = String::from_utf8_lossy(&[0xff, 0xfe, b'o', b'k', 0x80]).into_owned();
        for body in [huge.as_str(), lossy.as_str(), "\u{0}", ""] {
            for status in [0, 200, 400, 410, 429, 503, 999, u16::MAX] {
                let outcome = classify(status, Some(f64::INFINITY), body);
                if let Err(e) = outcome {
                    assert!(e.to_string().chars().count() < 400, "{status}: cut short");
                }
            }
        }
    }

    #[test]
    fn the_secret_is_checked_and_never_printed() {
        assert!(SigningSecret::parse("sixteen-chars-xx").is_ok());
        for bad in [
            "fifteen-chars-x",
            "has a space in it, long",
            "tab\there-0123456789",
        ] {
            let err = SigningSecret::parse(bad).unwrap_err();
            assert!(!err.contains(bad), "{err}");
        }
        let shown = format!("{:?}", secret());
        assert_eq!(shown, "SigningSecret(***)");
        let body = body(&[(1, &agent(AgentAlertKind::Down))]);
        for (_, value) in headers(&secret(), at(), &body) {
            assert!(!value.contains(SECRET), "{value}");
        }
    }
}
