//! `ravan-watch serve`: the service ([`crate::app`]) until SIGTERM or Ctrl-C, then a clean stop.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use super::{config_error, start};
use crate::app::{App, DatabaseUnavailable};
use crate::config::Config;
use crate::telemetry;

/// What tasks still running after the service stopped get before the process exits.
const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(100);

pub fn main() -> ExitCode {
    let (config, runtime) = match start(telemetry::DEFAULT_FILTER) {
        Ok(started) => started,
        Err(code) => return code,
    };
    if let Err(e) = config.require_auth().and(config.require_admin_token()) {
        return config_error(&e);
    }
    let result = runtime.block_on(run(config, shutdown_signal()));
    // A task abandoned at shutdown (a database call that never answers) must not hold the exit.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A database that cannot be opened is a bad setting: one line naming DATABASE_URL.
        // One that opens but cannot be migrated, or stays locked, is not the setting's fault.
        Err(e)
            if e.downcast_ref::<DatabaseUnavailable>()
                .is_some_and(DatabaseUnavailable::is_bad_setting) =>
        {
            eprintln!("ravan-watch: configuration error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("ravan-watch: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the service until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let service = App::build(config).await?.start().await?;
    shutdown.await;
    service.stop().await;
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
