//! What the tracker decides and the notifiers render: an alert is a complete, self-contained
//! description of one change, so formatting it needs no clock, no store and no network.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Account, AgentId, Connection, Platform};

/// The agent an alert is about. The name is the operator's label, when one was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRef {
    pub id: AgentId,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentAlertKind {
    /// The agent has been unhealthy for the failure threshold: the connection is broken.
    Down,
    /// Still unhealthy, but with a different unhealthy status (`errored → not_connected`).
    Changed,
    /// Still unhealthy after another reminder interval.
    Reminder,
    /// Healthy again for the success threshold.
    Recovered,
    /// Ravan answers 404 for the agent, failure-threshold polls in a row: deleted, or a wrong id.
    Missing,
    /// Ravan answers for the agent again after a missing alert.
    Found,
}

/// A change in one agent's Cal.com connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAlert {
    pub kind: AgentAlertKind,
    pub agent: AgentRef,
    /// The status before the change; `None` when the agent was unhealthy from its first observation.
    pub from: Option<String>,
    /// The status now (raw string from Ravan; `active` for a recovery).
    pub to: String,
    pub connected: bool,
    pub accounts: Vec<Account>,
    /// Which connection `to` is the status of; `None` for a missing alert, and in alerts
    /// queued before it was recorded.
    #[serde(default)]
    pub connection: Option<Connection>,
    /// When the change was observed (for a recovery: the first healthy observation).
    pub at: DateTime<Utc>,
    /// When the agent was first seen unhealthy in this outage (for missing and found: when
    /// Ravan began answering 404). `at - unhealthy_since` is the downtime a recovery reports
    /// and the duration a reminder reports.
    pub unhealthy_since: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorAlertKind {
    /// Polling itself is broken (every poll failing, or Ravan refusing the credentials).
    /// Says nothing about any agent.
    Down,
    /// Polling works again.
    Recovered,
}

/// Trouble with the monitor itself rather than with an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorAlert {
    pub kind: MonitorAlertKind,
    /// Why, in one line, e.g. "Ravan API refused the credentials (HTTP 401): invalid token".
    /// May contain text from the Ravan API: renderers must escape it.
    pub reason: String,
    pub at: DateTime<Utc>,
    /// When the trouble started; for a recovery `at - since` is how long polling was broken.
    pub since: DateTime<Utc>,
}

/// A webhook its platform declared gone: the alerts routed to it no longer arrive, so the other
/// destinations are told which one, what it answered and whose alerts it carried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAlert {
    pub platform: Platform,
    /// The URL with its secret part masked.
    pub webhook: String,
    /// What it answered, e.g. `HTTP 404: no_service`. From outside: renderers must escape it.
    pub answer: String,
    /// A default destination (a setting), not only some agents' own.
    pub default: bool,
    /// Agents whose alerts go to it, the first [`WebhookAlert::NAMED`] of them…
    pub agents: Vec<AgentRef>,
    /// …and how many in all.
    pub agents_routed: usize,
    pub at: DateTime<Utc>,
}

impl WebhookAlert {
    /// Agents an announcement names; the rest are counted.
    pub const NAMED: usize = 10;
}

/// An organisation-level integration: what an organisation's agents book through besides
/// their own Cal.com keys. One broken integration breaks the bookings of every agent on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationName {
    /// The organisation's own Cal.com connection (what org-linked agents book through).
    CalcomOrg,
    /// The organisation's GoHighLevel integration.
    Ghl,
}

impl IntegrationName {
    pub const ALL: [IntegrationName; 2] = [IntegrationName::CalcomOrg, IntegrationName::Ghl];

    /// The name the API, events and the database use: `calcom_org` or `ghl`.
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationName::CalcomOrg => "calcom_org",
            IntegrationName::Ghl => "ghl",
        }
    }

    /// The name people read.
    pub fn label(self) -> &'static str {
        match self {
            IntegrationName::CalcomOrg => "The organisation's Cal.com connection",
            IntegrationName::Ghl => "The organisation's GoHighLevel integration",
        }
    }
}

impl std::fmt::Display for IntegrationName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IntegrationName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IntegrationName::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not an integration (calcom_org or ghl)"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationAlertKind {
    /// Unhealthy for the failure threshold after having been healthy (or its token expired).
    Down,
    /// Healthy again for the success threshold.
    Recovered,
    /// The Cal.com token expires soon and Ravan has not been renewing it.
    TokenExpiring,
}

