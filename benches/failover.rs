//! Failover benchmark: `cargo bench --bench failover`. Two `ravan-watch serve` processes on one
//! database, polling every second; the leader is killed (`kill -9`) 10 times, each time with a
//! fresh standby beside the new leader, and each takeover is timed:
//!
//! - takeover: from the kill to the standby's `/readyz` saying `leader`;
//!   (each kill comes a different time after a poll, spread over the 2 s between claims);
//! - polling again: from the kill to the new leader's first poll of the (fake) Ravan API.
//!
//! The bound is `max(2 × the poll interval, 15 s)` = 15 s here; the lease's design gives at most
//! `LEASE_TTL + CLAIM_EVERY` = 12 s. Runs on SQLite, and on PostgreSQL too when
//! `RAVAN_WATCH_TEST_POSTGRES_URL` names a server (`scripts/test-postgres run -- cargo bench
//! --bench failover` starts a throwaway one). About two minutes per backend.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::replica::Replica;
use common::{AGENT_A, FakeRavan, TestSettings, wait_until};

const KILLS: usize = 10;
const BOUND: Duration = Duration::from_secs(15);

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let (_dir, sqlite) = common::temp_database();
        report("SQLite (one file)", &kills(&sqlite).await);
        match common::postgres::fresh_database().await {
            Some(url) => report("PostgreSQL", &kills(&url).await),
            None => println!(
                "PostgreSQL: not measured (set RAVAN_WATCH_TEST_POSTGRES_URL, or run scripts/test-postgres run -- cargo bench --bench failover)"
            ),
        }
    });
}

/// Each kill's (takeover, polling again).
async fn kills(database: &str) -> Vec<(Duration, Duration)> {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let settings = TestSettings::new(&ravan.uri())
        .token("bench-token")
        .database(database)
        .agents(AGENT_A)
        .every_second()
        .set("RUST_LOG", "info");
    let env = settings.pairs();
    let limit = Duration::from_secs(60);
    let mut leader = Replica::start(&env).await;
    leader.wait_role("leader", limit).await;
    let mut standby = Replica::start(&env).await;
    standby.wait_role("standby", limit).await;
    let mut figures = Vec::new();
    for i in 1..=KILLS {
        // The leader is polling: a cycle or two after the standby came up.
        let polls = ravan.polls().await;
        wait_until(limit, "the leader to poll", || async {
            ravan.polls().await > polls
        })
        .await;
        // Killed at a moment that moves through the 2 s between claims, so the kills do not
        // all fall at one point of the lease's renewal.
        let offset = Duration::from_millis((i as u64 * 700) % 2_000);
        tokio::time::sleep(offset).await;
        leader.kill();
        let killed = Instant::now();
        let polls = ravan.polls().await;
        standby.wait_role("leader", limit).await;
        let takeover = killed.elapsed();
        wait_until(limit, "the new leader to poll", || async {
            ravan.polls().await > polls
        })
        .await;
        let polling = killed.elapsed();
        println!(
            "  kill {i:>2}: takeover {:.2} s, polling again after {:.2} s",
            takeover.as_secs_f64(),
            polling.as_secs_f64()
        );
        figures.push((takeover, polling));
        leader = standby;
        standby = Replica::start(&env).await;
        standby.wait_role("standby", limit).await;
    }
    figures
}

fn report(backend: &str, figures: &[(Duration, Duration)]) {
    let summary = |pick: fn(&(Duration, Duration)) -> Duration| {
        let mut xs: Vec<f64> = figures.iter().map(|f| pick(f).as_secs_f64()).collect();
        xs.sort_by(f64::total_cmp);
        let median = if xs.len() % 2 == 1 {
            xs[xs.len() / 2]
        } else {
            (xs[xs.len() / 2 - 1] + xs[xs.len() / 2]) / 2.0
        };
        (xs[0], median, xs[xs.len() - 1])
    };
    let (lo, med, hi) = summary(|f| f.0);
    let verdict = if hi <= BOUND.as_secs_f64() {
        "ok"
    } else {
        "MISSED"
    };
    println!(
        "{backend}: {} kills, takeover min {lo:.2} s, median {med:.2} s, max {hi:.2} s (target <= {} s) {verdict}",
        figures.len(),
        BOUND.as_secs()
    );
    let (lo, med, hi) = summary(|f| f.1);
    println!("{backend}: polling again after min {lo:.2} s, median {med:.2} s, max {hi:.2} s");
}
