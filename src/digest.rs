//! The digest (`DIGEST_SCHEDULE`): at each tick, read in `TIMEZONE`, one message to every live
//! default destination with the fleet's health, the unhealthy agents, the alerts since the
//! previous digest by kind, the integrations, and what did not get through.
//!
//! Every process runs a [`Digester`]; only the leader sends. It claims the tick in the store in
//! the same fenced write that queues the digest in the outbox ([`crate::store::DigestStore`]),
//! so a tick is sent once: a second process, or a leader that took over after the tick, finds
//! it claimed, and an old leader's claim is refused by its fence. Queued, the digest is as safe
//! as an alert: the delivery worker sends it, retries it, and a new leader sends what the last
//! left pending. A tick missed by a fail-over or a restart is still sent up to [`LATE_LIMIT`]
//! late (the latest due one only); older ones are skipped.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use crate::domain::alert::{AgentRef, IntegrationName};
use crate::domain::digest::{DeadFact, IntegrationFact, KindCount, UnhealthyAgent};
use crate::domain::{Alert, Digest, PollSchedule, Webhook, Zone};
use crate::leader::Leadership;
use crate::notify::Outbox;
use crate::store::{AgentRecord, DeadWebhook, DigestCounts, Store, StoreError};
use crate::tracker::IntegrationState;

/// How late a tick's digest may still go out (a fail-over or a restart around the tick).
pub const LATE_LIMIT: TimeDelta = TimeDelta::hours(1);
/// The first digest counts the alerts of this long before its tick.
pub const FIRST_PERIOD: TimeDelta = TimeDelta::hours(24);
/// The longest sleep without looking again (a clock that jumps, a tick claimed elsewhere).
const LONGEST_SLEEP: Duration = Duration::from_secs(600);
/// After the store failed, the next try comes this soon.
const AFTER_ERROR: Duration = Duration::from_secs(10);
/// At most this many ticks are stepped over to find the latest due one.
const MAX_STEPS: usize = 100_000;

/// What one attempt at a tick came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Claimed, and queued for this many destinations.
    Queued(usize),
    /// Another process (or an earlier attempt) queued this tick's digest, or a later one.
    AlreadyQueued,
    /// This process does not lead now.
    Standby,
}

/// Sends the digest at each tick of its schedule while this process leads.
#[derive(Clone)]
pub struct Digester {
    store: Store,
    outbox: Outbox,
    leadership: Leadership,
    schedule: PollSchedule,
    zone: Zone,
    defaults: Vec<Webhook>,
}

impl Digester {
    /// A digester of `schedule` (read in `zone`) to the default destinations `defaults`.
    pub fn new(
        store: Store,
        outbox: Outbox,
        leadership: Leadership,
        schedule: PollSchedule,
        zone: Zone,
        defaults: Vec<Webhook>,
    ) -> Self {
        Self {
            store,
            outbox,
            leadership,
            schedule,
            zone,
            defaults,
        }
    }

    /// Queues the digest of `tick` as of `now`, if this process leads and no digest of that
    /// tick (or a later one) was queued yet.
    pub async fn send_tick(
        &self,
        tick: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        let Some(fence) = self.leadership.fence() else {
            return Ok(Outcome::Standby);
        };
        let last = self.store.last_digest().await?;
        if last.is_some_and(|l| l >= tick) {
            return Ok(Outcome::AlreadyQueued);
        }
        let since = last.unwrap_or(tick - FIRST_PERIOD);
        let agents = self.store.agents().await?;
        let counts = self.store.digest_counts(since, tick).await?;
        let integrations = self.store.integrations().await?;
        let dead = self.store.dead_webhooks().await?;
        let digest = gather(
            Period {
                tick,
                since,
                since_previous: last.is_some(),
            },
            &agents,
            counts,
            &integrations,
            &dead,
        );
        // A dead default destination would only fail it.
        let to: Vec<Webhook> = self
            .defaults
            .iter()
            .filter(|h| !dead.iter().any(|d| d.webhook == **h))
            .cloned()
            .collect();
        match self.store.queue_digest(fence, &digest, &to, now).await {
            Ok(true) => {
                self.outbox.wake();
                tracing::info!(tick = %tick, destinations = to.len(), "digest queued");
                Ok(Outcome::Queued(to.len()))
            }
            Ok(false) => Ok(Outcome::AlreadyQueued),
            Err(e) => {
                if let StoreError::Fenced(_) = e {
                    self.leadership.lost(fence);
                }
                Err(e)
            }
        }
    }

