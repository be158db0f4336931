//! SQLite persistence (sqlx): watched agents, the tracker's state, and the outbox of alerts.
//!
//! The store is what makes a restart harmless. A poll cycle's state changes and the alerts they
//! produce are written in one transaction ([`Store::commit_cycle`]), so after a crash either
//! both exist or neither does: an alert is never lost and never produced twice. Only the states
//! that changed in substance are written; which agents a cycle polled, and when, is one row
//! (see `migrations/0003_settings_version.sql`). Queries are runtime-checked (`sqlx::query`),
//! so building needs no database.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use url::Url;

use crate::domain::alert::Alert;
use crate::domain::secret::SecretUrl;
use crate::domain::{AgentId, muted_at};
use crate::domain::{Platform, Webhook};
use crate::tracker::{AgentState, MonitorState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("agent {0} is already watched")]
    Conflict(AgentId),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data does not parse: {0}")]
    Corrupt(String),
}

/// Where a watched agent came from. Watch-all removes only the agents it added itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `WATCH_AGENT_IDS`.
    Env,
    /// `POST /agents`.
    Api,
    /// The organisation's listing (`WATCH_ALL_AGENTS`).
    Discovered,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::Api => "api",
            Self::Discovered => "discovered",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "env" => Ok(Self::Env),
            "api" => Ok(Self::Api),
            "discovered" => Ok(Self::Discovered),
            other => Err(corrupt("agent source", format!("{other:?}"))),
        }
    }
}

/// What one complete listing changed ([`Store::apply_listing`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingApplied {
    /// Agents watched from now on.
    pub added: Vec<AgentId>,
    /// Discovered agents unwatched: absent from two complete listings in a row.
    pub removed: Vec<AgentId>,
    /// Listed agents left unwatched because they were removed over the API.
    pub excluded: usize,
    /// Watched agents whose listed name changed.
    pub renamed: usize,
}

impl StoreError {
    /// The database could not be had in time: another writer held it past the busy timeout
    /// (SQLite's BUSY or LOCKED), or no connection was free. Worth a retry, unlike the others.
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::PoolTimedOut) => true,
            StoreError::Database(sqlx::Error::Database(e)) => {
                // The primary result code is the low byte of the extended one (517 is BUSY).
                e.code()
                    .and_then(|c| c.parse::<i32>().ok())
                    .is_some_and(|c| matches!(c & 0xff, 5 | 6))
            }
            _ => false,
        }
    }
}

/// A watched agent as stored: the operator's settings and the tracker's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub agent_id: AgentId,
    /// The name the operator set (over the API); see [`AgentRecord::display_name`].
    pub name: Option<String>,
    /// The agent's name in the organisation's listing, when watch-all has seen it.
    pub listed_name: Option<String>,
    pub source: Source,
    pub slack_webhook_url: Option<SecretUrl>,
    pub discord_webhook_url: Option<SecretUrl>,
    pub muted: bool,
    pub muted_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The settings version that added this agent: tells it from an earlier agent of the
    /// same id, removed since.
    pub added_version: SettingsVersion,
    /// What the tracker last saved. Read with [`Store::agents`], its `last_checked_at` is
    /// the start of the last cycle that polled the agent when that is later than the save.
    pub state: AgentState,
}

/// Counts the changes to the agents' settings (moved by the database's own triggers): equal
/// versions mean the same agents with the same settings.
pub type SettingsVersion = i64;

/// The watched agents as one consistent snapshot, and the settings version it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub version: SettingsVersion,
    pub agents: Vec<AgentRecord>,
}

/// Which agents a poll cycle polled: every agent of the snapshot at `version`; the polls
/// began at `started_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    pub version: SettingsVersion,
    pub started_at: DateTime<Utc>,
}

