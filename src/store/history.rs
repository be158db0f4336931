//! History: the event log and the agents' health intervals.
//!
//! An event is written for every alert in the same transaction as the state change that
//! decided it ([`super::CycleStore::commit_cycle`]), with one delivery per destination; each
//! delivery is the record of one outbox entry and changes with it, in the same transaction as
//! the outbox's own mark. So the log never disagrees with the outbox, and outlives it: the
//! outbox forgets finished entries after `OUTBOX_RETENTION`, the log keeps events (and what
//! each destination did with them) for `HISTORY_RETENTION`.
//!
//! Health intervals ([`HealthInterval`]) are written only at a [`crate::domain::HealthEdge`],
//! which always comes with a state change the cycle writes anyway: history grows with changes,
//! not with polls. An agent's intervals go when it is removed; its events stay.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Fence, OutboxStatus, StoreError};
use crate::domain::{AgentId, HealthInterval, Platform};

#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Events, newest first (by id, the order they were committed in), at most `query.limit`.
    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError>;

    /// The health intervals of every watched agent that end after `since` or are open, each
    /// agent's oldest first.
    async fn health_intervals(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(AgentId, HealthInterval)>, StoreError>;

    /// One agent's intervals that end after `since` or are open, oldest first.
    async fn agent_health_intervals(
        &self,
        agent: &AgentId,
        since: DateTime<Utc>,
    ) -> Result<Vec<HealthInterval>, StoreError>;

    /// Deletes events (with their deliveries) older than `now - retention`, and health
    /// intervals that ended before it, at most `batch` rows a statement, each statement in its
    /// own short write. Returns how many events were deleted. A leader's write: `fence`, see
    /// [`Fence`].
    async fn prune_history(
        &self,
        fence: Fence,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64, StoreError>;
}

/// Which events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    pub about: EventsAbout,
    /// Only events with an id below this (the cursor of the previous page).
    pub before: Option<i64>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsAbout {
    /// Every event.
    All,
    /// Every event about this agent id, from whenever it was watched (also after removal).
    Agent(AgentId),
    /// The events of the agent as watched now: none from before it was last added.
    Watched(AgentId),
    /// The monitor's own events.
    Monitor,
}

/// One alert the tracker decided, and what each destination did with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: i64,
    /// When the change happened (the alert's time).
    pub at: DateTime<Utc>,
    /// `None` for the monitor's own events.
    pub agent_id: Option<AgentId>,
    /// [`crate::domain::Alert::kind_name`].
    pub kind: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    /// [`crate::domain::Alert::summary`].
    pub summary: String,
    /// The webhook a `webhook_dead` event is about (masked).
    pub webhook: Option<String>,
    /// The integration (`calcom_org`, `ghl`) an integration's event is about.
    pub integration: Option<String>,
    /// Oldest first: one per destination the alert was queued for.
    pub deliveries: Vec<EventDelivery>,
}

/// One destination's part of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDelivery {
    pub platform: Platform,
    /// The webhook URL, masked as it is written (the secret never reaches the log).
    pub webhook: String,
    pub outcome: OutboxStatus,
    /// When it was delivered or given up on; `None` while pending.
    pub at: Option<DateTime<Utc>>,
    /// Why it failed, or why the last attempt did while it is retried.
    pub error: Option<String>,
}
