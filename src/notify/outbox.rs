//! The delivery worker: sends what the outbox holds, in order per destination, and records
//! every outcome in the store so a restart resumes exactly where it stopped.
//!
//! One pass takes, for each destination, its oldest pending entry and the rest of the same poll
//! cycle's entries for that destination (a *batch*). A batch of up to [`INDIVIDUAL_MAX`]
//! alerts goes out as one message each; a larger one as a single grouped message, so 1,000
//! agents failing at once is one message, not 1,000. Then the next batch, while they are due.
//!
//! - A transient failure reschedules the batch (backoff or `Retry-After`) and holds back the
//!   destination's later batches, so order is kept.
//! - A permanent failure, or one still failing after `max_age`, marks the entries failed with
//!   the reason — kept, logged once.
//! - A "gone" answer (Slack `no_service`, Discord 404 …) also marks the webhook dead: its later
//!   entries are marked failed without being sent, until its URL is set again.
//! - Pacing per webhook: at most one message per `slack_interval` to a Slack webhook; for
//!   Discord, a wait when its `X-RateLimit-Remaining` reaches 0; after a 429, what it asked.
//!
//! Entries are marked delivered right after the webhook accepts them: only a crash inside that
//! window can send a message twice (at-least-once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::deliver::{DeliveryError, Pace, RetryPolicy, Sender};
use super::{Platform, Webhook, text};
use crate::alert::Alert;
use crate::metrics;
use crate::store::{OutboxEntry, Store, StoreError};
use crate::supervise::{TaskHealth, supervise};

/// A cycle's alerts to one destination up to this many go out one message each.
pub const INDIVIDUAL_MAX: usize = 3;

/// How often the worker looks for due retries when nothing wakes it.
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// What one pass did, counted in alerts (outbox entries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
    /// Messages sent (a grouped message counts once).
    pub messages: usize,
}

impl PassReport {
    fn add(&mut self, other: PassReport) {
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.failed += other.failed;
        self.messages += other.messages;
    }
}

#[derive(Clone)]
pub struct Outbox {
    store: Store,
    sender: Sender,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    /// Per webhook (platform + URL): the earliest time the next message may go.
    next_send: Arc<Mutex<HashMap<String, Instant>>>,
}

fn key(hook: &Webhook) -> String {
    format!("{} {}", hook.platform, hook.url.expose())
}

/// A running delivery worker ([`Outbox::spawn`]).
pub struct Worker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    health: TaskHealth,
}

impl Worker {
    /// How often the worker died (and was restarted): for `/readyz` and the status page.
    pub fn health(&self) -> TaskHealth {
        self.health.clone()
    }

    /// Stops the worker, letting a send in progress finish for at most `limit`; `false` when
    /// it did not and was abandoned (its entry stays pending for the next start).
    pub async fn stop(self, limit: std::time::Duration) -> bool {
        self.stop.send_replace(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(limit, self.task).await.is_err() {
            abort.abort();
            return false;
        }
        true
    }
}

impl Outbox {
    pub fn new(store: Store, policy: RetryPolicy) -> reqwest::Result<Self> {
        Ok(Self {
            store,
            sender: Sender::new(policy.timeout)?,
            policy,
            wake: Arc::new(Notify::new()),
            next_send: Arc::default(),
        })
    }

