//! The one implementation of the store's interfaces, for every SQL backend: each statement is
//! written once ([`query`]) and runs on SQLite and PostgreSQL alike, since both keep the same
//! schema (times as Unix milliseconds, JSON as text). What truly differs is a [`Dialect`]'s:
//! how a database is opened, how a write transaction keeps out the others (SQLite's single
//! writer; PostgreSQL's row locks), whose clock judges the lease, and how explicit ids are
//! written.
//!
//! The rules about what a commit keeps live above the SQL ([`crate::store::rules`]).

mod agents;
mod copy;
mod cycle;
mod digest;
mod history;
mod integrations;
mod lease;
mod maintenance;
mod outbox;
pub(crate) mod query;
mod webhooks;

use std::future::Future;

use async_trait::async_trait;
use sqlx::{Database, Pool, Transaction};

use self::query::{Exec, Sql, Value, sql};
use super::rows::StoredRow;
use super::{Backend, Fence, StoreError, Term};

/// What differs between the SQL databases the store runs on.
pub(crate) trait Dialect: Database<Row: StoredRow> + Exec {
    /// Starts a transaction that writes: on SQLite, one that takes the write lock at once.
    const BEGIN_WRITE: &'static str;
    /// Starts a transaction whose reads all see one snapshot of the database.
    const BEGIN_SNAPSHOT: &'static str;
    /// Reads the lease's term in a write, so no takeover commits before the write does.
    const FENCE_READ: &'static str;
    /// Locks the settings version in a write ([`SettingsLock`]); `None` where the write
    /// transaction excludes every other writer already.
    const SETTINGS_LOCK: Option<(&'static str, &'static str)>;
    /// The database server's time in Unix milliseconds, for the lease; `None`: the host's.
    const SERVER_NOW: Option<&'static str>;
    /// Said between `INSERT INTO t (…)` and `VALUES` when the ids are given.
    const GIVEN_IDS: &'static str;
    /// `?` fresh ids of `{table}`, as column `id`, in a write transaction.
    const NEXT_IDS: &'static str;
    /// The database's size in bytes, as column `n`.
    const DATABASE_BYTES: &'static str;

    /// Opens the database at `url` and brings its schema up to date.
    fn open(url: &str) -> impl Future<Output = Result<Pool<Self>, StoreError>> + Send;

