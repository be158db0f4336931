//! One poll cycle: read the watched agents from the store, poll them (a bounded number at a
//! time), feed the results to the tracker, and commit the new states together with the alerts
//! they produced — one transaction — then wake the outbox.
//!
//! All polls of a cycle finish before any state changes, so the monitor-level verdict ("every
//! poll failed") and the alerts of a cycle are decided together, from one consistent picture.
//!
//! What a cycle reads and writes is kept to what changed, because at 10,000 agents reading and
//! writing every agent each cycle cost more CPU than the polls themselves, and for a few agents
//! the cycle's own reads and writes cost more than its polls. A cycle in which nothing changed
//! reads one number and writes nothing:
//! - Each cycle asks the store for its settings version; an agent added, changed or removed
//!   over the API moves it, and the cycle then re-reads the agents' settings, so the change
//!   takes effect from the next cycle on. Otherwise it polls the agents it already holds. A
//!   mute that has run out is lifted in the store only when an agent held has one.
//! - The tracker states and the monitor's state are read only by the first cycle of a term
//!   (and after a failed one): cycles are their only writer, so later ones keep what they
//!   committed.
//! - A state is written only when it changed in substance ([`differs_from`](crate::tracker::AgentState::differs_from)),
//!   and so is the monitor's ([`MonitorState::differs_from`]). That the others were polled
//!   too, and the monitor's streak, are the cycle's [`Progress`]: written with the cycle's
//!   other writes when it has some, else by the leader lease's next renewal (within
//!   [`CLAIM_EVERY`](crate::leader::CLAIM_EVERY)), which writes anyway.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::discovery::ListingHealth;
use crate::domain::Webhook;
use crate::domain::alert::{AgentRef, Alert};
use crate::domain::{AgentId, Connection, HealthEdge, Observation};
use crate::domain::{Coverage, MaintenanceWindow, PollSchedule};
use crate::leader::Leadership;
use crate::metrics;
use crate::notify::Outbox;
use crate::organisation::{OrgChecks, OrgRound};
use crate::ravan::{AgentUrls, PollFailure, RavanClient};
use crate::store::{
    AgentRecord, AgentUpdate, Fence, Polled, Progress, Routed, Source, Store, StoreError, Watched,
};
use crate::tracker::{CycleSummary, Hold, MonitorState, Overrun, Poll, Thresholds};

/// The least time between two polls of an agent that counts as a gap in polling (three
/// intervals of the schedule count too, when longer): see [`crate::domain::history`].
const MIN_POLLING_GAP: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// What the last cycle of a term left: the agents it polled, with the states it committed, at
/// its settings version; and the monitor's state, committed or carried as progress.
struct Known {
    fence: Fence,
    watched: Watched,
    monitor: MonitorState,
    /// Whether the last cycle's organisation check held org-linked agents' downs: confirm
    /// rounds, which do not check the organisation, hold as it did.
    holding: bool,
    /// The maintenance windows, read with the settings (a window added or removed moves the
    /// settings version).
    windows: Vec<MaintenanceWindow>,
}

/// What one cycle works on: the agents (their records updated in place as answers arrive,
/// one copy of the fleet, not two), the monitor's state, and when and on what schedule it
/// polls.
struct Cycle {
    fence: Fence,
    polled: Polled,
    next_tick: Option<DateTime<Utc>>,
    agents: Vec<AgentRecord>,
    monitor: MonitorState,
    /// The monitor's state as the cycle found it: written only if the cycle changed it.
    saved_monitor: MonitorState,
    /// Whether the last cycle of the term held org-linked agents' downs.
    holding: bool,
    windows: Vec<MaintenanceWindow>,
}

impl Cycle {
    /// How long a request may wait at Ravan's throttle gate: up to the next tick. A tick that
    /// has passed already (the checks before the polls outlasted it) is a deadline reached, so
    /// a shut gate fails the poll at once; only a cycle without a schedule has none.
    fn tick_deadline(&self) -> Option<tokio::time::Instant> {
        let left = (self.next_tick? - Utc::now()).to_std().unwrap_or_default();
        Some(tokio::time::Instant::now() + left)
    }
}

