//! The delivery worker: sends what the outbox holds, in order per destination, and records
//! every outcome in the store so a restart resumes exactly where it stopped.
//!
//! Each destination (webhook) is drained by a task of its own, so one that is paced (Slack's
//! one message a second, Discord's empty bucket), rate limited or hanging holds up no other: a
//! dispatcher starts a drain for each destination that has a due entry and no drain running.
//! It runs when woken — by a cycle that queued entries, a drain that ended, this process
//! starting to lead — and when the earliest retry it knows of falls due; it reads nothing in
//! between (an idle service does no work; [`SAFETY_NET`] is the one exception). A drain takes
//! the destination's oldest pending entry and the rest of the same poll cycle's entries for it
//! (a *batch*). A batch of up to
//! [`INDIVIDUAL_MAX`] alerts goes out as one message each; a larger one as a single grouped
//! message, so 1,000 agents failing at once is one message, not 1,000. Then the next batch,
//! while they are due; then the drain ends.
//! A digest (`DIGEST_SCHEDULE`) is a batch of its own and always a message of its own; its
//! entry has no event.
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
//! Entries are marked delivered right after the webhook accepts them. When the database refuses
//! that record (busy, restarting), it is retried with a bounded backoff, and the entries are
//! remembered as sent: no drain of this process sends them again, the next one only records
//! them. Only a crash (or a lost lease) between the webhook's answer and the record can send a
//! message twice (at-least-once). Stopping never cuts that window: a drain checks for the stop
//! before each send (and while it waits its turn), never during one, and a send lasts at most
//! the request's time limit.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use backon::Retryable;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use tokio::sync::Notify;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::deliver::{DeliveryError, Pace, RetryPolicy, Sender};
use super::{Item, Platform, Webhook, text};
use crate::domain::{Message, Zone};
use crate::leader::Leadership;
use crate::metrics;
use crate::store::{Fence, OutboxEntry, Store, StoreError};
use crate::supervise::{TaskHealth, Tasks, panic_message, pause_after, supervise};

/// A cycle's alerts to one destination up to this many go out one message each.
pub const INDIVIDUAL_MAX: usize = 3;

/// The longest the dispatcher sleeps without a reason to wake. While this process leads, only
/// its own cycles write entries, and they wake it: this is a safety net against a wake that
/// never came (a database restored under a running service, say).
const SAFETY_NET: std::time::Duration = std::time::Duration::from_secs(60);
/// After the outbox could not be read, the dispatcher tries again this soon.
const AFTER_ERROR: std::time::Duration = std::time::Duration::from_secs(1);

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
    /// Panics of the worker and of its drains (each is restarted).
    health: TaskHealth,
    /// Only the leader sends; asked before every send, whose outcome it records fenced.
    leadership: Leadership,
    /// Entries a webhook accepted whose record the database refused: never sent again.
    unrecorded: Arc<Mutex<HashSet<i64>>>,
    /// Where alerts go when their agent has no webhook of its own: a dead webhook's
    /// announcement goes there too.
    defaults: Arc<[Webhook]>,
    /// The zone messages write times in (`TIMEZONE`).
    zone: Zone,
}

fn key(hook: &Webhook) -> String {
    format!("{} {}", hook.platform, hook.url.expose())
}

/// The time a drain goes by: the real one for the worker, a given one for [`Outbox::pass`].
#[derive(Clone, Copy)]
enum Clock {
    Real,
    Fixed(DateTime<Utc>),
}

impl Clock {
    fn now(self) -> DateTime<Utc> {
        match self {
            Self::Real => Utc::now(),
            Self::Fixed(now) => now,
        }
    }
}

/// A running delivery worker ([`Outbox::spawn`]).
pub struct Worker {
    tasks: Tasks,
    /// To end the worker at once when a send outlasts the stop's limit (see [`Worker::stop`]).
    abort: tokio::task::AbortHandle,
    health: TaskHealth,
}

