//! The organisation-level integrations' states (`calcom_org`, `ghl`), kept across restarts so a
//! threshold half met, an open outage or a token's steady expiry (24 h of it) is not forgotten.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Fence, Routed, StoreError};
use crate::domain::alert::IntegrationName;
use crate::tracker::IntegrationState;

#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// Every integration's stored state, by name; one never checked is absent.
    async fn integrations(&self) -> Result<Vec<(IntegrationName, IntegrationState)>, StoreError>;

    /// Writes one integration's state and queues `alerts` (each with its destinations) in the
    /// same fenced transaction, as a cycle's commit does: the state that decided an alert is
    /// never kept without it, nor the alert without the state (it would be decided again).
    /// Returns how many outbox entries were queued.
    async fn save_integration(
        &self,
        fence: Fence,
        name: IntegrationName,
        state: &IntegrationState,
        alerts: &[Routed],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;
}
