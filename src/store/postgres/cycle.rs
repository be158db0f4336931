//! [`CycleStore`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;

use super::history::{apply_health_edges, next_ids};
use super::lease::check_fence;
use super::rows::{agent_from_row, column, read_agents, settings_from_row, text};
use super::{
    PostgresStore, SETTINGS_VERSION, STATE_WRITE_CHUNK, SettingsLock, lock_settings, millis,
    platform_name, to_json,
};
use crate::domain::{Alert, HealthEdge, Webhook};
use crate::store::{
    AgentRecord, AgentUpdate, CycleStore, Fence, Polled, Progress, Routed, SettingsVersion,
    StoreError, Watched, corrupt, parse_agent_id,
};
use crate::tracker::MonitorState;

#[async_trait]
impl CycleStore for PostgresStore {
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
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
        check_fence(&mut tx, fence).await?;
        // Shared: cycles do not wait for each other, but no agent is added, removed or changed
        // until this commits, and this takes no agent row a settings writer holds.
        lock_settings(&mut tx, SettingsLock::Share).await?;
        let version = polled.map_or(SettingsVersion::MAX, |p| p.version);
        // The agents whose state went in: still the ones the cycle polled (not removed, nor
        // removed and added again, while it ran). Their alerts go in with them; no others'.
        // One statement per chunk, the ids and states as two arrays.
        let mut written_states = std::collections::HashSet::new();
        for chunk in agents.chunks(STATE_WRITE_CHUNK) {
            let ids: Vec<String> = chunk.iter().map(|u| u.agent_id.to_string()).collect();
            let states: Vec<String> = chunk.iter().map(|u| to_json(u.state)).collect();
            let mut rows = sqlx::query(
                "UPDATE agents SET state = u.state
                 FROM unnest($1::text[], $2::text[]) AS u(id, state)
                 WHERE agents.agent_id = u.id AND agents.added_version <= $3
                 RETURNING agents.agent_id",
            )
            .bind(ids)
            .bind(states)
            .bind(version)
            .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                written_states.insert(parse_agent_id(&column::<String>(&row, "agent_id")?)?);
            }
        }
        // Their health edges too: an interval is never written for an agent without its state.
        let edges: Vec<(String, HealthEdge)> = agents
            .iter()
            .filter(|u| written_states.contains(&u.agent_id))
            .filter_map(|u| Some((u.agent_id.to_string(), u.health?)))
            .collect();
        apply_health_edges(&mut tx, &edges).await?;
        let mut outbox = OutboxRows::default();
        for update in agents.iter().filter(|u| !u.alerts.is_empty()) {
            if !written_states.contains(&update.agent_id) {
                continue;
            }
            for (alert, hooks) in &update.alerts {
                outbox.push(alert, hooks);
            }
        }
        for (alert, hooks) in monitor_alerts {
            outbox.push(alert, hooks);
        }
        sqlx::query(
            "INSERT INTO monitor_state (id, state, polled_version, polled_at) VALUES (1, $1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state,
                 polled_version = coalesce(excluded.polled_version, monitor_state.polled_version),
                 polled_at = coalesce(excluded.polled_at, monitor_state.polled_at)",
        )
        .bind(to_json(monitor))
        .bind(polled.map(|p| p.version))
        .bind(polled.map(|p| millis(p.started_at)))
        .execute(&mut *tx)
        .await?;
        let written = outbox.insert(&mut tx, now).await?;
        tx.commit().await?;
        Ok(written)
    }
}

/// A cycle's events and outbox entries, gathered to be written in a few statements: one per
/// table, whatever the number of alerts.
#[derive(Default)]
struct OutboxRows {
    /// Whether the cycle queued any alert (even one without a destination): as on SQLite, that
    /// takes the cycle's batch number.
    any: bool,
    /// One per alert.
    events: EventRows,
    /// One per (alert, destination): the index of its event in `events`.
    event: Vec<usize>,
    platform: Vec<&'static str>,
    url: Vec<String>,
    /// The URL masked, for the event log.
    masked: Vec<String>,
    agent_id: Vec<Option<String>>,
    kind: Vec<String>,
    alert: Vec<String>,
}

/// The events of a cycle's alerts, column by column.
#[derive(Default)]
struct EventRows {
    at: Vec<i64>,
    agent_id: Vec<Option<String>>,
    kind: Vec<&'static str>,
    from_status: Vec<Option<String>>,
    to_status: Vec<Option<String>>,
    summary: Vec<String>,
}

