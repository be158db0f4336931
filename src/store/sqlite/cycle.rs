//! [`CycleStore`] on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::Row;

use super::history::{apply_health_edges, insert_delivery, insert_event};
use super::lease::check_fence;
use super::rows::{agent_from_row, read_agents, settings_from_row, text};
use super::{SETTINGS_VERSION, STATE_WRITE_CHUNK, SqliteStore, millis, platform_name, to_json};
use crate::domain::{Alert, HealthEdge, Webhook};
use crate::store::{
    AgentRecord, AgentUpdate, CycleStore, Fence, Polled, Progress, Routed, SettingsVersion,
    StoreError, Watched, corrupt, parse_agent_id,
};
use crate::tracker::MonitorState;

#[async_trait]
impl CycleStore for SqliteStore {
    async fn settings_version(&self) -> Result<SettingsVersion, StoreError> {
        Ok(sqlx::query_scalar(SETTINGS_VERSION)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn watched(&self) -> Result<Watched, StoreError> {
        self.snapshot(
            concat!(agents_with_last_poll!(), " ORDER BY created_at, agent_id"),
            agent_from_row,
        )
        .await
    }

    async fn watched_settings(&self) -> Result<Watched, StoreError> {
        self.snapshot(
            "SELECT agent_id, name, listed_name, source, slack_webhook_url, discord_webhook_url,
                    muted, muted_until, created_at, added_version
             FROM agents ORDER BY created_at, agent_id",
            settings_from_row,
        )
        .await
    }

    async fn monitor_state(&self) -> Result<MonitorState, StoreError> {
        match sqlx::query("SELECT state FROM monitor_state WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?
        {
            Some(row) => {
                serde_json::from_str(&text(&row, "state")?).map_err(|e| corrupt("monitor state", e))
            }
            None => Ok(MonitorState::default()),
        }
    }

    async fn save_progress(&self, fence: Fence, progress: &Progress) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_fence(&mut tx, fence).await?;
        write_progress(&mut tx, progress).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn commit_cycle(
        &self,
        fence: Fence,
        polled: Option<Polled>,
        agents: &[AgentUpdate<'_>],
        monitor: &MonitorState,
        monitor_alerts: &[Routed],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.write().await?;
        check_fence(&mut tx, fence).await?;
        let mut written = 0;
        // Only changed states come here, but after an outage that can be every agent: one
        // statement per chunk instead of one per agent keeps a 10,000-agent cycle from paying
        // 10,000 round trips to SQLite's worker thread.
        let version = polled.map_or(SettingsVersion::MAX, |p| p.version);
        // The agents whose state went in: still the ones the cycle polled (not removed, nor
        // removed and added again, while it ran). Their alerts go in with them; no others'.
        let mut written_states = std::collections::HashSet::new();
        for chunk in agents.chunks(STATE_WRITE_CHUNK) {
            let mut sql = String::with_capacity(120 + chunk.len() * 6);
            sql.push_str("WITH u(id, state) AS (VALUES ");
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 { "(?,?)" } else { ",(?,?)" });
            }
            sql.push_str(
                ") UPDATE agents SET state = u.state FROM u
                 WHERE agents.agent_id = u.id AND agents.added_version <= ?
                 RETURNING agents.agent_id",
            );
            let mut query = sqlx::query(&sql);
            for update in chunk {
                query = query
                    .bind(update.agent_id.to_string())
                    .bind(to_json(update.state));
            }
            let mut rows = query.bind(version).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                written_states.insert(parse_agent_id(row.try_get::<&str, _>(0)?)?);
            }
        }
        // Their health edges too: an interval is never written for an agent without its state.
        let edges: Vec<(String, HealthEdge)> = agents
            .iter()
            .filter(|u| written_states.contains(&u.agent_id))
            .filter_map(|u| Some((u.agent_id.to_string(), u.health?)))
            .collect();
        apply_health_edges(&mut tx, &edges).await?;
        let mut batch = None;
        for update in agents.iter().filter(|u| !u.alerts.is_empty()) {
            if !written_states.contains(&update.agent_id) {
                continue;
            }
            for (alert, hooks) in &update.alerts {
                let batch = next_batch(&mut tx, &mut batch).await?;
                written += insert_outbox(&mut tx, alert, hooks, batch, now).await?;
            }
        }
        sqlx::query(
            "INSERT INTO monitor_state (id, state, polled_version, polled_at) VALUES (1, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
                 polled_version = coalesce(excluded.polled_version, polled_version),
                 polled_at = coalesce(excluded.polled_at, polled_at)",
        )
        .bind(to_json(monitor))
        .bind(polled.map(|p| p.version))
        .bind(polled.map(|p| millis(p.started_at)))
        .execute(&mut *tx)
        .await?;
        for (alert, hooks) in monitor_alerts {
            let batch = next_batch(&mut tx, &mut batch).await?;
            written += insert_outbox(&mut tx, alert, hooks, batch, now).await?;
        }
        tx.commit().await?;
        Ok(written)
    }
}

/// Writes a cycle's progress, unless the store holds a later cycle's already (a commit that
/// overtook a lease renewal carrying older progress).
pub(super) async fn write_progress(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    progress: &Progress,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO monitor_state (id, state, polled_version, polled_at) VALUES (1, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state,
             polled_version = excluded.polled_version, polled_at = excluded.polled_at
         WHERE monitor_state.polled_at IS NULL OR monitor_state.polled_at < excluded.polled_at",
    )
    .bind(to_json(&progress.monitor))
    .bind(progress.polled.version)
    .bind(millis(progress.polled.started_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The cycle's batch: taken from the sequence the first time the cycle queues an alert.
pub(super) async fn next_batch(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    batch: &mut Option<i64>,
) -> Result<i64, StoreError> {
    if let Some(batch) = *batch {
        return Ok(batch);
    }
    let next: i64 = sqlx::query_scalar(
        "UPDATE outbox_batch_sequence SET last = last + 1 WHERE id = 1 RETURNING last",
    )
    .fetch_one(&mut **tx)
    .await?;
    *batch = Some(next);
    Ok(next)
}

/// The outbox's `agent_id` and `kind` columns of an alert (`None` for the monitor's).
pub(super) fn outbox_columns(alert: &Alert) -> (Option<String>, String) {
    let (agent_id, kind) = match alert {
        Alert::Agent(a) => (Some(a.agent.id.to_string()), to_json(&a.kind)),
        Alert::Monitor(m) => (None, to_json(&m.kind)),
    };
    (agent_id, kind.trim_matches('"').to_owned())
}

pub(super) async fn insert_outbox(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    alert: &Alert,
    hooks: &[Webhook],
    batch: i64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    // The alert's event first, also when it goes nowhere; then per destination the entry and
    // its delivery, the entry's record in the event log.
    let event = insert_event(tx, alert).await?;
    let (agent_id, kind) = outbox_columns(alert);
    for hook in hooks {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (platform, url, agent_id, kind, alert, next_attempt_at, created_at, batch, event_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(platform_name(hook.platform))
        .bind(hook.url.expose().as_str())
        .bind(&agent_id)
        .bind(&kind)
        .bind(to_json(alert))
        .bind(millis(now))
        .bind(millis(now))
        .bind(batch)
        .bind(event)
        .fetch_one(&mut **tx)
        .await?;
        insert_delivery(tx, id, event, hook).await?;
    }
    Ok(hooks.len())
}

impl SqliteStore {
    /// The agents `query` reads and the settings version, in one transaction so they agree.
    async fn snapshot(
        &self,
        query: &'static str,
        decode: fn(&sqlx::sqlite::SqliteRow) -> Result<AgentRecord, StoreError>,
    ) -> Result<Watched, StoreError> {
        let mut tx = self.pool.begin().await?;
        let version = sqlx::query_scalar(SETTINGS_VERSION)
            .fetch_one(&mut *tx)
            .await?;
        let agents = read_agents(&mut tx, query, decode).await?;
        tx.commit().await?;
        Ok(Watched { version, agents })
    }
}
