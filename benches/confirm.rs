//! Confirm poll benchmark: `cargo bench --bench confirm` (about two and a half minutes of
//! real time; the schedule is the default one).
//!
//! Two whole services (`App::start`, as `serve` runs them) watch the same `CONFIRM_AGENTS`
//! agents (default 24) of the tests' fake Ravan with the default settings (`POLL_SCHEDULE`
//! every 30 s, `FAILURE_THRESHOLD=2`): one with `CONFIRM_INTERVAL=5s` (the default), one with
//! confirm polls off. Each agent breaks (`active` → `errored`) at a random moment within the
//! first minute; a fake Slack records when each service's alert naming it arrives. The time
//! from the break to the alert is printed per service with its target, and the extra requests
//! the confirm polls cost (only agents in transition are polled again).
//!
//! The random moments come from `CONFIRM_SEED` (default: the clock), printed so a run can be
//! repeated.

#[path = "../tests/common/ravan.rs"]
mod ravan;
#[path = "../tests/common/settings.rs"]
mod settings;
#[path = "../tests/common/wait.rs"]
mod wait;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ravan::FakeRavan;
use ravan_watch::app::{App, Service};
use settings::TestSettings;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The targets the issue sets for the default schedule, seconds.
const MEAN_TARGET: f64 = 25.0;
const MAX_TARGET: f64 = 40.0;
/// The breaks fall within this long after the services start.
const SPREAD: Duration = Duration::from_secs(60);

/// What the fake Slack received: when, on which path, and the body.
type Received = Arc<Mutex<Vec<(Instant, String, String)>>>;

/// splitmix64: random enough to spread the breaks over the schedule's phases.
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn agent_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

async fn sink() -> (MockServer, Received) {
    let received: Received = Arc::default();
    let server = MockServer::start().await;
    let log = received.clone();
    Mock::given(method("POST"))
        .respond_with(move |r: &Request| {
            let body = String::from_utf8_lossy(&r.body).into_owned();
            let entry = (Instant::now(), r.url.path().to_owned(), body);
            log.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
            ResponseTemplate::new(200).set_body_string("ok")
        })
        .mount(&server)
        .await;
    (server, received)
}

/// A service watching `agents` with `CONFIRM_INTERVAL=confirm`, alerting to `slack`.
async fn service(
    ravan: &FakeRavan,
    agents: &str,
    confirm: &str,
    slack: &str,
) -> (Service, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("bench.db").display());
    let config = TestSettings::new(&ravan.uri())
        .database(&db)
        .any_port()
        .agents(agents)
        .slack(slack)
        .set("CONFIRM_INTERVAL", confirm)
        .set("CHECK_INTEGRATIONS", "false")
        .config();
    let service = App::build(config).await.unwrap().start().await.unwrap();
    (service, dir)
}

/// When the first message on `path` naming `agent` arrived.
fn alerted(received: &Received, path: &str, agent: &str) -> Option<Instant> {
    let received = received.lock().unwrap_or_else(|e| e.into_inner());
    (received.iter())
        .find(|(_, p, body)| p == path && body.contains(agent))
        .map(|(at, _, _)| *at)
}

fn summary(label: &str, delays: &[f64]) {
    let mean = delays.iter().sum::<f64>() / delays.len() as f64;
    let max = delays.iter().copied().fold(0.0, f64::max);
    let min = delays.iter().copied().fold(f64::MAX, f64::min);
    println!(
        "{label:<26} mean {mean:5.1} s  max {max:5.1} s  min {min:5.1} s  ({} flips)",
        delays.len()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("CONFIRM_AGENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let mut seed: u64 = std::env::var("CONFIRM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(1, |d| d.as_nanos() as u64)
        });
    println!(
        "confirm polls: {n} agents, CONFIRM_SEED={seed}, the default schedule (every 30 s, FAILURE_THRESHOLD=2)"
    );
    let ravan = FakeRavan::start_for_load().await;
    let ids: Vec<String> = (0..n).map(agent_id).collect();
    for id in &ids {
        ravan.set_status(id, "active", None);
    }
    let (slack, received) = sink().await;
    let agents = ids.join(",");
    let with = service(&ravan, &agents, "5s", &format!("{}/confirm", slack.uri())).await;
    let without = service(&ravan, &agents, "0", &format!("{}/ticks", slack.uri())).await;
    let start = Instant::now();
    let mut breaks: Vec<(Instant, String)> = ids
        .iter()
        .map(|id| {
            let offset = next(&mut seed) % SPREAD.as_millis() as u64;
            (start + Duration::from_millis(offset), id.clone())
        })
        .collect();
    breaks.sort();
    let polls_before = ravan.polls().await;
    for (at, id) in &breaks {
        tokio::time::sleep_until((*at).into()).await;
        ravan.set_status(id, "errored", Some("token expired"));
    }
    let all_alerted = || {
        ids.iter().all(|id| {
            alerted(&received, "/confirm", id).is_some()
                && alerted(&received, "/ticks", id).is_some()
        })
    };
    wait::wait_until(
        Duration::from_secs(180),
        "every agent's alert from both services",
        || async { all_alerted() },
    )
    .await;
    let elapsed = start.elapsed();
    let delays = |path: &str| -> Vec<f64> {
        (breaks.iter())
            .filter_map(|(at, id)| Some((alerted(&received, path, id)? - *at).as_secs_f64()))
            .collect()
    };
    let (fast, slow) = (delays("/confirm"), delays("/ticks"));
    println!();
    println!("break → alert (the fake Slack's arrival), per service:");
    summary("CONFIRM_INTERVAL=5s", &fast);
    summary("CONFIRM_INTERVAL=0 (off)", &slow);
    let mean = fast.iter().sum::<f64>() / fast.len() as f64;
    let max = fast.iter().copied().fold(0.0, f64::max);
    println!(
        "target (5s): mean ≤ {MEAN_TARGET} s: {} ({mean:.1} s); max ≤ {MAX_TARGET} s: {} ({max:.1} s)",
        if mean <= MEAN_TARGET { "met" } else { "MISSED" },
        if max <= MAX_TARGET { "met" } else { "MISSED" },
    );
    // Only the confirm service makes confirm polls: the process's counter is its.
    let metrics = ravan_watch::metrics::handle().render();
    let confirm_polls = metrics
        .lines()
        .find(|l| l.starts_with(ravan_watch::metrics::CONFIRM_POLLS))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or("0")
        .to_owned();
    let polls = ravan.polls().await - polls_before;
    println!(
        "requests in {:.0} s: {polls} status polls by both services; confirm polls: {confirm_polls} \
         (one per agent in transition: {n} breaks, FAILURE_THRESHOLD=2)",
        elapsed.as_secs_f64()
    );
    with.0.stop().await;
    without.0.stop().await;
}
