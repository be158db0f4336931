//! The command line's commands, one file each; `main.rs` only parses the arguments and calls
//! the command's `main`. Every way of failing ends in one line on stderr and the contract's
//! exit status (2 for a bad setting or bad input).

pub mod check;
pub mod copy_db;
pub mod demo;
pub mod healthcheck;
pub mod serve;
pub mod test_message;

use std::process::ExitCode;

use crate::config::{Config, ConfigError};
use crate::telemetry;

/// What every command but `healthcheck` does first: read the settings, start logging (at
/// `default_filter` unless `RUST_LOG` says otherwise) and make a runtime.
fn start(default_filter: &str) -> Result<(Config, tokio::runtime::Runtime), ExitCode> {
    let config = Config::from_env().map_err(|e| config_error(&e))?;
    telemetry::init_with_default(config.log_format, default_filter)
        .map_err(|e| config_error(&e))?;
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    Ok((config, runtime))
}

/// A setting that cannot be used: one line, exit 2.
pub fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("ravan-watch: configuration error: {e}");
    ExitCode::from(2)
}
