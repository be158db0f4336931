//! The watched agents: who is watched, from where, with which settings, and the tracker's state
//! for each.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use url::Url;

use super::StoreError;
use super::{Fence, ListingApplied, SettingsVersion, Source};
use crate::domain::{AgentId, PLATFORMS, Platform, SecretUrl, Webhook, muted_at};
use crate::tracker::AgentState;

/// The watched agents and their settings.
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Adds an agent; [`StoreError::Conflict`] when it is already watched.
    async fn insert_agent(
        &self,
        id: AgentId,
        new: &NewAgent,
        now: DateTime<Utc>,
    ) -> Result<AgentRecord, StoreError>;

    /// Adds each id that is not watched yet (the `WATCH_AGENT_IDS` merge); returns how many
    /// were new. Idempotent: running it at every start-up changes nothing the second time.
    /// An id already watched becomes `env`-sourced, so watch-all never removes it.
    async fn ensure_agents(&self, ids: &[AgentId], now: DateTime<Utc>) -> Result<u64, StoreError>;

    async fn agent(&self, id: AgentId) -> Result<Option<AgentRecord>, StoreError>;

    /// Every watched agent, oldest first.
    async fn agents(&self) -> Result<Vec<AgentRecord>, StoreError>;

    /// Applies `patch`; `None` when the agent is not watched.
    async fn update_agent(
        &self,
        id: AgentId,
        patch: &AgentPatch,
    ) -> Result<Option<AgentRecord>, StoreError>;

    /// Lifts every mute whose end time has passed (`muted` and `muted_until` cleared), so the
    /// agent's JSON shows what is in force. Returns how many were lifted. A leader's write:
    /// `fence`, see [`Fence`].
    async fn lift_expired_mutes(&self, fence: Fence, now: DateTime<Utc>)
    -> Result<u64, StoreError>;

    /// Stops watching an agent; `false` when it was not watched. Its alerts already in the
    /// outbox stay there and are still delivered. Watch-all does not add it back until it is
    /// added again ([`AgentStore::insert_agent`]).
    async fn delete_agent(&self, id: AgentId, now: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Brings the watched agents in line with one complete listing of the organisation
    /// (`listed`: its agents to watch, with their listed names), in one transaction: a listed
    /// agent not watched is added as `discovered` (unless it was removed over the API); every
    /// watched agent listed gets its listed name; a `discovered` agent absent from this and
    /// the previous complete listing is unwatched. Agents from the env or the API are never
    /// removed here.
    async fn apply_listing(
        &self,
        fence: Fence,
        listed: &[(AgentId, Option<String>)],
        now: DateTime<Utc>,
    ) -> Result<ListingApplied, StoreError>;
}

/// A watched agent as stored: the operator's settings and the tracker's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    pub agent_id: AgentId,
    /// The name the operator set (over the API); see [`AgentRecord::display_name`].
    pub name: Option<String>,
    /// The agent's name in the organisation's listing, when watch-all has seen it.
    pub listed_name: Option<String>,
    pub source: Source,
    pub slack_webhook_url: Option<SecretUrl>,
    pub discord_webhook_url: Option<SecretUrl>,
    pub teams_webhook_url: Option<SecretUrl>,
    /// Its own signed JSON webhook (signed with `WEBHOOK_SECRET`).
    pub webhook_url: Option<SecretUrl>,
    pub muted: bool,
    pub muted_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The settings version that added this agent: tells it from an earlier agent of the
    /// same id, removed since.
    pub added_version: SettingsVersion,
    /// What the tracker last saved. Read with [`AgentStore::agents`], its `last_checked_at` is
    /// the start of the last cycle that polled the agent when that is later than the save.
    pub state: AgentState,
}