/// What folding a cycle's answers gathered.
struct Folded {
    summary: CycleSummary,
    /// The agents whose state changed or who alerted: where in the cycle's agents each is, its
    /// alerts and its health edge.
    changed: Vec<(usize, Vec<Routed>, Option<HealthEdge>)>,
    /// Every alert of the cycle, the monitor's included.
    alerts: Vec<Alert>,
    healthy: usize,
    unhealthy: usize,
    unknown: usize,
    throttled: usize,
    /// Whether watch-all's listings are complete (see [`ListingHealth`]).
    listing_ok: bool,
    /// Polls further apart than this left the time between them unobserved.
    gap: chrono::TimeDelta,
    /// Polls that observed, counted by a handle looked up once per cycle, not once per poll.
    observations: ::metrics::Counter,
    /// The organisation's Cal.com is unhealthy: org-linked agents' new outages are held.
    holding: bool,
    /// The org-linked agents whose down this cycle held (unhealthy, no outage of their own).
    held: Vec<AgentRef>,
    /// The agents maintenance windows open at the cycle's start cover.
    maintenance: Coverage,
}

/// Whether `obs` of `agent` is held as a mute would hold it, while the organisation's Cal.com
/// is unhealthy (`holding`): an org-linked agent's new outage is the organisation's, and one
/// opens (and alerts) once the account is healthy again if the agent is still down.
fn holds(holding: bool, agent: &AgentRecord, obs: &Observation) -> bool {
    holding
        && agent.state.outage.is_none()
        && obs.connection() == Connection::OrgLinked
        && !obs.is_healthy()
}

/// Clears its flag when dropped, however the holder ends (a cancelled task too).
struct ClearOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// How many of `agents` were last seen booking through the organisation's Cal.com account.
fn org_linked(agents: &[AgentRecord]) -> usize {
    let linked = |a: &&AgentRecord| {
        let last = a.state.last.as_ref();
        last.is_some_and(|o| o.connection() == Connection::OrgLinked)
    };
    agents.iter().filter(linked).count()
}

/// How many outbox entries `alerts` make (one per alert and destination), and how many of
/// them have no destination at all.
fn destinations<'a>(alerts: impl Iterator<Item = &'a Routed>) -> (usize, usize) {
    alerts.fold((0, 0), |(entries, nowhere), (_, hooks)| {
        (
            entries + hooks.len(),
            nowhere + usize::from(hooks.is_empty()),
        )
    })
}

/// What a cycle did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub polled: usize,
    pub failed: usize,
    pub alerts: Vec<Alert>,
    /// The cycle did not run: this process stands by (another leads).
    pub standby: bool,
    /// Agents whose state went to the store to be written: those that changed in substance
    /// or alerted (the store skips any removed, or re-added, while the cycle ran).
    pub saved: usize,
}

impl CycleReport {
    /// A cycle that did not run, or whose outcome did not count: another process leads.
    fn standby() -> Self {
        Self {
            standby: true,
            ..Self::default()
        }
    }
}

pub struct Monitor {
    ravan: RavanClient,
    store: Store,
    outbox: Outbox,
    /// Where alerts go for agents without webhooks of their own, and monitor alerts.
    defaults: Vec<Webhook>,
    thresholds: Thresholds,
    concurrency: usize,
    /// `CHECK_ORG_LINKED`: ask `/info` when `/status` finds no private connection.
    check_org_linked: bool,
    /// The schedule cycles run on, to tell when one overran its interval.
    schedule: Option<PollSchedule>,
    /// Watch-all's listing health, when watch-all is on: see [`ListingHealth`].
    listing: Option<ListingHealth>,
    /// The organisation-level checks, when `CHECK_INTEGRATIONS` is on.
    org_checks: Option<OrgChecks>,
    /// Whether the last cycle overran: a run of overruns is logged once, at its start.
    overrunning: std::sync::atomic::AtomicBool,
    /// What the last cycle left. Poll cycles are the only writers of agent and monitor state
    /// and never run two at once, so the next cycle can start from here. `None` (at start, or
    /// after a cycle failed) means: read everything.
    known: Mutex<Option<Known>>,
    /// Cycles run only while this leads; a new term (another process led meanwhile) starts
    /// from what the store holds, not from `known`.
    leadership: Leadership,
    /// The agents' URLs, built once each (see [`Monitor::urls_of`]).
    urls: Mutex<HashMap<AgentId, Arc<AgentUrls>>>,
    /// Held for the whole of a cycle or confirm round: two never run at once, whoever calls
    /// them.
    cycle: tokio::sync::Mutex<()>,
    /// A tick's cycle waits for the lock or holds it: a later tick is skipped, and a confirm
    /// round is not started (the cycle polls those agents anyway).
    tick_pending: std::sync::atomic::AtomicBool,
    /// `CONFIRM_INTERVAL`; zero: off.
    confirm_interval: std::time::Duration,
    /// When the next confirm round is due ([`crate::confirm`]); `None`: none is.
    confirm_plan: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
}