impl AgentRecord {
    /// The name alerts and answers show: the operator's, else the listing's.
    pub fn display_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.listed_name.as_deref())
    }

    /// Muted now: `muted`, until `muted_until` when it has one.
    pub fn is_muted(&self, now: DateTime<Utc>) -> bool {
        muted_at(self.muted, self.muted_until, now)
    }

    /// Where this agent's alerts go: its own webhooks when it has any, else the defaults.
    pub fn destinations(&self, defaults: &[Webhook]) -> Vec<Webhook> {
        let own = self.own_webhooks();
        if own.is_empty() {
            defaults.to_vec()
        } else {
            own
        }
    }

    /// The agent's own webhooks; empty when it has none (its alerts then go to the defaults).
    pub fn own_webhooks(&self) -> Vec<Webhook> {
        let slack = self
            .slack_webhook_url
            .clone()
            .map(|u| Webhook::new(Platform::Slack, u));
        let discord = self
            .discord_webhook_url
            .clone()
            .map(|u| Webhook::new(Platform::Discord, u));
        slack.into_iter().chain(discord).collect()
    }
}

/// A new agent, already validated by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAgent {
    pub name: Option<String>,
    pub slack_webhook_url: Option<Url>,
    pub discord_webhook_url: Option<Url>,
    pub muted: bool,
    pub muted_until: Option<DateTime<Utc>>,
}

/// A partial update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentPatch {
    pub name: Option<Option<String>>,
    pub slack_webhook_url: Option<Option<Url>>,
    pub discord_webhook_url: Option<Option<Url>>,
    pub muted: Option<bool>,
    pub muted_until: Option<Option<DateTime<Utc>>>,
}

/// An alert and the webhooks it goes to.
pub type Routed = (Alert, Vec<Webhook>);

/// One agent's outcome of a poll cycle that changed its state in substance (see
/// [`AgentState::differs_from`]) or produced alerts: its new state and the alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentUpdate {
    pub agent_id: AgentId,
    pub state: AgentState,
    pub alerts: Vec<Routed>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Delivered,
    Failed,
}

/// A webhook that answered "gone", and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadWebhook {
    pub webhook: Webhook,
    pub reason: String,
    pub since: DateTime<Utc>,
}

/// One alert for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    /// The poll cycle that produced it (a sequence, one number per cycle that queued alerts):
    /// one cycle's alerts to one destination go out together.
    pub batch: i64,
    pub webhook: Webhook,
    pub alert: Alert,
    pub status: OutboxStatus,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

const SETTINGS_VERSION: &str = "SELECT version FROM settings_version WHERE id = 1";

/// Every agent column, and `last_poll_at`: when the last committed cycle began, for the agents
/// it polled (those added at or before its settings version).
macro_rules! agents_with_last_poll {
    () => {
        "SELECT agents.*,
                CASE WHEN agents.added_version <= m.polled_version THEN m.polled_at END
                    AS last_poll_at
         FROM agents LEFT JOIN monitor_state m ON m.id = 1"
    };
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored time; one out of chrono's range is corrupt, not 1970.
fn from_millis(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| corrupt("time", format!("{ms} ms is out of range")))
}