    /// Sleeps until each tick and sends its digest while leading, until `stop`. Standing by
    /// when a tick comes, it waits to lead until the tick is [`LATE_LIMIT`] old: a takeover
    /// just after the tick still sends it, unless the old leader did.
    pub async fn run(self, stop: CancellationToken) {
        let mut terms = self.leadership.terms();
        while !stop.is_cancelled() {
            let now = Utc::now();
            let last = match self.store.last_digest().await {
                Ok(last) => last,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the last digest's tick; trying again");
                    sleep_or_stop(AFTER_ERROR, &stop).await;
                    continue;
                }
            };
            let Some(tick) = due(&self.schedule, self.zone, last, now) else {
                let after = last.map_or(now, |l| l.max(now));
                let Some(next) = self.schedule.next_after_in(after, &self.zone.tz()) else {
                    tracing::warn!("DIGEST_SCHEDULE has no more ticks: no more digests");
                    return;
                };
                sleep_or_stop(until(next), &stop).await;
                continue;
            };
            match self.send_tick(tick, now).await {
                Ok(Outcome::Standby) => {
                    // Until this process leads, or the tick is too late to send.
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = terms.changed() => {}
                        _ = tokio::time::sleep(until(tick + LATE_LIMIT)) => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, tick = %tick, "cannot queue the digest; trying again");
                    sleep_or_stop(AFTER_ERROR, &stop).await;
                }
            }
        }
    }
}

/// The tick of `schedule` (read in `zone`) whose digest is due at `now`, when the last one
/// queued was for `last`: the latest tick after `last` not later than `now` and at most
/// [`LATE_LIMIT`] old (older ones are skipped, and of several due only the latest is sent).
pub fn due(
    schedule: &PollSchedule,
    zone: Zone,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let oldest = now - LATE_LIMIT;
    let from = last.map_or(oldest, |l| l.max(oldest));
    let tz = zone.tz();
    let mut tick = schedule.next_after_in(from, &tz).filter(|t| *t <= now)?;
    for _ in 0..MAX_STEPS {
        match schedule.next_after_in(tick, &tz) {
            Some(next) if next <= now => tick = next,
            _ => break,
        }
    }
    Some(tick)
}

/// How long until `t` (nothing when past), at most [`LONGEST_SLEEP`].
fn until(t: DateTime<Utc>) -> Duration {
    (t - Utc::now())
        .to_std()
        .unwrap_or_default()
        .min(LONGEST_SLEEP)
}

async fn sleep_or_stop(wait: Duration, stop: &CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(wait) => {}
    }
}

/// The stretch a digest reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub tick: DateTime<Utc>,
    pub since: DateTime<Utc>,
    pub since_previous: bool,
}

/// The digest's facts from what the store holds. Pure. An agent is unhealthy as the status
/// page says: its last observation is, or Ravan answers 404 for it (alerted); unknown before
/// its first observation. The unhealthy ones are listed longest unhealthy first.
pub fn gather(
    period: Period,
    agents: &[AgentRecord],
    counts: DigestCounts,
    integrations: &[(IntegrationName, IntegrationState)],
    dead: &[DeadWebhook],
) -> Digest {
    let mut healthy = 0;
    let mut unknown = 0;
    let mut unhealthy = Vec::new();
    for a in agents {
        let s = &a.state;
        let agent = || AgentRef {
            id: a.agent_id,
            name: a.display_name().map(str::to_owned),
        };
        match s.last.as_ref().map(|o| o.is_healthy()) {
            _ if s.missing_alerted => unhealthy.push(UnhealthyAgent {
                agent: agent(),
                status: "not found".to_owned(),
                since: s.missing_since,
            }),
            Some(false) => unhealthy.push(UnhealthyAgent {
                agent: agent(),
                status: s
                    .last
                    .as_ref()
                    .map(|o| o.status.as_str().to_owned())
                    .unwrap_or_default(),
                since: s.health_since,
            }),
            Some(true) => healthy += 1,
            None => unknown += 1,
        }
    }
    // Longest unhealthy first (unknown since last), then by name and id: a stable order.
    unhealthy.sort_by(|a, b| {
        (a.since.is_none(), a.since, &a.agent.name, a.agent.id).cmp(&(
            b.since.is_none(),
            b.since,
            &b.agent.name,
            b.agent.id,
        ))
    });
    let unhealthy_count = unhealthy.len();
    unhealthy.truncate(Digest::NAMED);
    let order = |kind: &str| {
        Alert::KIND_NAMES
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(usize::MAX)
    };
    let mut alerts: Vec<KindCount> = counts
        .alerts
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(kind, count)| KindCount { kind, count })
        .collect();
    alerts.sort_by(|a, b| {
        order(&a.kind)
            .cmp(&order(&b.kind))
            .then(a.kind.cmp(&b.kind))
    });
    Digest {
        tick: period.tick,
        since: period.since,
        since_previous: period.since_previous,
        watched: agents.len(),
        healthy,
        unknown,
        unhealthy,
        unhealthy_count,
        alerts,
        integrations: integrations
            .iter()
            .map(|(name, s)| IntegrationFact {
                name: *name,
                healthy: s.healthy,
                status: s.status.clone(),
                since: s.since,
            })
            .collect(),
        pending: counts.pending,
        failed: counts.failed,
        dead_webhooks: dead
            .iter()
            .take(Digest::NAMED)
            .map(|d| DeadFact {
                platform: d.webhook.platform,
                webhook: d.webhook.url.masked(),
                since: d.since,
            })
            .collect(),
        dead_count: dead.len(),
    }
}
