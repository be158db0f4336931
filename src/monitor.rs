//! One poll cycle: read the watched agents from the store, poll them (a bounded number at a
//! time), feed the results to the tracker, and commit the new states together with the alerts
//! they produced — one transaction — then wake the outbox.
//!
//! All polls of a cycle finish before any state changes, so the monitor-level verdict ("every
//! poll failed") and the alerts of a cycle are decided together, from one consistent picture.
//! The store is read at the start of every cycle, so an agent added over the API is polled from
//! the next cycle on and a removed one is not. The agents' tracker states are read from it only
//! by the first cycle (and after a failed one): later cycles take them from what the previous
//! cycle committed, since cycles are their only writer, and read just the agents' settings.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::alert::{AgentRef, Alert};
use crate::domain::{AgentId, Observation};
use crate::metrics;
use crate::notify::{Outbox, Webhook};
use crate::ravan::RavanClient;
use crate::store::{AgentUpdate, Routed, Store, StoreError};
use crate::tracker::{AgentState, CycleSummary, Thresholds};

/// What a cycle did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub polled: usize,
    pub failed: usize,
    pub alerts: Vec<Alert>,
}

/// Each agent's state as last committed, with the agent's `created_at` to tell a re-added agent.
type KnownStates = HashMap<AgentId, (DateTime<Utc>, AgentState)>;

pub struct Monitor {
    ravan: RavanClient,
    store: Store,
    outbox: Outbox,
    /// Where alerts go for agents without webhooks of their own, and monitor alerts.
    defaults: Vec<Webhook>,
    thresholds: Thresholds,
    concurrency: usize,
    /// The states the last cycle committed, by agent and its `created_at`. Poll cycles are the
    /// only writers of agent state and never run two at once, so the next cycle can take the
    /// states from here and read only the agents' settings — the state's JSON is most of a
    /// cycle's read. `None` (at start, or after a cycle failed) means: read everything.
    states: Mutex<Option<KnownStates>>,
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
            states: Mutex::new(None),
        }
    }

    /// Polls every watched agent once and records the outcome.
    pub async fn run_cycle(&self) -> Result<CycleReport, StoreError> {
        let started = std::time::Instant::now();
        let lifted = self.store.lift_expired_mutes(Utc::now()).await?;
        if lifted > 0 {
            tracing::info!(agents = lifted, "mutes ended");
        }
        // Taken, not borrowed: if anything below fails, the next cycle reads every state.
        let known = self.states.lock().expect("not poisoned").take();
        let agents = match known {
            Some(mut known) => {
                let mut agents = self.store.agent_settings().await?;
                for agent in &mut agents {
                    // An agent removed and added again since has a new created_at: its old
                    // state is not its state.
                    match known.remove(&agent.agent_id) {
                        Some((created_at, state)) if created_at == agent.created_at => {
                            agent.state = state;
                        }
                        _ => {}
                    }
                }
                agents
            }
            None => self.store.agents().await?,
        };
        let mut created = Vec::with_capacity(agents.len());
        let mut monitor = self.store.monitor_state().await?;

        // Owned values in the stream keep the cycle's future `Send` for the scheduler's spawn.
        // Each result is folded into its update as it arrives: an agent's record is dropped once
        // it is polled, rather than every record and every result being held to the end.
        let mut updates = Vec::with_capacity(agents.len());
        // Metric handles are looked up once per cycle, not once per poll.
        let latency = ::metrics::histogram!(metrics::POLL_DURATION);
        let observations = ::metrics::counter!(metrics::POLLS, "outcome" => "observation");
        let mut results = futures::stream::iter(agents)
            .map(|agent| {
                let ravan = self.ravan.clone();
                let latency = latency.clone();
                async move {
                    let started = std::time::Instant::now();
                    let result = ravan.status(&agent.agent_id).await;
                    latency.record(started.elapsed().as_secs_f64());
                    (agent, Utc::now(), result)
                }
            })
            .buffered(self.concurrency);

        let mut summary = CycleSummary::default();
        let mut report = CycleReport::default();
        while let Some((mut agent, at, result)) = results.next().await {
            summary.polled += 1;
            let mut state = std::mem::take(&mut agent.state);
            let mut alerts = Vec::new();
            match result {
                Ok(obs) => {
                    observations.increment(1);
                    let who = AgentRef {
                        id: agent.agent_id,
                        name: agent.name.clone(),
                    };
                    let muted = agent.is_muted(at);
                    if let Some(alert) = state.observe(&who, &obs, at, &self.thresholds, muted) {
                        alerts.push((Alert::Agent(alert), agent.destinations(&self.defaults)));
                    }
                }
                Err(failure) => {
                    ::metrics::counter!(metrics::POLLS, "outcome" => failure.kind()).increment(1);
                    tracing::debug!(agent_id = %agent.agent_id, error = %failure, "poll failed");
                    summary.failed += 1;
                    let described = failure.to_string();
                    if failure.is_auth() && summary.auth_failure.is_none() {
                        summary.auth_failure = Some(described.clone());
                    }
                    summary
                        .first_failure
                        .get_or_insert_with(|| described.clone());
                    state.poll_failed(described, at);
                }
            }
            report.alerts.extend(alerts.iter().map(|(a, _)| a.clone()));
            created.push(agent.created_at);
            updates.push(AgentUpdate {
                agent_id: agent.agent_id,
                state,
                alerts,
            });
        }
        let monitor_alerts: Vec<Routed> = monitor
            .cycle(&summary, Utc::now(), &self.thresholds)
            .map(|a| (Alert::Monitor(a), self.defaults.clone()))
            .into_iter()
            .collect();
        report
            .alerts
            .extend(monitor_alerts.iter().map(|(a, _)| a.clone()));

        let (mut healthy, mut unhealthy, mut unknown) = (0, 0, 0);
        for update in &updates {
            match update.state.last.as_ref().map(Observation::is_healthy) {
                Some(true) => healthy += 1,
                Some(false) => unhealthy += 1,
                None => unknown += 1,
            }
        }
        let queued = self
            .store
            .commit_cycle(&updates, &monitor, &monitor_alerts, Utc::now())
            .await?;
        *self.states.lock().expect("not poisoned") = Some(
            updates
                .into_iter()
                .zip(created)
                .map(|(u, created_at)| (u.agent_id, (created_at, u.state)))
                .collect(),
        );
        ::metrics::gauge!(metrics::AGENTS, "health" => "healthy").set(healthy as f64);
        ::metrics::gauge!(metrics::AGENTS, "health" => "unhealthy").set(unhealthy as f64);
        ::metrics::gauge!(metrics::AGENTS, "health" => "unknown").set(unknown as f64);
        if summary.polled > summary.failed {
            ::metrics::gauge!(metrics::LAST_GOOD_CYCLE).set(Utc::now().timestamp() as f64);
        }
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
        Ok(report)
    }
}