    /// After rows were written into `table` with given ids: the next generated id is above them.
    fn ids_given(
        tx: &mut Self::Connection,
        table: &'static str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// How a write holds the settings version until it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SettingsLock {
    /// Writes no settings.
    None,
    /// Writes states: no settings change meanwhile, but other state writers may run.
    Share,
    /// Changes settings: one such writer at a time.
    Update,
}

/// The store on a SQL database.
pub(crate) struct SqlStore<D: Dialect> {
    pool: Pool<D>,
}

impl<D: Dialect> SqlStore<D> {
    pub(crate) async fn open(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            pool: D::open(url).await?,
        })
    }

    /// A write transaction, checked against `fence` and holding the settings version as `lock`
    /// says. Locks are taken in one order (the lease, then the settings version, then rows), so
    /// two writers never deadlock.
    async fn write(
        &self,
        fence: Fence,
        lock: SettingsLock,
    ) -> Result<Transaction<'static, D>, StoreError> {
        let mut tx = self.pool.begin_with(D::BEGIN_WRITE).await?;
        check_fence::<D>(&mut tx, fence).await?;
        let statement = match (D::SETTINGS_LOCK, lock) {
            (Some((share, _)), SettingsLock::Share) => Some(share),
            (Some((_, update)), SettingsLock::Update) => Some(update),
            _ => None,
        };
        if let Some(statement) = statement {
            D::execute(&mut tx, sql(statement)).await?;
        }
        Ok(tx)
    }

    /// A read transaction whose reads agree with each other.
    async fn snapshot(&self) -> Result<Transaction<'static, D>, StoreError> {
        Ok(self.pool.begin_with(D::BEGIN_SNAPSHOT).await?)
    }

    /// Runs `deletes` (each binding a cutoff and a batch size) in one short fenced write, again
    /// while the last one deletes a whole batch, so a cycle waiting for the database waits
    /// for one batch at most; returns how many rows the last one deleted.
    async fn delete_in_batches(
        &self,
        fence: Fence,
        deletes: &[&'static str],
        cutoff: i64,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let batch = i64::from(batch.max(1));
        let mut deleted = 0;
        loop {
            let mut tx = self.write(fence, SettingsLock::None).await?;
            let mut n = 0;
            for delete in deletes {
                n = D::execute(&mut tx, sql(delete).bind(cutoff).bind(batch)).await?;
            }
            tx.commit().await?;
            deleted += n;
            if n < batch.unsigned_abs() {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Runs one statement on a connection of the pool.
    async fn execute(&self, q: Sql) -> Result<u64, StoreError> {
        D::execute(&mut *self.pool.acquire().await?, q).await
    }

    /// Every row one statement reads, parsed.
    async fn all<T: Send>(
        &self,
        q: Sql,
        parse: impl FnMut(&D::Row) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        D::all(&mut *self.pool.acquire().await?, q, parse).await
    }

    /// The first row one statement reads, parsed.
    async fn first<T: Send>(
        &self,
        q: Sql,
        parse: impl FnMut(&D::Row) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        first::<D, T>(&mut *self.pool.acquire().await?, q, parse).await
    }
}

/// The first row a statement reads, if any, parsed (the statements read one row at most).
async fn first<D: Dialect, T: Send>(
    conn: &mut D::Connection,
    q: Sql,
    parse: impl FnMut(&D::Row) -> Result<T, StoreError> + Send,
) -> Result<Option<T>, StoreError> {
    Ok(D::all(conn, q, parse).await?.into_iter().next())
}

/// Refuses a leader's write once its term is over; the first statement of the write.
async fn check_fence<D: Dialect>(tx: &mut D::Connection, fence: Fence) -> Result<(), StoreError> {
    let Fence::Term(term) = fence else {
        return Ok(());
    };
    let current = first::<D, _>(tx, sql(D::FENCE_READ), |row| row.int("term")).await?;
    if current != Some(term) {
        return Err(StoreError::Fenced(term));
    }
    Ok(())
}

/// One integer column `n` of a statement's first row.
async fn number<D: Dialect>(conn: &mut D::Connection, q: Sql) -> Result<i64, StoreError> {
    first::<D, _>(conn, q, |row| row.int("n"))
        .await?
        .ok_or_else(|| super::corrupt("n", "no row"))
}

/// `n` fresh ids of `table`, ascending: rows written with them keep the order they were
/// gathered in, and can name each other.
async fn next_ids<D: Dialect>(
    tx: &mut D::Connection,
    table: &'static str,
    n: usize,
) -> Result<Vec<i64>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let (head, tail) = D::NEXT_IDS.split_once('?').unwrap_or((D::NEXT_IDS, ""));
    let q = sql("").push(&head.replace("{table}", table)).bind(n as i64);
    let mut ids = D::all(tx, q.push(&tail.replace("{table}", table)), |r| r.int("id")).await?;
    ids.sort_unstable();
    Ok(ids)
}

/// Rows one multi-row statement writes: at most 14 values each, inside SQLite's 32,766
/// parameters and PostgreSQL's 65,535.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Writes `items`, a chunk of rows per statement: `head`, each item's `row`, then `tail`.
async fn insert_rows<D: Dialect, T>(
    tx: &mut D::Connection,
    head: &str,
    items: &[T],
    tail: &str,
    row: impl Fn(&T) -> Result<Vec<Value>, StoreError>,
) -> Result<(), StoreError> {
    for chunk in items.chunks(ROWS_PER_STATEMENT) {
        let rows = chunk.iter().map(&row).collect::<Result<Vec<_>, _>>()?;
        D::execute(tx, sql("").push(head).rows(rows).push(tail)).await?;
    }
    Ok(())
}

/// JSON for a text column.
fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| super::corrupt("json", e))
}

#[async_trait]
impl<D: Dialect> Backend for SqlStore<D> {
    async fn ping(&self) -> Result<(), StoreError> {
        super::during("ping", self.execute(sql("SELECT 1"))).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn database_bytes(&self) -> Result<i64, StoreError> {
        let read =
            async { number::<D>(&mut *self.pool.acquire().await?, sql(D::DATABASE_BYTES)).await };
        super::during("read the database's size", read).await
    }
}

/// The term a lease holds, as [`Term`].
fn term(row: &impl StoredRow) -> Result<Term, StoreError> {
    row.int("term")
}
