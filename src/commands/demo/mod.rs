//! `ravan-watch demo`: the whole pipeline — the real scheduler, Ravan client, tracker, store,
//! outbox, formatters and delivery — against a simulated Ravan API on 127.0.0.1, with five
//! agents failing and recovering on a script ([`script`]). Needs no token and no webhook.
//!
//! Alerts reach the terminal the way they reach chat: the outbox delivers them to a webhook on
//! loopback (a Discord-style one), which prints each message as readable text. When
//! `SLACK_WEBHOOK_URL` / `DISCORD_WEBHOOK_URL` are set, the same alerts go there too. The
//! database lives in a temporary directory and is gone when the demo ends.

pub mod script;

use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::io::{IsTerminal, Write};
use std::num::{NonZeroU32, NonZeroUsize};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::DatabaseUrl;
use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use futures::FutureExt;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::app::App;
use crate::config::Config;
use crate::domain::AgentId;
use crate::domain::PollSchedule;
use crate::domain::secret::{Secret, SecretUrl};
use crate::domain::{Platform, Webhook};
use crate::notify::text::{AMBER, GREEN, RED, ZWSP};
use crate::ravan::RavanAuth;
use crate::store::AgentPatch;
use crate::tracker::Thresholds;
use script::DemoAgent;

/// A poll every 2 seconds.
pub const SCHEDULE: &str = "*/2 * * * * *";
const POLL_SECONDS: u32 = 2;
/// After the script's last poll, how long undelivered alerts may take to go out.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// The demo, at warnings and errors only (unless `RUST_LOG` says): the terminal is for its story.
pub fn main() -> ExitCode {
    let (config, runtime) = match super::start("warn") {
        Ok(started) => started,
        Err(code) => return code,
    };
    match runtime.block_on(run(config, super::serve::shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ravan-watch: demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the demo until its script ends or `shutdown` completes; either way a clean stop.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let started = Instant::now();
    // Polling it once installs the signal handlers: from here on, Ctrl-C is a clean stop.
    tokio::pin!(shutdown);
    if shutdown.as_mut().now_or_never().is_some() {
        return Ok(());
    }
    let colour = std::io::stdout().is_terminal();
    let cast = Arc::new(script::agents());

    // The simulated Ravan API.
    let polls: Arc<Mutex<BTreeMap<AgentId, u32>>> = Arc::default();
    let (ravan_addr, stop_ravan) = serve_loopback(
        Router::new()
            .route("/api/v1/calcom/agents/{id}/status", get(agent_status))
            .with_state(Simulated {
                cast: cast.clone(),
                polls: polls.clone(),
            }),
    )
    .await
    .context("starting the simulated Ravan API")?;

    // The terminal: a webhook on loopback that prints what it receives.
    let shown = Arc::new(Mutex::new(Shown::default()));
    let (sink_addr, stop_sink) = serve_loopback(
        Router::new()
            .route("/terminal/{token}", post(terminal_sink))
            .with_state(Terminal {
                colour,
                started,
                shown: shown.clone(),
            }),
    )
    .await
    .context("starting the terminal sink")?;

    let dir = tempfile::tempdir().context("creating a temporary directory for the database")?;
    let terminal = Webhook::new(
        Platform::Discord,
        SecretUrl::new(format!("http://{sink_addr}/terminal/demo").parse()?),
    );
    let real = config.default_webhooks();
    let mut destinations = vec![terminal];
    destinations.extend(real.iter().cloned());
    let config = Config {
        base_url: format!("http://{ravan_addr}").parse()?,
        auth: Some(RavanAuth::Bearer(Secret::new("demo"))),
        poll_timeout: Duration::from_secs(5),
        poll_concurrency: NonZeroUsize::new(8).expect("8"),
        poll_schedule: PollSchedule::parse(SCHEDULE).expect("valid"),
        thresholds: Thresholds {
            failure: NonZeroU32::new(2).expect("2"),
            success: NonZeroU32::new(1).expect("1"),
            reminder: None,
        },
        watch_agent_ids: cast.iter().map(|a| a.id).collect(),
        watch_all_agents: false,
        // The simulated API has no `/info`: its agents' connections are their own.
        check_org_linked: false,
        // Only on loopback, on a free port: the demo needs no sign-in and takes no port.
        listen_addr: (std::net::Ipv4Addr::LOCALHOST, 0).into(),
        admin_token: None,
        database_url: DatabaseUrl::parse(&format!(
            "sqlite://{}",
            dir.path().join("demo.db").display()
        ))
        .expect("a sqlite: URL"),
        ..config
    };
    let app = App::build_alerting(config, destinations)
        .await
        .context("building the demo service")?;
    for agent in cast.iter() {
        let name = AgentPatch {
            name: Some(Some(agent.name.to_owned())),
            ..AgentPatch::default()
        };
        app.store().update_agent(agent.id, &name).await?;
    }

    print_intro(&cast, &format!("http://{ravan_addr}"), &real);

    let service = app.start().await.context("starting the demo service")?;

    let mut script_done: Option<Instant> = None;
    let interrupted = loop {
        tokio::select! {
            _ = &mut shutdown => break true,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let fewest = {
            let polls = polls.lock().expect("polls lock");
            cast.iter()
                .map(|a| polls.get(&a.id).copied().unwrap_or(0))
                .min()
                .unwrap_or(0)
        };
        if fewest >= script::POLLS {
            let at = *script_done.get_or_insert_with(Instant::now);
            let pending = service.store().outbox_pending().await.unwrap_or(0);
            if pending == 0 || at.elapsed() > DRAIN_LIMIT {
                break false;
            }
        }
    };

    let pending = service.stop().await.unwrap_or(0);
    let _ = stop_ravan.send(());
    let _ = stop_sink.send(());

    let shown = shown.lock().expect("shown lock").clone();
    println!();
    println!("{}", summary(&shown, started.elapsed(), interrupted));
    if pending > 0 && !real.is_empty() {
        println!(
            "{pending} alert(s) for your webhooks were not delivered yet; they go with the demo's temporary database."
        );
    }
    drop(dir);
    Ok(())
}

/// Serves `router` on 127.0.0.1 (a free port) until the returned sender is used or dropped.
async fn serve_loopback(
    router: Router,
) -> anyhow::Result<(std::net::SocketAddr, oneshot::Sender<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );
    Ok((addr, stop))
}

// ---------------------------------------------------------------- the simulated Ravan API

#[derive(Clone)]
struct Simulated {
    cast: Arc<Vec<DemoAgent>>,
    polls: Arc<Mutex<BTreeMap<AgentId, u32>>>,
}

async fn agent_status(State(sim): State<Simulated>, Path(id): Path<String>) -> impl IntoResponse {
    let agent = id
        .parse::<AgentId>()
        .ok()
        .and_then(|id| sim.cast.iter().find(|a| a.id == id));
    let Some(agent) = agent else {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"success": false, "message": "Agent not found"})),
        );
    };
    let poll = {
        let mut polls = sim.polls.lock().expect("polls lock");
        let n = polls.entry(agent.id).or_insert(0);
        let poll = *n;
        *n += 1;
        poll
    };
    (StatusCode::OK, Json(agent.body(poll)))
}

