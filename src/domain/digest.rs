//! The digest (`DIGEST_SCHEDULE`): the facts one scheduled message reports, gathered once at
//! its tick and then only rendered, like an alert ([`super::alert`]). It is the team's proof
//! that the watcher is alive, so it says everything at a glance: the fleet's health, who is
//! unhealthy since when, what was alerted since the previous digest, the integrations, and
//! what did not get through. Not a change of anything: no event, no alert kind.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Platform;
use super::alert::{AgentRef, Alert, IntegrationName};

/// One digest's facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// The tick it is for (its scheduled time).
    pub tick: DateTime<Utc>,
    /// Where the alert counts and failed deliveries start: the previous digest's tick, or a day
    /// before this one for the first.
    pub since: DateTime<Utc>,
    /// Whether `since` is a previous digest's tick.
    pub since_previous: bool,
    pub watched: usize,
    pub healthy: usize,
    /// Watched agents whose health is not known (not polled yet, or their polls fail).
    pub unknown: usize,
    /// The unhealthy agents, longest unhealthy first, the first [`Digest::NAMED`]…
    pub unhealthy: Vec<UnhealthyAgent>,
    /// …and how many in all.
    pub unhealthy_count: usize,
    /// The alerts since `since`, by kind, in the event kinds' order; kinds with none left out.
    pub alerts: Vec<KindCount>,
    /// The organisation-level integrations ever checked; empty when none was.
    pub integrations: Vec<IntegrationFact>,
    /// Alert deliveries waiting to be sent (or retried) now.
    pub pending: u64,
    /// Alert deliveries given up on since `since`.
    pub failed: u64,
    /// Dead webhooks, the first [`Digest::NAMED`]…
    pub dead_webhooks: Vec<DeadFact>,
    /// …and how many in all.
    pub dead_count: usize,
}

impl Digest {
    /// Unhealthy agents and dead webhooks a digest names; the rest are counted.
    pub const NAMED: usize = 10;
}

/// An unhealthy agent as the digest names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnhealthyAgent {
    pub agent: AgentRef,
    /// Ravan's raw status (`errored` …), or `not found` for one Ravan answers 404 for. From
    /// outside: renderers escape it.
    pub status: String,
    /// Since when it is unhealthy, when known.
    pub since: Option<DateTime<Utc>>,
}

/// How many alerts of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    /// [`super::EventKind`]'s name (`down`, `recovered` …).
    pub kind: String,
    pub count: u64,
}

/// An organisation-level integration's state as last checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationFact {
    pub name: IntegrationName,
    /// `None` before the first check that answered.
    pub healthy: Option<bool>,
    /// The raw status word (from outside: renderers escape it).
    pub status: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// A dead webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadFact {
    pub platform: Platform,
    /// Masked: never the secret.
    pub webhook: String,
    pub since: DateTime<Utc>,
}

/// What one outbox entry carries: an alert (with its event), or a digest (no event). Stored as
/// the alert's or the digest's own JSON, so entries queued before digests existed still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Message {
    Alert(Alert),
    Digest(Box<Digest>),
}

impl Message {
    pub fn alert(&self) -> Option<&Alert> {
        match self {
            Message::Alert(a) => Some(a),
            Message::Digest(_) => None,
        }
    }
}

impl From<Alert> for Message {
    fn from(alert: Alert) -> Self {
        Message::Alert(alert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{MonitorAlert, MonitorAlertKind};

    /// An alert and a digest each read back as what they were from the one column.
    #[test]
    fn alerts_and_digests_read_back_as_themselves() {
        let at = "2026-12-07T08:00:00Z".parse().unwrap();
        let alert = Message::Alert(Alert::Monitor(MonitorAlert {
            kind: MonitorAlertKind::Down,
            reason: "x".into(),
            at,
            since: at,
        }));
        let digest = Message::Digest(Box::new(Digest {
            tick: at,
            since: at,
            since_previous: false,
            watched: 1,
            healthy: 1,
            unknown: 0,
            unhealthy: vec![],
            unhealthy_count: 0,
            alerts: vec![],
            integrations: vec![],
            pending: 0,
            failed: 0,
            dead_webhooks: vec![],
            dead_count: 0,
        }));
        for m in [alert, digest] {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), m, "{json}");
        }
        assert!(serde_json::from_str::<Message>(r#"{"scope":"nothing"}"#).is_err());
    }
}
