//! Persistence: watched agents, the tracker's state, dead webhooks and the outbox of alerts.
//!
//! The store is what makes a restart harmless. A poll cycle's state changes and the alerts they
//! produce are written in one transaction ([`CycleStore::commit_cycle`]), so after a crash
//! either both exist or neither does: an alert is never lost and never produced twice.
//!
//! Each concern is an interface of its own ([`AgentStore`], [`CycleStore`], [`WebhookStore`],
//! [`OutboxStore`], [`LeaseStore`], [`CopyStore`], [`HistoryStore`], [`IntegrationStore`], [`MaintenanceStore`]); a backend implements all
//! of them ([`Backend`]) and [`Store`] is a cheap, cloneable handle on one. The interfaces say
//! nothing of SQL. One implementation (`sql::SqlStore`) serves both databases: SQLite keeps
//! everything in one file; PostgreSQL lets several replicas share one database. Each statement
//! is written once; what truly differs is a `sql::Dialect`'s (`sqlite`, `postgres`).

mod agents;
mod copy;
mod cycle;
mod digest;
mod history;
mod integrations;
mod lease;
mod maintenance;
mod outbox;
mod postgres;
mod rows;
mod rules;
mod sql;
mod sqlite;
mod webhooks;

use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;

pub use crate::domain::{ListingApplied, ListingPlan, ListingSeen, Source};
pub use agents::{AgentPatch, AgentRecord, AgentStore, NewAgent};
pub use copy::{CopyStore, MonitorRow, Snapshot};
pub use cycle::{AgentUpdate, CycleStore, Polled, Progress, Routed, SettingsVersion, Watched};
pub use digest::{DigestCounts, DigestStore};
pub use history::{Event, EventDelivery, EventQuery, EventsAbout, HistoryStore};
pub use integrations::IntegrationStore;
pub use lease::{Fence, Holder, LeaseInfo, LeaseStore, Term};
pub use maintenance::MaintenanceStore;
pub use outbox::{OutboxEntry, OutboxStatus, OutboxStore};
pub use sqlite::sqlite_file;
pub use webhooks::{DeadWebhook, WebhookStore};

use self::sql::SqlStore;
use crate::domain::AgentId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("agent {0} is already watched")]
    Conflict(AgentId),
    /// A statement failed; `op` names the store's operation ("commit the cycle", …).
    #[error("{op}: database error: {source}")]
    Database {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data does not parse: {0}")]
    Corrupt(String),
    /// `copy-db`'s target already holds data.
    #[error("the target database is not empty ({0}): copy-db writes only into an empty one")]
    NotEmpty(String),
    /// A leader's write refused: the lease passed to another after term {0}.
    #[error("the leader lease passed to another process (term {0} is over): write refused")]
    Fenced(Term),
    /// A database URL of no backend; holds only what the URL starts with, never a password.
    #[error("unsupported database URL ({0}): use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
}

impl StoreError {
    /// The database could not be had in time: another writer held it past the busy timeout
    /// (SQLite's BUSY or LOCKED), PostgreSQL gave up on a conflict (a serialization failure, a
    /// deadlock, a lock not available), or no connection was free. Worth a retry, unlike the
    /// others.
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Database {
                source: sqlx::Error::PoolTimedOut,
                ..
            } => true,
            StoreError::Database {
                source: sqlx::Error::Database(e),
                ..
            } => {
                let Some(code) = e.code() else { return false };
                if e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    // SQLSTATE: serialization_failure, deadlock_detected, lock_not_available.
                    return matches!(&*code, "40001" | "40P01" | "55P03");
                }
                // The primary result code is the low byte of the extended one (517 is BUSY).
                code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
            }
            _ => false,
        }
    }
}

impl StoreError {
    /// Whether opening failed because of what the URL says (unreachable, which sqlx reports
    /// as no connection within the pool's time, refused, wrong password, a folder that does
    /// not exist, no such backend), rather than the database's state: a migration that
    /// failed, or a database that answered it is locked past the busy timeout, which the same
    /// URL may well get past on the next try.
    pub fn is_setting(&self) -> bool {
        match self {
            StoreError::Migrate(_) => false,
            StoreError::Database {
                source: sqlx::Error::Database(_),
                ..
            } => !self.is_busy(),
            _ => true,
        }
    }
}

