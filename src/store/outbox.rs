//! The outbox: every alert for every destination, kept until delivered or failed, then for the
//! retention period.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Fence, StoreError};
use crate::domain::{Alert, Message, Webhook};

/// The outbox queue the delivery worker drains. The marks are the leader's writes, fenced
/// ([`Fence`]): a leader that lost its lease records nothing more.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// For each destination, its oldest pending entry: entries to one destination go out in
    /// order, so a later one waits while an earlier one is being retried.
    async fn outbox_heads(&self) -> Result<Vec<OutboxEntry>, StoreError>;

    /// The oldest pending entry for one destination.
    async fn outbox_head_for(&self, hook: &Webhook) -> Result<Option<OutboxEntry>, StoreError>;

    async fn outbox_entry(&self, id: i64) -> Result<Option<OutboxEntry>, StoreError>;

    /// Every entry, oldest first (for tests and inspection).
    async fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError>;

    async fn outbox_pending(&self) -> Result<i64, StoreError>;

    /// The pending entries of one destination produced by one cycle, oldest first.
    async fn outbox_batch(
        &self,
        hook: &Webhook,
        batch: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Marks entries delivered (they went out in one message, or one each).
    async fn mark_delivered(
        &self,
        fence: Fence,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn schedule_retry(
        &self,
        fence: Fence,
        ids: &[i64],
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Gives up on entries, keeping them and the reason.
    async fn mark_failed(
        &self,
        fence: Fence,
        ids: &[i64],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Deletes delivered and failed entries that finished before `now - retention`, at most
    /// `batch` rows a statement, each in its own short write, so a poll cycle waiting for the
    /// database waits for one batch at most. Pending entries stay, however old. Returns how many
    /// were deleted. A leader's write: `fence`, see [`Fence`].
    async fn prune_outbox(
        &self,
        fence: Fence,
        now: DateTime<Utc>,
        retention: Duration,
        batch: u32,
    ) -> Result<u64, StoreError>;
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Delivered,
    Failed,
}

impl OutboxStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One alert (or digest) for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    /// The poll cycle that produced it (a sequence, one number per cycle that queued alerts):
    /// one cycle's alerts to one destination go out together.
    pub batch: i64,
    pub webhook: Webhook,
    /// The alert, or a digest ([`Message::Digest`], which has no event).
    pub message: Message,
    pub status: OutboxStatus,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The event this entry delivers ([`super::Event`]); `None` for entries queued before the
    /// event log existed.
    pub event_id: Option<i64>,
}

impl OutboxEntry {
    /// The alert it delivers; `None` for a digest.
    pub fn alert(&self) -> Option<&Alert> {
        self.message.alert()
    }
}
