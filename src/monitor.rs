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

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::Utc;
use futures::StreamExt;

use crate::discovery::ListingHealth;
use crate::domain::PollSchedule;
use crate::domain::Webhook;
use crate::domain::alert::{AgentRef, Alert};
use crate::domain::{AgentId, HealthEdge, Observation};
use crate::leader::Leadership;
use crate::metrics;
use crate::notify::Outbox;
use crate::ravan::RavanClient;
use crate::store::{
    AgentRecord, AgentUpdate, Fence, Polled, Progress, Routed, Source, Store, StoreError, Watched,
};
use crate::tracker::{CycleSummary, MonitorState, Overrun, Thresholds};

/// The least time between two polls of an agent that counts as a gap in polling (three
/// intervals of the schedule count too, when longer): see [`crate::domain::history`].
const MIN_POLLING_GAP: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// What the last cycle of a term left: the agents it polled, with the states it committed, at
/// its settings version; and the monitor's state, committed or carried as progress.
struct Known {
    fence: Fence,
    watched: Watched,
    monitor: MonitorState,
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
    /// Whether the last cycle overran: a run of overruns is logged once, at its start.
    overrunning: std::sync::atomic::AtomicBool,
    /// What the last cycle left. Poll cycles are the only writers of agent and monitor state
    /// and never run two at once, so the next cycle can start from here. `None` (at start, or
    /// after a cycle failed) means: read everything.
    known: Mutex<Option<Known>>,
    /// Cycles run only while this leads; a new term (another process led meanwhile) starts
    /// from what the store holds, not from `known`.
    leadership: Leadership,
    /// Held for the whole of a cycle: two cycles of one monitor never run at once, whoever
    /// calls them (the scheduler also skips a tick that finds a cycle running).
    cycle: tokio::sync::Mutex<()>,
}

