//! [`DigestStore`]: one row with the last digest's tick; counts over events and the outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::cycle::next_batch;
use super::history::DIGEST_KIND;
use super::query::{Value, sql};
use super::{Dialect, SettingsLock, SqlStore, first, insert_rows, number, to_json};
use crate::domain::{Digest, Message, Webhook};
use crate::store::rows::{StoredRow, optional_time};
use crate::store::{DigestCounts, DigestStore, Fence, StoreError, during};

/// A count as the counts hold it (never negative).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl<D: Dialect> DigestStore for SqlStore<D> {
    async fn last_digest(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let q = sql("SELECT NULLIF(last_tick, 0) AS t FROM digest WHERE id = 1");
        let read = async {
            let mut conn = self.pool.acquire().await?;
            let t = first::<D, _>(&mut conn, q, |row| optional_time(row, "t")).await?;
            Ok(t.flatten())
        };
        during("read the last digest's tick", read).await
    }

    async fn digest_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<DigestCounts, StoreError> {
        let read = async {
            // One snapshot: the counts agree with each other.
            let mut tx = self.snapshot().await?;
            let q = sql(
                "SELECT kind, COUNT(*) AS n FROM events WHERE at > ? AND at <= ?
                 GROUP BY kind ORDER BY kind",
            )
            .bind(since)
            .bind(until);
            let alerts = D::all(&mut tx, q, |row| {
                Ok((row.text("kind")?, count(row.int("n")?)))
            })
            .await?;
            let q = sql("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending' AND kind <> ?")
                .bind(DIGEST_KIND);
            let pending = count(number::<D>(&mut tx, q).await?);
            let q = sql("SELECT COUNT(*) AS n FROM outbox
                 WHERE status = 'failed' AND kind <> ? AND finished_at > ?")
            .bind(DIGEST_KIND)
            .bind(since);
            let failed = count(number::<D>(&mut tx, q).await?);
            tx.commit().await?;
            Ok(DigestCounts {
                alerts,
                pending,
                failed,
            })
        };
        during("count for the digest", read).await
    }

    async fn queue_digest(
        &self,
        fence: Fence,
        digest: &Digest,
        to: &[Webhook],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let queue = async {
            let mut tx = self.write(fence, SettingsLock::None).await?;
            let claim = sql("UPDATE digest SET last_tick = ? WHERE id = 1 AND last_tick < ?")
                .bind(digest.tick)
                .bind(digest.tick);
            if D::execute(&mut tx, claim).await? == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            if !to.is_empty() {
                let batch = next_batch::<D>(&mut tx).await?;
                let json = to_json(&Message::Digest(Box::new(digest.clone())))?;
                let head = "INSERT INTO outbox (platform, url, kind, alert, next_attempt_at,
                    created_at, batch) VALUES ";
                insert_rows::<D, _>(&mut tx, head, to, "", |hook| {
                    let values: Vec<Value> = vec![
                        hook.platform.as_str().into(),
                        hook.url.expose().as_str().into(),
                        DIGEST_KIND.into(),
                        json.as_str().into(),
                        now.into(),
                        now.into(),
                        batch.into(),
                    ];
                    Ok(values)
                })
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        };
        during("queue the digest", queue).await
    }
}