impl Monitor {
    /// A monitor whose cycles run only while `leadership` leads, and write under its fence.
    pub fn new(
        ravan: RavanClient,
        store: Store,
        outbox: Outbox,
        leadership: Leadership,
        defaults: Vec<Webhook>,
        thresholds: Thresholds,
        concurrency: usize,
    ) -> Self {
        Self {
            ravan,
            store,
            outbox,
            defaults,
            thresholds,
            concurrency: concurrency.max(1),
            check_org_linked: true,
            schedule: None,
            listing: None,
            org_checks: None,
            overrunning: std::sync::atomic::AtomicBool::new(false),
            known: Mutex::new(None),
            urls: Mutex::new(HashMap::new()),
            cycle: tokio::sync::Mutex::new(()),
            tick_pending: std::sync::atomic::AtomicBool::new(false),
            confirm_interval: std::time::Duration::ZERO,
            confirm_plan: tokio::sync::watch::Sender::new(None),
            leadership,
        }
    }

    /// `CONFIRM_INTERVAL`: an agent whose answer a threshold has yet to decide is polled again
    /// after this, before the next tick (zero: off). Rounds run when [`Monitor::confirm_plan`]
    /// says, by whoever watches it (the scheduler).
    pub fn confirm_after(mut self, interval: std::time::Duration) -> Self {
        self.confirm_interval = interval;
        self
    }

    /// When the next confirm round is due: `None` while no agent awaits one.
    pub fn confirm_plan(&self) -> tokio::sync::watch::Receiver<Option<tokio::time::Instant>> {
        self.confirm_plan.subscribe()
    }

    /// `CHECK_ORG_LINKED` (on unless this says otherwise).
    pub fn check_org_linked(mut self, on: bool) -> Self {
        self.check_org_linked = on;
        self
    }

    /// Each cycle also checks the organisation's integrations ([`OrgChecks`]).
    pub fn org_checks(mut self, checks: OrgChecks) -> Self {
        self.org_checks = Some(checks);
        self
    }

    /// Watch-all is on, and this tells whether its listings are complete.
    pub fn watch_all(mut self, listing: ListingHealth) -> Self {
        self.listing = Some(listing);
        self
    }