impl AgentRecord {
    /// An agent as the store would hold it just after `new` was added over the API: for the
    /// pure parts' unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(agent_id: AgentId, new: &NewAgent) -> Self {
        Self {
            agent_id,
            name: new.name.clone(),
            listed_name: None,
            source: Source::Api,
            slack_webhook_url: new.slack_webhook_url.clone().map(SecretUrl::new),
            discord_webhook_url: new.discord_webhook_url.clone().map(SecretUrl::new),
            teams_webhook_url: new.teams_webhook_url.clone().map(SecretUrl::new),
            webhook_url: new.webhook_url.clone().map(SecretUrl::new),
            muted: new.muted,
            muted_until: new.muted_until,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            added_version: 1,
            state: AgentState::default(),
        }
    }

    /// The name alerts and answers show: the operator's, else the listing's.
    pub fn display_name(&self) -> Option<&str> {
        self.name.as_deref().or(self.listed_name.as_deref())
    }

    /// Muted now: `muted`, until `muted_until` when it has one.
    pub fn is_muted(&self, now: DateTime<Utc>) -> bool {
        muted_at(self.muted, self.muted_until, now)
    }

    /// Muted until a time that has come: the store lifts the mute
    /// ([`AgentStore::lift_expired_mutes`]).
    pub fn mute_expired(&self, now: DateTime<Utc>) -> bool {
        self.muted_until.is_some_and(|until| until <= now)
    }

    /// Where this agent's alerts go: its own webhooks when it has any, else the defaults.
    pub fn destinations(&self, defaults: &[Webhook]) -> Vec<Webhook> {
        let own = self.own_webhooks();
        if own.is_empty() {
            defaults.to_vec()
        } else {
            own
        }
    }

    /// The agent's own webhooks, in [`PLATFORMS`] order; empty when it has none (its alerts
    /// then go to the defaults).
    pub fn own_webhooks(&self) -> Vec<Webhook> {
        PLATFORMS
            .into_iter()
            .filter_map(|p| Some(Webhook::new(p, self.webhook_url(p)?.clone())))
            .collect()
    }

    /// The agent's own webhook URL for `platform`: the one place that maps a platform to its
    /// column.
    pub fn webhook_url(&self, platform: Platform) -> Option<&SecretUrl> {
        match platform {
            Platform::Slack => self.slack_webhook_url.as_ref(),
            Platform::Discord => self.discord_webhook_url.as_ref(),
            Platform::Teams => self.teams_webhook_url.as_ref(),
            Platform::Webhook => self.webhook_url.as_ref(),
        }
    }
}

/// A new agent, already validated by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAgent {
    pub name: Option<String>,
    pub slack_webhook_url: Option<Url>,
    pub discord_webhook_url: Option<Url>,
    pub teams_webhook_url: Option<Url>,
    pub webhook_url: Option<Url>,
    pub muted: bool,
    pub muted_until: Option<DateTime<Utc>>,
}

/// A partial update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentPatch {
    pub name: Option<Option<String>>,
    pub slack_webhook_url: Option<Option<Url>>,
    pub discord_webhook_url: Option<Option<Url>>,
    pub teams_webhook_url: Option<Option<Url>>,
    pub webhook_url: Option<Option<Url>>,
    pub muted: Option<bool>,
    pub muted_until: Option<Option<DateTime<Utc>>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> SecretUrl {
        SecretUrl::new(Url::parse(s).unwrap())
    }

    fn agent(slack: Option<&str>, discord: Option<&str>) -> AgentRecord {
        let new = NewAgent {
            slack_webhook_url: slack.map(|s| Url::parse(s).unwrap()),
            discord_webhook_url: discord.map(|s| Url::parse(s).unwrap()),
            ..Default::default()
        };
        AgentRecord::for_tests(
            "00000000-0000-4000-8000-000000000001".parse().unwrap(),
            &new,
        )
    }

    #[test]
    fn an_agents_own_webhooks_replace_the_defaults_and_none_means_the_defaults() {
        let (own_slack, own_discord) = ("https://hooks.slack.com/own", "https://discord.com/own");
        let defaults = vec![Webhook::new(
            Platform::Slack,
            url("https://hooks.slack.com/d"),
        )];
        assert_eq!(agent(None, None).destinations(&defaults), defaults);
        let slack_only = agent(Some(own_slack), None).destinations(&defaults);
        assert_eq!(
            slack_only,
            vec![Webhook::new(Platform::Slack, url(own_slack))]
        );
        let both = agent(Some(own_slack), Some(own_discord)).destinations(&defaults);
        let expected = vec![
            Webhook::new(Platform::Slack, url(own_slack)),
            Webhook::new(Platform::Discord, url(own_discord)),
        ];
        assert_eq!(both, expected);
        let teams = "https://prod-1.westus.logic.azure.com/workflows/w?sig=s";
        let mut with_teams = agent(Some(own_slack), None);
        with_teams.teams_webhook_url = Some(url(teams));
        assert_eq!(
            with_teams.destinations(&defaults),
            vec![
                Webhook::new(Platform::Slack, url(own_slack)),
                Webhook::new(Platform::Teams, url(teams)),
            ],
            "a Teams webhook of its own is one more destination, and the defaults still stay out"
        );
        let discord_only = agent(None, Some(own_discord)).destinations(&[]);
        assert_eq!(
            discord_only,
            vec![Webhook::new(Platform::Discord, url(own_discord))]
        );
    }
}
