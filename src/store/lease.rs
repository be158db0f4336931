//! The leader lease: one row that says which process leads, until when, and in which term.
//!
//! Several `serve` processes may share one database; only the lease holder polls, decides and
//! delivers. The lease is taken or renewed by one atomic statement (a row update that succeeds
//! only for the holder or once the lease has expired), and every takeover moves the **term**.
//! The term is the fencing token: a leader's writes ([`Fence::Term`]) check it inside their own
//! transaction, so a leader that was paused past its lease and wakes up writes nothing once
//! another has taken over ([`StoreError::Fenced`](super::StoreError::Fenced)).
//!
//! A lease outlives a holder that crashed until it expires, unless the holder provably no
//! longer runs: the row records where it runs (its host identity, pid and start time) so that a
//! process on the same host can tell, and take it at once ([`LeaseStore::take_over_lease`],
//! fenced by the term like any takeover).
//!
//! Expiry is judged by one clock for everyone: the database server's on PostgreSQL (replicas on
//! several hosts need not agree on the time), the host's on SQLite (every process sharing the
//! file runs on that host).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// The lease's term: it grows at every change of holder.
pub type Term = i64;

/// Whose write this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// A leader's write, made only while `Term` is still the lease's term.
    Term(Term),
    /// Not a leader's write (one process driven by hand: tests, tools): no check.
    Unchecked,
}

/// Who claims the lease: a name for people, and where the process runs, for others on its
/// host to tell whether it still does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Holder {
    /// Unique across restarts; what the logs and `copy-db` show.
    pub name: String,
    /// The host identity its pid belongs to (boot and pid namespace); empty when unknown,
    /// and then only the lease's expiry frees it.
    pub host: String,
    pub pid: i64,
    /// The process's start time, in clock ticks since boot.
    pub started: i64,
}

impl Holder {
    /// A holder known only by name (tests, tools): its lease is freed only by expiry.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }
}

/// The lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// Who holds (or last held) it; empty before anyone took it.
    pub holder: String,
    /// Where the holder runs ([`Holder`]'s fields; empty and 0 when unknown).
    pub host: String,
    pub pid: i64,
    pub started: i64,
    pub term: Term,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the lease for `holder` for `ttl`, or renews it when `held` is the term `holder`
    /// holds. Returns the term held afterwards, or `None` when another holds an unexpired
    /// lease (or took it over since `held`). A renewal keeps the term; a takeover moves it.
    async fn claim_lease(
        &self,
        holder: &Holder,
        held: Option<Term>,
        ttl: Duration,
    ) -> Result<Option<Term>, StoreError>;

    /// Renews the lease `holder` holds in term `held` for `ttl`, as
    /// [`LeaseStore::claim_lease`] does, and when it is still that term's, writes `progress`
    /// in the same transaction (unless the store holds a later cycle's): a leader's steady
    /// cycles cost no write of their own. Returns the term held afterwards.
    async fn renew_lease_with(
        &self,
        holder: &Holder,
        held: Term,
        ttl: Duration,
        progress: &super::Progress,
    ) -> Result<Option<Term>, StoreError>;

    /// Takes the lease for `holder` for `ttl` while it is still in term `from` (whose holder
    /// the caller has found gone), or once it has expired, as a takeover: the term moves.
    /// `None` when another took it since.
    async fn take_over_lease(
        &self,
        holder: &Holder,
        from: Term,
        ttl: Duration,
    ) -> Result<Option<Term>, StoreError>;

    /// Gives the lease up at once (a clean shutdown), so a standby need not wait for it to
    /// expire. Does nothing when `term` is no longer `holder`'s.
    async fn release_lease(&self, holder: &str, term: Term) -> Result<(), StoreError>;

    /// The lease as stored (`None` before anyone took it).
    async fn lease(&self) -> Result<Option<LeaseInfo>, StoreError>;
}
