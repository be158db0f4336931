//! [`HistoryStore`], and the history's writes the other interfaces make in their own
//! transactions: an alert's event with its outbox entries and their deliveries
//! ([`insert_alert`]), an interval with its poll's state ([`apply_health_edges`]), a delivery's
//! outcome with its entry's mark ([`record_outcome`]), the intervals' end with their agent
//! ([`forget_intervals`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::query::{Value, sql};
use super::{Dialect, SqlStore, insert_rows, next_ids, to_json};
use crate::domain::{AgentId, Alert, HealthEdge, HealthInterval, Message, Webhook};
use crate::store::rows::{
    attach_deliveries, event_delivery_from_row, event_from_row, health_interval_from_row,
};
use crate::store::{
    Event, EventQuery, EventsAbout, Fence, HistoryStore, OutboxStatus, Routed, StoreError, during,
    retention_cutoff,
};

/// Health edges one statement writes: up to three parameters each.
const EDGE_WRITE_CHUNK: usize = 1_000;

#[async_trait]
impl<D: Dialect> HistoryStore for SqlStore<D> {
    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let q =
            sql("SELECT * FROM events WHERE id < ? AND ").bind(query.before.unwrap_or(i64::MAX));
        let q = match &query.about {
            EventsAbout::All => q.push("1 = 1"),
            EventsAbout::Agent(id) => q.push("agent_id = ").bind(*id),
            EventsAbout::Watched(id) => q.push("agent_id = ").bind(*id).push(
                " AND agent_version =
                     (SELECT added_version FROM agents WHERE agents.agent_id = events.agent_id)",
            ),
            EventsAbout::Monitor => q.push("agent_id IS NULL"),
        };
        let q = q
            .push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(query.limit));
        let read = async {
            // One snapshot: the deliveries are those of the events as read.
            let mut tx = self.snapshot().await?;
            let events = D::all(&mut tx, q, event_from_row).await?;
            if events.is_empty() {
                return Ok(events);
            }
            let q = sql("SELECT * FROM event_deliveries WHERE event_id IN ")
                .list(events.iter().map(|e| e.id))
                .push(" ORDER BY outbox_id");
            let deliveries = D::all(&mut tx, q, event_delivery_from_row).await?;
            tx.commit().await?;
            Ok(attach_deliveries(events, deliveries))
        };
        during("read events", read).await
    }

    async fn health_intervals(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(AgentId, HealthInterval)>, StoreError> {
        let q = sql(
            "SELECT h.* FROM health_intervals h JOIN agents a ON a.agent_id = h.agent_id
             WHERE h.ended_at IS NULL OR h.ended_at > ?
             ORDER BY h.agent_id, h.started_at, h.id",
        );
        let read = self.all(q.bind(since), |row| {
            health_interval_from_row(row).map(|(_, agent, i)| (agent, i))
        });
        during("read health intervals", read).await
    }

    async fn agent_health_intervals(
        &self,
        agent: &AgentId,
        since: DateTime<Utc>,
    ) -> Result<Vec<HealthInterval>, StoreError> {
        let q = sql(
            "SELECT h.* FROM health_intervals h JOIN agents a ON a.agent_id = h.agent_id
             WHERE h.agent_id = ? AND (h.ended_at IS NULL OR h.ended_at > ?)
             ORDER BY h.started_at, h.id",
        );
        let read = self.all(q.bind(*agent).bind(since), |row| {
            health_interval_from_row(row).map(|(_, _, i)| i)
        });
        during("read an agent's health intervals", read).await
    }

    async fn prune_history(
        &self,
        fence: Fence,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let cutoff = retention_cutoff(now, retention);
        let prune = async {
            // A delivery never outlives its event: they go in the same write.
            let events = [
                "DELETE FROM event_deliveries WHERE event_id IN
                     (SELECT id FROM events WHERE at < ? ORDER BY id LIMIT ?)",
                "DELETE FROM events WHERE id IN
                     (SELECT id FROM events WHERE at < ? ORDER BY id LIMIT ?)",
            ];
            let deleted = self
                .delete_in_batches(fence, &events, cutoff, batch)
                .await?;
            let intervals = "DELETE FROM health_intervals WHERE id IN (
                SELECT id FROM health_intervals
                WHERE ended_at IS NOT NULL AND ended_at < ? LIMIT ?)";
            self.delete_in_batches(fence, &[intervals], cutoff, batch)
                .await?;
            Ok(deleted)
        };
        during("prune the history", prune).await
    }
}