impl Worker {
    /// How often the worker died (and was restarted): for `/readyz` and the status page.
    pub fn health(&self) -> TaskHealth {
        self.health.clone()
    }

    /// Stops the worker: no send starts any more, and the sends in progress finish, for at
    /// most `limit`; `false` when one did not and was abandoned (its entry stays pending for
    /// the next start). A `limit` longer than a request's time limit never abandons one.
    pub async fn stop(self, limit: std::time::Duration) -> bool {
        if self.tasks.stop(limit).await {
            return true;
        }
        // Whatever it was sending must not overlap a new leader's sends after the lease is
        // released: ended here, its entry stays pending.
        self.abort.abort();
        false
    }
}

/// The drains the worker runs: one task per destination at most.
#[derive(Default)]
struct Drains {
    tasks: JoinSet<()>,
    /// Which destination each running drain serves.
    running: HashMap<tokio::task::Id, Webhook>,
    /// Destinations whose drain panicked: how often in a row, and when to try again.
    panicked: HashMap<String, (u32, Instant)>,
}

impl Drains {
    /// Whether a drain of `key` runs now (its end wakes the dispatcher).
    fn running(&self, key: &str) -> bool {
        self.running.values().any(|hook| self::key(hook) == key)
    }

    /// How much longer a destination whose drain panicked is held back, if it still is.
    fn paused_until(&self, key: &str) -> Option<chrono::TimeDelta> {
        let (_, until) = self.panicked.get(key)?;
        let left = until.checked_duration_since(Instant::now())?;
        chrono::TimeDelta::from_std(left)
            .ok()
            .filter(|left| *left > chrono::TimeDelta::zero())
    }

    /// Records how a drain ended; a panic is logged, counted, and holds its destination back
    /// for a pause that doubles with each panic in a row.
    fn ended(&mut self, end: Result<(tokio::task::Id, ()), JoinError>, health: &TaskHealth) {
        match end {
            Ok((id, ())) => {
                if let Some(hook) = self.running.remove(&id) {
                    self.panicked.remove(&key(&hook));
                }
            }
            Err(e) => {
                let Some(hook) = self.running.remove(&e.id()) else {
                    return;
                };
                let key = key(&hook);
                if let Ok(panic) = e.try_into_panic() {
                    let message = panic_message(panic.as_ref());
                    let n = self.panicked.get(&key).map_or(0, |(n, _)| *n) + 1;
                    let pause = pause_after(n);
                    tracing::error!(webhook = %hook, panic = %message, restart_in = ?pause, "delivery task panicked: restarting it");
                    health.record(message, Utc::now());
                    self.panicked.insert(key, (n, Instant::now() + pause));
                }
            }
        }
    }
}

impl Outbox {
    /// An outbox that sends only while `leadership` leads, and marks under its fence.
    pub fn new(store: Store, policy: RetryPolicy, leadership: Leadership) -> reqwest::Result<Self> {
        Ok(Self {
            store,
            sender: Sender::new(policy.timeout)?,
            policy,
            wake: Arc::new(Notify::new()),
            next_send: Arc::default(),
            health: TaskHealth::default(),
            leadership,
            unrecorded: Arc::default(),
            defaults: Arc::new([]),
            zone: Zone::UTC,
        })
    }

    /// Signed webhooks' requests are signed with `secret` (`WEBHOOK_SECRET`).
    pub fn with_signing(mut self, secret: Option<super::signed::SigningSecret>) -> Self {
        self.sender = self.sender.with_signing(secret);
        self
    }

    /// Messages write their times in `zone` (`TIMEZONE`; UTC unless set).
    pub fn with_zone(mut self, zone: Zone) -> Self {
        self.zone = zone;
        self
    }

    /// The default destinations (`SLACK_WEBHOOK_URL`, `DISCORD_WEBHOOK_URL`), for a dead
    /// webhook's announcement ([`super::dead`]).
    pub fn with_defaults(mut self, defaults: Vec<Webhook>) -> Self {
        self.defaults = defaults.into();
        self
    }

