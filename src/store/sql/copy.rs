//! [`CopyStore`]: every table but the lease, read in one snapshot (a running service's writes
//! meanwhile never show half) and written in one transaction, with their ids.

use async_trait::async_trait;

use super::cycle::SETTINGS_VERSION;
use super::history::message_columns;
use super::integrations::INTEGRATIONS;
use super::maintenance::{INSERT_WINDOWS, WINDOWS, window_values};
use super::query::sql;
use super::webhooks::DEAD_WEBHOOKS;
use super::{Dialect, SettingsLock, SqlStore, insert_rows, number, to_json};
use crate::store::rows::{
    StoredRow, dead_webhook_from_row, event_delivery_from_row, event_from_row,
    health_interval_from_row, integration_from_row, optional_time, outbox_from_row,
    saved_agent_from_row, time, window_from_row, within,
};
use crate::store::{
    CopyStore, Fence, MonitorRow, Snapshot, StoreError, corrupt, during, parse_agent_id,
};

#[async_trait]
impl<D: Dialect> CopyStore for SqlStore<D> {
    async fn export(&self) -> Result<Snapshot, StoreError> {
        let export = async {
            let mut tx = self.snapshot().await?;
            let snapshot = read_snapshot::<D>(&mut tx).await?;
            tx.commit().await?;
            Ok(snapshot)
        };
        during("export the database", export).await
    }

    async fn import(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let import = async {
            let mut tx = self.write(Fence::Unchecked, SettingsLock::Update).await?;
            refuse_unless_empty::<D>(&mut tx).await?;
            write_agents::<D>(&mut tx, snapshot).await?;
            write_queue::<D>(&mut tx, snapshot).await?;
            write_history::<D>(&mut tx, snapshot).await?;
            write_integrations::<D>(&mut tx, snapshot).await?;
            insert_rows::<D, _>(
                &mut tx,
                INSERT_WINDOWS,
                &snapshot.maintenance_windows,
                "",
                window_values,
            )
            .await?;
            if let Some(tick) = snapshot.last_digest {
                let q = sql("UPDATE digest SET last_tick = ? WHERE id = 1").bind(tick);
                D::execute(&mut tx, q).await?;
            }
            // Last, after the inserts' triggers have moved the version.
            let q = sql("UPDATE settings_version SET version = ? WHERE id = 1");
            D::execute(&mut tx, q.bind(snapshot.settings_version)).await?;
            Ok(tx.commit().await?)
        };
        during("import into the database", import).await
    }
}

async fn read_snapshot<D: Dialect>(tx: &mut D::Connection) -> Result<Snapshot, StoreError> {
    let settings_version = number::<D>(tx, sql(SETTINGS_VERSION)).await?;
    let q = sql("SELECT * FROM agents ORDER BY created_at, agent_id");
    let agents = D::all(tx, q, |row| {
        Ok((saved_agent_from_row(row)?, row.int("absent_listings")?))
    });
    let agents = agents.await?;
    let q = sql("SELECT agent_id, since FROM unwatched_agents ORDER BY agent_id");
    let unwatched = D::all(tx, q, |row| {
        let id = row.text("agent_id")?;
        let read = || Ok((parse_agent_id(&id)?, time(row, "since")?));
        read().map_err(|e| within(e, &format!("unwatched agent {id:?}")))
    });
    let unwatched = unwatched.await?;
    let q = sql("SELECT state, polled_version, polled_at FROM monitor_state WHERE id = 1");
    let monitor = super::first::<D, _>(tx, q, |row| {
        Ok(MonitorRow {
            state: serde_json::from_str(&row.text("state")?)
                .map_err(|e| corrupt("monitor state", e))?,
            polled_version: row.optional_int("polled_version")?,
            polled_at: optional_time(row, "polled_at")?,
        })
    });
    let monitor = monitor.await?;
    let outbox = D::all(tx, sql("SELECT * FROM outbox ORDER BY id"), |row| {
        let entry = outbox_from_row(row)?;
        let finished_at = optional_time(row, "finished_at")
            .map_err(|e| within(e, &format!("outbox entry id {}", entry.id)))?;
        Ok((entry, finished_at))
    });
    let outbox = outbox.await?;
    let q = sql("SELECT last AS n FROM outbox_batch_sequence WHERE id = 1");
    let last_batch = number::<D>(tx, q).await?;
    let dead_webhooks = D::all(tx, sql(DEAD_WEBHOOKS), dead_webhook_from_row).await?;
    let q = sql("SELECT * FROM events ORDER BY id");
    let events = D::all(tx, q, |row| {
        Ok((event_from_row(row)?, row.optional_int("agent_version")?))
    });
    let events = events.await?;
    let q = sql("SELECT * FROM event_deliveries ORDER BY outbox_id");
    let event_deliveries = D::all(tx, q, event_delivery_from_row).await?;
    let q = sql("SELECT * FROM health_intervals ORDER BY id");
    let health_intervals = D::all(tx, q, health_interval_from_row).await?;
    let integrations = D::all(tx, sql(INTEGRATIONS), integration_from_row).await?;
    let maintenance_windows = D::all(tx, sql(WINDOWS), window_from_row).await?;
    let q = sql("SELECT NULLIF(last_tick, 0) AS t FROM digest WHERE id = 1");
    let last_digest = super::first::<D, _>(tx, q, |row| optional_time(row, "t")).await?;
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
        integrations,
        maintenance_windows,
        last_digest: last_digest.flatten(),
    })
}

