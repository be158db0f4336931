//! [`CopyStore`] on SQLite.

use async_trait::async_trait;

use super::SqliteStore;
use crate::store::{CopyStore, Snapshot, StoreError};

#[async_trait]
impl CopyStore for SqliteStore {
    async fn export(&self) -> Result<Snapshot, StoreError> {
        Err(StoreError::Corrupt("copy-db: not built yet".to_owned()))
    }

    async fn import(&self, _snapshot: &Snapshot) -> Result<(), StoreError> {
        Err(StoreError::Corrupt("copy-db: not built yet".to_owned()))
    }
}
