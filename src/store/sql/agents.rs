//! [`AgentStore`]: the watched agents and their settings. Every write that changes settings
//! holds the settings version ([`SettingsLock::Update`]): settings writers queue, and a cycle's
//! commit never interleaves with one.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use url::Url;

use super::cycle::AGENTS_WITH_LAST_POLL;
use super::history::forget_intervals;
use super::query::sql;
use super::webhooks::revive;
use super::{Dialect, SettingsLock, SqlStore};
use crate::domain::{AgentId, Platform};
use crate::store::rows::{StoredRow, agent_from_row};
use crate::store::{
    AgentPatch, AgentRecord, AgentStore, CycleStore, Fence, ListingApplied, ListingPlan,
    ListingSeen, NewAgent, Source, StoreError, corrupt, during, parse_agent_id,
};

#[async_trait]
impl<D: Dialect> AgentStore for SqlStore<D> {
    async fn insert_agent(
        &self,
        id: AgentId,
        new: &NewAgent,
        now: DateTime<Utc>,
    ) -> Result<AgentRecord, StoreError> {
        let insert = async {
            let mut tx = self.write(Fence::Unchecked, SettingsLock::Update).await?;
            let q = sql(
                "INSERT INTO agents (agent_id, name, slack_webhook_url, discord_webhook_url,
                     teams_webhook_url, webhook_url, muted, muted_until, created_at, source)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'api') ON CONFLICT (agent_id) DO NOTHING",
            );
            let slack = new.slack_webhook_url.as_ref().map(Url::as_str);
            let discord = new.discord_webhook_url.as_ref().map(Url::as_str);
            let teams = new.teams_webhook_url.as_ref().map(Url::as_str);
            let q = q.bind(id).bind(new.name.clone()).bind(slack).bind(discord);
            let signed = new.webhook_url.as_ref().map(Url::as_str);
            let q = q.bind(teams).bind(signed);
            let q = q.bind(new.muted).bind(new.muted_until).bind(now);
            if D::execute(&mut tx, q).await? == 0 {
                return Err(StoreError::Conflict(id));
            }
            // Added again by hand: watch-all may list it from now on.
            let q = sql("DELETE FROM unwatched_agents WHERE agent_id = ?").bind(id);
            D::execute(&mut tx, q).await?;
            let set = [
                (Platform::Slack, new.slack_webhook_url.as_ref()),
                (Platform::Discord, new.discord_webhook_url.as_ref()),
                (Platform::Teams, new.teams_webhook_url.as_ref()),
                (Platform::Webhook, new.webhook_url.as_ref()),
            ];
            revive::<D>(&mut tx, &set).await?;
            Ok(tx.commit().await?)
        };
        during("add an agent", insert).await?;
        self.agent(id)
            .await?
            .ok_or_else(|| corrupt("agent", "vanished after insert"))
    }

    async fn ensure_agents(&self, ids: &[AgentId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let ensure = async {
            let mut tx = self.write(Fence::Unchecked, SettingsLock::Update).await?;
            let mut added = 0;
            for id in ids {
                let q = sql(
                    "INSERT INTO agents (agent_id, created_at, source) VALUES (?, ?, 'env')
                     ON CONFLICT (agent_id) DO NOTHING",
                );
                let new = D::execute(&mut tx, q.bind(*id).bind(now)).await?;
                if new == 0 {
                    let q = sql(
                        "UPDATE agents SET source = 'env' WHERE agent_id = ? AND source <> 'env'",
                    );
                    D::execute(&mut tx, q.bind(*id)).await?;
                }
                added += new;
            }
            tx.commit().await?;
            Ok(added)
        };
        during("add the configured agents", ensure).await
    }

    async fn agent(&self, id: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        let q = sql(AGENTS_WITH_LAST_POLL)
            .push(" WHERE agent_id = ")
            .bind(id);
        during("read an agent", self.first(q, agent_from_row)).await
    }

    async fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        Ok(self.watched().await?.agents)
    }

    async fn update_agent(
        &self,
        id: AgentId,
        patch: &AgentPatch,
    ) -> Result<Option<AgentRecord>, StoreError> {
        let update = async {
            let mut tx = self.write(Fence::Unchecked, SettingsLock::Update).await?;
            let q = sql("SELECT 1 AS n FROM agents WHERE agent_id = ?").bind(id);
            if super::first::<D, _>(&mut tx, q, |_| Ok(()))
                .await?
                .is_none()
            {
                return Ok(false);
            }
            // Settings the operator gave are never dropped with the agent: a discovered agent
            // changed over the API becomes the operator's, which watch-all does not remove.
            let q = sql(
                "UPDATE agents SET source = 'api' WHERE agent_id = ? AND source = 'discovered'",
            );
            D::execute(&mut tx, q.bind(id)).await?;
            let set = [
                (Platform::Slack, given(&patch.slack_webhook_url)),
                (Platform::Discord, given(&patch.discord_webhook_url)),
                (Platform::Teams, given(&patch.teams_webhook_url)),
                (Platform::Webhook, given(&patch.webhook_url)),
            ];
            revive::<D>(&mut tx, &set).await?;
            for set in patch_statements(patch) {
                D::execute(&mut tx, set.push(" WHERE agent_id = ").bind(id)).await?;
            }
            tx.commit().await?;
            Ok(true)
        };
        if !during("change an agent", update).await? {
            return Ok(None);
        }
        self.agent(id).await
    }

    async fn lift_expired_mutes(
        &self,
        fence: Fence,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let lift = async {
            let mut tx = self.write(fence, SettingsLock::Update).await?;
            let q = sql("UPDATE agents SET muted = FALSE, muted_until = NULL
                 WHERE muted_until IS NOT NULL AND muted_until <= ?");
            let lifted = D::execute(&mut tx, q.bind(now)).await?;
            tx.commit().await?;
            Ok(lifted)
        };
        during("lift expired mutes", lift).await
    }

    async fn delete_agent(&self, id: AgentId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let delete = async {
            let mut tx = self.write(Fence::Unchecked, SettingsLock::Update).await?;
            let q = sql("DELETE FROM agents WHERE agent_id = ?").bind(id);
            if D::execute(&mut tx, q).await? == 0 {
                return Ok(false);
            }
            forget_intervals::<D>(&mut tx, id).await?;
            let q = sql(
                "INSERT INTO unwatched_agents (agent_id, since) VALUES (?, ?)
                 ON CONFLICT (agent_id) DO UPDATE SET since = excluded.since",
            );
            D::execute(&mut tx, q.bind(id).bind(now)).await?;
            tx.commit().await?;
            Ok(true)
        };
        during("remove an agent", delete).await
    }

    async fn apply_listing(
        &self,
        fence: Fence,
        listed: &[(AgentId, Option<String>)],
        now: DateTime<Utc>,
    ) -> Result<ListingApplied, StoreError> {
        let apply = async {
            let mut tx = self.write(fence, SettingsLock::Update).await?;
            let q = sql("SELECT agent_id, source, listed_name, absent_listings FROM agents");
            let current: HashMap<AgentId, ListingSeen> = D::all(&mut tx, q, listing_seen)
                .await?
                .into_iter()
                .collect();
            // An id that does not parse was never watched: it cannot be listed either.
            let q = sql("SELECT agent_id FROM unwatched_agents");
            let unwatched: HashSet<AgentId> = D::all(&mut tx, q, |row| row.text("agent_id"))
                .await?
                .into_iter()
                .filter_map(|id| id.parse().ok())
                .collect();
            let plan = ListingPlan::new(&current, &unwatched, listed);
            apply_plan::<D>(&mut tx, &plan, now).await?;
            tx.commit().await?;
            Ok(plan.applied())
        };
        during("apply a listing", apply).await
    }
}