/// [`StoreError::NotEmpty`] saying what the database holds, unless it holds no agent, unwatched
/// agent, outbox entry, dead webhook, event, integration state or maintenance window.
async fn refuse_unless_empty<D: Dialect>(tx: &mut D::Connection) -> Result<(), StoreError> {
    let q = sql(
        "SELECT 'agent' AS one, 'agents' AS many, count(*) AS n FROM agents
         UNION ALL SELECT 'unwatched agent', 'unwatched agents', count(*) FROM unwatched_agents
         UNION ALL SELECT 'outbox entry', 'outbox entries', count(*) FROM outbox
         UNION ALL SELECT 'dead webhook', 'dead webhooks', count(*) FROM dead_webhooks
         UNION ALL SELECT 'event', 'events', count(*) FROM events
         UNION ALL SELECT 'integration state', 'integration states', count(*)
             FROM integrations
         UNION ALL SELECT 'maintenance window', 'maintenance windows', count(*)
             FROM maintenance_windows",
    );
    let held = D::all(tx, q, |row| {
        let n = row.int("n")?;
        let what = if n == 1 {
            row.text("one")?
        } else {
            row.text("many")?
        };
        Ok((n > 0).then(|| format!("{n} {what}")))
    });
    let said: Vec<String> = held.await?.into_iter().flatten().collect();
    if said.is_empty() {
        Ok(())
    } else {
        Err(StoreError::NotEmpty(said.join(", ")))
    }
}

async fn write_integrations<D: Dialect>(
    tx: &mut D::Connection,
    s: &Snapshot,
) -> Result<(), StoreError> {
    let head = "INSERT INTO integrations (name, state) VALUES ";
    insert_rows::<D, _>(tx, head, &s.integrations, "", |(name, state)| {
        Ok(vec![name.as_str().into(), to_json(state)?.into()])
    })
    .await
}

/// The head of an `INSERT` that gives the ids: `columns`, the dialect's words for that, and
/// `VALUES`.
fn given_ids<D: Dialect>(columns: &'static str) -> String {
    format!("{columns} {} VALUES ", D::GIVEN_IDS)
}

async fn write_agents<D: Dialect>(tx: &mut D::Connection, s: &Snapshot) -> Result<(), StoreError> {
    let head = "INSERT INTO agents (agent_id, name, listed_name, source, slack_webhook_url,
        discord_webhook_url, teams_webhook_url, webhook_url, muted, muted_until, created_at, state,
        absent_listings) VALUES ";
    insert_rows::<D, _>(tx, head, &s.agents, "", |(a, absent)| {
        let url = |u: &Option<crate::domain::SecretUrl>| u.as_ref().map(|u| u.expose().to_string());
        Ok(vec![
            a.agent_id.into(),
            a.name.clone().into(),
            a.listed_name.clone().into(),
            a.source.as_str().into(),
            url(&a.slack_webhook_url).into(),
            url(&a.discord_webhook_url).into(),
            url(&a.teams_webhook_url).into(),
            url(&a.webhook_url).into(),
            a.muted.into(),
            a.muted_until.into(),
            a.created_at.into(),
            to_json(&a.state)?.into(),
            (*absent).into(),
        ])
    })
    .await?;
    // The insert trigger gave each agent a new version: put back the ones they had.
    let head = "WITH u(id, v) AS (VALUES ";
    let tail = ") UPDATE agents SET added_version = u.v FROM u WHERE agents.agent_id = u.id";
    insert_rows::<D, _>(tx, head, &s.agents, tail, |(a, _)| {
        Ok(vec![a.agent_id.into(), a.added_version.into()])
    })
    .await?;
    let head = "INSERT INTO unwatched_agents (agent_id, since) VALUES ";
    insert_rows::<D, _>(tx, head, &s.unwatched, "", |(id, since)| {
        Ok(vec![(*id).into(), (*since).into()])
    })
    .await?;
    D::execute(tx, sql("DELETE FROM monitor_state")).await?;
    if let Some(m) = &s.monitor {
        let q = sql(
            "INSERT INTO monitor_state (id, state, polled_version, polled_at) VALUES (1, ?, ?, ?)",
        );
        let q = q
            .bind(to_json(&m.state)?)
            .bind(m.polled_version)
            .bind(m.polled_at);
        D::execute(tx, q).await?;
    }
    Ok(())
}

