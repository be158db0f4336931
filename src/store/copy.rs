//! Moving to another database (`ravan-watch copy-db FROM TO`): everything the service stores,
//! read from one backend as a [`Snapshot`] and written into another, empty one, as it was:
//! the same ids, states, settings versions, pending alerts (with their attempts and batches)
//! and finished deliveries, and the history (events with their deliveries, health intervals),
//! all with their ids, and the maintenance windows. The lease is not copied: the new database starts without a leader.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    AgentRecord, DeadWebhook, Event, EventDelivery, OutboxEntry, SettingsVersion, StoreError,
};
use crate::domain::alert::IntegrationName;
use crate::domain::{AgentId, HealthInterval, MaintenanceWindow};
use crate::tracker::{IntegrationState, MonitorState};

#[async_trait]
pub trait CopyStore: Send + Sync {
    /// Everything stored, read in one transaction so it is consistent.
    async fn export(&self) -> Result<Snapshot, StoreError>;

    /// Writes `snapshot` in one transaction; refuses ([`StoreError::NotEmpty`]) a database
    /// that holds any agent, unwatched agent, outbox entry, dead webhook, event, integration's
    /// state or maintenance window.
    async fn import(&self, snapshot: &Snapshot) -> Result<(), StoreError>;
}

/// Everything a database holds, as rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Every watched agent with its state as saved (not the last cycle's `last_checked_at`),
    /// and how many complete listings in a row missed it.
    pub agents: Vec<(AgentRecord, i64)>,
    /// Agents removed over the API (watch-all leaves them alone), and since when.
    pub unwatched: Vec<(AgentId, DateTime<Utc>)>,
    pub settings_version: SettingsVersion,
    /// The monitor's state and the last committed cycle (its settings version and start).
    pub monitor: Option<MonitorRow>,
    /// Every outbox entry, pending or finished, oldest first, with when it finished.
    pub outbox: Vec<(OutboxEntry, Option<DateTime<Utc>>)>,
    /// The last batch number handed out.
    pub last_batch: i64,
    pub dead_webhooks: Vec<DeadWebhook>,
    /// Every event, oldest first, without its deliveries (`event_deliveries`), with the agent
    /// version it was written under.
    pub events: Vec<(Event, Option<i64>)>,
    /// Every event delivery as `(outbox_id, event_id, delivery)`, by outbox id.
    pub event_deliveries: Vec<(i64, i64, EventDelivery)>,
    /// Every health interval as `(id, agent, interval)`, by id.
    pub health_intervals: Vec<(i64, AgentId, HealthInterval)>,
    /// Every organisation-level integration's state, by name.
    pub integrations: Vec<(IntegrationName, IntegrationState)>,
    /// Every maintenance window, oldest first.
    pub maintenance_windows: Vec<MaintenanceWindow>,
    /// The last digest's tick: the copy does not send it again.
    pub last_digest: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRow {
    pub state: MonitorState,
    pub polled_version: Option<SettingsVersion>,
    pub polled_at: Option<DateTime<Utc>>,
}