    /// The schedule the cycles run on: a cycle that runs past its next tick is an overrun,
    /// logged, counted and shown on the status page.
    pub fn schedule(mut self, schedule: PollSchedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// Polls every watched agent once and records the outcome. A call made while another
    /// cycle runs waits for it to finish. The steps: [`Monitor::prepare`] →
    /// [`Monitor::poll_and_fold`] → [`Monitor::ask_ravan_health`] (only when every poll failed)
    /// → [`Monitor::decide`] → [`Monitor::commit`] → [`Monitor::report`].
    pub async fn run_cycle(&self) -> Result<CycleReport, StoreError> {
        let _one_at_a_time = self.cycle.lock().await;
        self.cycle_alone().await
    }

    /// [`Monitor::run_cycle`], unless another tick's cycle is waiting or running: then `None`
    /// at once (a tick of the schedule that finds the last cycle still running leaves it
    /// alone). A confirm round in progress is waited for: it is short, and its agents' answers
    /// count.
    pub async fn try_run_cycle(&self) -> Option<Result<CycleReport, StoreError>> {
        use std::sync::atomic::Ordering;
        if self.tick_pending.swap(true, Ordering::AcqRel) {
            return None;
        }
        let _pending = ClearOnDrop(&self.tick_pending);
        let _one_at_a_time = self.cycle.lock().await;
        Some(self.cycle_alone().await)
    }

    /// A confirm round, if one is due: polls only the agents awaiting confirmation and commits
    /// like a cycle. `None` when none is due, or a tick's cycle is waiting or running (it polls
    /// them, and plans the next round itself).
    pub async fn try_run_confirm(&self) -> Option<Result<CycleReport, StoreError>> {
        let now = tokio::time::Instant::now();
        let due = self
            .confirm_plan
            .send_if_modified(|plan| plan.take_if(|at| *at <= now).is_some());
        if !due || self.tick_pending.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let _one_at_a_time = self.cycle.try_lock().ok()?;
        Some(self.confirm_alone().await)
    }

    /// One cycle, while holding the cycle lock.
    async fn cycle_alone(&self) -> Result<CycleReport, StoreError> {
        let started = std::time::Instant::now();
        let Some(fence) = self.leadership.fence() else {
            tracing::debug!("standing by: the leader polls");
            return Ok(CycleReport::standby());
        };
        let mut cycle = self.prepare(fence).await?;
        let mut org = self.check_organisation(&cycle).await;
        cycle.holding = org.as_ref().is_some_and(OrgRound::holds_org_linked);
        let mut folded = self.poll_and_fold(&mut cycle, None).await;
        if let Some(org) = &mut org {
            org.hold(std::mem::take(&mut folded.held));
            org.count_org_linked(org_linked(&cycle.agents));
        }
        self.ask_ravan_health(&mut folded.summary).await;
        let monitor_alerts = self.decide(&mut cycle, &mut folded);
        let Some(queued) = self.commit(&cycle, &folded, &monitor_alerts, true).await? else {
            return Ok(CycleReport::standby());
        };
        self.save_organisation(fence, org).await;
        self.gauge(&folded);
        let report = self.report(&folded, &monitor_alerts, queued, started);
        self.remember(cycle);
        Ok(report)
    }

    /// One confirm round, while holding the cycle lock: [`Monitor::prepare`] → the polls of the
    /// agents awaiting confirmation → [`Monitor::commit`] → [`Monitor::report`]. The
    /// monitor's own verdict, the organisation checks and the overrun are the ticks' alone.
    async fn confirm_alone(&self) -> Result<CycleReport, StoreError> {
        let started = std::time::Instant::now();
        let Some(fence) = self.leadership.fence() else {
            return Ok(CycleReport::standby());
        };
        let mut cycle = self.prepare(fence).await?;
        let awaiting = self.awaiting(&cycle, Utc::now());
        ::metrics::counter!(metrics::CONFIRM_POLLS).increment(awaiting.len() as u64);
        let folded = self.poll_and_fold(&mut cycle, Some(&awaiting)).await;
        let Some(queued) = self.commit(&cycle, &folded, &[], false).await? else {
            return Ok(CycleReport::standby());
        };
        let report = self.report(&folded, &[], queued, started);
        self.remember(cycle);
        Ok(report)
    }

    /// Keeps what a committed cycle or round left for the next, and plans the confirm round
    /// its agents need.
    fn remember(&self, cycle: Cycle) {
        let now = Utc::now();
        let awaiting = !self.awaiting(&cycle, now).is_empty();
        let delay = awaiting
            .then(|| crate::confirm::delay(now, self.confirm_interval, cycle.next_tick))
            .flatten();
        self.confirm_plan
            .send_replace(delay.map(|d| tokio::time::Instant::now() + d));
        *self.known.lock().expect("not poisoned") = Some(Known {
            fence: cycle.fence,
            watched: Watched {
                version: cycle.polled.version,
                agents: cycle.agents,
            },
            monitor: cycle.monitor,
            holding: cycle.holding,
            windows: cycle.windows,
        });
    }

    /// Where in the cycle's agents those awaiting confirmation are: a threshold has yet to
    /// decide their last answer, and no mute, hold or maintenance window would keep its alert
    /// anyway.
    fn awaiting(&self, cycle: &Cycle, now: DateTime<Utc>) -> Vec<usize> {
        let th = &self.thresholds;
        let maintenance = Coverage::at(&cycle.windows, now);
        let quiet = |a: &AgentRecord| {
            let last = a.state.last.as_ref();
            a.is_muted(now)
                || maintenance.covers(&a.agent_id)
                || last.is_some_and(|obs| holds(cycle.holding, a, obs))
        };
        (cycle.agents.iter().enumerate())
            .filter(|(_, a)| a.state.awaiting_confirmation(th) && !quiet(a))
            .map(|(i, _)| i)
            .collect()
    }

    /// Owns the organisation-level checks, before the polls (whose org-linked downs they may
    /// hold): folded in memory; `None` when off, or when their states cannot be read (logged).
    async fn check_organisation(&self, cycle: &Cycle) -> Option<OrgRound> {
        let checks = self.org_checks.as_ref()?;
        let agents: Vec<_> = cycle.agents.iter().map(|a| a.agent_id).collect();
        match checks.check(&agents, cycle.tick_deadline()).await {
            Ok(round) => Some(round),
            Err(e) => {
                tracing::warn!(error = %e, "the organisation checks' states cannot be read");
                None
            }
        }
    }

    /// Owns the organisation checks' writes, after the cycle's commit and fenced like it; a
    /// failure is logged and leaves the cycle's outcome as it is.
    async fn save_organisation(&self, fence: Fence, org: Option<OrgRound>) {
        let (Some(checks), Some(org)) = (&self.org_checks, org) else {
            return;
        };
        match checks.save(fence, org).await {
            Ok(0) => {}
            Ok(_) => self.outbox.wake(),
            Err(StoreError::Fenced(_)) => self.leadership.lost(fence),
            Err(e) => tracing::warn!(error = %e, "the organisation checks' outcome was not saved"),
        }
    }

    /// Owns what a cycle starts from: the agents and the monitor's state, from the last cycle
    /// of this term when the settings did not change since, else from the store; mutes that
    /// ran out are lifted first.
    async fn prepare(&self, fence: Fence) -> Result<Cycle, StoreError> {
        // Taken, not borrowed: if anything after fails, the next cycle reads everything.
        let known = self.known.lock().expect("not poisoned").take();
        // States another leader committed since are not in `known`.
        let (mut watched, monitor, holding, windows) = match known.filter(|k| k.fence == fence) {
            Some(Known {
                watched,
                monitor,
                holding,
                windows,
                ..
            }) => {
                if watched.version == self.store.settings_version().await? {
                    (watched, monitor, holding, windows)
                } else {
                    let watched = self.reread_settings(watched).await?;
                    let windows = self.store.maintenance_windows().await?;
                    (watched, monitor, holding, windows)
                }
            }
            None => (
                self.store.watched().await?,
                self.store.monitor_state().await?,
                false,
                self.store.maintenance_windows().await?,
            ),
        };
        let now = Utc::now();
        if watched.agents.iter().any(|a| a.mute_expired(now)) {
            let lifted = self.store.lift_expired_mutes(fence, now).await?;
            if lifted > 0 {
                tracing::info!(agents = lifted, "mutes ended");
            }
            watched = self.reread_settings(watched).await?;
        }
        let started_at = Utc::now();
        Ok(Cycle {
            fence,
            polled: Polled {
                version: watched.version,
                started_at,
            },
            next_tick: self
                .schedule
                .as_ref()
                .and_then(|s| s.next_after(started_at)),
            agents: watched.agents,
            saved_monitor: monitor.clone(),
            monitor,
            holding,
            windows,
        })
    }

    /// Owns the polls: every agent once (or those at the positions `only` gives), a bounded
    /// number at a time, each answer folded into its agent's record ([`Monitor::fold`]) as it
    /// arrives.
    async fn poll_and_fold(&self, cycle: &mut Cycle, only: Option<&[usize]>) -> Folded {
        // Metric handles are looked up once per cycle, not once per poll.
        let latency = ::metrics::histogram!(metrics::POLL_DURATION);
        // A poll carries only its agent's URLs and position.
        let mut urls: Vec<(usize, Arc<AgentUrls>)> = self
            .urls_of(&cycle.agents)
            .into_iter()
            .enumerate()
            .collect();
        if let Some(only) = only {
            let only: HashSet<usize> = only.iter().copied().collect();
            urls.retain(|(i, _)| only.contains(i));
        }
        let (ravan, latency, org) = (&self.ravan, &latency, self.check_org_linked);
        let deadline = cycle.tick_deadline();
        let mut results = futures::stream::iter(urls)
            .map(|(i, urls)| async move {
                let started = std::time::Instant::now();
                let result = ravan.poll_until(&urls, org, deadline).await;
                latency.record(started.elapsed().as_secs_f64());
                (i, (Utc::now(), result))
            })
            .buffered(self.concurrency);
        let mut folded = Folded {
            summary: CycleSummary::default(),
            changed: Vec::new(),
            alerts: Vec::new(),
            healthy: 0,
            unhealthy: 0,
            unknown: 0,
            throttled: 0,
            listing_ok: self
                .listing
                .as_ref()
                .is_some_and(ListingHealth::is_complete),
            // Polls further apart than this left the time between them unobserved (no process
            // polled): the health intervals leave it out.
            gap: cycle
                .next_tick
                .map_or(MIN_POLLING_GAP, |tick| (tick - cycle.polled.started_at) * 3)
                .max(MIN_POLLING_GAP),
            observations: ::metrics::counter!(metrics::POLLS, "outcome" => "observation"),
            holding: cycle.holding,
            held: Vec::new(),
            maintenance: Coverage::at(&cycle.windows, cycle.polled.started_at),
        };
        while let Some((i, (at, result))) = results.next().await {
            if let Some(agent) = cycle.agents.get_mut(i) {
                self.fold(i, agent, at, result, &mut folded);
            }
        }
        folded
    }

    /// Each agent's URLs, built in its first cycle and kept while it is watched.
    fn urls_of(&self, agents: &[AgentRecord]) -> Vec<Arc<AgentUrls>> {
        let mut known = self.urls.lock().expect("not poisoned");
        let urls: Vec<Arc<AgentUrls>> = agents
            .iter()
            .map(|a| {
                let built = known
                    .entry(a.agent_id)
                    .or_insert_with(|| Arc::new(self.ravan.agent_urls(&a.agent_id)));
                Arc::clone(built)
            })
            .collect();
        // Every agent is known now: anything more was unwatched.
        if known.len() > agents.len() {
            let watched: HashSet<AgentId> = agents.iter().map(|a| a.agent_id).collect();
            known.retain(|id, _| watched.contains(id));
        }
        urls
    }

    /// Owns one answer's effect: the agent's new state, its alerts routed to its destinations,
    /// its health edge, and the cycle's counts.
    fn fold(
        &self,
        i: usize,
        agent: &mut AgentRecord,
        at: DateTime<Utc>,
        result: Result<Observation, PollFailure>,
        folded: &mut Folded,
    ) {
        folded.summary.polled += 1;
        let who = AgentRef {
            id: agent.agent_id,
            name: agent.display_name().map(str::to_owned),
        };
        let held = matches!(&result, Ok(obs) if holds(folded.holding, agent, obs));
        let muted = agent.is_muted(at) || held;
        // A mute (or the org hold) wins over a window: it closes an announced outage silently.
        let hold = if muted {
            Hold::Muted
        } else if folded.maintenance.covers(&agent.agent_id) {
            Hold::Maintenance
        } else {
            Hold::None
        };
        if held {
            folded.held.push(who.clone());
        }
        let poll = match &result {
            Ok(obs) => {
                folded.observations.increment(1);
                Poll::Observed(obs)
            }
            Err(failure) => self.failed_poll(agent, failure, hold, folded),
        };
        let effect = agent
            .state
            .poll(&who, poll, at, &self.thresholds, hold, folded.gap);
        let alerts: Vec<Routed> = effect
            .alerts
            .into_iter()
            .map(|a| (Alert::Agent(a), agent.destinations(&self.defaults)))
            .collect();
        folded.alerts.extend(alerts.iter().map(|(a, _)| a.clone()));
        match agent.state.last.as_ref().map(Observation::is_healthy) {
            Some(true) => folded.healthy += 1,
            Some(false) => folded.unhealthy += 1,
            None => folded.unknown += 1,
        }
        if !alerts.is_empty() || effect.edge.is_some() || effect.changed {
            folded.changed.push((i, alerts, effect.edge));
        }
    }

    /// Owns a failed poll's effect on the cycle's summary; returns what the agent's state
    /// makes of it (a 404 may alert, unless quiet).
    fn failed_poll(
        &self,
        agent: &AgentRecord,
        failure: &PollFailure,
        hold: Hold,
        folded: &mut Folded,
    ) -> Poll<'static> {
        ::metrics::counter!(metrics::POLLS, "outcome" => failure.kind()).increment(1);
        tracing::debug!(agent_id = %agent.agent_id, error = %failure, "poll failed");
        let summary = &mut folded.summary;
        summary.failed += 1;
        let described = failure.to_string();
        if failure.is_auth() && summary.auth_failure.is_none() {
            summary.auth_failure = Some(described.clone());
        }
        if failure.is_throttled() {
            folded.throttled += 1;
        }
        if !failure.is_not_found() {
            // 404s say the API works: the monitor's reason names a real failure.
            summary
                .first_failure
                .get_or_insert_with(|| described.clone());
            return Poll::Failed(described);
        }
        summary.not_found += 1;
        // While watch-all's listings work, they unwatch an agent Ravan no longer lists: a
        // discovered agent's 404s alert nothing meanwhile.
        let quiet = hold != Hold::None || (agent.source == Source::Discovered && folded.listing_ok);
        Poll::NotFound {
            error: described,
            quiet,
        }
    }

