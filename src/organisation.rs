//! The organisation-level checks (`CHECK_INTEGRATIONS`): once a cycle, the organisation's own
//! Cal.com connection and its GoHighLevel integration, one request each whatever the fleet's
//! size. Each answer is folded into that integration's stored state by the pure tracker
//! ([`IntegrationState::observe`]); a failed request is no observation. The checks come before
//! the agents' polls: from the organisation Cal.com check's first unhealthy answer until it is
//! healthy again, org-linked agents' new outages are held back (as a mute would) and named in
//! the integration's down and recovery, so one broken shared account is one message. What the
//! fold decides goes to the default destinations, written with the state in one fenced
//! transaction after the cycle's commit.
//!
//! The organisation id is `RAVAN_ORG_ID`, or read once from a watched agent (its other fields
//! hold secrets: the client keeps only the id).

use std::sync::Mutex;

use chrono::Utc;
use tokio::time::Instant;

use crate::domain::alert::{AgentRef, Alert, IntegrationAlert, IntegrationName};
use crate::domain::{AgentId, OrgId, Webhook};
use crate::metrics;
use crate::ravan::RavanClient;
use crate::store::{Fence, Routed, Store, StoreError};
use crate::tracker::{IntegrationObservation, IntegrationState, Thresholds};

/// Asks Ravan about the organisation's integrations: the service's checks and `check --all`'s.
pub struct OrgAsk {
    client: RavanClient,
    /// The organisation, once known (from the settings, or read from an agent).
    org: Mutex<Option<OrgId>>,
}

/// The checks, with what they need from the settings.
pub struct OrgChecks {
    ask: OrgAsk,
    store: Store,
    defaults: Vec<Webhook>,
    thresholds: Thresholds,
    token_warning: chrono::Duration,
}

impl OrgChecks {
    pub fn new(
        client: RavanClient,
        store: Store,
        defaults: Vec<Webhook>,
        thresholds: Thresholds,
        token_warning: std::time::Duration,
        org: Option<OrgId>,
    ) -> Self {
        Self {
            ask: OrgAsk::new(client, org),
            store,
            defaults,
            thresholds,
            token_warning: chrono::Duration::from_std(token_warning)
                .unwrap_or(chrono::Duration::MAX),
        }
    }

    /// Checks both integrations once and folds what they said into their states (read from
    /// the store), in memory: the cycle then holds org-linked agents' downs while the
    /// organisation's Cal.com is unhealthy ([`OrgRound::hold`]), and [`OrgChecks::save`]
    /// writes it. `agents` are the watched ones (one names the organisation when the settings
    /// do not).
    pub async fn check(
        &self,
        agents: &[AgentId],
        deadline: Option<Instant>,
    ) -> Result<OrgRound, StoreError> {
        let mut states = self.store.integrations().await?;
        let mut round = OrgRound::default();
        for name in IntegrationName::ALL {
            let at = states.iter().position(|(n, _)| *n == name);
            let mut state = at.map(|i| states.swap_remove(i).1).unwrap_or_default();
            let alerts = self.check_into(name, &mut state, agents, deadline).await;
            round.checked.push((name, state, alerts));
        }
        Ok(round)
    }

    /// Writes a round's states with their alerts (to the default destinations), under
    /// `fence`; returns how many outbox entries were queued.
    pub async fn save(&self, fence: Fence, round: OrgRound) -> Result<usize, StoreError> {
        let mut queued = 0;
        for (name, mut state, mut alerts) in round.checked {
            state.fold_held(&mut alerts);
            if name == IntegrationName::CalcomOrg {
                for alert in &mut alerts {
                    alert.org_linked = round.org_linked;
                }
            }
            if let Some(healthy) = state.healthy {
                let gauge =
                    ::metrics::gauge!(metrics::INTEGRATION_HEALTHY, "integration" => name.as_str());
                gauge.set(if healthy { 1.0 } else { 0.0 });
            }
            let routed: Vec<Routed> = alerts
                .into_iter()
                .map(|a| (Alert::Integration(a), self.defaults.clone()))
                .collect();
            queued += self
                .store
                .save_integration(fence, name, &state, &routed, Utc::now())
                .await?;
        }
        Ok(queued)
    }