    /// Wakes the worker: new entries were written.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs the worker in a task of its own until [`Worker::stop`], supervised: a panic is
    /// logged and the worker starts again ([`supervise`]); so is a destination's drain.
    pub fn spawn(&self) -> Worker {
        let tasks = Tasks::new();
        let (outbox, stop) = (self.clone(), tasks.token());
        let health = self.health.clone();
        let task = tasks.spawn(supervise("delivery worker", health.clone(), move || {
            let (outbox, stop) = (outbox.clone(), stop.clone());
            async move { outbox.run(stop).await }
        }));
        let abort = task.abort_handle();
        Worker {
            tasks,
            abort,
            health,
        }
    }

    /// Runs until `stop`, starting a drain for each destination with a due entry and none
    /// running; then waits for the drains, which end after their send in progress.
    pub async fn run(&self, stop: CancellationToken) {
        let mut drains = Drains::default();
        let mut terms = self.leadership.terms();
        while !stop.is_cancelled() {
            let sleep = match self.dispatch(&mut drains, &stop).await {
                Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or_default(),
                Ok(None) => SAFETY_NET,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox; retrying");
                    AFTER_ERROR
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep.min(SAFETY_NET)) => {}
                Ok(()) = terms.changed() => {}
                _ = stop.cancelled() => break,
                Some(end) = drains.tasks.join_next_with_id() => drains.ended(end, &self.health),
            }
        }
        while let Some(end) = drains.tasks.join_next_with_id().await {
            drains.ended(end, &self.health);
        }
    }

    /// Starts a drain for each destination whose oldest entry is due and that has none.
    /// Returns when the earliest entry not yet due falls due (`None`: none is waiting, or this
    /// process stands by). A destination being drained is left out: its drain's end wakes the
    /// dispatcher.
    async fn dispatch(
        &self,
        drains: &mut Drains,
        stop: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        if self.leadership.fence().is_none() {
            // Standing by: the leader delivers.
            return Ok(None);
        }
        let now = Utc::now();
        let heads = self.store.outbox_heads().await?;
        if heads.is_empty() {
            // Nothing pending (`/metrics` counts the dead webhooks when scraped).
            ::metrics::gauge!(metrics::OUTBOX_PENDING).set(0.0);
            return Ok(None);
        }
        let dead = self.dead().await?;
        let mut next_due: Option<DateTime<Utc>> = None;
        for head in heads {
            let key = key(&head.webhook);
            if drains.running(&key) {
                continue;
            }
            let due = match drains.paused_until(&key) {
                Some(until) => head.next_attempt_at.max(now + until),
                None => head.next_attempt_at,
            };
            if due > now {
                next_due = Some(next_due.map_or(due, |t| t.min(due)));
                continue;
            }
            let hook = head.webhook.clone();
            let (outbox, dead, stop) = (self.clone(), dead.get(&key).cloned(), stop.clone());
            let id = drains
                .tasks
                .spawn(async move {
                    let hook = head.webhook.clone();
                    match outbox.drain(head, Clock::Real, dead, stop).await {
                        Ok(_) => {}
                        Err(StoreError::Fenced(term)) => {
                            tracing::warn!(webhook = %hook, term, "delivery stopped: another process leads now and delivers what is left");
                        }
                        Err(e) => {
                            tracing::error!(webhook = %hook, error = %e, "delivery stopped by a database error; retrying");
                        }
                    }
                })
                .id();
            drains.running.insert(id, hook);
        }
        self.update_gauges(dead.len()).await?;
        Ok(next_due)
    }

    /// Sends every batch that is due at `now`, destination by destination (concurrently across
    /// destinations, in order within one), and returns when all are done: the worker's work
    /// in one call, at a given time (for tests and the demo).
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<PassReport, StoreError> {
        let heads = self.store.outbox_heads().await?;
        let dead = self.dead().await?;
        let never = CancellationToken::new();
        let reports = join_all(heads.into_iter().map(|head| {
            let dead = dead.get(&key(&head.webhook)).cloned();
            self.drain(head, Clock::Fixed(now), dead, never.clone())
        }))
        .await;
        let mut total = PassReport::default();
        for report in reports {
            total.add(report?);
        }
        self.update_gauges(dead.len()).await?;
        Ok(total)
    }

    /// The dead webhooks, by key, with what they answered.
    async fn dead(&self) -> Result<HashMap<String, String>, StoreError> {
        Ok(self
            .store
            .dead_webhooks()
            .await?
            .into_iter()
            .map(|d| (key(&d.webhook), d.reason))
            .collect())
    }

    async fn update_gauges(&self, dead: usize) -> Result<(), StoreError> {
        ::metrics::gauge!(metrics::OUTBOX_PENDING).set(self.store.outbox_pending().await? as f64);
        ::metrics::gauge!(metrics::WEBHOOKS_DEAD).set(dead as f64);
        Ok(())
    }

    /// Sends one destination's due batches in order, from `head` on, until one is not due,
    /// one is to be retried, or `stop` turns true (checked before each send, never during).
    async fn drain(
        &self,
        head: OutboxEntry,
        clock: Clock,
        mut dead: Option<String>,
        stop: CancellationToken,
    ) -> Result<PassReport, StoreError> {
        let hook = head.webhook.clone();
        let mut report = PassReport::default();
        let mut next = Some(head);
        while let Some(head) = next.take() {
            if head.next_attempt_at > clock.now() || stop.is_cancelled() {
                break;
            }
            let Some(fence) = self.leadership.fence() else {
                break;
            };
            let batch = self.store.outbox_batch(&hook, head.batch).await?;
            let batch = self.settle_sent(fence, &hook, batch, &mut report).await?;
            let ids: Vec<i64> = batch.iter().map(|e| e.id).collect();
            if ids.is_empty() {
                // All sent before: recorded now.
            } else if let Some(reason) = &dead {
                let reason = format!("webhook is dead ({reason}): not sent");
                self.fenced(
                    fence,
                    self.store.mark_failed(fence, &ids, &reason, Utc::now()),
                )
                .await?;
                count(hook.platform, "failed", ids.len());
                report.failed += ids.len();
            } else {
                // A digest is always a message of its own.
                let alone = batch.iter().any(|e| e.alert().is_none());
                let parts: Vec<Vec<&OutboxEntry>> = if batch.len() <= INDIVIDUAL_MAX || alone {
                    batch.iter().map(|e| vec![e]).collect()
                } else {
                    vec![batch.iter().collect()]
                };
                for part in parts {
                    if !self.wait_turn(&hook, &stop).await {
                        return Ok(report);
                    }
                    // Asked again right before the send (the wait may have outlasted the
                    // lease), for the send's whole time limit: a send never overlaps a takeover.
                    let Some(fence) = self.leadership.fence_for(self.policy.timeout) else {
                        return Ok(report);
                    };
                    let outcome = self.send(fence, &hook, &part, clock.now()).await?;
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
        fence: Fence,
        hook: &Webhook,
        entries: &[&OutboxEntry],
        now: DateTime<Utc>,
    ) -> Result<Sent, StoreError> {
        let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        let destination = super::destination(hook.platform);
        let (body, what) = match entries {
            [one] => match &one.message {
                Message::Alert(alert) => (
                    destination.message(
                        Item {
                            event_id: one.event_id,
                            alert,
                        },
                        self.zone,
                    ),
                    text::headline(alert),
                ),
                Message::Digest(digest) => (
                    destination.digest_message(digest, self.zone),
                    super::digest::headline(digest),
                ),
            },
            many => {
                let items: Vec<Item<'_>> = many
                    .iter()
                    .filter_map(|e| {
                        e.alert().map(|alert| Item {
                            event_id: e.event_id,
                            alert,
                        })
                    })
                    .collect();
                (
                    destination.group_message(&items, self.zone),
                    format!("{} alerts in one message", items.len()),
                )
            }
        };
        let outcome = self.sender.send(hook, &body).await;
        let mut sent = Sent::default();
        sent.report.messages = 1;
        match outcome {
            Ok(pace) => {
                self.after_send(hook, pace_wait(hook.platform, pace, &self.policy));
                self.record_delivered(fence, hook, &ids).await?;
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
                self.fenced(
                    fence,
                    self.store
                        .schedule_retry(fence, &ids, &err.to_string(), next),
                )
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
                self.fenced(
                    fence,
                    self.store.mark_failed(fence, &ids, &reason, Utc::now()),
                )
                .await?;
                count(hook.platform, "failed", ids.len());
                tracing::error!(webhook = %hook, alert = %what, error = %reason, "alert not delivered: kept as failed");
                sent.report.failed = ids.len();
                if let DeliveryError::Dead(answer) = &err {
                    self.declare_dead(fence, hook, answer).await?;
                    sent.dead = Some(answer.clone());
                }
            }
        }
        Ok(sent)
    }

    /// Records that the platform says `hook` is gone, and, the first time, queues its
    /// announcement to every other live destination in the same write.
    async fn declare_dead(
        &self,
        fence: Fence,
        hook: &Webhook,
        answer: &str,
    ) -> Result<(), StoreError> {
        let agents = self.store.agents().await?;
        let known: Vec<Webhook> = self
            .store
            .dead_webhooks()
            .await?
            .into_iter()
            .map(|d| d.webhook)
            .collect();
        let now = Utc::now();
        let notice = super::dead::notice(hook, answer, &agents, &self.defaults, &known, now);
        let mark = self
            .store
            .mark_webhook_dead(fence, hook, answer, now, Some(&notice));
        if self.fenced(fence, mark).await? {
            ::metrics::counter!(metrics::ALERTS, "kind" => notice.0.kind_name()).increment(1);
            tracing::error!(webhook = %hook, answer = %answer, told = notice.1.len(), "webhook is dead: nothing more is sent to it until its URL is set again; the other destinations are told");
            self.wake();
        }
        Ok(())
    }

    /// Records that a webhook accepted the entries `ids`. A refusal of the database is retried
    /// with the policy's bounded backoff; until the record is in, the entries are remembered as
    /// sent, so neither this drain nor a later one of this process sends them again.
    async fn record_delivered(
        &self,
        fence: Fence,
        hook: &Webhook,
        ids: &[i64],
    ) -> Result<(), StoreError> {
        self.unrecorded().extend(ids.iter().copied());
        let record = || self.fenced(fence, self.store.mark_delivered(fence, ids, Utc::now()));
        record
            .retry(self.policy.record_backoff())
            .when(|e| !matches!(e, StoreError::Fenced(_)))
            .notify(|error, wait| {
                tracing::warn!(webhook = %hook, %error, "delivered, but recording it failed: trying again in {wait:?} (it is not sent again)");
            })
            .await?;
        self.unrecorded().retain(|id| !ids.contains(id));
        Ok(())
    }

    /// Records the entries of `batch` a webhook accepted before, whose record failed then, and
    /// returns the others: those still to be sent.
    async fn settle_sent(
        &self,
        fence: Fence,
        hook: &Webhook,
        batch: Vec<OutboxEntry>,
        report: &mut PassReport,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let (sent, unsent): (Vec<_>, Vec<_>) = {
            let unrecorded = self.unrecorded();
            batch.into_iter().partition(|e| unrecorded.contains(&e.id))
        };
        if !sent.is_empty() {
            let ids: Vec<i64> = sent.iter().map(|e| e.id).collect();
            self.record_delivered(fence, hook, &ids).await?;
            count(hook.platform, "delivered", ids.len());
            tracing::info!(webhook = %hook, alerts = ids.len(), "delivered earlier: recorded now");
            report.delivered += ids.len();
        }
        Ok(unsent)
    }

    /// The entries sent but not yet recorded; a panic while it was held leaves nothing
    /// half-written, so a poisoned lock is used as it is.
    fn unrecorded(&self) -> MutexGuard<'_, HashSet<i64>> {
        self.unrecorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A leader's write: when it is refused, this process steps down.
    async fn fenced<T>(
        &self,
        fence: Fence,
        write: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let written = write.await;
        if let Err(StoreError::Fenced(_)) = &written {
            self.leadership.lost(fence);
        }
        written
    }

    /// Waits until this webhook may take another message; `false` when `stop` came first.
    async fn wait_turn(&self, hook: &Webhook, stop: &CancellationToken) -> bool {
        let at = self.pacing().get(&key(hook)).copied();
        if let Some(at) = at {
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = stop.cancelled() => {}
            }
        }
        !stop.is_cancelled()
    }

    fn after_send(&self, hook: &Webhook, wait: Option<std::time::Duration>) {
        let mut next = self.pacing();
        match wait {
            Some(wait) => next.insert(key(hook), Instant::now() + wait),
            None => next.remove(&key(hook)),
        };
    }

    /// The pacing table; a panic while it was held leaves nothing half-written, so a poisoned
    /// lock is used as it is.
    fn pacing(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.next_send.lock().unwrap_or_else(|e| e.into_inner())
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

/// How long the next message to this webhook must wait: what its answer asked, else its
/// platform's own interval.
fn pace_wait(platform: Platform, pace: Pace, policy: &RetryPolicy) -> Option<std::time::Duration> {
    match pace {
        Pace::WaitBeforeNext(wait) => Some(wait),
        Pace::Free => super::destination(platform).interval(policy),
    }
}

fn count(platform: Platform, outcome: &'static str, n: usize) {
    ::metrics::counter!(metrics::DELIVERIES, "platform" => platform.to_string(), "outcome" => outcome).increment(n as u64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secret::SecretUrl;
    use std::time::Duration;

    /// A drain that panics (a bug) is logged and counted in the worker's health, and its
    /// destination gets a new drain only after a pause that doubles with each panic in a row;
    /// a drain that ends cleanly forgets them.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_drain_is_counted_and_its_destination_retried_after_a_pause() {
        let hook = Webhook::new(
            Platform::Discord,
            SecretUrl::new("https://discord.com/api/webhooks/1/tok".parse().unwrap()),
        );
        let key = key(&hook);
        let health = TaskHealth::default();
        let mut drains = Drains::default();
        let run = |drains: &mut Drains, task: fn() -> ()| {
            let id = drains.tasks.spawn(async move { task() }).id();
            drains.running.insert(id, hook.clone());
        };
        for n in 1..=2 {
            run(&mut drains, || panic!("a bug in a drain"));
            assert!(drains.running(&key), "one drain per destination");
            let end = drains.tasks.join_next_with_id().await.unwrap();
            drains.ended(end, &health);
            tokio::time::advance(pause_after(n) - Duration::from_millis(1)).await;
            assert!(!drains.running(&key));
            assert_eq!(
                drains.paused_until(&key),
                Some(chrono::TimeDelta::milliseconds(1)),
                "held back after panic {n}, and the dispatcher is told until when"
            );
            tokio::time::advance(Duration::from_millis(1)).await;
            assert_eq!(drains.paused_until(&key), None, "retried after panic {n}");
        }
        let deaths = health.deaths();
        assert_eq!(deaths.count, 2);
        assert_eq!(
            deaths.last.map(|(_, m)| m).as_deref(),
            Some("a bug in a drain")
        );

        run(&mut drains, || ());
        let end = drains.tasks.join_next_with_id().await.unwrap();
        drains.ended(end, &health);
        assert!(!drains.running(&key) && drains.paused_until(&key).is_none());
        assert!(drains.panicked.is_empty() && drains.running.is_empty());
    }
}
