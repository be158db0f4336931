//! [`HistoryStore`] on PostgreSQL, and the history's writes the other interfaces make in their
//! own transactions, as on SQLite (see there); a cycle's events, entries and deliveries go in
//! a few array statements ([`HistoryRows`]), not one per row.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rows::{
    attach_deliveries, event_delivery_from_row, event_from_row, health_interval_from_row,
};
use super::{PostgresStore, millis};
use crate::domain::{AgentId, HealthEdge, HealthInterval};
use crate::store::{Event, EventQuery, EventsAbout, HistoryStore, OutboxStatus, StoreError};

#[async_trait]
impl HistoryStore for PostgresStore {
    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let (filter, agent) = match &query.about {
            EventsAbout::All => ("TRUE", None),
            EventsAbout::Agent(id) => ("agent_id = $3", Some(id.to_string())),
            EventsAbout::Watched(id) => (
                "agent_id = $3 AND agent_version =
                     (SELECT added_version FROM agents WHERE agents.agent_id = events.agent_id)",
                Some(id.to_string()),
            ),
            EventsAbout::Monitor => ("agent_id IS NULL", None),
        };
        let sql =
            format!("SELECT * FROM events WHERE id < $1 AND {filter} ORDER BY id DESC LIMIT $2");
        // One snapshot: the deliveries are those of the events as read.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let mut events = sqlx::query(&sql)
            .bind(query.before.unwrap_or(i64::MAX))
            .bind(i64::from(query.limit));
        if let Some(agent) = agent {
            events = events.bind(agent);
        }
        let events = events
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
            "SELECT * FROM event_deliveries WHERE event_id = ANY($1) ORDER BY outbox_id",
        )
        .bind(ids)
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
             WHERE h.ended_at IS NULL OR h.ended_at > $1
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
             WHERE h.agent_id = $1 AND (h.ended_at IS NULL OR h.ended_at > $2)
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
        let batch = i64::from(batch.max(1));
        let mut deleted = 0;
        // A batch of events and their deliveries, in one short write: a delivery never
        // outlives its event.
        loop {
            let mut tx = self.pool.begin().await?;
            let ids: Vec<i64> = sqlx::query_scalar(
                "DELETE FROM events WHERE id IN (
                     SELECT id FROM events WHERE at < $1 ORDER BY id LIMIT $2)
                 RETURNING id",
            )
            .bind(cutoff)
            .bind(batch)
            .fetch_all(&mut *tx)
            .await?;
            let n = ids.len() as i64;
            if n > 0 {
                sqlx::query("DELETE FROM event_deliveries WHERE event_id = ANY($1)")
                    .bind(ids)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            deleted += n as u64;
            if n < batch {
                break;
            }
            tokio::task::yield_now().await;
        }
        loop {
            let n = sqlx::query(
                "DELETE FROM health_intervals WHERE id IN (
                     SELECT id FROM health_intervals
                     WHERE ended_at IS NOT NULL AND ended_at < $1 LIMIT $2)",
            )
            .bind(cutoff)
            .bind(batch)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n < batch as u64 {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }
}

/// `n` fresh ids of `table`'s identity column, ascending: rows written with them keep the order
/// they were gathered in, and a row can name another's id in the same statement batch.
pub(super) async fn next_ids(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    table: &str,
    n: usize,
) -> Result<Vec<i64>, StoreError> {
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)",
    )
    .bind(table)
    .bind(n as i64)
    .fetch_all(&mut **tx)
    .await?;
    ids.sort_unstable();
    Ok(ids)
}

/// Closes each agent's open interval at its edge, and opens one where the edge observed a
/// health. `edges` are of agents whose state the same transaction wrote.
pub(super) async fn apply_health_edges(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    edges: &[(String, HealthEdge)],
) -> Result<(), StoreError> {
    if edges.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE health_intervals h SET ended_at = u.at
         FROM unnest($1::text[], $2::bigint[]) AS u(id, at)
         WHERE h.agent_id = u.id AND h.ended_at IS NULL",
    )
    .bind(edges.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>())
    .bind(
        edges
            .iter()
            .map(|(_, e)| millis(e.closes_at))
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?;
    let opened: Vec<(String, bool, i64)> = edges
        .iter()
        .filter_map(|(id, e)| e.healthy.map(|h| (id.clone(), h, millis(e.at))))
        .collect();
    if opened.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO health_intervals (agent_id, healthy, started_at)
         SELECT * FROM unnest($1::text[], $2::bool[], $3::bigint[])",
    )
    .bind(opened.iter().map(|o| o.0.clone()).collect::<Vec<_>>())
    .bind(opened.iter().map(|o| o.1).collect::<Vec<_>>())
    .bind(opened.iter().map(|o| o.2).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves the deliveries of outbox entries `ids` with their entries' mark: to `outcome` at `at`
/// (`None`: the outcome stays) with `error`.
pub(super) async fn record_outcome(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ids: &[i64],
    outcome: Option<(OutboxStatus, DateTime<Utc>)>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    match outcome {
        Some((status, at)) => {
            sqlx::query(
                "UPDATE event_deliveries SET outcome = $2, at = $3, error = $4
                 WHERE outbox_id = ANY($1)",
            )
            .bind(ids)
            .bind(status_name(status))
            .bind(millis(at))
            .bind(error)
            .execute(&mut **tx)
            .await?
        }
        None => {
            sqlx::query("UPDATE event_deliveries SET error = $2 WHERE outbox_id = ANY($1)")
                .bind(ids)
                .bind(error)
                .execute(&mut **tx)
                .await?
        }
    };
    Ok(())
}

pub(super) fn status_name(status: OutboxStatus) -> &'static str {
    match status {
        OutboxStatus::Pending => "pending",
        OutboxStatus::Delivered => "delivered",
        OutboxStatus::Failed => "failed",
    }
}

/// Deletes an agent's intervals as it stops being watched (its events stay).
pub(super) async fn forget_intervals(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    agent: &AgentId,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM health_intervals WHERE agent_id = $1")
        .bind(agent.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