/// An agent as a listing sees it.
fn listing_seen(row: &impl StoredRow) -> Result<(AgentId, ListingSeen), StoreError> {
    let seen = ListingSeen {
        source: Source::parse(&row.text("source")?).map_err(|e| corrupt("agent source", e))?,
        listed_name: row.optional_text("listed_name")?,
        absent: row.int("absent_listings")?,
    };
    Ok((parse_agent_id(&row.text("agent_id")?)?, seen))
}

/// The URL a patch sets, if it sets one (not when it clears it or leaves it alone).
fn given(u: &Option<Option<Url>>) -> Option<&Url> {
    u.as_ref().and_then(Option::as_ref)
}

/// One `UPDATE agents SET …` per setting the patch names (each still without its `WHERE`).
fn patch_statements(patch: &AgentPatch) -> Vec<super::query::Sql> {
    let url = |u: &Option<Url>| u.as_ref().map(|u| u.as_str().to_owned());
    let mut sets = Vec::new();
    if let Some(name) = &patch.name {
        sets.push(sql("UPDATE agents SET name = ?").bind(name.clone()));
    }
    if let Some(u) = &patch.slack_webhook_url {
        sets.push(sql("UPDATE agents SET slack_webhook_url = ?").bind(url(u)));
    }
    if let Some(u) = &patch.discord_webhook_url {
        sets.push(sql("UPDATE agents SET discord_webhook_url = ?").bind(url(u)));
    }
    if let Some(u) = &patch.teams_webhook_url {
        sets.push(sql("UPDATE agents SET teams_webhook_url = ?").bind(url(u)));
    }
    if let Some(u) = &patch.webhook_url {
        sets.push(sql("UPDATE agents SET webhook_url = ?").bind(url(u)));
    }
    if let Some(muted) = patch.muted {
        sets.push(sql("UPDATE agents SET muted = ?").bind(muted));
    }
    if let Some(until) = patch.muted_until {
        sets.push(sql("UPDATE agents SET muted_until = ?").bind(until));
    }
    sets
}

/// Writes a listing's plan: renames, absences, additions and removals.
async fn apply_plan<D: Dialect>(
    tx: &mut D::Connection,
    plan: &ListingPlan,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for (id, name) in &plan.rename {
        let q = sql("UPDATE agents SET listed_name = ? WHERE agent_id = ?");
        D::execute(tx, q.bind(name.clone()).bind(*id)).await?;
    }
    for id in &plan.reset_absence {
        let q = sql("UPDATE agents SET absent_listings = 0 WHERE agent_id = ?");
        D::execute(tx, q.bind(*id)).await?;
    }
    for (id, name) in &plan.add {
        let q = sql(
            "INSERT INTO agents (agent_id, listed_name, created_at, source)
             VALUES (?, ?, ?, 'discovered')",
        );
        D::execute(tx, q.bind(*id).bind(name.clone()).bind(now)).await?;
    }
    for id in &plan.remove {
        D::execute(tx, sql("DELETE FROM agents WHERE agent_id = ?").bind(*id)).await?;
        forget_intervals::<D>(tx, *id).await?;
    }
    for id in &plan.count_absence {
        let q = sql("UPDATE agents SET absent_listings = absent_listings + 1 WHERE agent_id = ?");
        D::execute(tx, q.bind(*id)).await?;
    }
    Ok(())
}