impl Monitor {
    pub fn new(
        ravan: RavanClient,
        store: Store,
        outbox: Outbox,
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
            overrunning: std::sync::atomic::AtomicBool::new(false),
            known: Mutex::new(None),
            cycle: tokio::sync::Mutex::new(()),
            leadership: Leadership::solo(),
        }
    }

    /// Runs cycles only while `leadership` leads (the default: always).
    pub fn leadership(mut self, leadership: Leadership) -> Self {
        self.leadership = leadership;
        self
    }

    /// `CHECK_ORG_LINKED` (on unless this says otherwise).
    pub fn check_org_linked(mut self, on: bool) -> Self {
        self.check_org_linked = on;
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
    /// cycle runs waits for it to finish.
    pub async fn run_cycle(&self) -> Result<CycleReport, StoreError> {
        let _one_at_a_time = self.cycle.lock().await;
        let started = std::time::Instant::now();
        // Taken, not borrowed: if anything below fails, the next cycle reads everything.
        let known = self.known.lock().expect("not poisoned").take();
        let Some(fence) = self.leadership.fence() else {
            tracing::debug!("standing by: the leader polls");
            return Ok(CycleReport {
                standby: true,
                ..CycleReport::default()
            });
        };
        // States another leader committed since are not in `known`.
        let (mut watched, mut monitor) = match known.filter(|k| k.fence == fence) {
            Some(Known {
                watched, monitor, ..
            }) => {
                if watched.version == self.store.settings_version().await? {
                    (watched, monitor)
                } else {
                    (self.reread_settings(watched).await?, monitor)
                }
            }
            None => (
                self.store.watched().await?,
                self.store.monitor_state().await?,
            ),
        };
        let now = Utc::now();
        if watched.agents.iter().any(|a| a.mute_expired(now)) {
            let lifted = self.store.lift_expired_mutes(now).await?;
            if lifted > 0 {
                tracing::info!(agents = lifted, "mutes ended");
            }
            watched = self.reread_settings(watched).await?;
        }
        let saved_monitor = monitor.clone();
        let Watched {
            version,
            agents: mut next,
        } = watched;
        let polled = Polled {
            version,
            started_at: Utc::now(),
        };

        // The agents whose state changed or who alerted: where in `next` each is, its alerts
        // and its health edge. Their updates borrow the states from `next` once polling ends.
        let mut changed_agents: Vec<(usize, Vec<Routed>, Option<HealthEdge>)> = Vec::new();
        let (mut healthy, mut unhealthy, mut unknown) = (0, 0, 0);
        // Metric handles are looked up once per cycle, not once per poll.
        let latency = ::metrics::histogram!(metrics::POLL_DURATION);
        let observations = ::metrics::counter!(metrics::POLLS, "outcome" => "observation");
        // A poll carries only its agent's id; `buffered` answers in the order it was given, so
        // each answer meets its agent's record by position, and is folded in as it arrives.
        let ids: Vec<AgentId> = next.iter().map(|a| a.agent_id).collect();
        let (ravan, latency, org) = (&self.ravan, &latency, self.check_org_linked);
        let next_tick = self
            .schedule
            .as_ref()
            .and_then(|s| s.next_after(polled.started_at));
        // Polls wait at Ravan's throttle gate only up to the next tick.
        let deadline = next_tick
            .and_then(|tick| (tick - Utc::now()).to_std().ok())
            .map(|left| tokio::time::Instant::now() + left);
        // Polls further apart than this left the time between them unobserved (no process
        // polled): the health intervals leave it out.
        let gap = next_tick
            .map_or(MIN_POLLING_GAP, |tick| (tick - polled.started_at) * 3)
            .max(MIN_POLLING_GAP);
        let mut results = futures::stream::iter(ids)
            .map(|id| async move {
                let started = std::time::Instant::now();
                let result = ravan.poll_until(&id, org, deadline).await;
                latency.record(started.elapsed().as_secs_f64());
                (Utc::now(), result)
            })
            .buffered(self.concurrency)
            .enumerate();

        let mut summary = CycleSummary::default();
        let mut report = CycleReport::default();
        let mut throttled = 0usize;
        let listing_ok = self
            .listing
            .as_ref()
            .is_some_and(ListingHealth::is_complete);
        // Each agent's record is updated where it is (one copy of the fleet, not two).
        while let Some((i, (at, result))) = results.next().await {
            let Some(agent) = next.get_mut(i) else {
                continue;
            };
            summary.polled += 1;
            let saved = agent.state.clone();
            let who = AgentRef {
                id: agent.agent_id,
                name: agent.display_name().map(str::to_owned),
            };
            let muted = agent.is_muted(at);
            let produced = match result {
                Ok(obs) => {
                    observations.increment(1);
                    agent
                        .state
                        .record_observation(&who, &obs, at, &self.thresholds, muted)
                }
                Err(failure) => {
                    ::metrics::counter!(metrics::POLLS, "outcome" => failure.kind()).increment(1);
                    tracing::debug!(agent_id = %agent.agent_id, error = %failure, "poll failed");
                    summary.failed += 1;
                    let described = failure.to_string();
                    if failure.is_auth() && summary.auth_failure.is_none() {
                        summary.auth_failure = Some(described.clone());
                    }
                    if failure.is_throttled() {
                        throttled += 1;
                    }
                    if failure.is_not_found() {
                        summary.not_found += 1;
                        // While watch-all's listings work, they unwatch an agent Ravan no
                        // longer lists: a discovered agent's 404s alert nothing meanwhile.
                        let left_to_listing = agent.source == Source::Discovered && listing_ok;
                        let quiet = muted || left_to_listing;
                        let alert =
                            agent
                                .state
                                .not_found(&who, described, at, &self.thresholds, quiet);
                        alert.into_iter().collect()
                    } else {
                        // 404s say the API works: the monitor's reason names a real failure.
                        summary
                            .first_failure
                            .get_or_insert_with(|| described.clone());
                        agent.state.poll_failed(described, at);
                        Vec::new()
                    }
                }
            };
            let alerts: Vec<Routed> = produced
                .into_iter()
                .map(|a| (Alert::Agent(a), agent.destinations(&self.defaults)))
                .collect();
            report.alerts.extend(alerts.iter().map(|(a, _)| a.clone()));
            match agent.state.last.as_ref().map(Observation::is_healthy) {
                Some(true) => healthy += 1,
                Some(false) => unhealthy += 1,
                None => unknown += 1,
            }
            let health = agent.state.health_edge(&saved, gap);
            if !alerts.is_empty() || health.is_some() || agent.state.differs_from(&saved) {
                changed_agents.push((i, alerts, health));
            }
        }
        // Borrowed: after an outage or at a term's first cycles that is every agent's state,
        // and updates that held the states too (copied, or moved out and back) would hold
        // every state twice at the cycle's peak.
        let updates: Vec<AgentUpdate<'_>> = changed_agents
            .into_iter()
            .filter_map(|(i, alerts, health)| {
                let agent = next.get(i)?;
                Some(AgentUpdate {
                    agent_id: agent.agent_id,
                    state: &agent.state,
                    alerts,
                    health,
                })
            })
            .collect();
        if let Some(tick) = next_tick {
            self.check_overrun(&mut monitor, polled.started_at, tick, throttled > 0);
        }
        let monitor_alerts: Vec<Routed> = monitor
            .cycle(&summary, Utc::now(), &self.thresholds)
            .map(|a| (Alert::Monitor(a), self.defaults.clone()))
            .into_iter()
            .collect();
        report
            .alerts
            .extend(monitor_alerts.iter().map(|(a, _)| a.clone()));

        let changed = !updates.is_empty()
            || !monitor_alerts.is_empty()
            || monitor.differs_from(&saved_monitor);
        let progress = || Progress {
            polled,
            monitor: monitor.clone(),
        };
        let committed = if changed || !self.leadership.carry_progress(fence, progress()) {
            let committed = self
                .store
                .commit_cycle(
                    fence,
                    Some(polled),
                    &updates,
                    &monitor,
                    &monitor_alerts,
                    Utc::now(),
                )
                .await;
            if committed.is_ok() {
                self.leadership.progress_saved();
            }
            committed
        } else {
            Ok(0)
        };
        let saved_count = updates.len();
        drop(updates);
        let queued = match committed {
            Err(StoreError::Fenced(term)) => {
                // Paused past the lease, and another took over: nothing of this cycle counts.
                self.leadership.lost(fence);
                tracing::warn!(
                    term,
                    "this cycle's outcome was not saved: another process leads now"
                );
                return Ok(CycleReport {
                    standby: true,
                    ..CycleReport::default()
                });
            }
            committed => committed?,
        };
        *self.known.lock().expect("not poisoned") = Some(Known {
            fence,
            watched: Watched {
                version,
                agents: next,
            },
            monitor,
        });
        ::metrics::gauge!(metrics::AGENTS, "health" => "healthy").set(healthy as f64);
        ::metrics::gauge!(metrics::AGENTS, "health" => "unhealthy").set(unhealthy as f64);
        ::metrics::gauge!(metrics::AGENTS, "health" => "unknown").set(unknown as f64);
        if summary.polled > summary.failed {
            ::metrics::gauge!(metrics::LAST_GOOD_CYCLE).set(Utc::now().timestamp() as f64);
        }
        metrics::upkeep();
        for alert in &report.alerts {
            ::metrics::counter!(metrics::ALERTS, "kind" => alert.kind_name()).increment(1);
            tracing::info!(alert = %crate::notify::text::headline(alert), "alert");
        }
        if queued > 0 {
            self.outbox.wake();
        } else if !report.alerts.is_empty() {
            tracing::warn!("alerts produced but no webhook is configured: they are only logged");
        }
        if summary.failed > 0 {
            tracing::warn!(
                failed = summary.failed,
                polled = summary.polled,
                first = summary.first_failure.as_deref().unwrap_or(""),
                "some polls failed"
            );
        }
        tracing::debug!(polled = summary.polled, alerts = report.alerts.len(), elapsed = ?started.elapsed(), "cycle done");
        report.polled = summary.polled;
        report.failed = summary.failed;
        report.saved = saved_count;
        Ok(report)
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
