//! [`CycleStore`]: the snapshot a cycle polls, and its one commit.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::history::{apply_health_edges, insert_alerts};
use super::query::{Sql, Value, sql};
use super::{Dialect, SettingsLock, SqlStore, number, to_json};
use crate::domain::AgentId;
use crate::store::rows::{StoredRow, agent_from_row, settings_from_row};
use crate::store::rules::kept;
use crate::store::{
    AgentRecord, AgentUpdate, CycleStore, Fence, Polled, Progress, Routed, SettingsVersion,
    StoreError, Watched, corrupt, during, parse_agent_id,
};
use crate::tracker::MonitorState;

/// Agents whose new state one statement writes: two parameters each, well inside SQLite's
/// 32,766 and PostgreSQL's 65,535.
const STATE_WRITE_CHUNK: usize = 1_000;

pub(super) const SETTINGS_VERSION: &str = "SELECT version AS n FROM settings_version WHERE id = 1";

/// Every agent column, and `last_poll_at`: when the last committed cycle began, for the agents
/// it polled (those added at or before its settings version).
pub(super) const AGENTS_WITH_LAST_POLL: &str = "SELECT agents.*,
        CASE WHEN agents.added_version <= m.polled_version THEN m.polled_at END AS last_poll_at
    FROM agents LEFT JOIN monitor_state m ON m.id = 1";

#[async_trait]
impl<D: Dialect> CycleStore for SqlStore<D> {
    async fn settings_version(&self) -> Result<SettingsVersion, StoreError> {
        let read =
            async { number::<D>(&mut *self.pool.acquire().await?, sql(SETTINGS_VERSION)).await };
        during("read the settings version", read).await
    }

    async fn watched(&self) -> Result<Watched, StoreError> {
        let agents = sql(AGENTS_WITH_LAST_POLL).push(" ORDER BY created_at, agent_id");
        during(
            "read the watched agents",
            self.watched_with(agents, agent_from_row),
        )
        .await
    }

    async fn watched_settings(&self) -> Result<Watched, StoreError> {
        let agents = sql(
            "SELECT agent_id, name, listed_name, source, slack_webhook_url, discord_webhook_url,
                    teams_webhook_url, webhook_url, muted, muted_until, created_at, added_version
             FROM agents ORDER BY created_at, agent_id",
        );
        during(
            "read the watched agents' settings",
            self.watched_with(agents, settings_from_row),
        )
        .await
    }

    async fn monitor_state(&self) -> Result<MonitorState, StoreError> {
        let q = sql("SELECT state FROM monitor_state WHERE id = 1");
        let state = during(
            "read the monitor's state",
            self.first(q, |row| row.text("state")),
        );
        match state.await? {
            Some(json) => serde_json::from_str(&json).map_err(|e| corrupt("monitor state", e)),
            None => Ok(MonitorState::default()),
        }
    }

    async fn save_progress(&self, fence: Fence, progress: &Progress) -> Result<(), StoreError> {
        let save = async {
            let mut tx = self.write(fence, SettingsLock::None).await?;
            write_progress::<D>(&mut tx, progress).await?;
            Ok(tx.commit().await?)
        };
        during("save the cycle's progress", save).await
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
        let commit = async {
            // Shared: no agent is added, removed or changed until this commits.
            let mut tx = self.write(fence, SettingsLock::Share).await?;
            let version = polled.map_or(SettingsVersion::MAX, |p| p.version);
            let written = write_states::<D>(&mut tx, agents, version).await?;
            let kept = kept(agents, &written, monitor_alerts);
            apply_health_edges::<D>(&mut tx, &kept.edges).await?;
            let q = sql(
                "INSERT INTO monitor_state (id, state, polled_version, polled_at) VALUES (1, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state,
                     polled_version = coalesce(excluded.polled_version, monitor_state.polled_version),
                     polled_at = coalesce(excluded.polled_at, monitor_state.polled_at)",
            );
            let q = q.bind(to_json(monitor)?).bind(polled.map(|p| p.version));
            D::execute(&mut tx, q.bind(polled.map(|p| p.started_at))).await?;
            let mut entries = 0;
            if !kept.alerts.is_empty() {
                let batch = next_batch::<D>(&mut tx).await?;
                entries = insert_alerts::<D>(&mut tx, &kept.alerts, batch, now).await?;
            }
            tx.commit().await?;
            Ok(entries)
        };
        during("commit the cycle", commit).await
    }
}

impl<D: Dialect> SqlStore<D> {
    /// The agents `agents` reads and the settings version, in one snapshot so they agree.
    async fn watched_with(
        &self,
        agents: Sql,
        decode: fn(&D::Row) -> Result<AgentRecord, StoreError>,
    ) -> Result<Watched, StoreError> {
        let mut tx = self.snapshot().await?;
        let version = number::<D>(&mut tx, sql(SETTINGS_VERSION)).await?;
        let agents = D::all(&mut tx, agents, decode).await?;
        tx.commit().await?;
        Ok(Watched { version, agents })
    }
}

/// Writes the agents' new states, one statement per chunk (after an outage that can be every
/// agent), unless an agent was added after `version`; returns the agents whose state went in.
async fn write_states<D: Dialect>(
    tx: &mut D::Connection,
    agents: &[AgentUpdate<'_>],
    version: SettingsVersion,
) -> Result<HashSet<AgentId>, StoreError> {
    let mut written = HashSet::new();
    for chunk in agents.chunks(STATE_WRITE_CHUNK) {
        let rows: Vec<Vec<Value>> = chunk
            .iter()
            .map(|u| Ok(vec![u.agent_id.into(), to_json(u.state)?.into()]))
            .collect::<Result<_, StoreError>>()?;
        let q = sql("WITH u(id, state) AS (VALUES ")
            .rows(rows)
            .push(
                ") UPDATE agents SET state = u.state FROM u
                 WHERE agents.agent_id = u.id AND agents.added_version <= ",
            )
            .bind(version)
            .push(" RETURNING agents.agent_id");
        let ids = D::all(tx, q, |row| parse_agent_id(&row.text("agent_id")?)).await?;
        written.extend(ids);
    }
    Ok(written)
}

/// Writes a cycle's progress, unless the store holds a later cycle's already (a commit that
/// overtook a lease renewal carrying older progress).
pub(super) async fn write_progress<D: Dialect>(
    tx: &mut D::Connection,
    progress: &Progress,
) -> Result<(), StoreError> {
    let q = sql(
        "INSERT INTO monitor_state (id, state, polled_version, polled_at) VALUES (1, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state,
             polled_version = excluded.polled_version, polled_at = excluded.polled_at
         WHERE monitor_state.polled_at IS NULL OR monitor_state.polled_at < excluded.polled_at",
    );
    let q = q
        .bind(to_json(&progress.monitor)?)
        .bind(progress.polled.version);
    D::execute(tx, q.bind(progress.polled.started_at)).await?;
    Ok(())
}

/// The cycle's batch: the next number of the sequence, taken once a cycle queues an alert.
/// The sequence's row stays locked until commit, so batches follow the commits' order.
pub(super) async fn next_batch<D: Dialect>(tx: &mut D::Connection) -> Result<i64, StoreError> {
    let q =
        sql("UPDATE outbox_batch_sequence SET last = last + 1 WHERE id = 1 RETURNING last AS n");
    number::<D>(tx, q).await
}
