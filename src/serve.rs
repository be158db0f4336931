//! `ravan-watch serve`: opens the store, merges `WATCH_AGENT_IDS` into it, and runs the
//! scheduler (poll cycles) and the outbox worker (delivery) until told to stop. Then it stops in
//! order: no new cycles, the running cycle finishes (bounded), the delivery in progress finishes
//! (bounded). Anything not yet delivered stays in the outbox for the next start.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio::sync::watch;

use crate::config::Config;
use crate::monitor::Monitor;
use crate::notify::{Outbox, RetryPolicy};
use crate::ravan::RavanClient;
use crate::scheduler::Scheduler;
use crate::store::Store;

/// Each shutdown step's limit; together they fit in Docker's default 10 s stop timeout.
const SHUTDOWN_STEP: Duration = Duration::from_secs(4);

/// Runs the service until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let auth = config.require_auth()?;
    config.require_admin_token()?;
    // Install the metrics recorder before anything counts.
    crate::metrics::handle();
    let ravan = RavanClient::new(config.base_url.clone(), auth, config.poll_timeout)?;
    let store = Store::open(&config.database_url)
        .await
        .context("opening the database (DATABASE_URL)")?;
    let added = store
        .ensure_agents(&config.watch_agent_ids, Utc::now())
        .await
        .context("adding WATCH_AGENT_IDS")?;
    let defaults = config.default_webhooks();
    if defaults.is_empty() {
        tracing::warn!(
            "neither SLACK_WEBHOOK_URL nor DISCORD_WEBHOOK_URL is set: agents without webhooks of their own alert only in the log"
        );
    }
    let outbox = Outbox::new(store.clone(), RetryPolicy::default())
        .context("building the webhook client")?;
    let monitor = Arc::new(Monitor::new(
        ravan,
        store.clone(),
        outbox.clone(),
        defaults,
        config.thresholds,
        config.poll_concurrency.get(),
    ));

    let (stop, stopped) = watch::channel(false);
    let delivery = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.run(stopped).await }
    });
    let scheduler = Scheduler::start(&config.poll_schedule, monitor)
        .await
        .context("starting the poll scheduler")?;
    let watched = store.agents().await?.len();
    tracing::info!(
        agents = watched,
        added_from_env = added,
        schedule = config.poll_schedule.as_str(),
        ravan = %config.base_url,
        "ravan-watch is watching"
    );

    shutdown.await;
    tracing::info!("shutting down");
    scheduler.stop(SHUTDOWN_STEP).await;
    stop.send_replace(true);
    let abort = delivery.abort_handle();
    if tokio::time::timeout(SHUTDOWN_STEP, delivery).await.is_err() {
        abort.abort();
        tracing::warn!("a delivery was still in progress at shutdown and was abandoned");
    }
    match store.outbox_pending().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            pending = n,
            "alerts not yet delivered stay in the outbox and are sent after the next start"
        ),
        Err(e) => tracing::error!(error = %e, "cannot count the outbox at shutdown"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (what `docker stop` sends).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
