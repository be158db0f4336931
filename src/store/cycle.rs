//! A poll cycle's reads and its one commit: the agents it polls, as one consistent snapshot, and
//! every state change with the alerts it produced, in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::AgentRecord;
use super::{Fence, StoreError};
use crate::domain::{AgentId, Alert, HealthEdge, Webhook};
use crate::tracker::{AgentState, MonitorState};

/// What a poll cycle reads and writes.
#[async_trait]
pub trait CycleStore: Send + Sync {
    /// The current settings version: a poll cycle holding the agents of this version need
    /// not read them again.
    async fn settings_version(&self) -> Result<SettingsVersion, StoreError>;

    /// Every watched agent with its state, oldest first, and the settings version they are
    /// at, read in one transaction so the two agree.
    async fn watched(&self) -> Result<Watched, StoreError>;

    /// [`CycleStore::watched`] without the states (each left at its default): for a poll cycle
    /// that holds the states it wrote, since a state's JSON is most of the read.
    async fn watched_settings(&self) -> Result<Watched, StoreError>;

    async fn monitor_state(&self) -> Result<MonitorState, StoreError>;

    /// Writes a cycle's [`Progress`] alone (a leader's last, at a clean stop), unless the
    /// store already holds a later cycle's. `fence`: see [`Fence`].
    async fn save_progress(&self, fence: Fence, progress: &Progress) -> Result<(), StoreError>;

    /// Writes a cycle's outcome in one transaction: the agents' new states, the monitor's
    /// state, which agents the cycle polled and when (`polled`), and one outbox entry per
    /// (alert, destination). An agent removed while the cycle ran keeps no state and gets no
    /// alert; with `polled`, one removed and added again under the same id (after
    /// `polled.version`) gets neither the removed one's state nor its alerts. `None` records no
    /// cycle and so cannot tell a re-added agent: for writes that are not a poll cycle's.
    /// Returns the number of outbox entries written. `fence`: see [`Fence`].
    async fn commit_cycle(
        &self,
        fence: Fence,
        polled: Option<Polled>,
        agents: &[AgentUpdate<'_>],
        monitor: &MonitorState,
        monitor_alerts: &[Routed],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;
}

/// Counts the changes to the agents' settings (moved by the database's own triggers): equal
/// versions mean the same agents with the same settings.
pub type SettingsVersion = i64;

/// The watched agents as one consistent snapshot, and the settings version it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub version: SettingsVersion,
    pub agents: Vec<AgentRecord>,
}

/// Which agents a poll cycle polled: every agent of the snapshot at `version`; the polls
/// began at `started_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    pub version: SettingsVersion,
    pub started_at: DateTime<Utc>,
}

/// What a poll cycle that changed nothing in substance still moved: which agents it polled
/// and when, and the monitor's state (its clean streak, its last good cycle). A leader's
/// steady cycles hand it to the lease's next renewal
/// ([`LeaseStore::renew_lease_with`](super::LeaseStore::renew_lease_with)) instead of writing
/// it themselves; a store never takes an earlier cycle's progress over a later one's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub polled: Polled,
    pub monitor: MonitorState,
}

/// An alert and the webhooks it goes to.
pub type Routed = (Alert, Vec<Webhook>);

/// One agent's outcome of a poll cycle that changed its state in substance (see
/// [`AgentState::differs_from`]) or produced alerts: its new state and the alerts.
///
/// The state is borrowed from the cycle's record of the agent: after an outage, or at a
/// term's first cycles, every agent's state goes to the commit, and updates that owned them
/// would hold every state twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentUpdate<'a> {
    pub agent_id: AgentId,
    pub state: &'a AgentState,
    pub alerts: Vec<Routed>,
    /// What the cycle's poll did to the agent's health intervals
    /// ([`AgentState::health_edge`]).
    pub health: Option<HealthEdge>,
}
