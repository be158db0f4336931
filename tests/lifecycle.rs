//! A process's life from outside, as real processes on a real database: a restart after
//! `kill -9` polls at once instead of waiting for the dead process's lease.

mod common;

use std::time::{Duration, Instant};

use common::replica::Replica;
use common::{AGENT_A, FakeRavan, TestSettings, more_cycles, wait_until_some};

const LIMIT: Duration = Duration::from_secs(20);

/// The settings of a replica polling `AGENT_A` of `ravan` every second on `database`.
fn polling(ravan: &FakeRavan, database: &str) -> TestSettings {
    ravan.set_status(AGENT_A, "active", None);
    TestSettings::new(&ravan.uri())
        .database(database)
        .agents(AGENT_A)
        .every_second()
        .poll_timeout("2s")
}

// ---------------------------------------------------------------- restart after kill -9

/// `kill -9` of `serve` and an immediate restart on the same SQLite file: the new process
/// finds the lease's holder gone (same host, its pid no longer runs) and polls within 2 s of
/// its start, instead of standing by until the dead process's lease expires (10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_kill_9_polls_within_2_s() {
    let ravan = FakeRavan::start().await;
    let (_dir, url) = common::temp_database();
    let settings = polling(&ravan, &url);
    let mut first = Replica::start(&settings.pairs()).await;
    first.wait_role("leader", LIMIT).await;
    more_cycles(&ravan, 1, 1).await;
    first.kill();

    let started = Instant::now();
    let second = Replica::start(&settings.pairs()).await;
    let polled = wait_until_some(LIMIT, "a poll by the restarted process", || {
        let arrivals = ravan.arrivals();
        std::future::ready(arrivals.into_iter().find(|at| *at > started))
    })
    .await;
    let delay = polled - started;
    println!("first poll {delay:?} after the restart");
    assert!(
        delay < Duration::from_secs(2),
        "the restarted process polled {delay:?} after its start:\n{}",
        second.logs()
    );
    assert_eq!(second.role().await.as_deref(), Some("leader"));
}
