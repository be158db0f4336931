//! [`LeaseStore`]: the lease is taken or renewed by one statement, a row update that succeeds
//! only for the holder, once the lease has expired, or (a takeover from a holder found gone)
//! while it is still in the term the gone holder held; whose clock judges expiry is the
//! dialect's ([`Dialect::SERVER_NOW`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use super::cycle::write_progress;
use super::query::{Sql, sql};
use super::{Dialect, SettingsLock, SqlStore, term};
use crate::store::rows::{StoredRow, time};
use crate::store::{Fence, Holder, LeaseInfo, LeaseStore, Progress, StoreError, Term, during};

/// The longest lease: keeps `now + ttl` far inside a 64-bit integer.
const MAX_TTL_MS: i64 = 100 * 365 * 86_400 * 1_000;

#[async_trait]
impl<D: Dialect> LeaseStore for SqlStore<D> {
    async fn claim_lease(
        &self,
        holder: &Holder,
        held: Option<Term>,
        ttl: Duration,
    ) -> Result<Option<Term>, StoreError> {
        during(
            "claim the lease",
            self.first(claim::<D>(holder, held, None, ttl), term),
        )
        .await
    }

    async fn take_over_lease(
        &self,
        holder: &Holder,
        from: Term,
        ttl: Duration,
    ) -> Result<Option<Term>, StoreError> {
        during(
            "take the lease over",
            self.first(claim::<D>(holder, None, Some(from), ttl), term),
        )
        .await
    }

    async fn renew_lease_with(
        &self,
        holder: &Holder,
        held: Term,
        ttl: Duration,
        progress: &Progress,
    ) -> Result<Option<Term>, StoreError> {
        let renew = async {
            // The renewal holds the lease row until commit: no takeover comes in between.
            let mut tx = self.write(Fence::Unchecked, SettingsLock::None).await?;
            let claimed =
                super::first::<D, _>(&mut tx, claim::<D>(holder, Some(held), None, ttl), term)
                    .await?;
            if claimed == Some(held) {
                write_progress::<D>(&mut tx, progress).await?;
            }
            tx.commit().await?;
            Ok(claimed)
        };
        during("renew the lease", renew).await
    }

    async fn release_lease(&self, holder: &str, term: Term) -> Result<(), StoreError> {
        let q =
            sql("UPDATE leader_lease SET expires_at = 0 WHERE id = 1 AND holder = ? AND term = ?");
        during("release the lease", self.execute(q.bind(holder).bind(term))).await?;
        Ok(())
    }

    async fn lease(&self) -> Result<Option<LeaseInfo>, StoreError> {
        let q = sql(
            "SELECT holder, host, pid, started, term, expires_at FROM leader_lease WHERE id = 1",
        );
        let read = self.first(q, |row| {
            Ok(LeaseInfo {
                holder: row.text("holder")?,
                host: row.text("host")?,
                pid: row.int("pid")?,
                started: row.int("started")?,
                term: row.int("term")?,
                expires_at: time(row, "expires_at")?,
            })
        });
        let lease = during("read the lease", read).await?;
        Ok(lease.filter(|l| !l.holder.is_empty()))
    }
}

/// Takes the lease for `holder`, or renews it in term `held`, or takes it over while it is
/// still in term `from` (its holder is gone): one statement. Two claims at once are made one
/// after the other by the database (SQLite's single writer; PostgreSQL's row lock, after which
/// the second re-checks its `WHERE` on the row the first wrote), so only one takes over: the
/// first moves the term, and the second's `term = from` no longer holds.
fn claim<D: Dialect>(
    holder: &Holder,
    held: Option<Term>,
    from: Option<Term>,
    ttl: Duration,
) -> Sql {
    let ttl = i64::try_from(ttl.as_millis()).map_or(MAX_TTL_MS, |t| t.min(MAX_TTL_MS));
    let at = Utc::now();
    let name = holder.name.as_str();
    let q = sql("UPDATE leader_lease
         SET term = CASE WHEN holder = ? AND term = ? THEN term ELSE term + 1 END,
             holder = ?, host = ?, pid = ?, started = ?, expires_at = ");
    let q = q
        .bind(name)
        .bind(held)
        .bind(name)
        .bind(holder.host.as_str());
    let q = now::<D>(q.bind(holder.pid).bind(holder.started), at);
    let q = q
        .push(" + ")
        .bind(ttl)
        .push(" WHERE id = 1 AND ((holder = ")
        .bind(name);
    let q = q
        .push(" AND term = ")
        .bind(held)
        .push(") OR expires_at <= ");
    let q = now::<D>(q, at);
    let q = match from {
        Some(from) => q.push(" OR term = ").bind(from),
        None => q,
    };
    q.push(") RETURNING term")
}

/// Now, by the clock that judges the lease: the server's, or the host's.
fn now<D: Dialect>(q: Sql, host: chrono::DateTime<Utc>) -> Sql {
    match D::SERVER_NOW {
        Some(expression) => q.push(expression),
        None => q.bind(host),
    }
}
