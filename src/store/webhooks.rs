//! Webhooks that answered "gone": nothing more is sent to them until their URL is set again.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Fence, Routed, StoreError};
use crate::domain::Webhook;

/// The dead webhooks.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Records that a webhook answered "gone"; `true` when it was not known dead before, and
    /// then `notice` (the alert that announces it, with where it goes) is queued in the same
    /// transaction, as a cycle's alerts are: one announcement per death, never none.
    async fn mark_webhook_dead(
        &self,
        fence: Fence,
        hook: &Webhook,
        reason: &str,
        now: DateTime<Utc>,
        notice: Option<&Routed>,
    ) -> Result<bool, StoreError>;

    /// Forgets that a webhook was dead (its URL was set again).
    async fn clear_webhook_dead(&self, hook: &Webhook) -> Result<(), StoreError>;

    async fn dead_webhooks(&self) -> Result<Vec<DeadWebhook>, StoreError>;
}

/// A webhook that answered "gone", and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadWebhook {
    pub webhook: Webhook,
    pub reason: String,
    pub since: DateTime<Utc>,
}
