//! PostgreSQL: one database several `serve` processes share, possibly on several hosts.
//! Writers run side by side here, so each write transaction takes its row locks in one order
//! (the lease, then `settings_version`, then agents) and cannot deadlock with another; reads
//! that must agree run in one snapshot (REPEATABLE READ); and the server's clock judges the
//! lease, since the hosts' clocks need not agree.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Postgres};

use super::StoreError;
use super::sql::Dialect;
use super::sql::query::{Exec, sql};

impl Dialect for Postgres {
    const BEGIN_WRITE: &'static str = "BEGIN";
    // READ COMMITTED would take a new snapshot per statement: a change committed between two
    // reads would be missed by one of them.
    const BEGIN_SNAPSHOT: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
    // A takeover's UPDATE of the lease waits until this write ends: either the takeover
    // committed first (the write sees the new term and is refused) or the write commits first.
    const FENCE_READ: &'static str = "SELECT term FROM leader_lease WHERE id = 1 FOR SHARE";
    // Settings writers queue on the row as on SQLite, and none holds an agent row while
    // waiting for it; a cycle's commit shares it, so no agent changes until the commit ends.
    const SETTINGS_LOCK: Option<(&'static str, &'static str)> = Some((
        "SELECT version FROM settings_version WHERE id = 1 FOR SHARE",
        "SELECT version FROM settings_version WHERE id = 1 FOR UPDATE",
    ));
    // clock_timestamp(), not now(): the latter is the transaction's start.
    const SERVER_NOW: Option<&'static str> =
        Some("(extract(epoch FROM clock_timestamp()) * 1000)::bigint");
    const GIVEN_IDS: &'static str = "OVERRIDING SYSTEM VALUE";
    // From the identity column's sequence, which other writers share: not always consecutive.
    const NEXT_IDS: &'static str = "SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id
        FROM generate_series(1, ?)";
    const DATABASE_BYTES: &'static str = "SELECT pg_database_size(current_database()) AS n";

    async fn open(url: &str) -> Result<Pool<Self>, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            // A leader's cycle and deliveries, the API and the lease: a few at a time.
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            // Connections a PostgreSQL restart broke are replaced before use: the service
            // recovers by itself.
            .test_before_acquire(true)
            .connect_with(options)
            .await?;
        // sqlx holds an advisory lock while migrating: processes starting at once migrate once.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(pool)
    }

    /// An identity column's sequence does not move for given ids: move it past them.
    async fn ids_given(tx: &mut Self::Connection, table: &'static str) -> Result<(), StoreError> {
        let statement = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 1),
                           max(id) IS NOT NULL)
             FROM {table}"
        );
        Postgres::execute(tx, sql("").push(&statement)).await?;
        Ok(())
    }
}