    /// Owns Ravan's health check: when every poll of the cycle failed, one `GET /health`
    /// (without credentials) tells "Ravan is down" apart from "our requests fail"
    /// (credentials, the network to the API paths, a proxy), for the monitor alert's reason. A
    /// cycle in which any poll works asks nothing.
    async fn ask_ravan_health(&self, summary: &mut CycleSummary) {
        if !summary.all_failed() {
            return;
        }
        let health = self.ravan.health().await;
        tracing::info!(health = ?health, "every poll failed; asked Ravan's /health");
        summary.ravan_health = Some(health);
    }

    /// Owns the monitor's verdict on the cycle as a whole: an overrun, and the monitor alert
    /// (polling broken or working again), routed to the default destinations.
    fn decide(&self, cycle: &mut Cycle, folded: &mut Folded) -> Vec<Routed> {
        if let Some(tick) = cycle.next_tick {
            let throttled = folded.throttled > 0;
            self.check_overrun(&mut cycle.monitor, cycle.polled.started_at, tick, throttled);
        }
        let monitor_alerts: Vec<Routed> = cycle
            .monitor
            .cycle(&folded.summary, Utc::now(), &self.thresholds)
            .map(|a| (Alert::Monitor(a), self.defaults.clone()))
            .into_iter()
            .collect();
        folded
            .alerts
            .extend(monitor_alerts.iter().map(|(a, _)| a.clone()));
        monitor_alerts
    }

