//! Status page benchmark: `cargo bench --bench status_page` (release build). A fleet of 1,000
//! agents with a month of history (`tests/common/history.rs`, written through the real store as
//! poll cycles write it) in SQLite, the real app serving it in-process on 127.0.0.1, a
//! schedule that does not poll during the run. It prints, each beside its target:
//!
//! - the database after seeding: its size, and rows per table;
//! - the overview `GET /`: its size, and the server's time to answer (median and max of 20
//!   requests, body read: database reads and rendering);
//! - one agent's page `GET /status/{id}` (a flapping agent with 14 events): the same;
//! - the overview in a mass outage (every agent unhealthy, each row saying why): its size;
//! - Chromium's time to load and lay out the overview: the wall time of
//!   `chromium --headless --dump-dom` and of `--screenshot` on it (median of 5; each includes
//!   Chromium's own start, which an empty page measures alone for comparison).
//!
//! Without `/usr/bin/chromium` the browser rows say "not measured".

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ravan_watch::store::Store;
use sqlx::Row;

const FLEET: usize = 1000;
const REQUESTS: usize = 20;
const BROWSER_RUNS: usize = 5;
const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "bench-token";
const MAX_BYTES: usize = 1_000_000;
const MAX_TIME: Duration = Duration::from_secs(1);

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let (dir, database) = common::temp_database();
    let store = Store::open(&database).await.unwrap();
    let started = Instant::now();
    let fleet = common::history::seed(&store, FLEET, chrono::Utc::now()).await;
    println!(
        "seeded {FLEET} agents, {} events, in {:.1} s",
        fleet.iter().map(|a| a.events).sum::<usize>() + 2,
        started.elapsed().as_secs_f64()
    );
    drop(store);
    database_size(dir.path()).await;

    let ravan = common::FakeRavan::start().await;
    let service = common::TestSettings::new(&ravan.uri())
        .token("bench-token")
        .api(&database, TOKEN)
        .never_polling()
        .start()
        .await;
    let addr = service.addr();
    let http = reqwest::Client::new();

    println!();
    println!("{:<52} {:>14} {:>14}", "", "measured", "target");
    let flapper = &fleet[11];
    for (what, path) in [
        ("overview GET /", "/".to_owned()),
        (
            "agent page GET /status/{id}",
            format!("/status/{}", flapper.id),
        ),
    ] {
        let url = format!("http://{addr}{path}");
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..REQUESTS {
            let t = Instant::now();
            let resp = http
                .get(&url)
                .basic_auth("bench", Some(TOKEN))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{url}: {}", resp.status());
            size = resp.bytes().await.unwrap().len();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "{:<52} {:>11} KB {:>14}",
            format!("{what}: size"),
            size / 1000,
            "< 1 MB"
        );
        println!(
            "{:<52} {:>11.1} ms {:>14}",
            format!("{what}: server time, median of {REQUESTS}"),
            ms(times[REQUESTS / 2]),
            "< 1 s"
        );
        println!(
            "{:<52} {:>11.1} ms {:>14}",
            format!("{what}: server time, max"),
            ms(times[REQUESTS - 1]),
            "< 1 s"
        );
        assert!(size < MAX_BYTES, "{what}: {size} bytes");
        assert!(
            times[REQUESTS / 2] < MAX_TIME,
            "{what}: {:?}",
            times[REQUESTS / 2]
        );
    }

    // A mass outage: every row says why. A real one's error is short (Cal.com's answer); the
    // longest Ravan's text may be is 2,000 characters, each row then clipped to 120 with the
    // whole text as its tooltip.
    let overview = format!("http://{addr}/");
    for (what, chars) in [("a 60-character", 60), ("a 2,000-character", 2000)] {
        make_all_unhealthy(
            &database,
            &"Cal.com token revoked; reconnect it ".repeat(60)[..chars],
        )
        .await;
        let resp = http
            .get(&overview)
            .basic_auth("bench", Some(TOKEN))
            .send()
            .await
            .unwrap();
        let size = resp.bytes().await.unwrap().len();
        println!(
            "{:<52} {:>11} KB {:>14}",
            format!("overview, all unhealthy, {what} error"),
            size / 1000,
            "< 1 MB"
        );
    }

    if Path::new(CHROMIUM).exists() {
        let page = format!("http://bench:{TOKEN}@{addr}/");
        let empty = format!("http://{addr}/healthz");
        let shot = dir.path().join("overview.png");
        let shot_arg = format!("--screenshot={}", shot.display());
        for (what, args) in [
            (
                "Chromium: start alone (/healthz), dump-dom",
                vec!["--dump-dom", empty.as_str()],
            ),
            (
                "Chromium: load + lay out /, dump-dom",
                vec!["--dump-dom", page.as_str()],
            ),
            (
                "Chromium: load + paint /, screenshot",
                vec![shot_arg.as_str(), "--window-size=1280,900", page.as_str()],
            ),
        ] {
            let mut times: Vec<Duration> = (0..BROWSER_RUNS).map(|_| chromium(&args)).collect();
            times.sort();
            println!(
                "{:<52} {:>11.0} ms {:>14}",
                format!("{what}, median of {BROWSER_RUNS}"),
                ms(times[BROWSER_RUNS / 2]),
                "< 1 s"
            );
        }
    } else {
        println!("Chromium: not measured ({CHROMIUM} is not installed)");
    }
    service.stop().await;
}

