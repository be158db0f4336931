//! `ravan-watch serve`: wires the client, tracker, notifier and scheduler together, runs until
//! told to stop, then stops in order: no new cycles, the running cycle finishes (bounded),
//! queued alerts go out (bounded), and anything left undelivered is logged.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::alert::AgentRef;
use crate::config::Config;
use crate::monitor::Monitor;
use crate::notify::{Notifier, RetryPolicy, Sender};
use crate::ravan::RavanClient;
use crate::scheduler::Scheduler;

/// Each shutdown step's limit; together they fit in Docker's default 10 s stop timeout.
const SHUTDOWN_STEP: Duration = Duration::from_secs(4);

/// Runs the service until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let auth = config.require_auth()?;
    let ravan = RavanClient::new(config.base_url.clone(), auth, config.poll_timeout)?;
    let hooks = config.default_webhooks();
    if hooks.is_empty() {
        tracing::warn!(
            "neither SLACK_WEBHOOK_URL nor DISCORD_WEBHOOK_URL is set: alerts are only logged"
        );
    }
    if config.watch_agent_ids.is_empty() {
        tracing::warn!("WATCH_AGENT_IDS is empty: no agent is watched");
    }
    let sender = Sender::new(RetryPolicy::default()).context("building the webhook client")?;
    let notifier = Arc::new(Notifier::start(sender, hooks));
    let agents = config
        .watch_agent_ids
        .iter()
        .map(|id| AgentRef {
            id: *id,
            name: None,
        })
        .collect::<Vec<_>>();
    let watched = agents.len();
    let monitor = Arc::new(Monitor::new(
        ravan,
        agents,
        config.thresholds,
        config.poll_concurrency.get(),
        notifier.clone(),
    ));
    let scheduler = Scheduler::start(&config.poll_schedule, monitor)
        .await
        .context("starting the poll scheduler")?;
    tracing::info!(
        agents = watched,
        schedule = config.poll_schedule.as_str(),
        ravan = %config.base_url,
        "ravan-watch is watching"
    );

    shutdown.await;
    tracing::info!("shutting down");
    scheduler.stop(SHUTDOWN_STEP).await;
    notifier.shutdown(SHUTDOWN_STEP).await;
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
