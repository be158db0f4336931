//! [`LeaseStore`] on SQLite: the host's clock judges expiry (every process sharing the file
//! runs on this host), and SQLite's single writer makes each statement atomic.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::Row;

use super::cycle::write_progress;
use super::rows::{column, time};
use super::{SqliteStore, millis};
use crate::store::{Fence, LeaseInfo, LeaseStore, Progress, StoreError, Term};

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn claim_lease(
        &self,
        holder: &str,
        held: Option<Term>,
        ttl: Duration,
    ) -> Result<Option<Term>, StoreError> {
        Ok(claim(holder, held, ttl).fetch_optional(&self.pool).await?)
    }

    async fn renew_lease_with(
        &self,
        holder: &str,
        held: Term,
        ttl: Duration,
        progress: &Progress,
    ) -> Result<Option<Term>, StoreError> {
        let mut tx = self.write().await?;
        let term = claim(holder, Some(held), ttl)
            .fetch_optional(&mut *tx)
            .await?;
        if term == Some(held) {
            write_progress(&mut tx, progress).await?;
        }
        tx.commit().await?;
        Ok(term)
    }

    async fn release_lease(&self, holder: &str, term: Term) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE leader_lease SET expires_at = 0 WHERE id = 1 AND holder = ? AND term = ?",
        )
        .bind(holder)
        .bind(term)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn lease(&self) -> Result<Option<LeaseInfo>, StoreError> {
        let row = sqlx::query("SELECT holder, term, expires_at FROM leader_lease WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let holder: String = column(&row, "holder")?;
        if holder.is_empty() {
            return Ok(None);
        }
        Ok(Some(LeaseInfo {
            holder,
            term: row.try_get("term")?,
            expires_at: time(&row, "expires_at")?,
        }))
    }
}

/// Takes the lease for `holder`, or renews it in term `held`: one statement, which SQLite's
/// single writer makes atomic.
fn claim<'q>(
    holder: &'q str,
    held: Option<Term>,
    ttl: Duration,
) -> sqlx::query::QueryScalar<'q, sqlx::Sqlite, Term, sqlx::sqlite::SqliteArguments<'q>> {
    let now = millis(Utc::now());
    let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    sqlx::query_scalar(
        "UPDATE leader_lease
         SET term = CASE WHEN holder = ?1 AND term = ?2 THEN term ELSE term + 1 END,
             holder = ?1, expires_at = ?3 + ?4
         WHERE id = 1 AND ((holder = ?1 AND term = ?2) OR expires_at <= ?3)
         RETURNING term",
    )
    .bind(holder)
    .bind(held)
    .bind(now)
    .bind(ttl)
}

/// Refuses a leader's write once its term is over. Called inside a write transaction, which
/// holds SQLite's write lock: no takeover can come between this check and the commit.
pub(super) async fn check_fence(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    fence: Fence,
) -> Result<(), StoreError> {
    if let Fence::Term(term) = fence {
        let current: Term = sqlx::query_scalar("SELECT term FROM leader_lease WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?;
        if current != term {
            return Err(StoreError::Fenced(term));
        }
    }
    Ok(())
}
