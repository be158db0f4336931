//! [`CopyStore`] on SQLite: every table but the lease, read in one read transaction (WAL gives
//! it one snapshot of the file) and written in one `BEGIN IMMEDIATE` transaction.

use async_trait::async_trait;
use futures::TryStreamExt;

use super::cycle::outbox_columns;
use super::history::status_name;
use super::rows::{
    column, dead_webhook_from_row, event_delivery_from_row, event_from_row,
    health_interval_from_row, optional_time, outbox_from_row, saved_agent_from_row, text, time,
    within,
};
use super::{SETTINGS_VERSION, SqliteStore, millis, platform_name, to_json};
use crate::store::{CopyStore, MonitorRow, Snapshot, StoreError, corrupt};

#[async_trait]
impl CopyStore for SqliteStore {
    async fn export(&self) -> Result<Snapshot, StoreError> {
        // A deferred transaction that only reads: in WAL mode every read in it sees the file
        // as it was at the first one, whatever commits meanwhile.
        let mut tx = self.pool.begin().await?;
        let settings_version = sqlx::query_scalar(SETTINGS_VERSION)
            .fetch_one(&mut *tx)
            .await?;

        let mut agents = Vec::new();
        {
            let mut rows =
                sqlx::query("SELECT * FROM agents ORDER BY created_at, agent_id").fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                agents.push((
                    saved_agent_from_row(&row)?,
                    column(&row, "absent_listings")?,
                ));
            }
        }

        let unwatched =
            sqlx::query("SELECT agent_id, since FROM unwatched_agents ORDER BY agent_id")
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| {
                    let id = text(row, "agent_id")?;
                    let read = || {
                        Ok((
                            id.parse().map_err(|e| corrupt("agent_id", e))?,
                            time(row, "since")?,
                        ))
                    };
                    read().map_err(|e| within(e, &format!("unwatched agent {id:?}")))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;

        let monitor =
            sqlx::query("SELECT state, polled_version, polled_at FROM monitor_state WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| {
                    Ok::<_, StoreError>(MonitorRow {
                        state: serde_json::from_str(&text(&row, "state")?)
                            .map_err(|e| corrupt("monitor state", e))?,
                        polled_version: column(&row, "polled_version")?,
                        polled_at: optional_time(&row, "polled_at")?,
                    })
                })
                .transpose()?;

