//! The decisions: which observations are real changes worth a message.
//!
//! Pure state machines with no I/O and no clock: every call is given the time of the
//! observation, so each transition can be tested exhaustively and replayed after a restart.
//!
//! Rules (thresholds count *observations*; a failed poll is not one and changes nothing):
//! - `failure` consecutive unhealthy observations open an outage: one [`AgentAlertKind::Down`].
//! - While open, a different unhealthy status seen `failure` times in a row is one
//!   [`AgentAlertKind::Changed`]; flapping between two unhealthy statuses is not.
//! - While open, every `reminder` interval since the last message, one
//!   [`AgentAlertKind::Reminder`].
//! - `success` consecutive healthy observations close it: one [`AgentAlertKind::Recovered`].
//! - A healthy first observation says nothing; an unhealthy one alerts once the threshold is met.
//! - A muted agent is tracked but alerts nothing: no outage opens while muted (so an agent still
//!   unhealthy when the mute lifts alerts on the next observation), an open one closes silently
//!   on recovery, and no change or reminder is sent or counted as sent.
//! - An agent in a maintenance window is held as a muted one, with one difference: an outage
//!   announced before the window stays open through it, so its recovery (or, still down, its
//!   change or reminder) is announced on the first poll after the window ([`Hold::Maintenance`]).
//! - Missing agents: a `/status` 404 is a failed poll like any other for the rules above, but
//!   `failure` of them in a row (other failed polls between them neither count nor break the
//!   run) is one [`AgentAlertKind::Missing`]; the next observation after it is one
//!   [`AgentAlertKind::Found`]. Mutes apply as to outages. Feed each observation through
//!   [`AgentState::record_observation`], which ends a missing run before the rules above look.
//!
//! `agent` holds an agent's machine, `poll` folds one poll into it for a cycle, `monitor` the
//! monitor's own (its cycles' health, and cycles that overran their schedule), `integration`
//! an organisation-level integration's (the same rules, plus its Cal.com token's expiry).
//!
//! [`AgentAlertKind::Down`]: crate::domain::AgentAlertKind::Down
//! [`AgentAlertKind::Changed`]: crate::domain::AgentAlertKind::Changed
//! [`AgentAlertKind::Reminder`]: crate::domain::AgentAlertKind::Reminder
//! [`AgentAlertKind::Recovered`]: crate::domain::AgentAlertKind::Recovered
//! [`AgentAlertKind::Missing`]: crate::domain::AgentAlertKind::Missing
//! [`AgentAlertKind::Found`]: crate::domain::AgentAlertKind::Found

mod agent;
mod integration;
mod monitor;
mod poll;

pub use agent::{AgentState, OpenOutage};
pub use integration::{
    EXPIRED_CONFIRM, IntegrationObservation, IntegrationOutage, IntegrationState, TOKEN_EXPIRED,
    TOKEN_STEADY,
};
pub use monitor::{CycleSummary, MonitorState, Overrun};
pub use poll::{Poll, PollEffect};

use std::num::NonZeroU32;

use chrono::Duration;

/// Why an agent's alerts are held back at a poll, if they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hold {
    /// Alerts as the rules say.
    #[default]
    None,
    /// Muted by the operator (or held with the organisation's account): nothing opens, an open
    /// outage closes silently, a missing run ends silently.
    Muted,
    /// In a maintenance window: nothing opens and nothing is announced, but an outage
    /// announced before the window stays open, so the operator who was told it broke is also
    /// told it recovered (after the window). A missing run ends silently, as when muted.
    Maintenance,
}

/// The `to` of a missing alert, and the `from` of a found one.
pub const NOT_FOUND: &str = "not_found";

/// How many observations make a change real, and how often to remind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub failure: NonZeroU32,
    pub success: NonZeroU32,
    /// `None`: no reminders.
    pub reminder: Option<Duration>,
}

#[cfg(test)]
mod test_support {
    use super::*;
    use crate::domain::alert::AgentRef;
    use crate::domain::{Account, AgentId, Connection, Observation};
    use chrono::{DateTime, Utc};

    pub fn agent() -> AgentRef {
        AgentRef {
            id: "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
                .parse::<AgentId>()
                .unwrap(),
            name: Some("Sales bot".into()),
        }
    }

    /// An observation of one private account in `status` ("active" is healthy).
    pub fn obs(status: &str) -> Observation {
        Observation {
            connection: Some(Connection::Private),
            status: status.into(),
            connected: status == "active",
            accounts: vec![Account {
                id: "acc1".into(),
                account_name: "Team cal".into(),
                status: status.into(),
                error: (status != "active").then(|| "token expired".into()),
            }],
        }
    }

    pub fn th(failure: u32, success: u32, reminder_mins: Option<i64>) -> Thresholds {
        Thresholds {
            failure: NonZeroU32::new(failure).unwrap(),
            success: NonZeroU32::new(success).unwrap(),
            reminder: reminder_mins.map(Duration::minutes),
        }
    }

    /// Minute `m` after a fixed start: observations one minute apart.
    pub fn t(m: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::minutes(m)
    }
}