    /// Owns the cycle's one write: the changed states with their alerts, or, when nothing
    /// changed in substance, the progress the lease's next renewal carries (`whole`: a tick's
    /// cycle, which polled every agent; a confirm round carries no progress). Returns how many
    /// outbox entries went in, or `None` when another process took the lease meanwhile
    /// (nothing of this cycle counts).
    async fn commit(
        &self,
        cycle: &Cycle,
        folded: &Folded,
        monitor_alerts: &[Routed],
        whole: bool,
    ) -> Result<Option<usize>, StoreError> {
        // Borrowed: after an outage or at a term's first cycles that is every agent's state,
        // and updates that held the states too would hold every state twice at the peak.
        let updates: Vec<AgentUpdate<'_>> = folded
            .changed
            .iter()
            .filter_map(|(i, alerts, health)| {
                let agent = cycle.agents.get(*i)?;
                Some(AgentUpdate {
                    agent_id: agent.agent_id,
                    state: &agent.state,
                    alerts: alerts.clone(),
                    health: *health,
                })
            })
            .collect();
        let (fence, monitor) = (cycle.fence, &cycle.monitor);
        let changed = !updates.is_empty()
            || !monitor_alerts.is_empty()
            || monitor.differs_from(&cycle.saved_monitor);
        let progress = || Progress {
            polled: cycle.polled,
            monitor: monitor.clone(),
        };
        if !changed && (!whole || self.leadership.carry_progress(fence, progress())) {
            return Ok(Some(0));
        }
        let polled = whole.then_some(cycle.polled);
        let committed = self
            .store
            .commit_cycle(fence, polled, &updates, monitor, monitor_alerts, Utc::now())
            .await;
        match committed {
            Ok(queued) => {
                if whole {
                    self.leadership.progress_saved();
                }
                Ok(Some(queued))
            }
            Err(StoreError::Fenced(term)) => {
                // Paused past the lease, and another took over.
                self.leadership.lost(fence);
                tracing::warn!(
                    term,
                    "this cycle's outcome was not saved: another process leads now"
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Owns the gauges a tick's cycle sets: it saw every agent.
    fn gauge(&self, folded: &Folded) {
        let summary = &folded.summary;
        ::metrics::gauge!(metrics::AGENTS, "health" => "healthy").set(folded.healthy as f64);
        ::metrics::gauge!(metrics::AGENTS, "health" => "unhealthy").set(folded.unhealthy as f64);
        ::metrics::gauge!(metrics::AGENTS, "health" => "unknown").set(folded.unknown as f64);
        if summary.polled > summary.failed {
            ::metrics::gauge!(metrics::LAST_GOOD_CYCLE).set(Utc::now().timestamp() as f64);
        }
        metrics::upkeep();
    }

    /// Owns what a committed cycle or round tells: alert counts, logs, the outbox's wake-up,
    /// the report.
    fn report(
        &self,
        folded: &Folded,
        monitor_alerts: &[Routed],
        queued: usize,
        started: std::time::Instant,
    ) -> CycleReport {
        let summary = &folded.summary;
        for alert in &folded.alerts {
            ::metrics::counter!(metrics::ALERTS, "kind" => alert.kind_name()).increment(1);
            tracing::info!(alert = %crate::notify::text::headline(alert), "alert");
        }
        if queued > 0 {
            self.outbox.wake();
        }
        let routed = folded.changed.iter().flat_map(|(_, alerts, _)| alerts);
        let (entries, nowhere) = destinations(routed.chain(monitor_alerts));
        if nowhere > 0 {
            tracing::warn!(
                alerts = nowhere,
                "alerts produced but no webhook is configured for them: they are only logged"
            );
        }
        if queued < entries {
            tracing::warn!(
                messages = entries - queued,
                "alerts not queued: their agents were removed while the cycle ran"
            );
        }
        if summary.failed > 0 {
            tracing::warn!(
                failed = summary.failed,
                polled = summary.polled,
                first = summary.first_failure.as_deref().unwrap_or(""),
                "some polls failed"
            );
        }
        tracing::debug!(polled = summary.polled, alerts = folded.alerts.len(), elapsed = ?started.elapsed(), "cycle done");
        CycleReport {
            polled: summary.polled,
            failed: summary.failed,
            alerts: folded.alerts.clone(),
            standby: false,
            saved: folded.changed.len(),
        }
    }

    /// Records, counts and logs (once per run of overruns) a cycle whose polls ran past the
    /// next tick of the schedule.
    fn check_overrun(
        &self,
        monitor: &mut crate::tracker::MonitorState,
        started_at: chrono::DateTime<Utc>,
        next_tick: chrono::DateTime<Utc>,
        throttled: bool,
    ) {
        let now = Utc::now();
        let overrun = Overrun::of(
            started_at,
            now - started_at,
            next_tick - started_at,
            self.concurrency,
            throttled,
        );
        let was = self
            .overrunning
            .swap(overrun.is_some(), std::sync::atomic::Ordering::Relaxed);
        let Some(overrun) = overrun else { return };
        ::metrics::counter!(metrics::CYCLE_OVERRUNS).increment(1);
        if !was {
            tracing::warn!(
                took_ms = overrun.took_ms,
                interval_ms = overrun.interval_ms,
                poll_concurrency = self.concurrency,
                throttled,
                "a poll cycle took {:.1}s, longer than the {:.1}s until the next tick of POLL_SCHEDULE (the ticks it ran into are skipped): {}",
                overrun.took_ms as f64 / 1000.0,
                overrun.interval_ms as f64 / 1000.0,
                overrun.advice()
            );
        }
        monitor.overruns += 1;
        monitor.last_overrun = Some(overrun);
    }

    /// The agents' settings changed since `known` was read: reads them again and carries each
    /// agent's state over from `known`. An agent removed and added again since is a new agent
    /// (another `added_version`): its old state is not its state.
    async fn reread_settings(&self, known: Watched) -> Result<Watched, StoreError> {
        let mut states: HashMap<AgentId, AgentRecord> =
            known.agents.into_iter().map(|a| (a.agent_id, a)).collect();
        let mut watched = self.store.watched_settings().await?;
        for agent in &mut watched.agents {
            match states.remove(&agent.agent_id) {
                Some(old) if old.added_version == agent.added_version => agent.state = old.state,
                _ => {}
            }
        }
        Ok(watched)
    }
}
