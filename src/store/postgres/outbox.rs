//! [`OutboxStore`] on PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::history::record_outcome;
use super::lease::check_fence;
use super::rows::outbox_from_row;
use super::{PostgresStore, millis, platform_name};
use crate::domain::Webhook;
use crate::store::{Fence, OutboxEntry, OutboxStatus, OutboxStore, StoreError};

#[async_trait]
impl OutboxStore for PostgresStore {
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
        sqlx::query("SELECT * FROM outbox WHERE status = 'pending' AND platform = $1 AND url = $2 ORDER BY id LIMIT 1")
            .bind(platform_name(hook.platform))
            .bind(hook.url.expose().as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| outbox_from_row(&r))
            .transpose()
    }

    async fn outbox_entry(&self, id: i64) -> Result<Option<OutboxEntry>, StoreError> {
        sqlx::query("SELECT * FROM outbox WHERE id = $1")
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
            "SELECT * FROM outbox WHERE status = 'pending' AND platform = $1 AND url = $2 AND batch = $3 ORDER BY id",
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
        let mut tx = self.pool.begin().await?;
        check_fence(&mut tx, fence).await?;
        sqlx::query(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL, finished_at = $1
             WHERE id = ANY($2)",
        )
        .bind(millis(now))
        .bind(ids)
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
        let mut tx = self.pool.begin().await?;
        check_fence(&mut tx, fence).await?;
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2
             WHERE id = ANY($3)",
        )
        .bind(error)
        .bind(millis(next_attempt_at))
        .bind(ids)
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
        let mut tx = self.pool.begin().await?;
        check_fence(&mut tx, fence).await?;
        sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $1, finished_at = $2
             WHERE id = ANY($3)",
        )
        .bind(reason)
        .bind(millis(now))
        .bind(ids)
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
                     WHERE status <> 'pending' AND finished_at IS NOT NULL AND finished_at < $1
                     LIMIT $2)",
            )
            .bind(cutoff)
            .bind(i64::from(batch.max(1)))
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