        let mut outbox = Vec::new();
        {
            let mut rows = sqlx::query("SELECT * FROM outbox ORDER BY id").fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                let entry = outbox_from_row(&row)?;
                let finished_at = optional_time(&row, "finished_at")
                    .map_err(|e| within(e, &format!("outbox entry id {}", entry.id)))?;
                outbox.push((entry, finished_at));
            }
        }

        let last_batch = sqlx::query_scalar("SELECT last FROM outbox_batch_sequence WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;

        let dead_webhooks =
            sqlx::query("SELECT * FROM dead_webhooks ORDER BY since, platform, url")
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(dead_webhook_from_row)
                .collect::<Result<Vec<_>, _>>()?;

        let events = sqlx::query("SELECT * FROM events ORDER BY id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((event_from_row(row)?, column(row, "agent_version")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let event_deliveries = sqlx::query("SELECT * FROM event_deliveries ORDER BY outbox_id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(event_delivery_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let health_intervals = sqlx::query("SELECT * FROM health_intervals ORDER BY id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(health_interval_from_row)
            .collect::<Result<Vec<_>, _>>()?;

        tx.commit().await?;
        Ok(Snapshot {
            agents,
            unwatched,
            settings_version,
            monitor,
            outbox,
            last_batch,
            dead_webhooks,
            events,
            event_deliveries,
            health_intervals,
        })
    }

    async fn import(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        refuse_unless_empty(&mut tx).await?;

        for (agent, absent_listings) in &snapshot.agents {
            sqlx::query(
                "INSERT INTO agents (agent_id, name, listed_name, source, slack_webhook_url,
                     discord_webhook_url, muted, muted_until, created_at, state, absent_listings)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(agent.agent_id.to_string())
            .bind(&agent.name)
            .bind(&agent.listed_name)
            .bind(agent.source.as_str())
            .bind(
                agent
                    .slack_webhook_url
                    .as_ref()
                    .map(|u| u.expose().as_str()),
            )
            .bind(
                agent
                    .discord_webhook_url
                    .as_ref()
                    .map(|u| u.expose().as_str()),
            )
            .bind(agent.muted)
            .bind(agent.muted_until.map(millis))
            .bind(millis(agent.created_at))
            .bind(to_json(&agent.state))
            .bind(absent_listings)
            .execute(&mut *tx)
            .await?;
        }
        // The insert trigger gave each agent a new version: put back the ones they had.
        for (agent, _) in &snapshot.agents {
            sqlx::query("UPDATE agents SET added_version = ? WHERE agent_id = ?")
                .bind(agent.added_version)
                .bind(agent.agent_id.to_string())
                .execute(&mut *tx)
                .await?;
        }

        for (id, since) in &snapshot.unwatched {
            sqlx::query("INSERT INTO unwatched_agents (agent_id, since) VALUES (?, ?)")
                .bind(id.to_string())
                .bind(millis(*since))
                .execute(&mut *tx)
                .await?;
        }

        sqlx::query("DELETE FROM monitor_state")
            .execute(&mut *tx)
            .await?;
        if let Some(monitor) = &snapshot.monitor {
            sqlx::query(
                "INSERT INTO monitor_state (id, state, polled_version, polled_at)
                 VALUES (1, ?, ?, ?)",
            )
            .bind(to_json(&monitor.state))
            .bind(monitor.polled_version)
            .bind(monitor.polled_at.map(millis))
            .execute(&mut *tx)
            .await?;
        }

        // Explicit ids: AUTOINCREMENT's counter (sqlite_sequence) moves up to the largest, so
        // the next entry's id is above every copied one.
        for (entry, finished_at) in &snapshot.outbox {
            let (agent_id, kind) = outbox_columns(&entry.alert);
            sqlx::query(
                "INSERT INTO outbox (id, platform, url, agent_id, kind, alert, status, attempts,
                     next_attempt_at, last_error, created_at, finished_at, batch, event_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(entry.id)
            .bind(platform_name(entry.webhook.platform))
            .bind(entry.webhook.url.expose().as_str())
            .bind(agent_id)
            .bind(kind)
            .bind(to_json(&entry.alert))
            .bind(status_name(entry.status))
            .bind(i64::from(entry.attempts))
            .bind(millis(entry.next_attempt_at))
            .bind(&entry.last_error)
            .bind(millis(entry.created_at))
            .bind(finished_at.map(millis))
            .bind(entry.batch)
            .bind(entry.event_id)
            .execute(&mut *tx)
            .await?;
        }

        // The history, with its ids too (AUTOINCREMENT goes on above them, as for the outbox).
        for (event, agent_version) in &snapshot.events {
            sqlx::query(
                "INSERT INTO events (id, at, agent_id, agent_version, kind, from_status,
                     to_status, summary)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(event.id)
            .bind(millis(event.at))
            .bind(event.agent_id.map(|a| a.to_string()))
            .bind(agent_version)
            .bind(&event.kind)
            .bind(&event.from_status)
            .bind(&event.to_status)
            .bind(&event.summary)
            .execute(&mut *tx)
            .await?;
        }
        for (outbox_id, event_id, d) in &snapshot.event_deliveries {
            sqlx::query(
                "INSERT INTO event_deliveries (outbox_id, event_id, platform, webhook, outcome,
                     at, error)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(outbox_id)
            .bind(event_id)
            .bind(platform_name(d.platform))
            .bind(&d.webhook)
            .bind(status_name(d.outcome))
            .bind(d.at.map(millis))
            .bind(&d.error)
            .execute(&mut *tx)
            .await?;
        }
        for (id, agent, interval) in &snapshot.health_intervals {
            sqlx::query(
                "INSERT INTO health_intervals (id, agent_id, healthy, started_at, ended_at)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(agent.to_string())
            .bind(interval.healthy)
            .bind(millis(interval.start))
            .bind(interval.end.map(millis))
            .execute(&mut *tx)
            .await?;
        }

        for dead in &snapshot.dead_webhooks {
            sqlx::query(
                "INSERT INTO dead_webhooks (platform, url, reason, since) VALUES (?, ?, ?, ?)",
            )
            .bind(platform_name(dead.webhook.platform))
            .bind(dead.webhook.url.expose().as_str())
            .bind(&dead.reason)
            .bind(millis(dead.since))
            .execute(&mut *tx)
            .await?;
        }

        // Last, after the triggers of the inserts above have moved the version.
        sqlx::query("UPDATE settings_version SET version = ? WHERE id = 1")
            .bind(snapshot.settings_version)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE outbox_batch_sequence SET last = ? WHERE id = 1")
            .bind(snapshot.last_batch)
            .execute(&mut *tx)
            .await?;

        tx.commit().await?;
        Ok(())
    }
}

/// [`StoreError::NotEmpty`] saying what the database holds, unless it holds no agent, unwatched
/// agent, outbox entry, dead webhook or event.
async fn refuse_unless_empty(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
) -> Result<(), StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM agents) AS agents,
                (SELECT COUNT(*) FROM unwatched_agents) AS unwatched,
                (SELECT COUNT(*) FROM outbox) AS outbox,
                (SELECT COUNT(*) FROM dead_webhooks) AS dead,
                (SELECT COUNT(*) FROM events) AS events",
    )
    .fetch_one(&mut **tx)
    .await?;
    let held = [
        (column::<i64>(&row, "agents")?, "agent", "agents"),
        (
            column::<i64>(&row, "unwatched")?,
            "unwatched agent",
            "unwatched agents",
        ),
        (
            column::<i64>(&row, "outbox")?,
            "outbox entry",
            "outbox entries",
        ),
        (
            column::<i64>(&row, "dead")?,
            "dead webhook",
            "dead webhooks",
        ),
        (column::<i64>(&row, "events")?, "event", "events"),
    ];
    let said: Vec<String> = held
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect();
    if said.is_empty() {
        Ok(())
    } else {
        Err(StoreError::NotEmpty(said.join(", ")))
    }
}