/// A change in an organisation-level integration. No agent's: `agent_id` is null in its event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationAlert {
    pub kind: IntegrationAlertKind,
    pub integration: IntegrationName,
    /// The status before the change (the alerted one, for a recovery); `None` when unknown.
    pub from: Option<String>,
    /// The raw status word now (`errored`, `token_invalid`, `active` for a recovery …).
    pub status: String,
    /// What Ravan said about it (its error or message), or why the watcher judged it down
    /// ("token expired"). From outside: renderers must escape it.
    pub detail: Option<String>,
    /// When the change was seen (for a recovery: the first healthy check).
    pub at: DateTime<Utc>,
    /// When the integration was first seen unhealthy in this outage (`at - since` is the
    /// downtime of a recovery); for a token warning, since when the expiry has not moved.
    pub since: DateTime<Utc>,
    /// The Cal.com token's expiry, when Ravan reported one.
    pub token_expires: Option<DateTime<Utc>>,
    /// Agents whose own alerts this one stands for, the first [`IntegrationAlert::NAMED`]…
    #[serde(default)]
    pub affected: Vec<AgentRef>,
    /// …and how many in all.
    #[serde(default)]
    pub affected_count: usize,
    /// For the organisation's Cal.com: how many watched agents are org-linked (they all book
    /// through it), when known.
    #[serde(default)]
    pub org_linked: Option<usize>,
}

impl IntegrationAlert {
    /// Affected agents an alert names; the rest are counted.
    pub const NAMED: usize = 10;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum Alert {
    Agent(AgentAlert),
    Monitor(MonitorAlert),
    Webhook(WebhookAlert),
    Integration(IntegrationAlert),
}

/// An alert's kind as the event log, metrics and pages name it: one flat set over the agents'
/// kinds and the monitor's (`monitor_down`, `monitor_recovered`), so a stored event's kind
/// parses back without knowing whose it was.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
pub enum EventKind {
    Down,
    Changed,
    Reminder,
    Recovered,
    Missing,
    Found,
    MonitorDown,
    MonitorRecovered,
    WebhookDead,
    IntegrationDown,
    IntegrationRecovered,
    TokenExpiring,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl From<AgentAlertKind> for EventKind {
    fn from(kind: AgentAlertKind) -> Self {
        match kind {
            AgentAlertKind::Down => Self::Down,
            AgentAlertKind::Changed => Self::Changed,
            AgentAlertKind::Reminder => Self::Reminder,
            AgentAlertKind::Recovered => Self::Recovered,
            AgentAlertKind::Missing => Self::Missing,
            AgentAlertKind::Found => Self::Found,
        }
    }
}

impl From<MonitorAlertKind> for EventKind {
    fn from(kind: MonitorAlertKind) -> Self {
        match kind {
            MonitorAlertKind::Down => Self::MonitorDown,
            MonitorAlertKind::Recovered => Self::MonitorRecovered,
        }
    }
}

impl From<IntegrationAlertKind> for EventKind {
    fn from(kind: IntegrationAlertKind) -> Self {
        match kind {
            IntegrationAlertKind::Down => Self::IntegrationDown,
            IntegrationAlertKind::Recovered => Self::IntegrationRecovered,
            IntegrationAlertKind::TokenExpiring => Self::TokenExpiring,
        }
    }
}

impl Alert {
    /// Every [`Alert::kind_name`]: what a stored event's kind may be.
    pub const KIND_NAMES: &'static [&'static str] = <EventKind as strum::VariantNames>::VARIANTS;

    /// One line for the event log: the agent (name and id) or "Monitor", what happened and
    /// the change, e.g. `Sales line (3f25…): down, active → errored`. Plain text: pages and
    /// APIs escape it as they show it.
    pub fn summary(&self) -> String {
        match self {
            Alert::Agent(a) => {
                let who = match &a.agent.name {
                    Some(name) => format!("{name} ({})", a.agent.id),
                    None => a.agent.id.to_string(),
                };
                let from = a.from.as_deref().unwrap_or("first seen");
                format!("{who}: {}, {from} → {}", self.kind_name(), a.to)
            }
            Alert::Monitor(m) => match m.kind {
                MonitorAlertKind::Down => format!("Monitor: polling fails: {}", m.reason),
                MonitorAlertKind::Recovered => "Monitor: polling works again".to_owned(),
            },
            Alert::Webhook(w) => format!(
                "Webhook: {} {} is dead ({}); {} agents route to it",
                w.platform, w.webhook, w.answer, w.agents_routed
            ),
            Alert::Integration(i) => {
                let name = i.integration;
                let detail = i
                    .detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                match i.kind {
                    IntegrationAlertKind::Down => {
                        let from = i.from.as_deref().unwrap_or("first seen");
                        format!("Integration {name}: down, {from} → {}{detail}", i.status)
                    }
                    IntegrationAlertKind::Recovered => {
                        let from = i.from.as_deref().unwrap_or("unknown");
                        format!("Integration {name}: recovered, {from} → {}", i.status)
                    }
                    IntegrationAlertKind::TokenExpiring => match i.token_expires {
                        Some(at) => format!(
                            "Integration {name}: token expires at {}",
                            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ),
                        None => format!("Integration {name}: token expires soon"),
                    },
                }
            }
        }
    }

