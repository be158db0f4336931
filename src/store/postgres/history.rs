//! [`HistoryStore`] on postgres.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PostgresStore;
use crate::domain::{AgentId, HealthInterval};
use crate::store::{Event, EventQuery, HistoryStore, StoreError};

#[async_trait]
impl HistoryStore for PostgresStore {
    async fn events(&self, _query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        Ok(Vec::new())
    }

    async fn health_intervals(
        &self,
        _since: DateTime<Utc>,
    ) -> Result<Vec<(AgentId, HealthInterval)>, StoreError> {
        Ok(Vec::new())
    }

    async fn agent_health_intervals(
        &self,
        _agent: &AgentId,
        _since: DateTime<Utc>,
    ) -> Result<Vec<HealthInterval>, StoreError> {
        Ok(Vec::new())
    }

    async fn prune_history(
        &self,
        _now: DateTime<Utc>,
        _retention: Duration,
        _batch: u32,
    ) -> Result<u64, StoreError> {
        Ok(0)
    }
}