// ---------------------------------------------------------------- the terminal

#[derive(Clone)]
struct Terminal {
    colour: bool,
    started: Instant,
    shown: Arc<Mutex<Shown>>,
}

/// Messages printed so far.
#[derive(Debug, Clone, Default)]
pub struct Shown {
    pub messages: usize,
    /// By the headline's marker: `down`, `changed`, `recovered`, …
    pub kinds: BTreeMap<&'static str, usize>,
    pub first_after: Option<Duration>,
}

async fn terminal_sink(State(t): State<Terminal>, body: Bytes) -> StatusCode {
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let time = chrono::Local::now().format("%H:%M:%S").to_string();
    let rendered = render(&payload, &time, t.colour);
    {
        let mut shown = t.shown.lock().expect("shown lock");
        shown.messages += 1;
        shown.first_after.get_or_insert(t.started.elapsed());
        for embed in payload["embeds"].as_array().into_iter().flatten() {
            let kind = kind_of(embed["title"].as_str().unwrap_or(""));
            *shown.kinds.entry(kind).or_insert(0) += 1;
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{rendered}\n");
    let _ = out.flush();
    StatusCode::NO_CONTENT
}

fn kind_of(title: &str) -> &'static str {
    match title.chars().next() {
        Some('🔴') => "down",
        Some('🟠') => "changed",
        Some('⏰') => "reminder",
        Some('✅') => "recovered",
        Some('⚠') => "monitor",
        _ => "other",
    }
}

/// A Discord webhook body as terminal text: the headline (coloured as the message's bar when
/// `colour`), then its description and fields, one per line, indented under the time.
pub fn render(payload: &Value, time: &str, colour: bool) -> String {
    let mut out = String::new();
    let indent = " ".repeat(time.chars().count() + 2);
    let (dim, reset) = if colour {
        ("\x1b[2m", "\x1b[0m")
    } else {
        ("", "")
    };
    for embed in payload["embeds"].as_array().into_iter().flatten() {
        let title = plain(embed["title"].as_str().unwrap_or(""));
        let bar = match embed["color"].as_u64() {
            Some(c) if colour && c == u64::from(RED) => "\x1b[1;31m",
            Some(c) if colour && c == u64::from(GREEN) => "\x1b[1;32m",
            Some(c) if colour && c == u64::from(AMBER) => "\x1b[1;33m",
            _ if colour => "\x1b[1m",
            _ => "",
        };
        out.push_str(&format!("{time}  {bar}{title}{reset}\n"));
        if let Some(description) = embed["description"].as_str() {
            for line in description.lines().filter(|l| !l.trim().is_empty()) {
                out.push_str(&format!("{indent}{}\n", plain(line)));
            }
        }
        for field in embed["fields"].as_array().into_iter().flatten() {
            let name = plain(field["name"].as_str().unwrap_or(""));
            // An account's id is noise here.
            let value = plain(field["value"].as_str().unwrap_or(""))
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("id: "))
                .collect::<Vec<_>>()
                .join(" · ");
            // The headline already says it.
            if name == "Change" && title.contains(&value) {
                continue;
            }
            let bullet = if field["inline"] == Value::Bool(true) {
                ""
            } else {
                "• "
            };
            out.push_str(&format!("{indent}{dim}{bullet}{name}:{reset} {value}\n"));
        }
    }
    out.trim_end().to_owned()
}

