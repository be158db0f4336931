//! The memory floor of ravan-watch's stack: `cargo bench --bench floor`.
//!
//! Issue 16 asks for a peak RSS of at most 10 MB for the whole service at 100 agents. This
//! program measures what the crates the service is built on cost before any of its own code:
//! a program that uses none of ravan-watch, only tokio (one worker per core, as `serve`),
//! reqwest (rustls), sqlx (SQLite, WAL), axum (an HTTP server with one route) and serde_json.
//! Once a second, as a 100-agent fleet on a 1 s schedule, it reads one row, makes 100 status
//! requests (16 at a time) to a fake Ravan in another process, parses each answer, and writes
//! one row in a transaction. After 12 seconds it prints its peak RSS (VmHWM) and how much of
//! that is mapped files (its own code, libc) and anonymous memory.
//!
//! Its binary holds only what it calls (the linker drops the rest), so the figure is the stack's
//! floor: ravan-watch's own code, PostgreSQL, logs, metrics, templates and the CLI come on top.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use serde::Deserialize;

/// The fake's process: one thread, its port on stdout, gone with the parent.
#[path = "common/fake.rs"]
mod fake;

const AGENTS: usize = 100;
const CONCURRENCY: usize = 16;
const CYCLES: usize = 12;
/// Issue 16's target for the whole service at 100 agents.
const TARGET_MIB: f64 = 10.0;
const CHILD_FLAG: &str = "--floor-child";
const ACTIVE_BODY: &str = r#"{"success":true,"message":"Agent connection status retrieved","data":{"connected":true,"status":"active","accounts":[{"id":"acc-1","account_name":"Sales calendar","status":"active","error":""}]}}"#;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (args.first().map(String::as_str), args.get(1)) {
        (Some(CHILD_FLAG), Some(role)) if role == "fake" => fake(),
        (Some(CHILD_FLAG), Some(port)) => floor(port.parse().expect("a port")),
        _ => parent(),
    }
}

fn parent() {
    let me = std::env::current_exe().expect("own path");
    let mut fake = Command::new(&me)
        .args([CHILD_FLAG, "fake"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fake");
    let mut port = String::new();
    BufReader::new(fake.stdout.take().expect("piped"))
        .read_line(&mut port)
        .expect("read the fake's port");
    let output = Command::new(&me)
        .args([CHILD_FLAG, port.trim()])
        .stdin(Stdio::null())
        .output()
        .expect("run the floor program");
    let _ = fake.kill();
    let _ = fake.wait();
    assert!(output.status.success(), "the floor program failed");
    let figures: Figures = serde_json::from_slice(&output.stdout).expect("its figures");
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "floor: tokio + reqwest (rustls) + sqlx (SQLite) + axum + serde_json, no ravan-watch code, {AGENTS} polls a second for {CYCLES} s"
    );
    println!(
        "  peak RSS {:.1} MiB (VmHWM): mapped files {:.1} MiB (code, libc), anonymous {:.1} MiB; binary {:.1} MiB",
        mib(figures.peak_kib),
        mib(figures.file_kib),
        mib(figures.anon_kib),
        figures.binary_bytes as f64 / 1_048_576.0
    );
    println!(
        "  issue 16's target for the whole service at {AGENTS} agents: <= {TARGET_MIB} MiB; this floor alone is {:.0} % of it",
        mib(figures.peak_kib) / TARGET_MIB * 100.0
    );
}

#[derive(serde::Serialize, Deserialize)]
struct Figures {
    peak_kib: u64,
    file_kib: u64,
    anon_kib: u64,
    binary_bytes: u64,
}

/// A Ravan status answer, parsed as the service parses one (typed, not a `Value`).
#[derive(Deserialize)]
struct Answer {
    data: Data,
}

#[derive(Deserialize)]
#[allow(dead_code)] // Parsed as the service parses them; only `status` is read further.
struct Data {
    connected: bool,
    status: String,
    accounts: Vec<serde_json::Map<String, serde_json::Value>>,
}

fn floor(port: u16) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temporary directory");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("floor.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .expect("SQLite");
        sqlx::query("CREATE TABLE cycles (id INTEGER PRIMARY KEY, parsed INTEGER NOT NULL)")
            .execute(&pool)
            .await
            .expect("a table");
        let api = Router::new().route("/health", get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        tokio::spawn(async move { axum::serve(listener, api).await });
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}/api/v1/calcom/agents");
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        for _ in 0..CYCLES {
            ticks.tick().await;
            let _: i64 = sqlx::query_scalar("SELECT count(*) FROM cycles")
                .fetch_one(&pool)
                .await
                .expect("a read");
            let parsed = futures::stream::iter(0..AGENTS)
                .map(|i| {
                    let request = client
                        .get(format!("{base}/00000000-0000-4000-8000-{i:012}/status"))
                        .bearer_auth("floor-token");
                    async move {
                        let answer = request.send().await.ok()?.json::<Answer>().await.ok()?;
                        (answer.data.status == "active").then_some(())
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .filter(|a| std::future::ready(a.is_some()))
                .count()
                .await;
            assert_eq!(parsed, AGENTS, "every answer parsed");
            let mut tx = pool.begin().await.expect("a transaction");
            sqlx::query("INSERT INTO cycles (parsed) VALUES (?)")
                .bind(parsed as i64)
                .execute(&mut *tx)
                .await
                .expect("a write");
            tx.commit().await.expect("a commit");
        }
    });
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let binary_bytes = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map_or(0, |m| m.len());
    let figures = Figures {
        peak_kib: kib("VmHWM:"),
        file_kib: kib("RssFile:"),
        anon_kib: kib("RssAnon:"),
        binary_bytes,
    };
    println!("{}", serde_json::to_string(&figures).expect("figures"));
}

/// The fake Ravan: every status request answered `active`. Not the tests' `FakeRavan`
/// (`tests/common/ravan.rs`), which the other benchmarks use: this fake runs from the floor
/// program's own binary, whose size and mapped pages are the figure, and wiremock would add to
/// both; one axum route, as the measured program serves, adds nothing.
fn fake() {
    fake::serve_for_parent(|| async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        let app = Router::new().route("/api/v1/calcom/agents/{id}/status", get(status));
        (
            tokio::spawn(async move { axum::serve(listener, app).await }),
            port,
        )
    });
}

async fn status() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], ACTIVE_BODY)
}
