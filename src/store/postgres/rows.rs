//! Decoding what PostgreSQL returns, as the SQLite backend does: every column through `try_get`,
//! so a value that does not decode is a [`StoreError::Corrupt`] naming its row and column, never a panic or a silent
//! default.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::Row;
use sqlx::postgres::PgRow;
use url::Url;

use super::from_millis;
use crate::domain::{Platform, SecretUrl, Webhook};
use crate::store::{AgentRecord, OutboxEntry, OutboxStatus, Source, StoreError, corrupt};
use crate::tracker::AgentState;

/// A column's value, or [`StoreError::Corrupt`] naming it when it does not decode.
pub(super) fn column<'r, T>(row: &'r PgRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name).map_err(|e| corrupt(name, e))
}

pub(super) fn text(row: &PgRow, name: &str) -> Result<String, StoreError> {
    column(row, name)
}

/// A time column (Unix milliseconds).
pub(super) fn time(row: &PgRow, name: &str) -> Result<DateTime<Utc>, StoreError> {
    from_millis(column(row, name)?).map_err(|e| within(e, name))
}

pub(super) fn optional_time(row: &PgRow, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    column::<Option<i64>>(row, name)?
        .map(from_millis)
        .transpose()
        .map_err(|e| within(e, name))
}

/// `e`, said to be about `place` (a column, or a row's key).
pub(super) fn within(e: StoreError, place: &str) -> StoreError {
    match e {
        StoreError::Corrupt(why) => StoreError::Corrupt(format!("{place}: {why}")),
        other => other,
    }
}

pub(super) fn url_column(row: &PgRow, name: &str) -> Result<Option<SecretUrl>, StoreError> {
    column::<Option<String>>(row, name)?
        .map(|s| {
            Url::parse(&s)
                .map(SecretUrl::new)
                .map_err(|e| corrupt(name, e))
        })
        .transpose()
}

/// Runs `sql` and parses its rows with `parse` one by one, each dropped as it arrives: 10,000
/// raw rows and 10,000 records are never in memory at once.
pub(super) async fn read_agents(
    conn: &mut sqlx::PgConnection,
    sql: &'static str,
    parse: fn(&PgRow) -> Result<AgentRecord, StoreError>,
) -> Result<Vec<AgentRecord>, StoreError> {
    let mut rows = sqlx::query(sql).fetch(conn);
    let mut agents = Vec::new();
    while let Some(row) = rows.try_next().await? {
        agents.push(parse(&row)?);
    }
    Ok(agents)
}

/// The key of an agent's row, for errors: what an operator can look up.
pub(super) fn agent_key(row: &PgRow) -> String {
    row.try_get::<String, _>("agent_id")
        .map(|id| format!("agent {id:?}"))
        .unwrap_or_else(|_| "agent (unreadable agent_id)".to_owned())
}

pub(super) fn agent_from_row(row: &PgRow) -> Result<AgentRecord, StoreError> {
    let read = || -> Result<AgentRecord, StoreError> {
        let mut agent = saved_agent(row)?;
        // Read with the last cycle (agents_with_last_poll): the agent was checked when that
        // cycle began, if it polled the agent, even when nothing of its state needed saving.
        let last_poll = optional_time(row, "last_poll_at")?;
        if last_poll > agent.state.last_checked_at {
            agent.state.last_checked_at = last_poll;
        }
        Ok(agent)
    };
    read().map_err(|e| within(e, &agent_key(row)))
}

/// An agent with its state as saved (for `copy-db`: not the last cycle's check time).
pub(super) fn saved_agent_from_row(row: &PgRow) -> Result<AgentRecord, StoreError> {
    saved_agent(row).map_err(|e| within(e, &agent_key(row)))
}

/// An agent's settings; its state left at the default (the row need not have it).
pub(super) fn settings_from_row(row: &PgRow) -> Result<AgentRecord, StoreError> {
    settings(row).map_err(|e| within(e, &agent_key(row)))
}

fn saved_agent(row: &PgRow) -> Result<AgentRecord, StoreError> {
    let state = text(row, "state")?;
    Ok(AgentRecord {
        state: serde_json::from_str(&state).map_err(|e| corrupt("state", e))?,
        ..settings(row)?
    })
}

fn settings(row: &PgRow) -> Result<AgentRecord, StoreError> {
    Ok(AgentRecord {
        agent_id: text(row, "agent_id")?
            .parse()
            .map_err(|e| corrupt("agent_id", e))?,
        name: column(row, "name")?,
        listed_name: column(row, "listed_name")?,
        source: Source::parse(&text(row, "source")?)?,
        slack_webhook_url: url_column(row, "slack_webhook_url")?,
        discord_webhook_url: url_column(row, "discord_webhook_url")?,
        muted: column(row, "muted")?,
        muted_until: optional_time(row, "muted_until")?,
        created_at: time(row, "created_at")?,
        added_version: column(row, "added_version")?,
        state: AgentState::default(),
    })
}

pub(super) fn platform(name: &str) -> Result<Platform, StoreError> {
    match name {
        "slack" => Ok(Platform::Slack),
        "discord" => Ok(Platform::Discord),
        other => Err(corrupt(
            "platform",
            format!("{other:?} is not slack or discord"),
        )),
    }
}

pub(super) fn outbox_from_row(row: &PgRow) -> Result<OutboxEntry, StoreError> {
    let read = || -> Result<OutboxEntry, StoreError> {
        let url = Url::parse(&text(row, "url")?).map_err(|e| corrupt("url", e))?;
        let status = match text(row, "status")?.as_str() {
            "pending" => OutboxStatus::Pending,
            "delivered" => OutboxStatus::Delivered,
            "failed" => OutboxStatus::Failed,
            other => return Err(corrupt("status", format!("{other:?} is not a status"))),
        };
        let attempts: i64 = column(row, "attempts")?;
        Ok(OutboxEntry {
            id: column(row, "id")?,
            batch: column(row, "batch")?,
            webhook: Webhook::new(platform(&text(row, "platform")?)?, SecretUrl::new(url)),
            alert: serde_json::from_str(&text(row, "alert")?).map_err(|e| corrupt("alert", e))?,
            status,
            attempts: u32::try_from(attempts)
                .map_err(|_| corrupt("attempts", format!("{attempts} is out of range")))?,
            next_attempt_at: time(row, "next_attempt_at")?,
            last_error: column(row, "last_error")?,
            created_at: time(row, "created_at")?,
        })
    };
    let key = row
        .try_get::<i64, _>("id")
        .map(|id| format!("outbox entry id {id}"))
        .unwrap_or_else(|_| "outbox entry (unreadable id)".to_owned());
    read().map_err(|e| within(e, &key))
}
