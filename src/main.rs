//! The command line: parses the arguments (and `./.env`), then hands over to the command
//! ([`ravan_watch::commands`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ravan_watch::commands;
use ravan_watch::config::ConfigError;

#[derive(Parser)]
#[command(
    name = "ravan-watch",
    version,
    about = "Alerts Slack, Discord and Microsoft Teams when a Ravan agent loses its Cal.com connection"
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
    /// token and no webhook (alerts also go to SLACK_WEBHOOK_URL / DISCORD_WEBHOOK_URL / TEAMS_WEBHOOK_URL when set).
    /// Ctrl-C stops it; exit 0.
    Demo,
    /// GET /healthz on the local listener (LISTEN_ADDR; 0.0.0.0 and :: mean loopback), for the
    /// container's HEALTHCHECK. Exit 0 healthy, 1 not. Reads no other setting.
    Healthcheck,
    /// Copy everything stored (agents and their states, unwatched agents, pending alerts and
    /// delivery history, dead webhooks, events and health intervals, the integrations' states,
    /// maintenance windows) from one database to
    /// another, empty one: SQLite to
    /// PostgreSQL, say. Exit 0 copied, 2 bad input (a URL that does not open, a non-empty
    /// target, the same database twice), 1 the copy failed (nothing written).
    ///
    /// The source is only read, in one transaction (its schema is first brought up to date,
    /// as `serve` does at start-up). The target is written in one transaction, all or nothing,
    /// and only when it holds no agent, unwatched agent, outbox entry, dead webhook, event,
    /// integration state or maintenance window; its
    /// schema is created first. The leader lease is not copied.
    ///
    /// Stop the service first (or leave only standbys running): alerts and states committed
    /// after the copy has read the source would be missing from the target. Passwords in the
    /// URLs are never printed.
    #[command(name = "copy-db")]
    CopyDb {
        /// The database to copy from: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB.
        #[arg(value_name = "FROM_URL")]
        from: String,
        /// The empty database to copy into (created if it is a SQLite file that does not exist).
        #[arg(value_name = "TO_URL")]
        to: String,
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
            return commands::config_error(&ConfigError {
                var: ".env",
                reason: format!("cannot be read: {e}"),
            });
        }
    }
    match cli.command {
        Command::Serve => commands::serve::main(),
        Command::Check {
            agent_ids,
            all,
            json,
        } => commands::check::main(&agent_ids, all, json),
        Command::NotifyTest => commands::test_message::main(),
        Command::Demo => commands::demo::main(),
        Command::Healthcheck => commands::healthcheck::main(),
        Command::CopyDb { from, to } => commands::copy_db::main(&from, &to),
    }
}
