//! The SQLite backend (sqlx): one file per interface, and `rows` to decode what it reads.
//! Queries are runtime-checked (`sqlx::query`), so building needs no database. Only the states
//! that changed in substance are written; which agents a cycle polled, and when, is one row
//! (see `migrations/sqlite/0003_settings_version.sql`).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Backend, StoreError};
use crate::domain::Platform;

pub(super) const SETTINGS_VERSION: &str = "SELECT version FROM settings_version WHERE id = 1";

/// Every agent column, and `last_poll_at`: when the last committed cycle began, for the agents
/// it polled (those added at or before its settings version).
macro_rules! agents_with_last_poll {
    () => {
        "SELECT agents.*,
                CASE WHEN agents.added_version <= m.polled_version THEN m.polled_at END
                    AS last_poll_at
         FROM agents LEFT JOIN monitor_state m ON m.id = 1"
    };
}

pub(super) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Agents whose new state one `UPDATE` writes: two parameters each, well inside SQLite's
/// 32,766.
pub(super) const STATE_WRITE_CHUNK: usize = 1_000;

pub(super) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

pub(super) fn platform_name(p: Platform) -> &'static str {
    match p {
        Platform::Slack => "slack",
        Platform::Discord => "discord",
    }
}

mod agents;
mod copy;
mod cycle;
mod history;
mod lease;
mod outbox;
mod rows;
mod webhooks;

/// The SQLite database: a pool of connections, in WAL mode.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path`, `sqlite::memory:`),
    /// in WAL mode, and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
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
            // 512 KiB of page cache per connection, not SQLite's 2 MiB: steady cycles read and
            // write next to nothing, the whole table is read only by a term's first cycle, and
            // pages it needs again come from the OS's cache. Four connections at 2 MiB each
            // were most of the peak memory at 10,000 agents.
            .pragma("cache_size", "-512")
            // Rows cross from SQLite's worker thread in a channel; a roomy one lets a cycle's
            // `SELECT` of every agent stream without a thread hand-off every 50 rows.
            .row_buffer_size(1024);
        // An in-memory database exists once per connection: keep it to one.
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            // A connection to a local file does not go stale: no ping (one more hand-off to
            // SQLite's thread, and a wake-up) before every statement.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// A write transaction that takes SQLite's write lock up front (`BEGIN IMMEDIATE`), waiting
    /// up to the busy timeout for it. A deferred one that reads first and writes later fails at
    /// once ("database is locked") when another writer committed in between, and no wait helps.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

#[async_trait]
impl Backend for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn database_bytes(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}
