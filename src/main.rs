//! The command line: parse arguments and settings, then hand over to the library. Every way of
//! failing ends in one line on stderr and the contract's exit status.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ravan_watch::config::{self, Config, ConfigError};
use ravan_watch::domain::AgentId;
use ravan_watch::ravan::RavanClient;
use ravan_watch::{check, demo, healthcheck, notify_test, serve, telemetry};

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
    /// Poll each agent once and print its status and effective connection (private,
    /// org-linked, none). Exit 0 all active, 1 any unhealthy, 2 a poll failed or bad input.
    Check {
        /// Agent UUIDs.
        #[arg(required_unless_present = "all", value_name = "AGENT_ID")]
        agent_ids: Vec<String>,
        /// Check every agent the credentials can list (GET /api/v1/agents/) instead.
        #[arg(long, conflicts_with = "agent_ids")]
        all: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send one test message to every configured default webhook (SLACK_WEBHOOK_URL,
    /// DISCORD_WEBHOOK_URL) and print what each answered. Exit 0 all delivered, 1 otherwise,
    /// 2 when none is configured.
    NotifyTest,
    /// Watch the whole pipeline work against a simulated Ravan API on 127.0.0.1: five agents
    /// fail and recover over about 40 seconds, and each alert is shown in the terminal. Needs no
    /// token and no webhook (alerts also go to SLACK_WEBHOOK_URL / DISCORD_WEBHOOK_URL when set).
    /// Ctrl-C stops it; exit 0.
    Demo,
    /// GET /healthz on the local listener (LISTEN_ADDR; 0.0.0.0 and :: mean loopback), for the
    /// container's HEALTHCHECK. Exit 0 healthy, 1 not. Reads no other setting.
    Healthcheck,
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
    if let Command::Healthcheck = cli.command {
        // Only LISTEN_ADDR: a missing token or database must not make the service look sick.
        let addr = match config::listen_addr_from_env() {
            Ok(addr) => addr,
            Err(e) => return config_error(&e),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        return match runtime.block_on(healthcheck::check(addr, healthcheck::TIMEOUT)) {
            Ok(url) => {
                println!("healthy: {url}");
                ExitCode::SUCCESS
            }
            Err(why) => {
                eprintln!("ravan-watch: unhealthy: {why}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    // The demo keeps the terminal for its story: warnings and errors only, unless RUST_LOG says.
    let default_filter = match cli.command {
        Command::Demo => "warn",
        _ => telemetry::DEFAULT_FILTER,
    };
    if let Err(e) = telemetry::init_with_default(config.log_format, default_filter) {
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
        Command::Check {
            agent_ids,
            all,
            json,
        } => {
            let mut ids = Vec::new();
            for raw in &agent_ids {
                match raw.parse::<AgentId>() {
                    Ok(id) => ids.push((id, None)),
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
            if all {
                match runtime.block_on(client.list_agents()) {
                    Ok(listing) => {
                        if listing.unusable_ids > 0 {
                            eprintln!(
                                "ravan-watch: {} listed agents have an id that is not a UUID and are left out",
                                listing.unusable_ids
                            );
                        }
                        ids = check::targets(&listing.agents);
                    }
                    Err(e) => {
                        eprintln!("ravan-watch: cannot list the agents: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            let results = runtime.block_on(check::poll_all(
                &client,
                &ids,
                config.poll_concurrency.get(),
                config.check_org_linked,
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
        Command::NotifyTest => {
            let webhooks = config.default_webhooks();
            if webhooks.is_empty() {
                return config_error(&ConfigError {
                    var: "SLACK_WEBHOOK_URL",
                    reason: "not set, nor DISCORD_WEBHOOK_URL: notify-test needs at least one default webhook".into(),
                });
            }
            match runtime.block_on(notify_test::send_all(
                &webhooks,
                notify_test::Limits::default(),
            )) {
                Ok(outcomes) => {
                    for outcome in &outcomes {
                        println!("{}", outcome.line());
                    }
                    ExitCode::from(notify_test::exit_code(&outcomes))
                }
                Err(e) => {
                    eprintln!("ravan-watch: cannot build the webhook client: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo => match runtime.block_on(demo::run(config, serve::shutdown_signal())) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ravan-watch: demo failed: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Healthcheck => unreachable!("handled before the configuration is read"),
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("ravan-watch: configuration error: {e}");
    ExitCode::from(2)
}