    /// Wakes the worker: new entries were written.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs the worker in a task of its own until [`Worker::stop`], supervised: a panic is
    /// logged and the worker starts again ([`supervise`]).
    pub fn spawn(&self) -> Worker {
        let (stop, stopped) = watch::channel(false);
        let outbox = self.clone();
        let health = TaskHealth::default();
        let task = tokio::spawn(supervise("delivery worker", health.clone(), move || {
            let (outbox, stopped) = (outbox.clone(), stopped.clone());
            async move { outbox.run(stopped).await }
        }));
        Worker { stop, task, health }
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

    /// Sends every batch that is due at `now`, destination by destination (concurrently across
    /// destinations, in order within one).
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<PassReport, StoreError> {
        let heads = self.store.outbox_heads().await?;
        let dead: HashMap<String, String> = self
            .store
            .dead_webhooks()
            .await?
            .into_iter()
            .map(|d| (key(&d.webhook), d.reason))
            .collect();
        let reports = join_all(heads.into_iter().map(|head| {
            let dead = dead.get(&key(&head.webhook)).cloned();
            self.drain_destination(head, now, dead)
        }))
        .await;
        let mut total = PassReport::default();
        for report in reports {
            total.add(report?);
        }
        ::metrics::gauge!(metrics::OUTBOX_PENDING).set(self.store.outbox_pending().await? as f64);
        ::metrics::gauge!(metrics::WEBHOOKS_DEAD).set(dead.len() as f64);
        Ok(total)
    }

    async fn drain_destination(
        &self,
        head: OutboxEntry,
        now: DateTime<Utc>,
        mut dead: Option<String>,
    ) -> Result<PassReport, StoreError> {
        let hook = head.webhook.clone();
        let mut report = PassReport::default();
        let mut next = Some(head);
        while let Some(head) = next.take() {
            if head.next_attempt_at > now {
                break;
            }
            let batch = self.store.outbox_batch(&hook, head.batch).await?;
            let ids: Vec<i64> = batch.iter().map(|e| e.id).collect();
            if let Some(reason) = &dead {
                let reason = format!("webhook is dead ({reason}): not sent");
                self.store.mark_failed(&ids, &reason, Utc::now()).await?;
                count(hook.platform, "failed", ids.len());
                report.failed += ids.len();
            } else {
                let parts: Vec<Vec<&OutboxEntry>> = if batch.len() <= INDIVIDUAL_MAX {
                    batch.iter().map(|e| vec![e]).collect()
                } else {
                    vec![batch.iter().collect()]
                };
                for part in parts {
                    let outcome = self.send(&hook, &part, now).await?;
                    report.add(outcome.report);
                    if outcome.dead.is_some() {
                        dead = outcome.dead;
                    }
                    if outcome.report.retrying > 0 {
                        // Later alerts for this destination wait: order is kept.
                        return Ok(report);
                    }
                }
            }
            next = self.store.outbox_head_for(&hook).await?;
        }
        Ok(report)
    }

    /// Sends one message for `entries` (one alert, or a group) and records the outcome.
    async fn send(
        &self,
        hook: &Webhook,
        entries: &[&OutboxEntry],
        now: DateTime<Utc>,
    ) -> Result<Sent, StoreError> {
        let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        let alerts: Vec<Alert> = entries.iter().map(|e| e.alert.clone()).collect();
        let (body, what) = match alerts.as_slice() {
            [one] => (hook.render(one), text::headline(one)),
            many => (
                hook.render_group(many),
                format!("{} alerts in one message", many.len()),
            ),
        };
        self.wait_turn(hook).await;
        let outcome = self.sender.send(hook, &body).await;
        let mut sent = Sent::default();
        sent.report.messages = 1;
        match outcome {
            Ok(pace) => {
                self.after_send(hook, pace_wait(hook.platform, pace, &self.policy));
                self.store.mark_delivered(&ids, Utc::now()).await?;
                count(hook.platform, "delivered", ids.len());
                tracing::info!(webhook = %hook, alert = %what, "delivered");
                sent.report.delivered = ids.len();
            }
            Err(err) if err.is_retryable() && !self.too_old(entries, now) => {
                let attempts = entries.iter().map(|e| e.attempts).max().unwrap_or(0) + 1;
                let wait = self.policy.delay_after(attempts, &err);
                self.after_send(
                    hook,
                    match err {
                        DeliveryError::RateLimited(_) => Some(wait),
                        _ => pace_wait(hook.platform, Pace::Free, &self.policy),
                    },
                );
                let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                self.store
                    .schedule_retry(&ids, &err.to_string(), next)
                    .await?;
                count(hook.platform, "retry", ids.len());
                tracing::warn!(webhook = %hook, alert = %what, error = %err, "delivery failed, retrying in {wait:?}");
                sent.report.retrying = ids.len();
            }
            Err(err) => {
                self.after_send(hook, pace_wait(hook.platform, Pace::Free, &self.policy));
                let reason = match &err {
                    DeliveryError::Permanent(_) | DeliveryError::Dead(_) => err.to_string(),
                    _ => format!(
                        "gave up after {} attempts over {:?}: {err}",
                        entries.iter().map(|e| e.attempts).max().unwrap_or(0) + 1,
                        self.policy.max_age
                    ),
                };
                self.store.mark_failed(&ids, &reason, Utc::now()).await?;
                count(hook.platform, "failed", ids.len());
                tracing::error!(webhook = %hook, alert = %what, error = %reason, "alert not delivered: kept as failed");
                sent.report.failed = ids.len();
                if let DeliveryError::Dead(answer) = &err {
                    if self
                        .store
                        .mark_webhook_dead(hook, answer, Utc::now())
                        .await?
                    {
                        tracing::error!(webhook = %hook, answer = %answer, "webhook is dead: nothing more is sent to it until its URL is set again");
                    }
                    sent.dead = Some(answer.clone());
                }
            }
        }
        Ok(sent)
    }

    /// Waits until this webhook may take another message.
    async fn wait_turn(&self, hook: &Webhook) {
        let at = self
            .next_send
            .lock()
            .expect("pacing lock")
            .get(&key(hook))
            .copied();
        if let Some(at) = at {
            tokio::time::sleep_until(at).await;
        }
    }

    fn after_send(&self, hook: &Webhook, wait: Option<std::time::Duration>) {
        let mut next = self.next_send.lock().expect("pacing lock");
        match wait {
            Some(wait) => next.insert(key(hook), Instant::now() + wait),
            None => next.remove(&key(hook)),
        };
    }

    fn too_old(&self, entries: &[&OutboxEntry], now: DateTime<Utc>) -> bool {
        entries.iter().any(|e| {
            (now - e.created_at)
                .to_std()
                .is_ok_and(|age| age >= self.policy.max_age)
        })
    }
}

#[derive(Default)]
struct Sent {
    report: PassReport,
    /// The webhook's "gone" answer, when it gave one.
    dead: Option<String>,
}

/// How long the next message to this webhook must wait.
fn pace_wait(platform: Platform, pace: Pace, policy: &RetryPolicy) -> Option<std::time::Duration> {
    match (platform, pace) {
        (_, Pace::WaitBeforeNext(wait)) => Some(wait),
        (Platform::Slack, Pace::Free) => Some(policy.slack_interval),
        (Platform::Discord, Pace::Free) => None,
    }
}

fn count(platform: Platform, outcome: &'static str, n: usize) {
    ::metrics::counter!(metrics::DELIVERIES, "platform" => platform.to_string(), "outcome" => outcome).increment(n as u64);
}
