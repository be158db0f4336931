//! The digest's part of the store: the last digest's tick, what the digest counts, and the
//! claim of a tick with the digest's queueing in one fenced write, so each tick is sent once
//! however many processes share the database and whoever leads when it comes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Fence, StoreError};
use crate::domain::{Digest, Webhook};

#[async_trait]
pub trait DigestStore: Send + Sync {
    /// The tick of the last digest queued; `None` before the first.
    async fn last_digest(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// What a digest counts: the alerts (events) at times in `(since, until]` by kind, the alert
    /// deliveries pending now, and those given up on after `since`. Digests are no alerts and
    /// are not counted.
    async fn digest_counts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<DigestCounts, StoreError>;

    /// Claims `digest.tick` and queues the digest to each of `to` (one batch of its own), in
    /// one fenced write: `false`, and nothing written, when a digest for that tick or a later
    /// one was queued already. A leader's write ([`Fence`]): an old leader's is refused.
    async fn queue_digest(
        &self,
        fence: Fence,
        digest: &Digest,
        to: &[Webhook],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// The digest's counts from the history and the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestCounts {
    /// Alerts by kind name, as stored.
    pub alerts: Vec<(String, u64)>,
    pub pending: u64,
    pub failed: u64,
}
