//! [`WebhookStore`]: the webhooks that answered "gone".

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use url::Url;

use super::cycle::next_batch;
use super::history::insert_alerts;
use super::query::sql;
use super::{Dialect, SettingsLock, SqlStore};
use crate::domain::{Platform, Webhook};
use crate::store::rows::dead_webhook_from_row;
use crate::store::{DeadWebhook, Fence, Routed, StoreError, WebhookStore, during};

/// Dead webhooks in a fixed order: by when they died, ties by their key.
pub(super) const DEAD_WEBHOOKS: &str = "SELECT * FROM dead_webhooks ORDER BY since, platform, url";

#[async_trait]
impl<D: Dialect> WebhookStore for SqlStore<D> {
    async fn mark_webhook_dead(
        &self,
        fence: Fence,
        hook: &Webhook,
        reason: &str,
        now: DateTime<Utc>,
        notice: Option<&Routed>,
    ) -> Result<bool, StoreError> {
        let mark = async {
            let mut tx = self.write(fence, SettingsLock::None).await?;
            let q = sql(
                "INSERT INTO dead_webhooks (platform, url, reason, since) VALUES (?, ?, ?, ?)
                 ON CONFLICT (platform, url) DO NOTHING",
            );
            let q = q
                .bind(hook.platform.as_str())
                .bind(hook.url.expose().as_str());
            let inserted = D::execute(&mut tx, q.bind(reason).bind(now)).await? > 0;
            if let Some(notice) = notice.filter(|_| inserted) {
                let batch = next_batch::<D>(&mut tx).await?;
                insert_alerts::<D>(&mut tx, &[notice], batch, now).await?;
            }
            tx.commit().await?;
            Ok(inserted)
        };
        during("mark a webhook dead", mark).await
    }

    async fn clear_webhook_dead(&self, hook: &Webhook) -> Result<(), StoreError> {
        let q = sql("DELETE FROM dead_webhooks WHERE platform = ? AND url = ?")
            .bind(hook.platform.as_str())
            .bind(hook.url.expose().as_str());
        during("clear a dead webhook", self.execute(q)).await?;
        Ok(())
    }

    async fn dead_webhooks(&self) -> Result<Vec<DeadWebhook>, StoreError> {
        let read = self.all(sql(DEAD_WEBHOOKS), dead_webhook_from_row);
        during("read dead webhooks", read).await
    }
}

/// Forgets that these webhook URLs were dead: setting a URL (even the same one again, with
/// `POST` or `PATCH`) is the operator's word that it works now.
pub(super) async fn revive<D: Dialect>(
    tx: &mut D::Connection,
    set: &[(Platform, Option<&Url>)],
) -> Result<(), StoreError> {
    for (platform, url) in set {
        if let Some(url) = url {
            let q = sql("DELETE FROM dead_webhooks WHERE platform = ? AND url = ?")
                .bind(platform.as_str())
                .bind(url.as_str());
            D::execute(tx, q).await?;
        }
    }
    Ok(())
}
