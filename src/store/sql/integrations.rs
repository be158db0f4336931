//! [`IntegrationStore`]: one row per integration, its state as JSON.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::cycle::next_batch;
use super::history::insert_alerts;
use super::query::sql;
use super::{Dialect, SettingsLock, SqlStore, to_json};
use crate::domain::alert::IntegrationName;
use crate::store::rows::integration_from_row;
use crate::store::{Fence, IntegrationStore, Routed, StoreError, during};
use crate::tracker::IntegrationState;

/// Every integration's row, in a fixed order.
pub(super) const INTEGRATIONS: &str = "SELECT name, state FROM integrations ORDER BY name";

#[async_trait]
impl<D: Dialect> IntegrationStore for SqlStore<D> {
    async fn integrations(&self) -> Result<Vec<(IntegrationName, IntegrationState)>, StoreError> {
        let read = self.all(sql(INTEGRATIONS), integration_from_row);
        during("read the integrations", read).await
    }

    async fn save_integration(
        &self,
        fence: Fence,
        name: IntegrationName,
        state: &IntegrationState,
        alerts: &[Routed],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let save = async {
            let mut tx = self.write(fence, SettingsLock::None).await?;
            let q = sql("INSERT INTO integrations (name, state) VALUES (?, ?)
                 ON CONFLICT (name) DO UPDATE SET state = excluded.state");
            D::execute(&mut tx, q.bind(name.as_str()).bind(to_json(state)?)).await?;
            let mut entries = 0;
            if !alerts.is_empty() {
                let batch = next_batch::<D>(&mut tx).await?;
                let alerts: Vec<&Routed> = alerts.iter().collect();
                entries = insert_alerts::<D>(&mut tx, &alerts, batch, now).await?;
            }
            tx.commit().await?;
            Ok(entries)
        };
        during("save an integration's state", save).await
    }
}
