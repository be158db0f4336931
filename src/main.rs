//! The command line: parse arguments and settings, then hand over to the library. Every way of
//! failing ends in one line on stderr and the contract's exit status.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ravan_watch::config::{Config, ConfigError};
use ravan_watch::domain::AgentId;
use ravan_watch::ravan::RavanClient;
use ravan_watch::{check, serve, telemetry};

#[derive(Parser)]
#[command(
    name = "ravan-watch",
    version,
    about = "Alerts Slack and Discord when a Ravan agent loses its Cal.com connection"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: poll on the schedule, track, alert. Stops cleanly on SIGTERM / Ctrl-C.
    Serve,
    /// Poll each agent once and print its status. Exit 0 all active, 1 any unhealthy,
    /// 2 a poll failed or bad input.
    Check {
        /// Agent UUIDs.
        #[arg(required = true, value_name = "AGENT_ID")]
        agent_ids: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors; bad input is 2, as clap does.
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(e) if e.not_found() => {}
        Err(e) => {
            return config_error(&ConfigError {
                var: ".env",
                reason: format!("cannot be read: {e}"),
            });
        }
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    if let Err(e) = telemetry::init(config.log_format) {
        return config_error(&e);
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match cli.command {
        Command::Serve => {
            if let Err(e) = config.require_auth().and(config.require_admin_token()) {
                return config_error(&e);
            }
            match runtime.block_on(serve::run(config, serve::shutdown_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ravan-watch: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { agent_ids, json } => {
            let mut ids = Vec::new();
            for raw in &agent_ids {
                match raw.parse::<AgentId>() {
                    Ok(id) => ids.push(id),
                    Err(e) => {
                        eprintln!("ravan-watch: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            let auth = match config.require_auth() {
                Ok(a) => a,
                Err(e) => return config_error(&e),
            };
            let client = match RavanClient::new(config.base_url.clone(), auth, config.poll_timeout)
            {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("ravan-watch: {e}");
                    return ExitCode::from(2);
                }
            };
            let results = runtime.block_on(check::poll_all(
                &client,
                &ids,
                config.poll_concurrency.get(),
            ));
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&check::json(&results)).expect("json")
                );
            } else {
                print!("{}", check::table(&results));
            }
            ExitCode::from(check::exit_code(&results))
        }
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("ravan-watch: configuration error: {e}");
    ExitCode::from(2)
}