    /// One check of `name`, folded into `state`; the alerts it completes.
    async fn check_into(
        &self,
        name: IntegrationName,
        state: &mut IntegrationState,
        agents: &[AgentId],
        deadline: Option<Instant>,
    ) -> Vec<IntegrationAlert> {
        let checked = self.ask.check(name, agents, deadline).await;
        let now = Utc::now();
        match checked {
            Ok(obs) => state.observe(name, &obs, now, &self.thresholds, self.token_warning),
            Err(error) => {
                tracing::debug!(integration = name.as_str(), %error, "organisation check failed");
                state.check_failed(error, now);
                Vec::new()
            }
        }
    }
}

/// One cycle's organisation checks, folded but not yet written.
#[derive(Debug, Default)]
pub struct OrgRound {
    checked: Vec<(IntegrationName, IntegrationState, Vec<IntegrationAlert>)>,
    /// How many watched agents are org-linked, for the organisation's Cal.com alerts.
    org_linked: Option<usize>,
}

impl OrgRound {
    /// Whether org-linked agents' new outages wait on the organisation's Cal.com account.
    pub fn holds_org_linked(&self) -> bool {
        self.calcom()
            .is_some_and(IntegrationState::holds_org_linked)
    }

    /// How many watched agents are org-linked (they all book through the organisation's
    /// Cal.com account): its alerts say so.
    pub fn count_org_linked(&mut self, n: usize) {
        self.org_linked = Some(n);
    }

    /// Records the org-linked agents whose downs this cycle held back.
    pub fn hold(&mut self, agents: impl IntoIterator<Item = AgentRef>) {
        if let Some(state) = self.calcom_mut() {
            state.hold(agents);
        }
    }

    fn calcom(&self) -> Option<&IntegrationState> {
        let found = self
            .checked
            .iter()
            .find(|(n, ..)| *n == IntegrationName::CalcomOrg);
        found.map(|(_, s, _)| s)
    }

    fn calcom_mut(&mut self) -> Option<&mut IntegrationState> {
        let found = self
            .checked
            .iter_mut()
            .find(|(n, ..)| *n == IntegrationName::CalcomOrg);
        found.map(|(_, s, _)| s)
    }
}

impl OrgAsk {
    /// Asks through `client`, about `org` when given (else the organisation of an agent).
    pub fn new(client: RavanClient, org: Option<OrgId>) -> Self {
        Self {
            client,
            org: Mutex::new(org),
        }
    }

    /// What Ravan says of `name` now, or why it could not be asked (waiting at the throttle
    /// gate no later than `deadline`).
    pub async fn check(
        &self,
        name: IntegrationName,
        agents: &[AgentId],
        deadline: Option<Instant>,
    ) -> Result<IntegrationObservation, String> {
        match name {
            IntegrationName::CalcomOrg => {
                let org = self.org(agents).await?;
                let answer = self.client.calcom_org(&org, deadline).await;
                answer
                    .map(|c| IntegrationObservation::of_calcom(&c))
                    .map_err(|e| e.to_string())
            }
            IntegrationName::Ghl => {
                let answer = self.client.ghl_setup(deadline).await;
                answer
                    .map(|g| IntegrationObservation::of_ghl(&g))
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// The organisation: from the settings, or read once from the first watched agent.
    async fn org(&self, agents: &[AgentId]) -> Result<OrgId, String> {
        if let Some(org) = self.org.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(org);
        }
        let Some(agent) = agents.first() else {
            return Err("no watched agent names the organisation (set RAVAN_ORG_ID)".to_owned());
        };
        let org = self
            .client
            .agent_org(agent)
            .await
            .map_err(|e| format!("reading the organisation of agent {agent}: {e}"))?;
        *self.org.lock().unwrap_or_else(|e| e.into_inner()) = Some(org.clone());
        Ok(org)
    }
}
