//! [`HistoryStore`] on SQLite, and the history's writes the other interfaces make in their own
//! transactions: an event with its alert's outbox entries ([`insert_event`],
//! [`insert_delivery`]), an interval with its poll's state ([`apply_health_edges`]), a
//! delivery's outcome with its outbox entry's mark ([`record_outcome`]), the intervals' end
//! with their agent ([`forget_intervals`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rows::{
    attach_deliveries, event_delivery_from_row, event_from_row, health_interval_from_row,
};
use super::{SqliteStore, millis, platform_name, to_json};
use crate::domain::{AgentId, Alert, HealthEdge, HealthInterval, Webhook};
use crate::store::{Event, EventQuery, EventsAbout, HistoryStore, OutboxStatus, StoreError};

/// Health edges one statement writes: up to three parameters each, well inside SQLite's
/// 32,766.
const EDGE_WRITE_CHUNK: usize = 1_000;

#[async_trait]
impl HistoryStore for SqliteStore {
    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let (filter, agent) = match &query.about {
            EventsAbout::All => ("1 = 1", None),
            EventsAbout::Agent(id) => ("agent_id = ?", Some(id.to_string())),
            EventsAbout::Watched(id) => (
                "agent_id = ? AND agent_version =
                     (SELECT added_version FROM agents WHERE agents.agent_id = events.agent_id)",
                Some(id.to_string()),
            ),
            EventsAbout::Monitor => ("agent_id IS NULL", None),
        };
        let sql =
            format!("SELECT * FROM events WHERE {filter} AND id < ? ORDER BY id DESC LIMIT ?");
        // One read transaction: the deliveries are those of the events as read.
        let mut tx = self.pool.begin().await?;
        let mut events = sqlx::query(&sql);
        if let Some(agent) = agent {
            events = events.bind(agent);
        }
        let events = events
            .bind(query.before.unwrap_or(i64::MAX))
            .bind(i64::from(query.limit))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if events.is_empty() {
            return Ok(events);
        }
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        let deliveries = sqlx::query(
            "SELECT * FROM event_deliveries WHERE event_id IN (SELECT value FROM json_each(?))
             ORDER BY outbox_id",
        )
        .bind(to_json(&ids))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(event_delivery_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        Ok(attach_deliveries(events, deliveries))
    }

    async fn health_intervals(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(AgentId, HealthInterval)>, StoreError> {
        sqlx::query(
            "SELECT h.* FROM health_intervals h JOIN agents a ON a.agent_id = h.agent_id
             WHERE h.ended_at IS NULL OR h.ended_at > ?
             ORDER BY h.agent_id, h.started_at, h.id",
        )
        .bind(millis(since))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| health_interval_from_row(row).map(|(_, agent, i)| (agent, i)))
        .collect()
    }

