//! The delivery worker: sends what the outbox holds, in order per destination, and records
//! every outcome in the store so a restart resumes exactly where it stopped.
//!
//! One pass takes, for each destination, its oldest pending entry; while that entry is due it
//! is sent, then the next one, until one has to wait. A transient failure reschedules the entry
//! (backoff or `Retry-After`) and holds back the later entries of that destination, so order is
//! kept; a permanent failure, or one still failing after `max_age`, marks the entry failed with
//! the reason — kept, logged once. An entry is marked delivered right after the webhook accepts
//! it: only a crash inside that window can send it twice (at-least-once).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use tokio::sync::{Notify, watch};

use super::deliver::{DeliveryError, RetryPolicy, Sender};
use super::text;
use crate::metrics;
use crate::store::{OutboxEntry, Store, StoreError};

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

#[derive(Clone)]
pub struct Outbox {
    store: Store,
    sender: Sender,
    policy: RetryPolicy,
    wake: Arc<Notify>,
}

/// How often the worker looks for due retries when nothing wakes it.
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl Outbox {
    pub fn new(store: Store, policy: RetryPolicy) -> reqwest::Result<Self> {
        Ok(Self {
            store,
            sender: Sender::new(policy.timeout)?,
            policy,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Wakes the worker: new entries were written.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs passes until `stop` turns true; a send in progress is finished first.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(e) = self.pass(Utc::now()).await {
                tracing::error!(error = %e, "outbox pass failed; retrying");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_CHECK) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Sends every entry that is due at `now`, destination by destination (concurrently across
    /// destinations, in order within one).
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<PassReport, StoreError> {
        let heads = self.store.outbox_heads().await?;
        let reports = join_all(
            heads
                .into_iter()
                .map(|head| self.drain_destination(head, now)),
        )
        .await;
        let mut total = PassReport::default();
        for report in reports {
            let r = report?;
            total.delivered += r.delivered;
            total.retrying += r.retrying;
            total.failed += r.failed;
        }
        ::metrics::gauge!(metrics::OUTBOX_PENDING).set(self.store.outbox_pending().await? as f64);
        Ok(total)
    }

    async fn drain_destination(
        &self,
        head: OutboxEntry,
        now: DateTime<Utc>,
    ) -> Result<PassReport, StoreError> {
        let mut report = PassReport::default();
        let mut entry = Some(head);
        while let Some(e) = entry.take() {
            if e.next_attempt_at > now {
                break;
            }
            let body = e.webhook.render(&e.alert);
            let outcome = self.sender.send(&e.webhook, &body).await;
            let platform = e.webhook.platform.to_string();
            let headline = text::headline(&e.alert);
            match outcome {
                Ok(()) => {
                    self.store.mark_delivered(e.id, Utc::now()).await?;
                    ::metrics::counter!(metrics::DELIVERIES, "platform" => platform, "outcome" => "delivered").increment(1);
                    tracing::info!(webhook = %e.webhook, alert = %headline, "delivered");
                    report.delivered += 1;
                }
                Err(err) if err.is_retryable() && !self.too_old(&e, now) => {
                    let wait = self.policy.delay_after(e.attempts + 1, &err);
                    let next =
                        now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                    self.store
                        .schedule_retry(e.id, &err.to_string(), next)
                        .await?;
                    ::metrics::counter!(metrics::DELIVERIES, "platform" => platform, "outcome" => "retry").increment(1);
                    tracing::warn!(webhook = %e.webhook, alert = %headline, error = %err, "delivery failed, retrying in {wait:?}");
                    report.retrying += 1;
                    // Later entries for this destination wait: order is kept.
                    break;
                }
                Err(err) => {
                    let reason = match &err {
                        DeliveryError::Permanent(_) => err.to_string(),
                        _ => format!(
                            "gave up after {} attempts over {:?}: {err}",
                            e.attempts + 1,
                            self.policy.max_age
                        ),
                    };
                    self.store.mark_failed(e.id, &reason, Utc::now()).await?;
                    ::metrics::counter!(metrics::DELIVERIES, "platform" => platform, "outcome" => "failed").increment(1);
                    tracing::error!(webhook = %e.webhook, alert = %headline, error = %reason, "alert not delivered: kept as failed");
                    report.failed += 1;
                }
            }
            entry = self.store.outbox_head_for(&e.webhook).await?;
        }
        Ok(report)
    }

    fn too_old(&self, entry: &OutboxEntry, now: DateTime<Utc>) -> bool {
        (now - entry.created_at)
            .to_std()
            .is_ok_and(|age| age >= self.policy.max_age)
    }
}