    /// The integration the alert is about (`calcom_org`, `ghl`), for an integration's.
    pub fn integration(&self) -> Option<IntegrationName> {
        match self {
            Alert::Integration(i) => Some(i.integration),
            _ => None,
        }
    }

    /// The webhook the alert is about (masked), for a dead webhook's.
    pub fn webhook(&self) -> Option<&str> {
        match self {
            Alert::Webhook(w) => Some(&w.webhook),
            _ => None,
        }
    }

    /// The agent the alert is about; `None` for the monitor's own.
    pub fn agent_id(&self) -> Option<&AgentId> {
        match self {
            Alert::Agent(a) => Some(&a.agent.id),
            Alert::Monitor(_) | Alert::Webhook(_) | Alert::Integration(_) => None,
        }
    }

    /// The status before and after, for the event log (`None` for the monitor's alerts).
    pub fn statuses(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Alert::Agent(a) => (a.from.as_deref(), Some(a.to.as_str())),
            Alert::Integration(i) => (i.from.as_deref(), Some(i.status.as_str())),
            Alert::Monitor(_) | Alert::Webhook(_) => (None, None),
        }
    }

    /// When the change happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Alert::Agent(a) => a.at,
            Alert::Monitor(m) => m.at,
            Alert::Webhook(w) => w.at,
            Alert::Integration(i) => i.at,
        }
    }

    /// What kind of event the alert is.
    pub fn kind(&self) -> EventKind {
        match self {
            Alert::Agent(a) => a.kind.into(),
            Alert::Monitor(m) => m.kind.into(),
            Alert::Webhook(_) => EventKind::WebhookDead,
            Alert::Integration(i) => i.kind.into(),
        }
    }

    /// The [`EventKind`]'s name (`down` … `monitor_recovered`): for the event log, metrics
    /// labels and logs.
    pub fn kind_name(&self) -> &'static str {
        self.kind().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Every kind of alert has its name in [`Alert::KIND_NAMES`], and no two share one.
    #[test]
    fn kind_names_lists_every_kind() {
        let at = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let agent = |kind| {
            Alert::Agent(AgentAlert {
                kind,
                agent: AgentRef {
                    id: "3f2504e0-4f89-11d3-9a0c-0305e82c3301".parse().unwrap(),
                    name: None,
                },
                from: None,
                to: "errored".into(),
                connected: false,
                accounts: vec![],
                connection: None,
                at,
                unhealthy_since: at,
            })
        };
        let monitor = |kind| {
            Alert::Monitor(MonitorAlert {
                kind,
                reason: String::new(),
                at,
                since: at,
            })
        };
        use AgentAlertKind as A;
        let names: Vec<&str> = [
            A::Down,
            A::Changed,
            A::Reminder,
            A::Recovered,
            A::Missing,
            A::Found,
        ]
        .into_iter()
        .map(agent)
        .chain(
            [MonitorAlertKind::Down, MonitorAlertKind::Recovered]
                .into_iter()
                .map(monitor),
        )
        .chain([Alert::Webhook(WebhookAlert {
            platform: Platform::Slack,
            webhook: "https://hooks.slack.com/services/T0/B0/***".into(),
            answer: "HTTP 404: no_service".into(),
            default: true,
            agents: vec![],
            agents_routed: 0,
            at,
        })])
        .chain(
            [
                IntegrationAlertKind::Down,
                IntegrationAlertKind::Recovered,
                IntegrationAlertKind::TokenExpiring,
            ]
            .map(|kind| {
                Alert::Integration(IntegrationAlert {
                    kind,
                    integration: IntegrationName::CalcomOrg,
                    from: None,
                    status: "errored".into(),
                    detail: None,
                    at,
                    since: at,
                    token_expires: None,
                    affected: vec![],
                    affected_count: 0,
                    org_linked: None,
                })
            }),
        )
        .map(|a| a.kind_name())
        .collect();
        assert_eq!(names, Alert::KIND_NAMES);
        assert_eq!(
            &names[names.len() - 3..],
            [
                "integration_down",
                "integration_recovered",
                "token_expiring"
            ]
        );
    }

    #[test]
    fn integration_names_parse_back_and_nothing_else_does() {
        for name in IntegrationName::ALL {
            assert_eq!(name.as_str().parse::<IntegrationName>(), Ok(name));
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{}\"", name.as_str()));
        }
        assert!("calcom".parse::<IntegrationName>().is_err());
        assert!("".parse::<IntegrationName>().is_err());
    }
}
