//! A process's life from outside, as real processes on a real database: a restart after
//! `kill -9` polls at once instead of waiting for the dead process's lease; SIGTERM ends in a
//! bounded time even while the database does not answer; and processes starting together on a
//! new SQLite file all come up, with one leader.

mod common;

use std::time::{Duration, Instant};

use common::replica::Replica;
use common::{AGENT_A, FakeRavan, TestSettings, more_cycles, wait_until, wait_until_some};
use sqlx::Connection;

const LIMIT: Duration = Duration::from_secs(20);
/// Docker's stop timeout: SIGTERM must end the process before it.
const STOP_BOUND: Duration = Duration::from_secs(10);

/// The settings of a replica polling `AGENT_A` of `ravan` every second on `database`.
fn polling(ravan: &FakeRavan, database: &str) -> TestSettings {
    ravan.set_status(AGENT_A, "active", None);
    TestSettings::new(&ravan.uri())
        .database(database)
        .agents(AGENT_A)
        .every_second()
        .poll_timeout("2s")
}

/// The messages `replica` logged at `level` (`INFO`, `WARN` …).
fn messages(replica_logs: &str, level: &str) -> Vec<String> {
    replica_logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["level"] == level)
        .filter_map(|v| {
            let fields = v.get("fields").unwrap_or(&v);
            fields["message"].as_str().map(str::to_owned)
        })
        .collect()
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

// ---------------------------------------------------------------- shutdown without a database

/// SIGTERM to a leader whose database does not answer: it exits 0 within [`STOP_BOUND`],
/// warns naming the database work it abandoned, and logs its stop.
async fn assert_stops_in_time_without_its_database(replica: Replica) {
    let logs = replica.logs_handle();
    let (code, took) = replica.terminate_within(LIMIT).await;
    let logs = logs();
    println!("exited {took:?} after SIGTERM");
    assert!(took < STOP_BOUND, "{took:?} after SIGTERM:\n{logs}");
    assert_eq!(code, Some(0), "{logs}");
    let warned = messages(&logs, "WARN");
    assert!(
        warned
            .iter()
            .any(|m| m.contains("abandoned") && m.contains("lease")),
        "no warning names the abandoned database work:\n{logs}"
    );
    assert!(
        messages(&logs, "INFO").iter().any(|m| m == "stopped"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_10_s_while_sqlite_is_locked_by_another_process() {
    let ravan = FakeRavan::start().await;
    let (_dir, url) = common::temp_database();
    let replica = Replica::start(&polling(&ravan, &url).pairs()).await;
    replica.wait_role("leader", LIMIT).await;
    more_cycles(&ravan, 1, 2).await;

    // Another process's writer holds the file: every write waits on the busy timeout.
    let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    assert_stops_in_time_without_its_database(replica).await;
    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_10_s_while_postgres_is_paused() {
    let Some(cluster) = common::pg_cluster::PgCluster::start() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL's initdb is needed under CI (Debian's postgresql package)"
        );
        eprintln!("skipped: no initdb for a PostgreSQL server of the test's own");
        return;
    };
    let ravan = FakeRavan::start().await;
    let replica = Replica::start(&polling(&ravan, &cluster.url()).pairs()).await;
    replica.wait_role("leader", LIMIT).await;
    more_cycles(&ravan, 1, 2).await;

    cluster.pause();
    assert_stops_in_time_without_its_database(replica).await;
    cluster.resume();
}

// ---------------------------------------------------------------- starting together

/// Four processes started at the same instant on a new SQLite file, 20 times: every one comes
/// up (none dies of the others' migrations) and exactly one leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_starting_together_on_a_new_sqlite_file_all_come_up_and_one_leads() {
    let ravan = FakeRavan::start().await;
    for round in 0..20 {
        let (_dir, url) = common::temp_database();
        let settings = TestSettings::new(&ravan.uri())
            .database(&url)
            .agents(AGENT_A)
            .never_polling();
        let pairs = settings.pairs();
        let replicas = futures::future::join_all((0..4).map(|_| Replica::start(&pairs))).await;
        wait_until(
            LIMIT,
            format!("round {round}: one leader and three standbys"),
            || async {
                let roles = futures::future::join_all(replicas.iter().map(|r| r.role())).await;
                let count =
                    |role: &str| roles.iter().filter(|r| r.as_deref() == Some(role)).count();
                count("leader") == 1 && count("standby") == 3
            },
        )
        .await;
    }
}
