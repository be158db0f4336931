//! SQLite: everything in one file, for one host. Its single writer makes each write
//! transaction exclusive (`BEGIN IMMEDIATE` takes the lock up front), so the lease's fence and
//! the settings version need no locks of their own, and the host's clock judges the lease (every
//! process sharing the file runs on this host). The migrations run in one exclusive
//! transaction, so processes starting together migrate once.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Pool, Sqlite};

use super::StoreError;
use super::sql::Dialect;

/// The database file a `sqlite:` URL names; `None` for an in-memory database or a URL that is
/// not SQLite's.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    (!in_memory && !file.as_os_str().is_empty()).then(|| file.to_owned())
}

impl Dialect for Sqlite {
    // A deferred transaction that reads first and writes later fails at once ("database is
    // locked") when another writer committed in between, and no wait helps.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    // In WAL mode every read of a transaction sees the file as it was at the first one.
    const BEGIN_SNAPSHOT: &'static str = "BEGIN";
    const FENCE_READ: &'static str = "SELECT term FROM leader_lease WHERE id = 1";
    const SETTINGS_LOCK: Option<(&'static str, &'static str)> = None;
    const SERVER_NOW: Option<&'static str> = None;
    const GIVEN_IDS: &'static str = "";
    // Above both AUTOINCREMENT's counter and the largest id: the write lock keeps anyone else
    // from taking them meanwhile, and the counter moves up to the largest id written.
    const NEXT_IDS: &'static str =
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?)
        SELECT i + max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0),
                       coalesce((SELECT max(id) FROM {table}), 0)) AS id
        FROM k";
    const DATABASE_BYTES: &'static str =
        "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()";

    async fn open(url: &str) -> Result<Pool<Self>, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a commit survives a process crash (SIGKILL, OOM) and skips
            // the fsync, which keeps the send-then-mark window short. A power loss can undo
            // the last commits, but a cycle's state and its alerts roll back together, so the
            // next cycle produces those alerts again: nothing is lost.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // A small page cache per connection: steady cycles read and write next to nothing,
            // and pages needed again come from the OS's cache.
            .pragma("cache_size", "-512")
            // Rows cross from SQLite's worker thread in a channel; a roomy one lets a cycle's
            // read of every agent stream without a thread hand-off every 50 rows.
            .row_buffer_size(1024);
        // An in-memory database exists once per connection: keep it to one.
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            // A connection to a local file does not go stale: no ping before every statement.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        migrate_alone(&pool).await?;
        Ok(pool)
    }

    /// AUTOINCREMENT's counter moves up to the largest id written by itself.
    fn ids_given(
        _: &mut Self::Connection,
        _: &'static str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(Ok(()))
    }
}

/// Brings the schema up to date as the only process doing so. Processes starting at once on a
/// new file would each find the same migrations missing and apply them, and all but the first
/// would fail ("table agents already exists"). So the migrator runs inside one `BEGIN
/// EXCLUSIVE` transaction (each migration a savepoint in it): the others wait for it (the busy
/// timeout), then read the list of applied migrations afresh and find nothing left to do. As
/// on PostgreSQL, where sqlx holds an advisory lock while migrating.
async fn migrate_alone(pool: &Pool<Sqlite>) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin_with("BEGIN EXCLUSIVE").await?;
    // `run_direct` on the transaction's connection: `run` would need `Acquire` for every
    // lifetime, which a `Send` future cannot prove (sqlx's own workaround).
    sqlx::migrate!("./migrations/sqlite")
        .run_direct(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