/// The outbox with its ids (a delivery in flight is marked by id), its batch sequence and the
/// dead webhooks.
async fn write_queue<D: Dialect>(tx: &mut D::Connection, s: &Snapshot) -> Result<(), StoreError> {
    let head = given_ids::<D>(
        "INSERT INTO outbox (id, platform, url, agent_id, kind, alert, status, attempts,
             next_attempt_at, last_error, created_at, finished_at, batch, event_id)",
    );
    insert_rows::<D, _>(tx, &head, &s.outbox, "", |(e, finished_at)| {
        let (agent_id, kind) = message_columns(&e.message)?;
        Ok(vec![
            e.id.into(),
            e.webhook.platform.as_str().into(),
            e.webhook.url.expose().as_str().into(),
            agent_id.into(),
            kind.into(),
            to_json(&e.message)?.into(),
            e.status.as_str().into(),
            i64::from(e.attempts).into(),
            e.next_attempt_at.into(),
            e.last_error.clone().into(),
            e.created_at.into(),
            (*finished_at).into(),
            e.batch.into(),
            e.event_id.into(),
        ])
    })
    .await?;
    D::ids_given(tx, "outbox").await?;
    let q = sql("UPDATE outbox_batch_sequence SET last = ? WHERE id = 1").bind(s.last_batch);
    D::execute(tx, q).await?;
    let head = "INSERT INTO dead_webhooks (platform, url, reason, since) VALUES ";
    insert_rows::<D, _>(tx, head, &s.dead_webhooks, "", |d| {
        Ok(vec![
            d.webhook.platform.as_str().into(),
            d.webhook.url.expose().as_str().into(),
            d.reason.clone().into(),
            d.since.into(),
        ])
    })
    .await
}

/// The history, with its ids.
async fn write_history<D: Dialect>(tx: &mut D::Connection, s: &Snapshot) -> Result<(), StoreError> {
    let head = given_ids::<D>(
        "INSERT INTO events (id, at, agent_id, agent_version, kind, from_status, to_status,
             summary, webhook, integration)",
    );
    insert_rows::<D, _>(tx, &head, &s.events, "", |(e, version)| {
        Ok(vec![
            e.id.into(),
            e.at.into(),
            e.agent_id.map(|a| a.to_string()).into(),
            (*version).into(),
            e.kind.as_str().into(),
            e.from_status.clone().into(),
            e.to_status.clone().into(),
            e.summary.as_str().into(),
            e.webhook.clone().into(),
            e.integration.clone().into(),
        ])
    })
    .await?;
    D::ids_given(tx, "events").await?;
    let head = "INSERT INTO event_deliveries (outbox_id, event_id, platform, webhook, outcome, at,
        error) VALUES ";
    insert_rows::<D, _>(tx, head, &s.event_deliveries, "", |(outbox, event, d)| {
        Ok(vec![
            (*outbox).into(),
            (*event).into(),
            d.platform.as_str().into(),
            d.webhook.as_str().into(),
            d.outcome.as_str().into(),
            d.at.into(),
            d.error.clone().into(),
        ])
    })
    .await?;
    let head = given_ids::<D>(
        "INSERT INTO health_intervals (id, agent_id, healthy, started_at, ended_at)",
    );
    insert_rows::<D, _>(tx, &head, &s.health_intervals, "", |(id, agent, i)| {
        Ok(vec![
            (*id).into(),
            (*agent).into(),
            i.healthy.into(),
            i.start.into(),
            i.end.into(),
        ])
    })
    .await?;
    D::ids_given(tx, "health_intervals").await
}