/// Discord markdown back to plain text: no escapes, code marks or zero-width spaces.
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_punctuation) => {
                out.extend(chars.next());
            }
            '`' | ZWSP => {}
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
            }
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------- intro and summary

fn print_intro(cast: &[DemoAgent], api: &str, real: &[Webhook]) {
    let seconds = script::POLLS * POLL_SECONDS;
    let width = cast.iter().map(|a| a.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    out.push_str(&format!(
        "ravan-watch demo: the real pipeline (scheduler, tracker, outbox, formatters) against a\n\
         simulated Ravan API at {api}. No token or webhook needed.\n\n\
         {} agents, polled every {POLL_SECONDS} s. An agent is reported down after 2 unhealthy polls\n\
         in a row and recovered after 1 healthy one. Over the next ~{seconds} s:\n",
        cast.len()
    ));
    for agent in cast {
        out.push_str(&format!("  {:<width$}  {}\n", agent.name, agent.story));
    }
    out.push_str("\nEach alert appears below as its chat message would say it. Ctrl-C stops.\n");
    for hook in real {
        out.push_str(&format!("Also sending the alerts to your {hook}.\n"));
    }
    println!("{out}");
}

/// The closing line.
pub fn summary(shown: &Shown, elapsed: Duration, interrupted: bool) -> String {
    let how = if interrupted { "stopped" } else { "finished" };
    let mut line = format!(
        "Demo {how} after {} s: {} alert message{} shown",
        elapsed.as_secs(),
        shown.messages,
        if shown.messages == 1 { "" } else { "s" }
    );
    if !shown.kinds.is_empty() {
        let parts: Vec<String> = [
            "down",
            "changed",
            "recovered",
            "reminder",
            "monitor",
            "other",
        ]
        .iter()
        .filter_map(|k| shown.kinds.get(k).map(|n| format!("{n} {k}")))
        .collect();
        line.push_str(&format!(" ({})", parts.join(", ")));
    }
    if let Some(first) = shown.first_after {
        line.push_str(&format!(
            "; the first arrived {:.1} s after start",
            first.as_secs_f64()
        ));
    }
    line.push('.');
    if !interrupted {
        line.push_str(" Night shift's one-poll blip and Front desk raised none.");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Account;
    use crate::domain::alert::{AgentAlert, AgentAlertKind, AgentRef, Alert};
    use chrono::Utc;

    #[test]
    fn an_alert_renders_as_readable_text() {
        let at = Utc::now();
        let alert = Alert::Agent(AgentAlert {
            kind: AgentAlertKind::Down,
            agent: AgentRef {
                id: "3f2504e0-4f89-11d3-9a0c-0305e82c3301".parse().unwrap(),
                name: Some("Sales *line*".into()),
            },
            from: Some("active".into()),
            to: "not_connected".into(),
            connection: Some(crate::domain::Connection::Private),
            connected: false,
            accounts: vec![Account {
                id: "acc-1".into(),
                account_name: "Sales calendar".into(),
                status: "errored".into(),
                error: Some("token <revoked> @everyone".into()),
            }],
            at,
            unhealthy_since: at,
        });
        let payload = crate::notify::discord::message(&alert, crate::domain::Zone::UTC);
        let text = render(&payload, "12:00:00", false);
        assert!(!text.contains('\x1b'), "{text}");
        assert!(
            text.starts_with("12:00:00  🔴 Sales *line* (3f2504e0…) lost its Cal.com connection: active → not_connected"),
            "{text}"
        );
        assert!(
            text.contains("• Sales calendar — errored: token <revoked> @everyone"),
            "{text}"
        );
        assert!(!text.contains('\\') && !text.contains('`'), "{text}");
        let coloured = render(&payload, "12:00:00", true);
        assert!(coloured.contains("\x1b[1;31m"));
    }

    #[test]
    fn summary_counts_what_was_shown() {
        let mut shown = Shown {
            messages: 2,
            ..Shown::default()
        };
        shown.kinds.insert("down", 1);
        shown.kinds.insert("recovered", 1);
        shown.first_after = Some(Duration::from_millis(6500));
        let line = summary(&shown, Duration::from_secs(44), false);
        assert!(line.starts_with("Demo finished after 44 s: 2 alert messages shown (1 down, 1 recovered); the first arrived 6.5 s"), "{line}");
    }
}
