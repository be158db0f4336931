//! [`OutboxStore`]: the delivery worker's queue and its marks.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::history::record_outcome;
use super::query::{Sql, sql};
use super::{Dialect, SettingsLock, SqlStore, number};
use crate::domain::Webhook;
use crate::store::rows::outbox_from_row;
use crate::store::{
    Fence, OutboxEntry, OutboxStatus, OutboxStore, StoreError, during, retention_cutoff,
};

/// The pending entries of one destination.
fn pending_for(hook: &Webhook) -> Sql {
    sql("SELECT * FROM outbox WHERE status = 'pending' AND platform = ? AND url = ?")
        .bind(hook.platform.as_str())
        .bind(hook.url.expose().as_str())
}

#[async_trait]
impl<D: Dialect> OutboxStore for SqlStore<D> {
    async fn outbox_heads(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let q = sql("SELECT * FROM outbox WHERE id IN
               (SELECT MIN(id) FROM outbox WHERE status = 'pending' GROUP BY platform, url)
             ORDER BY id");
        during("read the outbox's heads", self.all(q, outbox_from_row)).await
    }

    async fn outbox_head_for(&self, hook: &Webhook) -> Result<Option<OutboxEntry>, StoreError> {
        let q = pending_for(hook).push(" ORDER BY id LIMIT 1");
        during("read a destination's head", self.first(q, outbox_from_row)).await
    }

    async fn outbox_entry(&self, id: i64) -> Result<Option<OutboxEntry>, StoreError> {
        let q = sql("SELECT * FROM outbox WHERE id = ?").bind(id);
        during("read an outbox entry", self.first(q, outbox_from_row)).await
    }

    async fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let q = sql("SELECT * FROM outbox ORDER BY id");
        during("read the outbox", self.all(q, outbox_from_row)).await
    }

    async fn outbox_pending(&self) -> Result<i64, StoreError> {
        let q = sql("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'");
        let count = async { number::<D>(&mut *self.pool.acquire().await?, q).await };
        during("count pending entries", count).await
    }

    async fn outbox_batch(
        &self,
        hook: &Webhook,
        batch: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let q = pending_for(hook)
            .push(" AND batch = ")
            .bind(batch)
            .push(" ORDER BY id");
        during("read a batch", self.all(q, outbox_from_row)).await
    }

    async fn mark_delivered(
        &self,
        fence: Fence,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let q = sql(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL,
                 finished_at = ?",
        )
        .bind(now);
        let outcome = Some((OutboxStatus::Delivered, now));
        during("mark delivered", self.mark(fence, q, ids, outcome, None)).await
    }

    async fn schedule_retry(
        &self,
        fence: Fence,
        ids: &[i64],
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let q =
            sql("UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?")
                .bind(error)
                .bind(next_attempt_at);
        during(
            "schedule a retry",
            self.mark(fence, q, ids, None, Some(error)),
        )
        .await
    }

    async fn mark_failed(
        &self,
        fence: Fence,
        ids: &[i64],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let q = sql(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?,
                 finished_at = ?",
        )
        .bind(reason)
        .bind(now);
        let outcome = Some((OutboxStatus::Failed, now));
        during(
            "mark failed",
            self.mark(fence, q, ids, outcome, Some(reason)),
        )
        .await
    }

    async fn prune_outbox(
        &self,
        fence: Fence,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let finished = ["DELETE FROM outbox WHERE id IN (
            SELECT id FROM outbox
            WHERE status <> 'pending' AND finished_at IS NOT NULL AND finished_at < ? LIMIT ?)"];
        let cutoff = retention_cutoff(now, retention);
        let prune = self.delete_in_batches(fence, &finished, cutoff, batch);
        during("prune the outbox", prune).await
    }
}

impl<D: Dialect> SqlStore<D> {
    /// Runs `update` (an `UPDATE outbox SET …`) on the entries `ids`, and moves their
    /// deliveries with them, in one fenced write.
    async fn mark(
        &self,
        fence: Fence,
        update: Sql,
        ids: &[i64],
        outcome: Option<(OutboxStatus, DateTime<Utc>)>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write(fence, SettingsLock::None).await?;
        let q = update.push(" WHERE id IN ").list(ids.iter().copied());
        D::execute(&mut tx, q).await?;
        record_outcome::<D>(&mut tx, ids, outcome, error).await?;
        Ok(tx.commit().await?)
    }
}