/// What a database error says before the operation it happened in is named ([`during`]).
const UNNAMED: &str = "store";

impl From<sqlx::Error> for StoreError {
    fn from(source: sqlx::Error) -> Self {
        Self::Database {
            op: UNNAMED,
            source,
        }
    }
}

/// Runs `work`, one operation of the store's interfaces: a database error it ends in names
/// `op`, so the log line of a failed cycle says which statement broke.
pub(crate) async fn during<T>(
    op: &'static str,
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    work.await.map_err(|e| match e {
        StoreError::Database {
            op: UNNAMED,
            source,
        } => StoreError::Database { op, source },
        other => other,
    })
}

/// The time before which finished rows older than `retention` are deleted, in Unix
/// milliseconds as stored; `i64::MIN` (nothing deleted) when the retention reaches past any
/// representable time.
pub(crate) fn retention_cutoff(
    now: chrono::DateTime<chrono::Utc>,
    retention: std::time::Duration,
) -> i64 {
    chrono::Duration::from_std(retention)
        .ok()
        .and_then(|r| now.checked_sub_signed(r))
        .map_or(i64::MIN, |t| t.timestamp_millis())
}

/// A stored value that does not decode: the data is corrupt, and the error says where.
pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// An agent id as a row holds it (text), parsed: a commit keeps the ids it wrote as 16-byte
/// values, not strings (after an outage that is every agent's).
pub(crate) fn parse_agent_id(id: &str) -> Result<crate::domain::AgentId, StoreError> {
    id.parse().map_err(|e| corrupt("agent_id", e))
}

/// A database that keeps everything the service stores.
#[async_trait]
pub trait Backend:
    AgentStore
    + CycleStore
    + WebhookStore
    + OutboxStore
    + LeaseStore
    + CopyStore
    + HistoryStore
    + IntegrationStore
    + MaintenanceStore
    + DigestStore
    + Send
    + Sync
{
    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes every connection; later calls fail. For shutdown (and tests of `/readyz`).
    async fn close(&self);

    /// The database's size in bytes (pages in use and free), for `/metrics`.
    async fn database_bytes(&self) -> Result<i64, StoreError>;
}

/// The store: a handle on one backend, cheap to clone. Every method of the interfaces is
/// called on it directly (`store.agent(id)`).
#[derive(Clone)]
pub struct Store(Arc<dyn Backend>);

impl Store {
    /// Opens the database at `url` and brings its schema up to date: `sqlite://path` or
    /// `sqlite::memory:` (the file is created if needed), `postgres://…` or `postgresql://…`
    /// (the database must exist).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let (scheme, rest) = url.split_once(':').unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Self(Arc::new(
                during("open", SqlStore::<sqlx::Sqlite>::open(url)).await?,
            ))),
            "postgres" | "postgresql" => Ok(Self(Arc::new(
                during("open", SqlStore::<sqlx::Postgres>::open(url)).await?,
            ))),
            // Only a scheme followed by `//` is shown: what precedes the first `:` of something
            // that is not a URL (`user:password@host`) need not be a scheme.
            s if rest.starts_with("//")
                && !s.is_empty()
                && s.len() <= 16
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                Err(StoreError::UnsupportedUrl(format!("scheme {s:?}")))
            }
            _ => Err(StoreError::UnsupportedUrl("not a URL".to_owned())),
        }
    }
}

impl Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_url_says_is_the_settings_fault() {
        let unreachable = StoreError::from(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(unreachable.is_setting());
        assert!(StoreError::UnsupportedUrl("mysql".into()).is_setting());
        let migration = StoreError::Migrate(sqlx::migrate::MigrateError::VersionMissing(1));
        assert!(!migration.is_setting());
        // What an unreachable server looks like.
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_setting());
    }
}