/// Agents whose new state one `UPDATE` writes: two parameters each, well inside SQLite's
/// 32,766.
const STATE_WRITE_CHUNK: usize = 1_000;

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn platform_name(p: Platform) -> &'static str {
    match p {
        Platform::Slack => "slack",
        Platform::Discord => "discord",
    }
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://path`, `sqlite::memory:`),
    /// in WAL mode, and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a commit survives a process crash (SIGKILL, OOM) and skips
            // the fsync, which keeps the send-then-mark window short. A power loss can undo
            // the last commits, but a cycle's state and its alerts roll back together, so the
            // next cycle produces those alerts again: nothing is lost.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Rows cross from SQLite's worker thread in a channel; a roomy one lets a cycle's
            // `SELECT` of every agent stream without a thread hand-off every 50 rows.
            .row_buffer_size(1024);
        // An in-memory database exists once per connection: keep it to one.
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// A write transaction that takes SQLite's write lock up front (`BEGIN IMMEDIATE`), waiting
    /// up to the busy timeout for it. A deferred one that reads first and writes later fails at
    /// once ("database is locked") when another writer committed in between, and no wait helps.
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection; later calls fail. For shutdown (and tests of `/readyz`).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---------------------------------------------------------------- agents

    /// Adds an agent; [`StoreError::Conflict`] when it is already watched.
    pub async fn insert_agent(
        &self,
        id: AgentId,
        new: &NewAgent,
        now: DateTime<Utc>,
    ) -> Result<AgentRecord, StoreError> {
        let mut tx = self.write().await?;
        let result = sqlx::query(
            "INSERT INTO agents (agent_id, name, slack_webhook_url, discord_webhook_url, muted, muted_until, created_at, source)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'api') ON CONFLICT (agent_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(&new.name)
        .bind(new.slack_webhook_url.as_ref().map(Url::as_str))
        .bind(new.discord_webhook_url.as_ref().map(Url::as_str))
        .bind(new.muted)
        .bind(new.muted_until.map(millis))
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(id));
        }
        // Added again by hand: watch-all may list it from now on.
        sqlx::query("DELETE FROM unwatched_agents WHERE agent_id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        revive(
            &mut tx,
            new.slack_webhook_url.as_ref(),
            new.discord_webhook_url.as_ref(),
        )
        .await?;
        tx.commit().await?;
        self.agent(id)
            .await?
            .ok_or_else(|| corrupt("agent", "vanished after insert"))
    }

    /// Adds each id that is not watched yet (the `WATCH_AGENT_IDS` merge); returns how many
    /// were new. Idempotent: running it at every start-up changes nothing the second time.
    /// An id already watched becomes `env`-sourced, so watch-all never removes it.
    pub async fn ensure_agents(
        &self,
        ids: &[AgentId],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let mut added = 0;
        for id in ids {
            let new = sqlx::query(
                "INSERT INTO agents (agent_id, created_at, source) VALUES (?, ?, 'env')
                 ON CONFLICT (agent_id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(millis(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if new == 0 {
                sqlx::query(
                    "UPDATE agents SET source = 'env' WHERE agent_id = ? AND source <> 'env'",
                )
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            added += new;
        }
        tx.commit().await?;
        Ok(added)
    }

    pub async fn agent(&self, id: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        sqlx::query(concat!(agents_with_last_poll!(), " WHERE agent_id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| agent_from_row(&row))
            .transpose()
    }

    /// Every watched agent, oldest first.
    pub async fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        Ok(self.watched(true).await?.agents)
    }

    /// The current settings version: a poll cycle holding the agents of this version need
    /// not read them again.
    pub async fn settings_version(&self) -> Result<SettingsVersion, StoreError> {
        Ok(sqlx::query_scalar(SETTINGS_VERSION)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Every watched agent, oldest first, and the settings version they are at, read in one
    /// transaction so the two agree. Without `states` each state is left at the default: for
    /// a poll cycle that holds the states it wrote, since the state's JSON is most of the read.
    pub async fn watched(&self, states: bool) -> Result<Watched, StoreError> {
        let mut tx = self.pool.begin().await?;
        let version = sqlx::query_scalar(SETTINGS_VERSION)
            .fetch_one(&mut *tx)
            .await?;
        let agents = if states {
            read_agents(
                &mut tx,
                concat!(agents_with_last_poll!(), " ORDER BY created_at, agent_id"),
                agent_from_row,
            )
            .await?
        } else {
            read_agents(
                &mut tx,
                "SELECT agent_id, name, listed_name, source, slack_webhook_url, discord_webhook_url,
                        muted, muted_until, created_at, added_version
                 FROM agents ORDER BY created_at, agent_id",
                settings_from_row,
            )
            .await?
        };
        tx.commit().await?;
        Ok(Watched { version, agents })
    }

    /// Applies `patch`; `None` when the agent is not watched.
    pub async fn update_agent(
        &self,
        id: AgentId,
        patch: &AgentPatch,
    ) -> Result<Option<AgentRecord>, StoreError> {
        let mut tx = self.write().await?;
        let exists = sqlx::query("SELECT 1 FROM agents WHERE agent_id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let key = id.to_string();
        // Settings the operator gave are never dropped with the agent: a discovered agent
        // changed over the API becomes the operator's, which watch-all does not remove.
        sqlx::query(
            "UPDATE agents SET source = 'api' WHERE agent_id = ? AND source = 'discovered'",
        )
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        if let Some(name) = &patch.name {
            sqlx::query("UPDATE agents SET name = ? WHERE agent_id = ?")
                .bind(name)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        revive(
            &mut tx,
            patch.slack_webhook_url.as_ref().and_then(Option::as_ref),
            patch.discord_webhook_url.as_ref().and_then(Option::as_ref),
        )
        .await?;
        if let Some(url) = &patch.slack_webhook_url {
            sqlx::query("UPDATE agents SET slack_webhook_url = ? WHERE agent_id = ?")
                .bind(url.as_ref().map(Url::as_str))
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(url) = &patch.discord_webhook_url {
            sqlx::query("UPDATE agents SET discord_webhook_url = ? WHERE agent_id = ?")
                .bind(url.as_ref().map(Url::as_str))
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(muted) = patch.muted {
            sqlx::query("UPDATE agents SET muted = ? WHERE agent_id = ?")
                .bind(muted)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(until) = patch.muted_until {
            sqlx::query("UPDATE agents SET muted_until = ? WHERE agent_id = ?")
                .bind(until.map(millis))
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.agent(id).await
    }

    /// Lifts every mute whose end time has passed (`muted` and `muted_until` cleared), so the
    /// agent's JSON shows what is in force. Returns how many were lifted.
    pub async fn lift_expired_mutes(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE agents SET muted = 0, muted_until = NULL WHERE muted_until IS NOT NULL AND muted_until <= ?",
        )
        .bind(millis(now))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Stops watching an agent; `false` when it was not watched. Its alerts already in the
    /// outbox stay there and are still delivered. Watch-all does not add it back until it is
    /// added again ([`Store::insert_agent`]).
    pub async fn delete_agent(&self, id: AgentId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let result = sqlx::query("DELETE FROM agents WHERE agent_id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO unwatched_agents (agent_id, since) VALUES (?, ?)
             ON CONFLICT (agent_id) DO UPDATE SET since = excluded.since",
        )
        .bind(id.to_string())
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Brings the watched agents in line with one complete listing of the organisation
    /// (`listed`: its agents to watch, with their listed names), in one transaction: a listed
    /// agent not watched is added as `discovered` (unless it was removed over the API); every
    /// watched agent listed gets its listed name; a `discovered` agent absent from this and
    /// the previous complete listing is unwatched. Agents from the env or the API are never
    /// removed here.
    pub async fn apply_listing(
        &self,
        listed: &[(AgentId, Option<String>)],
        now: DateTime<Utc>,
    ) -> Result<ListingApplied, StoreError> {
        let mut tx = self.write().await?;
        let mut current = std::collections::HashMap::new();
        {
            let mut rows =
                sqlx::query("SELECT agent_id, source, listed_name, absent_listings FROM agents")
                    .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                let id: AgentId = text(&row, "agent_id")?
                    .parse()
                    .map_err(|e| corrupt("agent_id", e))?;
                let source = Source::parse(&text(&row, "source")?)?;
                let listed_name: Option<String> = column(&row, "listed_name")?;
                let absent: i64 = column(&row, "absent_listings")?;
                current.insert(id, (source, listed_name, absent));
            }
        }
        let unwatched: std::collections::HashSet<String> =
            sqlx::query_scalar("SELECT agent_id FROM unwatched_agents")
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let mut applied = ListingApplied::default();
        let mut listed_ids = std::collections::HashSet::new();
        for (id, name) in listed {
            listed_ids.insert(*id);
            let key = id.to_string();
            match current.get(id) {
                Some((_, old_name, absent)) => {
                    if old_name != name {
                        applied.renamed += 1;
                        sqlx::query("UPDATE agents SET listed_name = ? WHERE agent_id = ?")
                            .bind(name)
                            .bind(&key)
                            .execute(&mut *tx)
                            .await?;
                    }
                    if *absent != 0 {
                        sqlx::query("UPDATE agents SET absent_listings = 0 WHERE agent_id = ?")
                            .bind(&key)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                None if unwatched.contains(&key) => applied.excluded += 1,
                None => {
                    sqlx::query(
                        "INSERT INTO agents (agent_id, listed_name, created_at, source)
                         VALUES (?, ?, ?, 'discovered')",
                    )
                    .bind(&key)
                    .bind(name)
                    .bind(millis(now))
                    .execute(&mut *tx)
                    .await?;
                    applied.added.push(*id);
                }
            }
        }
        for (id, (source, _, absent)) in &current {
            if *source != Source::Discovered || listed_ids.contains(id) {
                continue;
            }
            let key = id.to_string();
            if absent + 1 >= 2 {
                sqlx::query("DELETE FROM agents WHERE agent_id = ?")
                    .bind(&key)
                    .execute(&mut *tx)
                    .await?;
                applied.removed.push(*id);
            } else {
                sqlx::query(
                    "UPDATE agents SET absent_listings = absent_listings + 1 WHERE agent_id = ?",
                )
                .bind(&key)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        applied.removed.sort();
        Ok(applied)
    }

    // ---------------------------------------------------------------- poll cycles

    pub async fn monitor_state(&self) -> Result<MonitorState, StoreError> {
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

    /// Writes a cycle's outcome in one transaction: the agents' new states, the monitor's
    /// state, which agents the cycle polled and when (`polled`), and one outbox entry per
    /// (alert, destination). An agent removed while the cycle ran keeps no state and gets no
    /// alert; with `polled`, one removed and added again under the same id (after
    /// `polled.version`) gets neither the removed one's state nor its alerts. `None` records no
    /// cycle and so cannot tell a re-added agent: for writes that are not a poll cycle's.
    /// Returns the number of outbox entries written.
    pub async fn commit_cycle(
        &self,
        polled: Option<Polled>,
        agents: &[AgentUpdate],
        monitor: &MonitorState,
        monitor_alerts: &[Routed],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.write().await?;
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
                    .bind(to_json(&update.state));
            }
            let mut rows = query.bind(version).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                written_states.insert(row.try_get::<String, _>(0)?);
            }
        }
        let mut batch = None;
        for update in agents.iter().filter(|u| !u.alerts.is_empty()) {
            if !written_states.contains(&update.agent_id.to_string()) {
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

    // ---------------------------------------------------------------- outbox

    /// Deletes delivered and failed entries that finished before `now - retention`, at most
    /// `batch` rows a statement, each in its own short write, so a poll cycle waiting for the
    /// database waits for one batch at most. Pending entries stay, however old. Returns how many
    /// were deleted.
    pub async fn prune_outbox(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let cutoff = chrono::Duration::from_std(retention)
            .ok()
            .and_then(|r| now.checked_sub_signed(r))
            .map_or(i64::MIN, millis);
        let mut deleted = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM outbox WHERE id IN (
                     SELECT id FROM outbox
                     WHERE status <> 'pending' AND finished_at IS NOT NULL AND finished_at < ?
                     LIMIT ?)",
            )
            .bind(cutoff)
            .bind(batch.max(1))
            .execute(&self.pool)
            .await?
            .rows_affected();
            deleted += n;
            if n < u64::from(batch.max(1)) {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }

    /// The database's size in bytes (pages in use and free), for `/metrics`.
    pub async fn database_bytes(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records that a webhook answered "gone"; `true` when it was not known dead before.
    pub async fn mark_webhook_dead(
        &self,
        hook: &Webhook,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO dead_webhooks (platform, url, reason, since) VALUES (?, ?, ?, ?)
             ON CONFLICT (platform, url) DO NOTHING",
        )
        .bind(platform_name(hook.platform))
        .bind(hook.url.expose().as_str())
        .bind(reason)
        .bind(millis(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted > 0)
    }

    /// Forgets that a webhook was dead (its URL was set again).
    pub async fn clear_webhook_dead(&self, hook: &Webhook) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dead_webhooks WHERE platform = ? AND url = ?")
            .bind(platform_name(hook.platform))
            .bind(hook.url.expose().as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn dead_webhooks(&self) -> Result<Vec<DeadWebhook>, StoreError> {
        sqlx::query("SELECT * FROM dead_webhooks ORDER BY since")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let platform =
                    platform(&text(row, "platform")?).map_err(|e| within(e, "dead webhook"))?;
                let url =
                    Url::parse(&text(row, "url")?).map_err(|e| corrupt("dead webhook url", e))?;
                Ok(DeadWebhook {
                    webhook: Webhook::new(platform, SecretUrl::new(url)),
                    reason: text(row, "reason")?,
                    since: time(row, "since").map_err(|e| within(e, "dead webhook"))?,
                })
            })
            .collect()
    }

    /// For each destination, its oldest pending entry: entries to one destination go out in
    /// order, so a later one waits while an earlier one is being retried.
    pub async fn outbox_heads(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        sqlx::query(
            "SELECT * FROM outbox WHERE id IN
               (SELECT MIN(id) FROM outbox WHERE status = 'pending' GROUP BY platform, url)
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(outbox_from_row)
        .collect()
    }

    /// The oldest pending entry for one destination.
    pub async fn outbox_head_for(&self, hook: &Webhook) -> Result<Option<OutboxEntry>, StoreError> {
        sqlx::query("SELECT * FROM outbox WHERE status = 'pending' AND platform = ? AND url = ? ORDER BY id LIMIT 1")
            .bind(platform_name(hook.platform))
            .bind(hook.url.expose().as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| outbox_from_row(&r))
            .transpose()
    }

    pub async fn outbox_entry(&self, id: i64) -> Result<Option<OutboxEntry>, StoreError> {
        sqlx::query("SELECT * FROM outbox WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| outbox_from_row(&r))
            .transpose()
    }

    /// Every entry, oldest first (for tests and inspection).
    pub async fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        sqlx::query("SELECT * FROM outbox ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(outbox_from_row)
            .collect()
    }

    pub async fn outbox_pending(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The pending entries of one destination produced by one cycle, oldest first.
    pub async fn outbox_batch(
        &self,
        hook: &Webhook,
        batch: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        sqlx::query(
            "SELECT * FROM outbox WHERE status = 'pending' AND platform = ? AND url = ? AND batch = ? ORDER BY id",
        )
        .bind(platform_name(hook.platform))
        .bind(hook.url.expose().as_str())
        .bind(batch)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(outbox_from_row)
        .collect()
    }

    /// Marks entries delivered (they went out in one message, or one each).
    pub async fn mark_delivered(&self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL, finished_at = ?
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(millis(now))
        .bind(to_json(&ids))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn schedule_retry(
        &self,
        ids: &[i64],
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(error)
        .bind(millis(next_attempt_at))
        .bind(to_json(&ids))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up on entries, keeping them and the reason.
    pub async fn mark_failed(
        &self,
        ids: &[i64],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?, finished_at = ?
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(reason)
        .bind(millis(now))
        .bind(to_json(&ids))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Forgets that these webhook URLs were dead: setting a URL (even the same one again, with
/// `POST` or `PATCH`) is the operator's word that it works now.
async fn revive(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    slack: Option<&Url>,
    discord: Option<&Url>,
) -> Result<(), StoreError> {
    for (platform, url) in [("slack", slack), ("discord", discord)] {
        if let Some(url) = url {
            sqlx::query("DELETE FROM dead_webhooks WHERE platform = ? AND url = ?")
                .bind(platform)
                .bind(url.as_str())
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// The cycle's batch: taken from the sequence the first time the cycle queues an alert.
async fn next_batch(
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

async fn insert_outbox(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    alert: &Alert,
    hooks: &[Webhook],
    batch: i64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let (agent_id, kind) = match alert {
        Alert::Agent(a) => (Some(a.agent.id.to_string()), to_json(&a.kind)),
        Alert::Monitor(m) => (None, to_json(&m.kind)),
    };
    let kind = kind.trim_matches('"').to_owned();
    for hook in hooks {
        sqlx::query(
            "INSERT INTO outbox (platform, url, agent_id, kind, alert, next_attempt_at, created_at, batch)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(platform_name(hook.platform))
        .bind(hook.url.expose().as_str())
        .bind(&agent_id)
        .bind(&kind)
        .bind(to_json(alert))
        .bind(millis(now))
        .bind(millis(now))
        .bind(batch)
        .execute(&mut **tx)
        .await?;
    }
    Ok(hooks.len())
}

/// A column's value, or [`StoreError::Corrupt`] naming it when it does not decode.
fn column<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name).map_err(|e| corrupt(name, e))
}

fn text(row: &SqliteRow, name: &str) -> Result<String, StoreError> {
    column(row, name)
}

/// A time column (Unix milliseconds).
fn time(row: &SqliteRow, name: &str) -> Result<DateTime<Utc>, StoreError> {
    from_millis(column(row, name)?).map_err(|e| within(e, name))
}

fn optional_time(row: &SqliteRow, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    column::<Option<i64>>(row, name)?
        .map(from_millis)
        .transpose()
        .map_err(|e| within(e, name))
}

/// `e`, said to be about `place` (a column, or a row's key).
fn within(e: StoreError, place: &str) -> StoreError {
    match e {
        StoreError::Corrupt(why) => StoreError::Corrupt(format!("{place}: {why}")),
        other => other,
    }
}

fn url_column(row: &SqliteRow, name: &str) -> Result<Option<SecretUrl>, StoreError> {
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
async fn read_agents(
    conn: &mut sqlx::SqliteConnection,
    sql: &'static str,
    parse: fn(&SqliteRow) -> Result<AgentRecord, StoreError>,
) -> Result<Vec<AgentRecord>, StoreError> {
    let mut rows = sqlx::query(sql).fetch(conn);
    let mut agents = Vec::new();
    while let Some(row) = rows.try_next().await? {
        agents.push(parse(&row)?);
    }
    Ok(agents)
}

/// The key of an agent's row, for errors: what an operator can look up.
fn agent_key(row: &SqliteRow) -> String {
    row.try_get::<String, _>("agent_id")
        .map(|id| format!("agent {id:?}"))
        .unwrap_or_else(|_| "agent (unreadable agent_id)".to_owned())
}

fn agent_from_row(row: &SqliteRow) -> Result<AgentRecord, StoreError> {
    let read = || -> Result<AgentRecord, StoreError> {
        let state = text(row, "state")?;
        let mut agent = AgentRecord {
            state: serde_json::from_str(&state).map_err(|e| corrupt("state", e))?,
            ..settings_from_row(row)?
        };
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

/// An agent's settings; its state left at the default (the row need not have it).
fn settings_from_row(row: &SqliteRow) -> Result<AgentRecord, StoreError> {
    let read = || -> Result<AgentRecord, StoreError> {
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
    };
    read().map_err(|e| within(e, &agent_key(row)))
}

fn platform(name: &str) -> Result<Platform, StoreError> {
    match name {
        "slack" => Ok(Platform::Slack),
        "discord" => Ok(Platform::Discord),
        other => Err(corrupt(
            "platform",
            format!("{other:?} is not slack or discord"),
        )),
    }
}

fn outbox_from_row(row: &SqliteRow) -> Result<OutboxEntry, StoreError> {
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
