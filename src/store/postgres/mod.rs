//! The PostgreSQL backend (sqlx), for several `serve` processes sharing one database. It has the
//! SQLite backend's layout and schema (times in Unix milliseconds, JSON as text), so the two
//! decode alike; what differs is concurrency. SQLite has one writer at a time; here writers
//! run side by side, so each write transaction takes its row locks in one order (the lease,
//! then `settings_version`, then agents) and cannot deadlock with another, and reads that must
//! agree run in one snapshot (REPEATABLE READ).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

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

/// Agents whose new state one `UPDATE` writes: they go as two array parameters, so the bound is
/// the statement's size, not a parameter limit.
pub(super) const STATE_WRITE_CHUNK: usize = 5_000;

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

/// The PostgreSQL database: a pool of connections.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…` or `postgresql://…`) and brings its
    /// schema up to date (sqlx holds an advisory lock while migrating, so several processes
    /// starting at once migrate once).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            // A leader's cycle and deliveries, the API and the lease: a few at a time.
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            // The default, said aloud: a connection is pinged before it is handed out, so those
            // a PostgreSQL restart broke are replaced and the service recovers by itself.
            .test_before_acquire(true)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// A transaction that changes agents' settings. It locks the `settings_version` row first
    /// (its triggers would take it anyway, but later): settings writers then queue as on
    /// SQLite, and none holds an agent row while waiting for that lock, which is what would let
    /// two of them deadlock.
    async fn settings_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_settings(&mut tx, SettingsLock::Update).await?;
        Ok(tx)
    }
}

/// How a transaction locks the `settings_version` row.
#[derive(Clone, Copy)]
pub(super) enum SettingsLock {
    /// To change settings: one writer at a time.
    Update,
    /// To write states while no settings change (a cycle's commit).
    Share,
}

pub(super) async fn lock_settings(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    lock: SettingsLock,
) -> Result<(), StoreError> {
    let sql = match lock {
        SettingsLock::Update => "SELECT version FROM settings_version WHERE id = 1 FOR UPDATE",
        SettingsLock::Share => "SELECT version FROM settings_version WHERE id = 1 FOR SHARE",
    };
    sqlx::query(sql).execute(&mut **tx).await?;
    Ok(())
}

#[async_trait]
impl Backend for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn database_bytes(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
