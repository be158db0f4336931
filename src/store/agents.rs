//! The watched agents: who is watched, from where, with which settings, and the tracker's state
//! for each.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::StoreError;
use super::{Fence, SettingsVersion, corrupt};
use crate::domain::{AgentId, Platform, SecretUrl, Webhook, muted_at};
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

/// Where a watched agent came from. Watch-all removes only the agents it added itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `WATCH_AGENT_IDS`.
    Env,
    /// `POST /agents`.
    Api,
    /// The organisation's listing (`WATCH_ALL_AGENTS`).
    Discovered,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::Api => "api",
            Self::Discovered => "discovered",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "env" => Ok(Self::Env),
            "api" => Ok(Self::Api),
            "discovered" => Ok(Self::Discovered),
            other => Err(corrupt("agent source", format!("{other:?}"))),
        }
    }
}

/// What one complete listing changed ([`AgentStore::apply_listing`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingApplied {
    /// Agents watched from now on.
    pub added: Vec<AgentId>,
    /// Discovered agents unwatched: absent from two complete listings in a row.
    pub removed: Vec<AgentId>,
    /// Listed agents left unwatched because they were removed over the API.
    pub excluded: usize,
    /// Watched agents whose listed name changed.
    pub renamed: usize,
}

/// A watched agent as a listing sees it: where it came from, its listed name, and how many
/// complete listings in a row missed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingSeen {
    pub source: Source,
    pub listed_name: Option<String>,
    pub absent: i64,
}

/// What one complete listing does to the watched agents ([`AgentStore::apply_listing`]),
/// decided without I/O so that every backend applies the same rules: each backend reads the
/// agents and the ones removed over the API, and writes the plan in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingPlan {
    /// Watched agents whose listed name changed, with the new one.
    pub rename: Vec<(AgentId, Option<String>)>,
    /// Watched agents listed again after being missed: their absence count goes back to 0.
    pub reset_absence: Vec<AgentId>,
    /// Listed agents not watched yet: added as `discovered`, with their listed name.
    pub add: Vec<(AgentId, Option<String>)>,
    /// Discovered agents missed by this listing and the one before: unwatched.
    pub remove: Vec<AgentId>,
    /// Discovered agents missed by this listing for the first time: their count goes up.
    pub count_absence: Vec<AgentId>,
    /// Listed agents left unwatched because they were removed over the API.
    pub excluded: usize,
}

impl ListingPlan {
    /// The plan for `listed`, given the watched agents (`current`) and the ids removed over
    /// the API (`unwatched`).
    pub fn new(
        current: &std::collections::HashMap<AgentId, ListingSeen>,
        unwatched: &std::collections::HashSet<AgentId>,
        listed: &[(AgentId, Option<String>)],
    ) -> Self {
        let mut plan = Self::default();
        let mut listed_ids = std::collections::HashSet::new();
        for (id, name) in listed {
            listed_ids.insert(*id);
            match current.get(id) {
                Some(seen) => {
                    if seen.listed_name != *name {
                        plan.rename.push((*id, name.clone()));
                    }
                    if seen.absent != 0 {
                        plan.reset_absence.push(*id);
                    }
                }
                None if unwatched.contains(id) => plan.excluded += 1,
                None => plan.add.push((*id, name.clone())),
            }
        }
        for (id, seen) in current {
            if seen.source != Source::Discovered || listed_ids.contains(id) {
                continue;
            }
            if seen.absent + 1 >= 2 {
                plan.remove.push(*id);
            } else {
                plan.count_absence.push(*id);
            }
        }
        plan.remove.sort();
        plan
    }

    /// What the plan changed, as [`AgentStore::apply_listing`] reports it.
    pub fn applied(&self) -> ListingApplied {
        ListingApplied {
            added: self.add.iter().map(|(id, _)| *id).collect(),
            removed: self.remove.clone(),
            excluded: self.excluded,
            renamed: self.rename.len(),
        }
    }
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

    /// The agent's own webhooks; empty when it has none (its alerts then go to the defaults).
    pub fn own_webhooks(&self) -> Vec<Webhook> {
        let slack = self
            .slack_webhook_url
            .clone()
            .map(|u| Webhook::new(Platform::Slack, u));
        let discord = self
            .discord_webhook_url
            .clone()
            .map(|u| Webhook::new(Platform::Discord, u));
        slack.into_iter().chain(discord).collect()
    }
}

/// A new agent, already validated by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAgent {
    pub name: Option<String>,
    pub slack_webhook_url: Option<Url>,
    pub discord_webhook_url: Option<Url>,
    pub muted: bool,
    pub muted_until: Option<DateTime<Utc>>,
}

/// A partial update: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentPatch {
    pub name: Option<Option<String>>,
    pub slack_webhook_url: Option<Option<Url>>,
    pub discord_webhook_url: Option<Option<Url>>,
    pub muted: Option<bool>,
    pub muted_until: Option<Option<DateTime<Utc>>>,
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn id(n: u8) -> AgentId {
        format!("00000000-0000-4000-8000-0000000000{n:02}")
            .parse()
            .unwrap()
    }

    fn seen(source: Source, name: Option<&str>, absent: i64) -> ListingSeen {
        ListingSeen {
            source,
            listed_name: name.map(str::to_owned),
            absent,
        }
    }

    /// Every rule of a listing, each on an agent of its own, in one plan.
    #[test]
    fn a_listing_plan_follows_every_rule() {
        let current = HashMap::from([
            (id(1), seen(Source::Discovered, Some("Sales"), 0)), // listed, same name
            (id(2), seen(Source::Api, Some("Old"), 0)),          // listed, renamed
            (id(3), seen(Source::Discovered, None, 1)),          // listed again after a miss
            (id(4), seen(Source::Discovered, None, 0)),          // missed once
            (id(5), seen(Source::Discovered, None, 1)),          // missed twice
            (id(6), seen(Source::Env, None, 0)),                 // missed, not discovered
            (id(7), seen(Source::Api, None, 1)),                 // missed, not discovered
        ]);
        let unwatched = HashSet::from([id(9)]);
        let listed = vec![
            (id(1), Some("Sales".to_owned())),
            (id(2), Some("New".to_owned())),
            (id(3), None),
            (id(8), Some("Fresh".to_owned())), // not watched: added
            (id(9), Some("Gone".to_owned())),  // removed over the API: excluded
        ];
        let plan = ListingPlan::new(&current, &unwatched, &listed);
        assert_eq!(
            plan,
            ListingPlan {
                rename: vec![(id(2), Some("New".to_owned()))],
                reset_absence: vec![id(3)],
                add: vec![(id(8), Some("Fresh".to_owned()))],
                remove: vec![id(5)],
                count_absence: vec![id(4)],
                excluded: 1,
            }
        );
        assert_eq!(
            plan.applied(),
            ListingApplied {
                added: vec![id(8)],
                removed: vec![id(5)],
                excluded: 1,
                renamed: 1,
            }
        );
        // The same listing against what the plan leaves changes nothing more.
        let mut after = current.clone();
        after.remove(&id(5));
        after.insert(id(2), seen(Source::Api, Some("New"), 0));
        after.insert(id(3), seen(Source::Discovered, None, 0));
        after.insert(id(4), seen(Source::Discovered, None, 1));
        after.insert(id(8), seen(Source::Discovered, Some("Fresh"), 0));
        let again = ListingPlan::new(&after, &unwatched, &listed);
        assert_eq!(again.rename, vec![]);
        assert_eq!(again.add, vec![]);
        assert_eq!(again.remove, vec![id(4)], "missed a second time in a row");
    }
}
