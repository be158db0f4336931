//! [`OutboxStore`] on SQLite.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::history::record_outcome;
use super::lease::check_fence;
use super::rows::outbox_from_row;
use super::{SqliteStore, millis, platform_name, to_json};
use crate::domain::Webhook;
use crate::store::{Fence, OutboxEntry, OutboxStatus, OutboxStore, StoreError};

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn outbox_heads(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        sqlx::query(
            "SELECT * FROM outbox WHERE id IN
               (SELECT MIN(id) FROM outbox WHERE status = 'pending' GROUP BY platform, url)
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(outbox_from_row)
        .collect()
    }

    async fn outbox_head_for(&self, hook: &Webhook) -> Result<Option<OutboxEntry>, StoreError> {
        sqlx::query("SELECT * FROM outbox WHERE status = 'pending' AND platform = ? AND url = ? ORDER BY id LIMIT 1")
            .bind(platform_name(hook.platform))
            .bind(hook.url.expose().as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| outbox_from_row(&r))
            .transpose()
    }

    async fn outbox_entry(&self, id: i64) -> Result<Option<OutboxEntry>, StoreError> {
        sqlx::query("SELECT * FROM outbox WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| outbox_from_row(&r))
            .transpose()
    }

    async fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        sqlx::query("SELECT * FROM outbox ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(outbox_from_row)
            .collect()
    }

    async fn outbox_pending(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn outbox_batch(
        &self,
        hook: &Webhook,
        batch: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        sqlx::query(
            "SELECT * FROM outbox WHERE status = 'pending' AND platform = ? AND url = ? AND batch = ? ORDER BY id",
        )
        .bind(platform_name(hook.platform))
        .bind(hook.url.expose().as_str())
        .bind(batch)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(outbox_from_row)
        .collect()
    }

    async fn mark_delivered(
        &self,
        fence: Fence,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_fence(&mut tx, fence).await?;
        sqlx::query(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL, finished_at = ?
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(millis(now))
        .bind(to_json(&ids))
        .execute(&mut *tx)
        .await?;
        record_outcome(&mut tx, ids, Some((OutboxStatus::Delivered, now)), None).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn schedule_retry(
        &self,
        fence: Fence,
        ids: &[i64],
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_fence(&mut tx, fence).await?;
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(error)
        .bind(millis(next_attempt_at))
        .bind(to_json(&ids))
        .execute(&mut *tx)
        .await?;
        record_outcome(&mut tx, ids, None, Some(error)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mark_failed(
        &self,
        fence: Fence,
        ids: &[i64],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_fence(&mut tx, fence).await?;
        sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?, finished_at = ?
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(reason)
        .bind(millis(now))
        .bind(to_json(&ids))
        .execute(&mut *tx)
        .await?;
        record_outcome(
            &mut tx,
            ids,
            Some((OutboxStatus::Failed, now)),
            Some(reason),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn prune_outbox(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let cutoff = crate::store::retention_cutoff(now, retention);
        let mut deleted = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM outbox WHERE id IN (
                     SELECT id FROM outbox
                     WHERE status <> 'pending' AND finished_at IS NOT NULL AND finished_at < ?
                     LIMIT ?)",
            )
            .bind(cutoff)
            .bind(batch.max(1))
            .execute(&self.pool)
            .await?
            .rows_affected();
            deleted += n;
            if n < u64::from(batch.max(1)) {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }
}
