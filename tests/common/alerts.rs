//! Alerts and their destinations, built the same way wherever a test needs one.

use chrono::{DateTime, TimeZone, Utc};
use ravan_watch::domain::alert::{
    AgentAlert, AgentAlertKind, AgentRef, Alert, MonitorAlert, MonitorAlertKind,
};
use ravan_watch::domain::secret::SecretUrl;
use ravan_watch::domain::{Platform, Webhook};

/// 2026-11-28 12:00:00 UTC: a fixed time for alerts and stored rows.
pub fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

/// A monitor alert of `kind` for `reason`, raised at `at` about a stretch that began then too.
pub fn monitor_alert(kind: MonitorAlertKind, reason: &str, at: DateTime<Utc>) -> MonitorAlert {
    MonitorAlert {
        kind,
        reason: reason.into(),
        at,
        since: at,
    }
}

/// The monitor's own down alert (polling is broken) for `reason`, at [`noon`].
pub fn monitor_down(reason: &str) -> Alert {
    Alert::Monitor(monitor_alert(MonitorAlertKind::Down, reason, noon()))
}

/// An agent alert of `kind` about the agent `id`, named `name`: its status went `from` → `to`;
/// not connected, no accounts, no connection recorded; seen at and unhealthy since `at`.
pub fn agent_alert(
    kind: AgentAlertKind,
    id: &str,
    name: Option<&str>,
    (from, to): (&str, &str),
    at: DateTime<Utc>,
) -> AgentAlert {
    AgentAlert {
        kind,
        agent: AgentRef {
            id: id.parse().unwrap(),
            name: name.map(Into::into),
        },
        from: Some(from.into()),
        to: to.into(),
        connected: false,
        accounts: vec![],
        connection: None,
        at,
        unhealthy_since: at,
    }
}

/// A down alert (`active` → `errored`) about the agent `id`, named `name`, at [`noon`].
pub fn agent_down(id: &str, name: Option<&str>) -> Alert {
    Alert::Agent(agent_alert(
        AgentAlertKind::Down,
        id,
        name,
        ("active", "errored"),
        noon(),
    ))
}

/// A webhook of `platform` at `url`; panics if `url` is not a URL.
pub fn webhook(platform: Platform, url: &str) -> Webhook {
    Webhook::new(platform, SecretUrl::new(url.parse().unwrap()))
}
