//! Logging setup: tracing to stderr (stdout stays clean for `check --json`), as text or JSON.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, LogFormat};

/// Installs the global subscriber. `RUST_LOG` defaults to `info`; a filter that does not parse
/// is a configuration error like any other.
pub fn init(format: LogFormat) -> Result<(), ConfigError> {
    init_with_default(format, DEFAULT_FILTER)
}

/// The filter when `RUST_LOG` is unset: `info`, as CONTRACT.md says.
pub const DEFAULT_FILTER: &str = "info";

/// [`init`] with another filter when `RUST_LOG` is unset (`demo` keeps the terminal for its
/// story with `warn`).
pub fn init_with_default(format: LogFormat, default_filter: &str) -> Result<(), ConfigError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => {
            EnvFilter::try_new(value.trim()).map_err(|e| ConfigError {
                var: "RUST_LOG",
                reason: format!("not a log filter ({e})"),
            })?
        }
        _ => EnvFilter::new(default_filter),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: in `docker logs` and files they are noise.
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}