impl OutboxRows {
    fn push(&mut self, alert: &Alert, hooks: &[Webhook]) {
        self.any = true;
        let event = self.events.at.len();
        let (from, to) = alert.statuses();
        self.events.at.push(millis(alert.at()));
        self.events
            .agent_id
            .push(alert.agent_id().map(ToString::to_string));
        self.events.kind.push(alert.kind_name());
        self.events.from_status.push(from.map(ToOwned::to_owned));
        self.events.to_status.push(to.map(ToOwned::to_owned));
        self.events.summary.push(alert.summary());
        let (agent_id, kind) = alert_columns(alert);
        let json = to_json(alert);
        for hook in hooks {
            self.event.push(event);
            self.platform.push(platform_name(hook.platform));
            self.url.push(hook.url.expose().as_str().to_owned());
            self.masked.push(hook.url.masked());
            self.agent_id.push(agent_id.clone());
            self.kind.push(kind.clone());
            self.alert.push(json.clone());
        }
    }

    /// Writes the events, then the entries in order under the cycle's batch number, each with
    /// its delivery; returns how many entries.
    async fn insert(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if !self.any {
            return Ok(0);
        }
        // The batch sequence is a row: its UPDATE holds the row until commit, so concurrent
        // cycles (there should be none: one leader) would take numbers one after the other.
        let batch: i64 = sqlx::query_scalar(
            "UPDATE outbox_batch_sequence SET last = last + 1 WHERE id = 1 RETURNING last",
        )
        .fetch_one(&mut **tx)
        .await?;
        // Ids taken first: each entry and delivery names its event's, and entries keep the
        // order they were gathered in.
        let event_ids = next_ids(tx, "events", self.events.at.len()).await?;
        let e = self.events;
        sqlx::query(
            "INSERT INTO events (id, at, agent_id, agent_version, kind, from_status, to_status,
                 summary)
             SELECT u.id, u.at, u.agent_id, a.added_version, u.kind, u.from_status,
                 u.to_status, u.summary
             FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::text[])
                 AS u(id, at, agent_id, kind, from_status, to_status, summary)
             LEFT JOIN agents a ON a.agent_id = u.agent_id",
        )
        .bind(&event_ids)
        .bind(e.at)
        .bind(e.agent_id)
        .bind(e.kind)
        .bind(e.from_status)
        .bind(e.to_status)
        .bind(e.summary)
        .execute(&mut **tx)
        .await?;
        let written = self.url.len();
        if written == 0 {
            return Ok(0);
        }
        let ids = next_ids(tx, "outbox", written).await?;
        let events: Vec<i64> = self.event.iter().map(|&i| event_ids[i]).collect();
        sqlx::query(
            "INSERT INTO outbox (id, platform, url, agent_id, kind, alert, next_attempt_at,
                 created_at, batch, event_id)
             SELECT u.id, u.platform, u.url, u.agent_id, u.kind, u.alert, $8, $8, $9, u.event_id
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::bigint[])
                 AS u(id, platform, url, agent_id, kind, alert, event_id)",
        )
        .bind(&ids)
        .bind(&self.platform)
        .bind(self.url)
        .bind(self.agent_id)
        .bind(self.kind)
        .bind(self.alert)
        .bind(&events)
        .bind(millis(now))
        .bind(batch)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO event_deliveries (outbox_id, event_id, platform, webhook)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[])",
        )
        .bind(&ids)
        .bind(&events)
        .bind(&self.platform)
        .bind(self.masked)
        .execute(&mut **tx)
        .await?;
        Ok(written)
    }
}

/// The outbox's `agent_id` and `kind` columns of an alert.
pub(super) fn alert_columns(alert: &Alert) -> (Option<String>, String) {
    let (agent_id, kind) = match alert {
        Alert::Agent(a) => (Some(a.agent.id.to_string()), to_json(&a.kind)),
        Alert::Monitor(m) => (None, to_json(&m.kind)),
    };
    (agent_id, kind.trim_matches('"').to_owned())
}

impl PostgresStore {
    /// The agents `query` reads and the settings version, in one snapshot so they agree. On
    /// SQLite any transaction gives that; here READ COMMITTED would take a new snapshot per
    /// statement, and a change committed between the two reads would be missed by one of them.
    async fn snapshot(
        &self,
        query: &'static str,
        decode: fn(&sqlx::postgres::PgRow) -> Result<AgentRecord, StoreError>,
    ) -> Result<Watched, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let version = sqlx::query_scalar(SETTINGS_VERSION)
            .fetch_one(&mut *tx)
            .await?;
        let agents = read_agents(&mut tx, query, decode).await?;
        tx.commit().await?;
        Ok(Watched { version, agents })
    }
}

/// Writes a cycle's progress, unless the store holds a later cycle's already (a commit that
/// overtook a lease renewal carrying older progress).
pub(super) async fn write_progress(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    progress: &Progress,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO monitor_state (id, state, polled_version, polled_at) VALUES (1, $1, $2, $3)
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
