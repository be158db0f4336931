//! [`WebhookStore`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use url::Url;

use super::lease::check_fence;
use super::rows::dead_webhook_from_row;
use super::{PostgresStore, millis, platform_name};
use crate::domain::Webhook;
use crate::store::{DeadWebhook, Fence, StoreError, WebhookStore};

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn mark_webhook_dead(
        &self,
        fence: Fence,
        hook: &Webhook,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        check_fence(&mut tx, fence).await?;
        let inserted = sqlx::query(
            "INSERT INTO dead_webhooks (platform, url, reason, since) VALUES ($1, $2, $3, $4)
             ON CONFLICT (platform, url) DO NOTHING",
        )
        .bind(platform_name(hook.platform))
        .bind(hook.url.expose().as_str())
        .bind(reason)
        .bind(millis(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted > 0)
    }

    async fn clear_webhook_dead(&self, hook: &Webhook) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dead_webhooks WHERE platform = $1 AND url = $2")
            .bind(platform_name(hook.platform))
            .bind(hook.url.expose().as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn dead_webhooks(&self) -> Result<Vec<DeadWebhook>, StoreError> {
        // Ties broken by the key: SQLite's ties come in insertion order, which PostgreSQL does
        // not keep; any fixed order will do, and `copy-db` compares snapshots.
        sqlx::query("SELECT * FROM dead_webhooks ORDER BY since, platform, url")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(dead_webhook_from_row)
            .collect()
    }
}

/// Forgets that these webhook URLs were dead: setting a URL (even the same one again, with
/// `POST` or `PATCH`) is the operator's word that it works now.
pub(super) async fn revive(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    slack: Option<&Url>,
    discord: Option<&Url>,
) -> Result<(), StoreError> {
    for (platform, url) in [("slack", slack), ("discord", discord)] {
        if let Some(url) = url {
            sqlx::query("DELETE FROM dead_webhooks WHERE platform = $1 AND url = $2")
                .bind(platform)
                .bind(url.as_str())
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}
