//! [`MaintenanceStore`]: one row per window. Its writes change settings ([`SettingsLock::Update`]):
//! the table's triggers move the settings version.

use async_trait::async_trait;

use super::query::{Value, sql};
use super::{Dialect, SettingsLock, SqlStore, to_json};
use crate::domain::maintenance::Timing;
use crate::domain::{MaintenanceWindow, WindowId};
use crate::store::rows::window_from_row;
use crate::store::{Fence, MaintenanceStore, StoreError, during};

/// Every window's row, oldest first.
pub(super) const WINDOWS: &str = "SELECT * FROM maintenance_windows ORDER BY created_at, id";

/// The head of an insert of windows; [`window_values`] gives each row.
pub(super) const INSERT_WINDOWS: &str = "INSERT INTO maintenance_windows (id, name, schedule,
    duration_seconds, start_at, end_at, timezone, agent_ids, created_at) VALUES ";

/// A window's row, in [`INSERT_WINDOWS`]' order.
pub(super) fn window_values(w: &MaintenanceWindow) -> Result<Vec<Value>, StoreError> {
    let (schedule, duration, start_at, end_at) = match &w.timing {
        Timing::Recurring { schedule, duration } => (
            Some(schedule.as_str().to_owned()),
            Some(duration.num_seconds()),
            None,
            None,
        ),
        Timing::OneOff { start_at, end_at } => (None, None, Some(*start_at), Some(*end_at)),
    };
    let agent_ids = match &w.agent_ids {
        None => None,
        Some(ids) => Some(to_json(ids)?),
    };
    Ok(vec![
        w.id.to_string().into(),
        w.name.as_str().into(),
        schedule.into(),
        duration.into(),
        start_at.into(),
        end_at.into(),
        w.timezone.name().into(),
        agent_ids.into(),
        w.created_at.into(),
    ])
}

#[async_trait]
impl<D: Dialect> MaintenanceStore for SqlStore<D> {
    async fn maintenance_windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        during(
            "read the maintenance windows",
            self.all(sql(WINDOWS), window_from_row),
        )
        .await
    }

    async fn insert_window(&self, window: &MaintenanceWindow) -> Result<(), StoreError> {
        let insert = async {
            let mut tx = self.write(Fence::Unchecked, SettingsLock::Update).await?;
            let q = sql("").push(INSERT_WINDOWS).rows([window_values(window)?]);
            D::execute(&mut tx, q).await?;
            tx.commit().await?;
            Ok(())
        };
        during("add a maintenance window", insert).await
    }

    async fn delete_window(&self, id: WindowId) -> Result<bool, StoreError> {
        let delete = async {
            let mut tx = self.write(Fence::Unchecked, SettingsLock::Update).await?;
            let q = sql("DELETE FROM maintenance_windows WHERE id = ?").bind(id.to_string());
            let deleted = D::execute(&mut tx, q).await? > 0;
            tx.commit().await?;
            Ok(deleted)
        };
        during("remove a maintenance window", delete).await
    }
}