/// Writes the alerts' events (each with its agent's version, when the agent is watched), and
/// per destination an outbox entry in `batch` with its pending delivery: a few statements for
/// all of them, however many. The ids are taken first, so entries keep the alerts' order and
/// each names its event. Returns how many entries.
pub(super) async fn insert_alerts<D: Dialect>(
    tx: &mut D::Connection,
    alerts: &[&Routed],
    batch: i64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let ids = next_ids::<D>(tx, "events", alerts.len()).await?;
    let events: Vec<(&Routed, i64)> = alerts.iter().copied().zip(ids).collect();
    let head =
        "WITH u(id, at, agent_id, kind, from_status, to_status, summary, webhook, integration)
            AS (VALUES ";
    let tail = ") INSERT INTO events (id, at, agent_id, agent_version, kind, from_status,
            to_status, summary, webhook, integration)
        SELECT u.id, u.at, u.agent_id, a.added_version, u.kind, u.from_status, u.to_status,
            u.summary, u.webhook, u.integration
        FROM u LEFT JOIN agents a ON a.agent_id = u.agent_id";
    insert_rows::<D, _>(tx, head, &events, tail, |((alert, _), id)| {
        Ok(event_row(*id, alert))
    })
    .await?;
    let sends: Vec<(&Alert, &Webhook, i64)> = events
        .iter()
        .flat_map(|((alert, hooks), event)| hooks.iter().map(move |h| (alert, h, *event)))
        .collect();
    let ids = next_ids::<D>(tx, "outbox", sends.len()).await?;
    let entries: Vec<((&Alert, &Webhook, i64), i64)> = sends.into_iter().zip(ids).collect();
    let head = "INSERT INTO outbox (id, platform, url, agent_id, kind, alert, next_attempt_at,
        created_at, batch, event_id) VALUES ";
    insert_rows::<D, _>(tx, head, &entries, "", |&((alert, hook, event), id)| {
        let (agent, kind) = alert_columns(alert)?;
        let url = hook.url.expose().as_str();
        let json = to_json(alert)?;
        let values = [
            id.into(),
            hook.platform.as_str().into(),
            url.into(),
            agent.into(),
        ];
        let more = [
            kind.into(),
            json.into(),
            now.into(),
            now.into(),
            batch.into(),
            event.into(),
        ];
        Ok(values.into_iter().chain(more).collect())
    })
    .await?;
    let head = "INSERT INTO event_deliveries (outbox_id, event_id, platform, webhook) VALUES ";
    insert_rows::<D, _>(tx, head, &entries, "", |&((_, hook, event), id)| {
        let platform = hook.platform.as_str();
        Ok(vec![
            id.into(),
            event.into(),
            platform.into(),
            hook.url.masked().into(),
        ])
    })
    .await?;
    Ok(entries.len())
}

/// An event's row for [`insert_alerts`].
fn event_row(id: i64, alert: &Alert) -> Vec<Value> {
    let (from, to) = alert.statuses();
    vec![
        id.into(),
        alert.at().into(),
        alert.agent_id().copied().map(|a| a.to_string()).into(),
        alert.kind_name().into(),
        from.into(),
        to.into(),
        alert.summary().into(),
        alert.webhook().into(),
        alert.integration().map(|i| i.as_str()).into(),
    ]
}

/// The outbox's `agent_id` and `kind` columns of what an entry carries (`kind` is `digest`
/// for a digest).
pub(super) fn message_columns(message: &Message) -> Result<(Option<String>, String), StoreError> {
    match message {
        Message::Alert(alert) => alert_columns(alert),
        Message::Digest(_) => Ok((None, DIGEST_KIND.to_owned())),
    }
}

/// The outbox's `kind` of a digest's entries: no alert's, so counts of alerts leave them out.
pub(super) const DIGEST_KIND: &str = "digest";

/// The outbox's `agent_id` and `kind` columns of an alert (`None` for the monitor's).
pub(super) fn alert_columns(alert: &Alert) -> Result<(Option<String>, String), StoreError> {
    let (agent_id, kind) = match alert {
        Alert::Agent(a) => (Some(a.agent.id.to_string()), to_json(&a.kind)?),
        Alert::Monitor(m) => (None, to_json(&m.kind)?),
        Alert::Webhook(_) => (None, "dead".to_owned()),
        Alert::Integration(i) => (None, to_json(&i.kind)?),
    };
    Ok((agent_id, kind.trim_matches('"').to_owned()))
}

/// Closes each agent's open interval at its edge, and opens one where the edge observed a
/// health. `edges` are of agents whose state the same transaction wrote.
pub(super) async fn apply_health_edges<D: Dialect>(
    tx: &mut D::Connection,
    edges: &[(AgentId, HealthEdge)],
) -> Result<(), StoreError> {
    for chunk in edges.chunks(EDGE_WRITE_CHUNK) {
        let closed = chunk
            .iter()
            .map(|(id, e)| vec![(*id).into(), e.closes_at.into()]);
        let q = sql("WITH u(id, at) AS (VALUES ").rows(closed).push(
            ") UPDATE health_intervals SET ended_at = u.at FROM u
                 WHERE health_intervals.agent_id = u.id AND health_intervals.ended_at IS NULL",
        );
        D::execute(tx, q).await?;
        let opened: Vec<Vec<Value>> = chunk
            .iter()
            .filter_map(|(id, e)| Some(vec![(*id).into(), e.healthy?.into(), e.at.into()]))
            .collect();
        if !opened.is_empty() {
            let q = sql("INSERT INTO health_intervals (agent_id, healthy, started_at) VALUES ");
            D::execute(tx, q.rows(opened)).await?;
        }
    }
    Ok(())
}

/// Moves the deliveries of outbox entries `ids` with their entries' mark: to `outcome` at `at`
/// (`None`: the outcome stays) with `error`.
pub(super) async fn record_outcome<D: Dialect>(
    tx: &mut D::Connection,
    ids: &[i64],
    outcome: Option<(OutboxStatus, DateTime<Utc>)>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let q = match outcome {
        Some((status, at)) => sql("UPDATE event_deliveries SET outcome = ?, at = ?, error = ?")
            .bind(status.as_str())
            .bind(at),
        None => sql("UPDATE event_deliveries SET error = ?"),
    };
    let q = q
        .bind(error)
        .push(" WHERE outbox_id IN ")
        .list(ids.iter().copied());
    D::execute(tx, q).await?;
    Ok(())
}

/// Deletes an agent's intervals as it stops being watched (its events stay).
pub(super) async fn forget_intervals<D: Dialect>(
    tx: &mut D::Connection,
    agent: AgentId,
) -> Result<(), StoreError> {
    let q = sql("DELETE FROM health_intervals WHERE agent_id = ?").bind(agent);
    D::execute(tx, q).await?;
    Ok(())
}
