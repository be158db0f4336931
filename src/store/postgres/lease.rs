//! [`LeaseStore`] on PostgreSQL: the server's clock judges expiry, since the replicas may run on
//! hosts whose clocks disagree, and a row lock makes the fence check atomic against a takeover.

use std::time::Duration;

use async_trait::async_trait;

use super::PostgresStore;
use super::cycle::write_progress;
use super::rows::{column, time};
use crate::store::{Fence, LeaseInfo, LeaseStore, Progress, StoreError, Term};

/// Now on the database server, in Unix milliseconds. `clock_timestamp()`, not `now()`: the
/// latter is the transaction's start.
macro_rules! server_now {
    () => {
        "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    };
}

/// The longest lease: keeps `now + ttl` far inside BIGINT.
const MAX_TTL_MS: i64 = 100 * 365 * 86_400 * 1_000;

#[async_trait]
impl LeaseStore for PostgresStore {
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
        // The renewal holds the lease row until commit: no takeover comes in between.
        let mut tx = self.pool.begin().await?;
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
            "UPDATE leader_lease SET expires_at = 0 WHERE id = 1 AND holder = $1 AND term = $2",
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
            term: column(&row, "term")?,
            expires_at: time(&row, "expires_at")?,
        }))
    }
}

/// Takes the lease for `holder`, or renews it in term `held`. One statement, as on SQLite. Two
/// claims at once: the second waits for the first's row lock, then re-checks its WHERE on the
/// row the first wrote, so only one takes over.
fn claim<'q>(
    holder: &'q str,
    held: Option<Term>,
    ttl: Duration,
) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, Term, sqlx::postgres::PgArguments> {
    let ttl = i64::try_from(ttl.as_millis()).map_or(MAX_TTL_MS, |t| t.min(MAX_TTL_MS));
    sqlx::query_scalar(concat!(
        "UPDATE leader_lease
         SET term = CASE WHEN holder = $1 AND term = $2 THEN term ELSE term + 1 END,
             holder = $1, expires_at = ",
        server_now!(),
        " + $3
         WHERE id = 1 AND ((holder = $1 AND term = $2) OR expires_at <= ",
        server_now!(),
        ") RETURNING term"
    ))
    .bind(holder)
    .bind(held)
    .bind(ttl)
}

/// Refuses a leader's write once its term is over; called first in the write's transaction.
/// Unlike SQLite, nothing here stops another process from writing meanwhile, so the lease row is
/// read `FOR SHARE`: a takeover's `UPDATE` of it then waits until this transaction ends. Either
/// the takeover committed first (this sees the new term and refuses) or this write commits
/// before the takeover does: never both.
pub(super) async fn check_fence(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    fence: Fence,
) -> Result<(), StoreError> {
    if let Fence::Term(term) = fence {
        let current: Term =
            sqlx::query_scalar("SELECT term FROM leader_lease WHERE id = 1 FOR SHARE")
                .fetch_one(&mut **tx)
                .await?;
        if current != term {
            return Err(StoreError::Fenced(term));
        }
    }
    Ok(())
}
