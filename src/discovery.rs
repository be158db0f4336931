//! Watch-all (`WATCH_ALL_AGENTS`): list the organisation's agents at start and every
//! `DISCOVERY_INTERVAL`, and bring the watched agents in line with each complete listing.
//!
//! A listing is acted on only when it is complete ([`RavanClient::list_agents`] checks the
//! pages against `meta.total`); a failed or partial one changes nothing, because treating a
//! missing page as "those agents are gone" would unwatch them. Even a complete listing removes a
//! discovered agent only when it is absent a second time in a row, so one odd answer cannot
//! unwatch anything. What the store does with a listing is [`AgentStore::apply_listing`](crate::store::AgentStore::apply_listing).
//!
//! Listed agents that say they are inactive are left alone (they take no calls, so they book
//! nothing); only id, name and status are read from the listing, whose agent objects carry
//! secrets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::leader::{CLAIM_EVERY, Leadership};
use crate::metrics;
use crate::ravan::{ListingError, RavanClient};
use crate::store::{ListingApplied, Store, StoreError};

/// Why a discovery round changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(
        "listing the organisation's agents failed, so the watched agents stay as they are: {0}"
    )]
    Listing(#[from] ListingError),
    #[error("the listing could not be applied: {0}")]
    Store(#[from] StoreError),
    #[error("this process stopped leading before the listing was applied")]
    NotLeader,
}

/// Whether the last listing was complete, shared with the poll cycles: while it is, a
/// discovered agent that Ravan answers 404 for is left to the listing (which unwatches it
/// within two intervals) instead of raising a missing alert. While listings fail, or without
/// watch-all, its 404s alert like any agent's.
#[derive(Clone, Debug, Default)]
pub struct ListingHealth(Arc<AtomicBool>);

impl ListingHealth {
    pub fn is_complete(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, complete: bool) {
        self.0.store(complete, Ordering::Release);
    }
}

#[derive(Clone)]
pub struct Discovery {
    ravan: RavanClient,
    store: Store,
    health: ListingHealth,
    /// Only the leader lists and applies; a standby waits for its turn.
    leadership: Leadership,
}

impl Discovery {
    /// Discovery that lists and applies only while `leadership` leads, under its fence.
    pub fn new(ravan: RavanClient, store: Store, leadership: Leadership) -> Self {
        Self {
            ravan,
            store,
            health: ListingHealth::default(),
            leadership,
        }
    }

    /// Whether the last round's listing was complete (false before the first).
    pub fn health(&self) -> ListingHealth {
        self.health.clone()
    }

    /// One round: list, then apply. Logs one line either way.
    pub async fn run_once(&self) -> Result<ListingApplied, DiscoveryError> {
        let result = self.round().await;
        self.health.set(result.is_ok());
        let outcome = match &result {
            Ok(applied) => {
                tracing::info!(
                    added = applied.added.len(),
                    removed = applied.removed.len(),
                    excluded = applied.excluded,
                    renamed = applied.renamed,
                    "listed the organisation's agents"
                );
                "complete"
            }
            Err(e) => {
                tracing::warn!(error = %e, "agent discovery changed nothing");
                "failed"
            }
        };
        ::metrics::counter!(metrics::DISCOVERIES, "outcome" => outcome).increment(1);
        result
    }

    async fn round(&self) -> Result<ListingApplied, DiscoveryError> {
        let listing = self.ravan.list_agents().await?;
        if listing.unusable_ids > 0 {
            tracing::warn!(
                entries = listing.unusable_ids,
                "the listing has agents whose id is not a UUID: they cannot be polled and are skipped"
            );
        }
        let active: Vec<_> = listing
            .agents
            .into_iter()
            .filter(|a| !a.is_inactive())
            .map(|a| (a.id, a.name.map(String::from)))
            .collect();
        let Some(fence) = self.leadership.fence() else {
            return Err(DiscoveryError::NotLeader);
        };
        let applied = match self.store.apply_listing(fence, &active, Utc::now()).await {
            Err(e @ StoreError::Fenced(_)) => {
                self.leadership.lost(fence);
                return Err(e.into());
            }
            applied => applied?,
        };
        for id in &applied.added {
            tracing::debug!(agent_id = %id, "agent discovered: watched from now on");
        }
        for id in &applied.removed {
            tracing::info!(agent_id = %id, "agent no longer listed twice in a row: unwatched");
        }
        Ok(applied)
    }

    /// Runs a round now and then every `interval` until `stop`, while this process leads.
    /// A standby checks every [`CLAIM_EVERY`] whether it leads, so a new leader lists within
    /// seconds of taking over rather than a whole interval later. A round in progress at the
    /// stop is dropped, and its transaction with it (a listing is applied whole or not at all).
    pub async fn run(self, interval: Duration, stop: CancellationToken) {
        let mut next = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
            if self.leadership.fence().is_none() {
                next = tokio::time::Instant::now() + CLAIM_EVERY.min(interval);
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.run_once() => {}
            }
            next = tokio::time::Instant::now() + interval;
        }
    }
}