    async fn agent_health_intervals(
        &self,
        agent: &AgentId,
        since: DateTime<Utc>,
    ) -> Result<Vec<HealthInterval>, StoreError> {
        sqlx::query(
            "SELECT h.* FROM health_intervals h JOIN agents a ON a.agent_id = h.agent_id
             WHERE h.agent_id = ? AND (h.ended_at IS NULL OR h.ended_at > ?)
             ORDER BY h.started_at, h.id",
        )
        .bind(agent.to_string())
        .bind(millis(since))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| health_interval_from_row(row).map(|(_, _, i)| i))
        .collect()
    }

    async fn prune_history(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let cutoff = crate::store::retention_cutoff(now, retention);
        let batch = batch.max(1);
        let mut deleted = 0;
        // A batch of events and their deliveries, in one short write: a delivery never
        // outlives its event.
        loop {
            let mut tx = self.write().await?;
            let ids: Vec<i64> = sqlx::query_scalar(
                "DELETE FROM events WHERE id IN (
                     SELECT id FROM events WHERE at < ? ORDER BY id LIMIT ?)
                 RETURNING id",
            )
            .bind(cutoff)
            .bind(batch)
            .fetch_all(&mut *tx)
            .await?;
            if !ids.is_empty() {
                sqlx::query(
                    "DELETE FROM event_deliveries
                     WHERE event_id IN (SELECT value FROM json_each(?))",
                )
                .bind(to_json(&ids))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            deleted += ids.len() as u64;
            if ids.len() < batch as usize {
                break;
            }
            tokio::task::yield_now().await;
        }
        loop {
            let n = sqlx::query(
                "DELETE FROM health_intervals WHERE id IN (
                     SELECT id FROM health_intervals
                     WHERE ended_at IS NOT NULL AND ended_at < ? LIMIT ?)",
            )
            .bind(cutoff)
            .bind(batch)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n < u64::from(batch) {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Writes the event of `alert` (with the agent's version, when it is watched); returns its id.
pub(super) async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    alert: &Alert,
) -> Result<i64, StoreError> {
    let agent_id = alert.agent_id().map(ToString::to_string);
    let (from, to) = alert.statuses();
    Ok(sqlx::query_scalar(
        "INSERT INTO events (at, agent_id, agent_version, kind, from_status, to_status, summary)
         VALUES (?1, ?2, (SELECT added_version FROM agents WHERE agent_id = ?2), ?3, ?4, ?5, ?6)
         RETURNING id",
    )
    .bind(millis(alert.at()))
    .bind(agent_id)
    .bind(alert.kind_name())
    .bind(from)
    .bind(to)
    .bind(alert.summary())
    .fetch_one(&mut **tx)
    .await?)
}

/// Writes the pending delivery of event `event` to `hook`, the record of outbox entry `outbox`.
pub(super) async fn insert_delivery(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    outbox: i64,
    event: i64,
    hook: &Webhook,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO event_deliveries (outbox_id, event_id, platform, webhook) VALUES (?, ?, ?, ?)",
    )
    .bind(outbox)
    .bind(event)
    .bind(platform_name(hook.platform))
    .bind(hook.url.masked())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Closes each agent's open interval at its edge, and opens one where the edge observed a
/// health. `edges` are of agents whose state the same transaction wrote.
pub(super) async fn apply_health_edges(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    edges: &[(String, HealthEdge)],
) -> Result<(), StoreError> {
    for chunk in edges.chunks(EDGE_WRITE_CHUNK) {
        let mut sql = String::from("WITH u(id, at) AS (VALUES ");
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "(?,?)" } else { ",(?,?)" });
        }
        sql.push_str(
            ") UPDATE health_intervals SET ended_at = u.at FROM u
             WHERE health_intervals.agent_id = u.id AND health_intervals.ended_at IS NULL",
        );
        let mut close = sqlx::query(&sql);
        for (id, edge) in chunk {
            close = close.bind(id).bind(millis(edge.closes_at));
        }
        close.execute(&mut **tx).await?;

        let opened: Vec<(&String, bool, i64)> = chunk
            .iter()
            .filter_map(|(id, edge)| edge.healthy.map(|h| (id, h, millis(edge.at))))
            .collect();
        if opened.is_empty() {
            continue;
        }
        let mut sql =
            String::from("INSERT INTO health_intervals (agent_id, healthy, started_at) VALUES ");
        for i in 0..opened.len() {
            sql.push_str(if i == 0 { "(?,?,?)" } else { ",(?,?,?)" });
        }
        let mut open = sqlx::query(&sql);
        for (id, healthy, at) in opened {
            open = open.bind(id).bind(healthy).bind(at);
        }
        open.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Moves the deliveries of outbox entries `ids` with their entries' mark: to `outcome` at `at`
/// (`None`: the outcome stays) with `error`.
pub(super) async fn record_outcome(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ids: &[i64],
    outcome: Option<(OutboxStatus, DateTime<Utc>)>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let query = match outcome {
        Some((status, at)) => sqlx::query(
            "UPDATE event_deliveries SET outcome = ?, at = ?, error = ?
             WHERE outbox_id IN (SELECT value FROM json_each(?))",
        )
        .bind(status_name(status))
        .bind(millis(at)),
        None => sqlx::query(
            "UPDATE event_deliveries SET error = ?
             WHERE outbox_id IN (SELECT value FROM json_each(?))",
        ),
    };
    query
        .bind(error)
        .bind(to_json(&ids))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes an agent's intervals as it stops being watched (its events stay).
pub(super) async fn forget_intervals(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    agent: &AgentId,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM health_intervals WHERE agent_id = ?")
        .bind(agent.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) fn status_name(status: OutboxStatus) -> &'static str {
    match status {
        OutboxStatus::Pending => "pending",
        OutboxStatus::Delivered => "delivered",
        OutboxStatus::Failed => "failed",
    }
}
