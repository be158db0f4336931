//! One poll cycle: poll every watched agent (a bounded number at a time), feed the results to
//! the tracker, and hand the alerts it produces to the notifier.
//!
//! All polls of a cycle finish before any state changes, so the monitor-level verdict ("every
//! poll failed") and the alerts of a cycle are decided together, from one consistent picture.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::alert::{AgentRef, Alert};
use crate::domain::{AgentId, Observation};
use crate::notify::Notifier;
use crate::ravan::{PollFailure, RavanClient};
use crate::tracker::{AgentState, CycleSummary, MonitorState, Thresholds};

/// What a cycle did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub polled: usize,
    pub failed: usize,
    pub alerts: Vec<Alert>,
}

#[derive(Default)]
struct Tracked {
    agents: HashMap<AgentId, AgentState>,
    monitor: MonitorState,
}

pub struct Monitor {
    ravan: RavanClient,
    agents: Vec<AgentRef>,
    thresholds: Thresholds,
    concurrency: usize,
    notifier: Arc<Notifier>,
    tracked: Mutex<Tracked>,
}

impl Monitor {
    pub fn new(
        ravan: RavanClient,
        agents: Vec<AgentRef>,
        thresholds: Thresholds,
        concurrency: usize,
        notifier: Arc<Notifier>,
    ) -> Self {
        Self {
            ravan,
            agents,
            thresholds,
            concurrency: concurrency.max(1),
            notifier,
            tracked: Mutex::default(),
        }
    }

    /// The tracked state of one agent (a copy), if it has been polled.
    pub fn agent_state(&self, id: &AgentId) -> Option<AgentState> {
        self.tracked
            .lock()
            .expect("tracker lock")
            .agents
            .get(id)
            .cloned()
    }

    /// Polls every agent once and acts on the results.
    pub async fn run_cycle(&self) -> CycleReport {
        let started = std::time::Instant::now();
        // Owned values in the stream keep the cycle's future `Send` for the scheduler's spawn.
        let results: Vec<(AgentRef, DateTime<Utc>, Result<Observation, PollFailure>)> =
            futures::stream::iter(self.agents.clone())
                .map(|agent| {
                    let ravan = self.ravan.clone();
                    async move {
                        let result = ravan.status(&agent.id).await;
                        (agent, Utc::now(), result)
                    }
                })
                .buffered(self.concurrency)
                .collect()
                .await;

        let mut summary = CycleSummary::default();
        let mut alerts = Vec::new();
        {
            let mut tracked = self.tracked.lock().expect("tracker lock");
            for (agent, at, result) in results {
                summary.polled += 1;
                let state = tracked.agents.entry(agent.id).or_default();
                match result {
                    Ok(obs) => {
                        alerts.extend(
                            state
                                .observe(&agent, &obs, at, &self.thresholds)
                                .map(Alert::Agent),
                        );
                    }
                    Err(failure) => {
                        tracing::debug!(agent_id = %agent.id, error = %failure, "poll failed");
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
            }
            alerts.extend(
                tracked
                    .monitor
                    .cycle(&summary, Utc::now(), &self.thresholds)
                    .map(Alert::Monitor),
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
        tracing::debug!(polled = summary.polled, alerts = alerts.len(), elapsed = ?started.elapsed(), "cycle done");
        for alert in &alerts {
            self.notifier.notify(alert);
        }
        CycleReport {
            polled: summary.polled,
            failed: summary.failed,
            alerts,
        }
    }
}
