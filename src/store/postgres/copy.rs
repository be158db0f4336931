//! [`CopyStore`] on PostgreSQL: the export reads in one REPEATABLE READ snapshot, so a running
//! service's writes meanwhile never show half; the import writes in one transaction.

use async_trait::async_trait;
use url::Url;

use super::cycle::alert_columns;
use super::history::status_name;
use super::rows::{
    column, dead_webhook_from_row, event_delivery_from_row, event_from_row,
    health_interval_from_row, optional_time, outbox_from_row, saved_agent_from_row, text, time,
};
use super::{
    PostgresStore, SETTINGS_VERSION, SettingsLock, lock_settings, millis, platform_name, to_json,
};
use crate::store::{CopyStore, Event, MonitorRow, Snapshot, StoreError, corrupt};

#[async_trait]
impl CopyStore for PostgresStore {
    async fn export(&self) -> Result<Snapshot, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let agents = sqlx::query("SELECT * FROM agents ORDER BY created_at, agent_id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((saved_agent_from_row(row)?, column(row, "absent_listings")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let unwatched =
            sqlx::query("SELECT agent_id, since FROM unwatched_agents ORDER BY agent_id")
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| {
                    let id = text(row, "agent_id")?;
                    Ok((
                        id.parse().map_err(|e| corrupt("unwatched agent_id", e))?,
                        time(row, "since")?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
        let settings_version = sqlx::query_scalar(SETTINGS_VERSION)
            .fetch_one(&mut *tx)
            .await?;
        let monitor = sqlx::query("SELECT * FROM monitor_state WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| -> Result<MonitorRow, StoreError> {
                Ok(MonitorRow {
                    state: serde_json::from_str(&text(&row, "state")?)
                        .map_err(|e| corrupt("monitor state", e))?,
                    polled_version: column(&row, "polled_version")?,
                    polled_at: optional_time(&row, "polled_at")?,
                })
            })
            .transpose()?;
        let outbox = sqlx::query("SELECT * FROM outbox ORDER BY id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((outbox_from_row(row)?, optional_time(row, "finished_at")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let last_batch = sqlx::query_scalar("SELECT last FROM outbox_batch_sequence WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let dead_webhooks =
            sqlx::query("SELECT * FROM dead_webhooks ORDER BY since, platform, url")
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(dead_webhook_from_row)
                .collect::<Result<Vec<_>, StoreError>>()?;
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
        let mut tx = self.pool.begin().await?;
        lock_settings(&mut tx, SettingsLock::Update).await?;
        let held: Vec<String> = sqlx::query(
            "SELECT 'agents' AS what, count(*) AS n FROM agents
             UNION ALL SELECT 'unwatched agents', count(*) FROM unwatched_agents
             UNION ALL SELECT 'outbox entries', count(*) FROM outbox
             UNION ALL SELECT 'dead webhooks', count(*) FROM dead_webhooks
             UNION ALL SELECT 'events', count(*) FROM events",
        )
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| Ok((text(row, "what")?, column::<i64>(row, "n")?)))
        .collect::<Result<Vec<_>, StoreError>>()?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{n} {what}"))
        .collect();
        if !held.is_empty() {
            return Err(StoreError::NotEmpty(held.join(", ")));
        }

        // Agents in one statement. Their insert trigger moves the settings version and sets
        // each one's added_version; both are set to the snapshot's right after.
        let agents = &snapshot.agents;
        let text_of =
            |f: &dyn Fn(&crate::store::AgentRecord) -> Option<String>| -> Vec<Option<String>> {
                agents.iter().map(|(a, _)| f(a)).collect()
            };
        sqlx::query(
            "INSERT INTO agents (agent_id, name, listed_name, source, slack_webhook_url,
                 discord_webhook_url, muted, muted_until, created_at, state, added_version,
                 absent_listings)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::bool[], $8::bigint[], $9::bigint[], $10::text[], $11::bigint[],
                 $12::bigint[])",
        )
        .bind(text_of(&|a| Some(a.agent_id.to_string())))
        .bind(text_of(&|a| a.name.clone()))
        .bind(text_of(&|a| a.listed_name.clone()))
        .bind(text_of(&|a| Some(a.source.as_str().to_owned())))
        .bind(text_of(&|a| {
            a.slack_webhook_url.as_ref().map(|u| u.expose().to_string())
        }))
        .bind(text_of(&|a| {
            a.discord_webhook_url
                .as_ref()
                .map(|u| u.expose().to_string())
        }))
        .bind(agents.iter().map(|(a, _)| a.muted).collect::<Vec<bool>>())
        .bind(
            agents
                .iter()
                .map(|(a, _)| a.muted_until.map(millis))
                .collect::<Vec<_>>(),
        )
        .bind(
            agents
                .iter()
                .map(|(a, _)| millis(a.created_at))
                .collect::<Vec<_>>(),
        )
        .bind(text_of(&|a| Some(to_json(&a.state))))
        .bind(
            agents
                .iter()
                .map(|(a, _)| a.added_version)
                .collect::<Vec<_>>(),
        )
        .bind(agents.iter().map(|(_, absent)| *absent).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        // added_version is not a settings column: this fires no trigger.
        sqlx::query(
            "UPDATE agents SET added_version = u.v
             FROM unnest($1::text[], $2::bigint[]) AS u(id, v) WHERE agents.agent_id = u.id",
        )
        .bind(text_of(&|a| Some(a.agent_id.to_string())))
        .bind(
            agents
                .iter()
                .map(|(a, _)| a.added_version)
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE settings_version SET version = $1 WHERE id = 1")
            .bind(snapshot.settings_version)
            .execute(&mut *tx)
            .await?;

        sqlx::query(
            "INSERT INTO unwatched_agents (agent_id, since)
             SELECT * FROM unnest($1::text[], $2::bigint[])",
        )
        .bind(
            snapshot
                .unwatched
                .iter()
                .map(|(id, _)| id.to_string())
                .collect::<Vec<_>>(),
        )
        .bind(
            snapshot
                .unwatched
                .iter()
                .map(|(_, since)| millis(*since))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;

        sqlx::query("DELETE FROM monitor_state")
            .execute(&mut *tx)
            .await?;
        if let Some(m) = &snapshot.monitor {
            sqlx::query(
                "INSERT INTO monitor_state (id, state, polled_version, polled_at) VALUES (1, $1, $2, $3)",
            )
            .bind(to_json(&m.state))
            .bind(m.polled_version)
            .bind(m.polled_at.map(millis))
            .execute(&mut *tx)
            .await?;
        }

        // Outbox entries keep their ids (a delivery in flight is marked by id), then the id
        // sequence moves past them so new entries do not collide.
        let outbox = &snapshot.outbox;
        let columns: Vec<(Option<String>, String)> = outbox
            .iter()
            .map(|(e, _)| alert_columns(&e.alert))
            .collect();
        sqlx::query(
            "INSERT INTO outbox (id, batch, platform, url, agent_id, kind, alert, status, attempts,
                 next_attempt_at, last_error, created_at, finished_at, event_id)
             OVERRIDING SYSTEM VALUE
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::text[],
                 $12::bigint[], $13::bigint[], $14::bigint[])",
        )
        .bind(outbox.iter().map(|(e, _)| e.id).collect::<Vec<_>>())
        .bind(outbox.iter().map(|(e, _)| e.batch).collect::<Vec<_>>())
        .bind(
            outbox
                .iter()
                .map(|(e, _)| platform_name(e.webhook.platform))
                .collect::<Vec<_>>(),
        )
        .bind(
            outbox
                .iter()
                .map(|(e, _)| url_text(e.webhook.url.expose()))
                .collect::<Vec<_>>(),
        )
        .bind(
            columns
                .iter()
                .map(|(agent, _)| agent.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            columns
                .iter()
                .map(|(_, kind)| kind.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            outbox
                .iter()
                .map(|(e, _)| to_json(&e.alert))
                .collect::<Vec<_>>(),
        )
        .bind(
            outbox
                .iter()
                .map(|(e, _)| status_name(e.status))
                .collect::<Vec<_>>(),
        )
        .bind(
            outbox
                .iter()
                .map(|(e, _)| i64::from(e.attempts))
                .collect::<Vec<_>>(),
        )
        .bind(
            outbox
                .iter()
                .map(|(e, _)| millis(e.next_attempt_at))
                .collect::<Vec<_>>(),
        )
        .bind(
            outbox
                .iter()
                .map(|(e, _)| e.last_error.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            outbox
                .iter()
                .map(|(e, _)| millis(e.created_at))
                .collect::<Vec<_>>(),
        )
        .bind(
            outbox
                .iter()
                .map(|(_, finished)| finished.map(millis))
                .collect::<Vec<_>>(),
        )
        .bind(outbox.iter().map(|(e, _)| e.event_id).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('outbox', 'id'),
                           coalesce(max(id), 1), max(id) IS NOT NULL)
             FROM outbox",
        )
        .execute(&mut *tx)
        .await?;
        import_history(&mut tx, snapshot).await?;
        sqlx::query("UPDATE outbox_batch_sequence SET last = $1 WHERE id = 1")
            .bind(snapshot.last_batch)
            .execute(&mut *tx)
            .await?;

        for dead in &snapshot.dead_webhooks {
            sqlx::query(
                "INSERT INTO dead_webhooks (platform, url, reason, since) VALUES ($1, $2, $3, $4)",
            )
            .bind(platform_name(dead.webhook.platform))
            .bind(url_text(dead.webhook.url.expose()))
            .bind(&dead.reason)
            .bind(millis(dead.since))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The history, with its ids (then each id sequence moves past them, as the outbox's does).
async fn import_history(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    snapshot: &Snapshot,
) -> Result<(), StoreError> {
    let events = &snapshot.events;
    let texts = |f: &dyn Fn(&Event) -> Option<String>| -> Vec<Option<String>> {
        events.iter().map(|(e, _)| f(e)).collect()
    };
    sqlx::query(
        "INSERT INTO events (id, at, agent_id, agent_version, kind, from_status, to_status,
             summary)
         OVERRIDING SYSTEM VALUE
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[],
             $6::text[], $7::text[], $8::text[])",
    )
    .bind(events.iter().map(|(e, _)| e.id).collect::<Vec<_>>())
    .bind(events.iter().map(|(e, _)| millis(e.at)).collect::<Vec<_>>())
    .bind(texts(&|e| e.agent_id.map(|a| a.to_string())))
    .bind(events.iter().map(|(_, v)| *v).collect::<Vec<_>>())
    .bind(texts(&|e| Some(e.kind.clone())))
    .bind(texts(&|e| e.from_status.clone()))
    .bind(texts(&|e| e.to_status.clone()))
    .bind(texts(&|e| Some(e.summary.clone())))
    .execute(&mut **tx)
    .await?;

    let deliveries = &snapshot.event_deliveries;
    sqlx::query(
        "INSERT INTO event_deliveries (outbox_id, event_id, platform, webhook, outcome, at, error)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
             $6::bigint[], $7::text[])",
    )
    .bind(deliveries.iter().map(|d| d.0).collect::<Vec<_>>())
    .bind(deliveries.iter().map(|d| d.1).collect::<Vec<_>>())
    .bind(
        deliveries
            .iter()
            .map(|d| platform_name(d.2.platform))
            .collect::<Vec<_>>(),
    )
    .bind(
        deliveries
            .iter()
            .map(|d| d.2.webhook.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        deliveries
            .iter()
            .map(|d| status_name(d.2.outcome))
            .collect::<Vec<_>>(),
    )
    .bind(
        deliveries
            .iter()
            .map(|d| d.2.at.map(millis))
            .collect::<Vec<_>>(),
    )
    .bind(
        deliveries
            .iter()
            .map(|d| d.2.error.clone())
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?;

    let intervals = &snapshot.health_intervals;
    sqlx::query(
        "INSERT INTO health_intervals (id, agent_id, healthy, started_at, ended_at)
         OVERRIDING SYSTEM VALUE
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::bool[], $4::bigint[], $5::bigint[])",
    )
    .bind(intervals.iter().map(|i| i.0).collect::<Vec<_>>())
    .bind(
        intervals
            .iter()
            .map(|i| i.1.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(intervals.iter().map(|i| i.2.healthy).collect::<Vec<_>>())
    .bind(
        intervals
            .iter()
            .map(|i| millis(i.2.start))
            .collect::<Vec<_>>(),
    )
    .bind(
        intervals
            .iter()
            .map(|i| i.2.end.map(millis))
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?;

    for table in ["events", "health_intervals"] {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                           coalesce(max(id), 1), max(id) IS NOT NULL)
             FROM {table}"
        ))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn url_text(url: &Url) -> String {
    url.as_str().to_owned()
}
