//! Reading SQLite's rows: the decoders every backend shares ([`crate::store::rows`]), and the
//! two things that are SQLite's own: a column of any type, and streaming a query's agents.

use futures::TryStreamExt;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

pub(super) use crate::store::rows::{
    agent_from_row, attach_deliveries, dead_webhook_from_row, event_delivery_from_row,
    event_from_row, health_interval_from_row, optional_time, outbox_from_row, saved_agent_from_row,
    settings_from_row, time, within,
};
use crate::store::{AgentRecord, StoreError, corrupt};

/// A column's value, or [`StoreError::Corrupt`] naming it when it does not decode.
pub(super) fn column<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name).map_err(|e| corrupt(name, e))
}

pub(super) fn text(row: &SqliteRow, name: &str) -> Result<String, StoreError> {
    column(row, name)
}

/// Runs `sql` and parses its rows with `parse` one by one, each dropped as it arrives: 10,000
/// raw rows and 10,000 records are never in memory at once.
pub(super) async fn read_agents(
    conn: &mut sqlx::SqliteConnection,
    sql: &'static str,
    parse: fn(&SqliteRow) -> Result<AgentRecord, StoreError>,
) -> Result<Vec<AgentRecord>, StoreError> {
    let mut rows = sqlx::query(sql).fetch(conn);
    let mut agents = Vec::new();
    while let Some(row) = rows.try_next().await? {
        agents.push(parse(&row)?);
    }
    Ok(agents)
}