/// Every agent's last observation becomes unhealthy with `error`, written as a cycle would.
async fn make_all_unhealthy(database: &str, error: &str) {
    use ravan_watch::domain::{Account, Connection, Observation};
    use ravan_watch::store::{AgentUpdate, Fence};
    let store = Store::open(database).await.unwrap();
    let agents = store.agents().await.unwrap();
    let states: Vec<_> = agents
        .iter()
        .map(|a| {
            let mut state = a.state.clone();
            state.last = Some(Observation {
                status: "errored".into(),
                connected: false,
                accounts: vec![Account {
                    id: "acc-1".into(),
                    account_name: "Main calendar".into(),
                    status: "errored".into(),
                    error: Some(error.into()),
                }],
                connection: Some(Connection::Private),
            });
            state
        })
        .collect();
    let updates: Vec<AgentUpdate<'_>> = agents
        .iter()
        .zip(&states)
        .map(|(a, state)| AgentUpdate {
            agent_id: a.agent_id,
            state,
            alerts: vec![],
            health: None,
        })
        .collect();
    let monitor = store.monitor_state().await.unwrap();
    let now = chrono::Utc::now();
    store
        .commit_cycle(Fence::Unchecked, None, &updates, &monitor, &[], now)
        .await
        .unwrap();
    store.close().await;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The wall time of one headless Chromium run with `args`, in a profile of its own.
fn chromium(args: &[&str]) -> Duration {
    let profile = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let status = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("chromium starts");
    assert!(status.success(), "chromium {args:?}: {status}");
    t.elapsed()
}

/// The database's files, and rows and bytes per table (with its indexes, from SQLite's
/// `dbstat`, after a checkpoint so the WAL is in the file): what a month of history costs.
async fn database_size(dir: &Path) {
    let url = format!("sqlite://{}/state.db", dir.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        bytes += entry.metadata().unwrap().len();
    }
    println!(
        "database after seeding: {:.2} MB (state.db, checkpointed)",
        bytes as f64 / 1e6
    );
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT LIKE '_sqlx%' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    let mut history = 0;
    for table in tables {
        let n: i64 = sqlx::query(&format!("SELECT count(*) FROM \"{table}\""))
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        // The table's pages and its indexes' (dbstat is compiled into sqlx's bundled SQLite).
        let size: Option<i64> = sqlx::query(
            "SELECT sum(d.pgsize) FROM dbstat d JOIN sqlite_master m ON m.name = d.name \
             WHERE m.tbl_name = ?",
        )
        .bind(&table)
        .fetch_one(&pool)
        .await
        .ok()
        .and_then(|r| r.get(0));
        let size = size.unwrap_or(0);
        if ["events", "event_deliveries", "health_intervals"].contains(&table.as_str()) {
            history += size;
        }
        println!(
            "  {table:<24} {n:>8} rows {:>9.1} KiB with indexes",
            size as f64 / 1024.0
        );
    }
    println!(
        "history (events, event_deliveries, health_intervals) after the seeded month: {:.1} KiB",
        history as f64 / 1024.0
    );
    pool.close().await;
}
