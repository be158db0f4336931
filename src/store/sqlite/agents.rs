//! [`AgentStore`] on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use url::Url;

use super::history::forget_intervals;
use super::lease::check_fence;
use super::rows::{agent_from_row, column, text};
use super::webhooks::revive;
use super::{SqliteStore, millis};
use crate::domain::AgentId;
use crate::store::{
    AgentPatch, AgentRecord, AgentStore, CycleStore, Fence, ListingApplied, ListingPlan,
    ListingSeen, NewAgent, Source, StoreError, corrupt,
};

#[async_trait]
impl AgentStore for SqliteStore {
    async fn insert_agent(
        &self,
        id: AgentId,
        new: &NewAgent,
        now: DateTime<Utc>,
    ) -> Result<AgentRecord, StoreError> {
        let mut tx = self.write().await?;
        let result = sqlx::query(
            "INSERT INTO agents (agent_id, name, slack_webhook_url, discord_webhook_url, muted, muted_until, created_at, source)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'api') ON CONFLICT (agent_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(&new.name)
        .bind(new.slack_webhook_url.as_ref().map(Url::as_str))
        .bind(new.discord_webhook_url.as_ref().map(Url::as_str))
        .bind(new.muted)
        .bind(new.muted_until.map(millis))
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict(id));
        }
        // Added again by hand: watch-all may list it from now on.
        sqlx::query("DELETE FROM unwatched_agents WHERE agent_id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        revive(
            &mut tx,
            new.slack_webhook_url.as_ref(),
            new.discord_webhook_url.as_ref(),
        )
        .await?;
        tx.commit().await?;
        self.agent(id)
            .await?
            .ok_or_else(|| corrupt("agent", "vanished after insert"))
    }

    async fn ensure_agents(&self, ids: &[AgentId], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let mut added = 0;
        for id in ids {
            let new = sqlx::query(
                "INSERT INTO agents (agent_id, created_at, source) VALUES (?, ?, 'env')
                 ON CONFLICT (agent_id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(millis(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if new == 0 {
                sqlx::query(
                    "UPDATE agents SET source = 'env' WHERE agent_id = ? AND source <> 'env'",
                )
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            added += new;
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn agent(&self, id: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        sqlx::query(concat!(agents_with_last_poll!(), " WHERE agent_id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(|row| agent_from_row(&row))
            .transpose()
    }

    async fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        Ok(self.watched().await?.agents)
    }

    async fn update_agent(
        &self,
        id: AgentId,
        patch: &AgentPatch,
    ) -> Result<Option<AgentRecord>, StoreError> {
        let mut tx = self.write().await?;
        let exists = sqlx::query("SELECT 1 FROM agents WHERE agent_id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let key = id.to_string();
        // Settings the operator gave are never dropped with the agent: a discovered agent
        // changed over the API becomes the operator's, which watch-all does not remove.
        sqlx::query(
            "UPDATE agents SET source = 'api' WHERE agent_id = ? AND source = 'discovered'",
        )
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        if let Some(name) = &patch.name {
            sqlx::query("UPDATE agents SET name = ? WHERE agent_id = ?")
                .bind(name)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        revive(
            &mut tx,
            patch.slack_webhook_url.as_ref().and_then(Option::as_ref),
            patch.discord_webhook_url.as_ref().and_then(Option::as_ref),
        )
        .await?;
        if let Some(url) = &patch.slack_webhook_url {
            sqlx::query("UPDATE agents SET slack_webhook_url = ? WHERE agent_id = ?")
                .bind(url.as_ref().map(Url::as_str))
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(url) = &patch.discord_webhook_url {
            sqlx::query("UPDATE agents SET discord_webhook_url = ? WHERE agent_id = ?")
                .bind(url.as_ref().map(Url::as_str))
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(muted) = patch.muted {
            sqlx::query("UPDATE agents SET muted = ? WHERE agent_id = ?")
                .bind(muted)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(until) = patch.muted_until {
            sqlx::query("UPDATE agents SET muted_until = ? WHERE agent_id = ?")
                .bind(until.map(millis))
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.agent(id).await
    }

    async fn lift_expired_mutes(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE agents SET muted = 0, muted_until = NULL WHERE muted_until IS NOT NULL AND muted_until <= ?",
        )
        .bind(millis(now))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn delete_agent(&self, id: AgentId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let result = sqlx::query("DELETE FROM agents WHERE agent_id = ?")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        forget_intervals(&mut tx, &id).await?;
        sqlx::query(
            "INSERT INTO unwatched_agents (agent_id, since) VALUES (?, ?)
             ON CONFLICT (agent_id) DO UPDATE SET since = excluded.since",
        )
        .bind(id.to_string())
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn apply_listing(
        &self,
        fence: Fence,
        listed: &[(AgentId, Option<String>)],
        now: DateTime<Utc>,
    ) -> Result<ListingApplied, StoreError> {
        let mut tx = self.write().await?;
        check_fence(&mut tx, fence).await?;
        let mut current = std::collections::HashMap::new();
        {
            let mut rows =
                sqlx::query("SELECT agent_id, source, listed_name, absent_listings FROM agents")
                    .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                let id: AgentId = text(&row, "agent_id")?
                    .parse()
                    .map_err(|e| corrupt("agent_id", e))?;
                let seen = ListingSeen {
                    source: Source::parse(&text(&row, "source")?)?,
                    listed_name: column(&row, "listed_name")?,
                    absent: column(&row, "absent_listings")?,
                };
                current.insert(id, seen);
            }
        }
        // An id that does not parse was never watched: it cannot be listed either.
        let unwatched: std::collections::HashSet<AgentId> =
            sqlx::query_scalar::<_, String>("SELECT agent_id FROM unwatched_agents")
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .filter_map(|id| id.parse().ok())
                .collect();
        let plan = ListingPlan::new(&current, &unwatched, listed);
        for (id, name) in &plan.rename {
            sqlx::query("UPDATE agents SET listed_name = ? WHERE agent_id = ?")
                .bind(name)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        for id in &plan.reset_absence {
            sqlx::query("UPDATE agents SET absent_listings = 0 WHERE agent_id = ?")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        for (id, name) in &plan.add {
            sqlx::query(
                "INSERT INTO agents (agent_id, listed_name, created_at, source)
                 VALUES (?, ?, ?, 'discovered')",
            )
            .bind(id.to_string())
            .bind(name)
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        }
        for id in &plan.remove {
            sqlx::query("DELETE FROM agents WHERE agent_id = ?")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            forget_intervals(&mut tx, id).await?;
        }
        for id in &plan.count_absence {
            sqlx::query(
                "UPDATE agents SET absent_listings = absent_listings + 1 WHERE agent_id = ?",
            )
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(plan.applied())
    }
}
