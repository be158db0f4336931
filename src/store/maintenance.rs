//! Maintenance windows, kept so they survive restarts and fail-over. Windows are added and
//! removed over the API, never edited; each change moves the settings version, so a poll
//! cycle reads them again only then.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::{MaintenanceWindow, WindowId};

#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Every window, oldest first.
    async fn maintenance_windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError>;

    async fn insert_window(&self, window: &MaintenanceWindow) -> Result<(), StoreError>;

    /// `false`: there was no such window.
    async fn delete_window(&self, id: WindowId) -> Result<bool, StoreError>;
}
