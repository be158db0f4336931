//! Scale benchmark: `cargo bench --bench scale` (release build; the run itself takes well under
//! a minute on 2 cores, the first release build several minutes).
//!
//! Every figure comes from its own process, so peak RSS (VmHWM, which only grows) is that
//! scenario's own and nothing else's:
//!
//! - `fake`: the tests' fake Ravan API (`tests/common/ravan.rs`, keeping no requests) and a
//!   fake Slack/Discord sink on 127.0.0.1 (wiremock, one thread). It records each webhook's arrival time on the system-wide monotonic clock, so the
//!   outage scenario can compare it with its own.
//! - `bare N`: the floor, a plain reqwest loop making the N status requests, 16 at a time.
//!   Like `poll N`, it runs one warm-up pass, then `SCALE_CYCLES` (default 5) measured ones,
//!   and reports the median.
//! - `poll N`: ravan-watch's `Monitor::run_cycle` over N agents stored in SQLite, leading
//!   under the lease as `serve` does (renewed every 2 s). It also
//!   counts the history rows (health intervals, events) after the warm-up and after the
//!   measured cycles: steady agents must add none (history grows with changes, not polls).
//! - `poll-pg N`: the same on PostgreSQL, when `RAVAN_WATCH_TEST_POSTGRES_URL` names a server
//!   (`scripts/test-postgres run -- cargo bench --bench scale` starts a throwaway one): a fresh
//!   database per process. Beside its own CPU, it counts the PostgreSQL server's (every
//!   `postgres` process's, from /proc), since on SQLite the database's work is in-process.
//! - `outage N`: N agents go `errored` with FAILURE_THRESHOLD 1; the delivery worker sends the
//!   alerts to one Slack and one Discord webhook.
//!
//!
//! Small fleets (`SCALE_ONLY=small` runs only these, `SCALE_ONLY=large` only the above):
//! - `bare-tick N`: the floor for a small fleet, a reqwest loop making the N requests at every
//!   whole second; `serve N`: the whole service as `serve` runs it ([`App::start`]: scheduler,
//!   lease, delivery worker, pruning, HTTP API) with `POLL_SCHEDULE` every second. Each is
//!   left alone for `SCALE_WINDOW` (default 10) seconds after 2 warm-up cycles, and its CPU
//!   (all threads) is divided by the polls the fake answered meanwhile. `serve 0`: the idle
//!   service with no agents, its CPU a second (the fixed cost, lease renewals included).
//! - `empty-cycle`: `run_cycle` with no agents, by hand, 500 times: the cycle's own fixed cost.
//! - `growth N`: 1,000 cycles by hand over N agents: CPU per cycle and resident memory over
//!   the first and the last 100, to show that nothing grows with the cycles before.
//!
//! The parent (what `cargo bench` runs) starts the fake, runs each scenario as a child, and
//! prints one table. It talks only to 127.0.0.1 and stops by itself.
//!
//! On a small shared machine one process's CPU per request can differ from the next one's by a
//! quarter (thread placement, wake-ups), more than ravan-watch's own overhead. So `bare N` and
//! `poll N` each run in `SCALE_ROUNDS` (default 5) processes, alternating, and a figure is the
//! median of the processes' medians; the table also prints every process's own figure.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use ravan_watch::app::App;
use ravan_watch::domain::AgentId;
use ravan_watch::domain::secret::SecretUrl;
use ravan_watch::domain::{Platform, Webhook};
use ravan_watch::leader::Role;
use ravan_watch::notify::Worker;
use ravan_watch::store::OutboxStatus;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use ravan::FakeRavan;
use settings::TestSettings;
use wait::poll_until;

/// A fresh database on the PostgreSQL server of `RAVAN_WATCH_TEST_POSTGRES_URL`, as the tests
/// make them.
#[path = "../tests/common/postgres.rs"]
mod pg;

/// The fake's process: one thread, its port on stdout, gone with the parent.
#[path = "common/fake.rs"]
mod fake;

/// The fake Ravan API, the tests' own.
#[path = "../tests/common/ravan.rs"]
mod ravan;

/// A service's settings, as the tests write them.
#[path = "../tests/common/settings.rs"]
mod settings;

/// Waiting on a condition with a deadline, as the tests wait.
#[path = "../tests/common/wait.rs"]
mod wait;

/// `POLL_CONCURRENCY`'s default.
const CONCURRENCY: usize = 16;
/// Fleet sizes, each with its target CPU per poll against the bare loop's: at most 1.25x at
/// 1,000 agents (issue 24), 1.3x at 10,000 (issue 16: no regression).
const SIZES: [(usize, f64); 2] = [(1_000, 1.25), (10_000, 1.3)];
const OUTAGE_AGENTS: usize = 1_000;
/// One cycle is tens of milliseconds at 1,000 agents: one sample is noise, the median of a few
/// is a figure. `SCALE_CYCLES=1` measures exactly one cycle.
const DEFAULT_CYCLES: usize = 5;
/// Processes per scenario and size, alternating bare and ravan-watch.
const DEFAULT_ROUNDS: usize = 5;

/// CPU per poll on PostgreSQL against SQLite's (issue 14).
const TARGET_PG_RATIO: f64 = 1.5;
/// The PostgreSQL server the `poll-pg` scenario makes its databases on.
const POSTGRES_VAR: &str = "RAVAN_WATCH_TEST_POSTGRES_URL";
/// Peak RSS at 10,000 agents (issue 16).
const TARGET_RSS_MIB: f64 = 40.0;

/// Small fleets on a 1 s schedule, each with its target CPU per poll against the bare loop's.
const SMALL_SIZES: [(usize, f64); 2] = [(10, 3.0), (100, 1.5)];
/// Peak RSS of the whole idle service at 100 agents.
const TARGET_SMALL_RSS_MIB: f64 = 10.0;
/// An empty cycle should cost less than this many polls (the bare loop's, at 100 agents).
const TARGET_EMPTY_CYCLE_POLLS: f64 = 10.0;
/// Seconds of a small fleet's measured window (`SCALE_WINDOW`), after the warm-up cycles.
const DEFAULT_WINDOW_SECONDS: usize = 10;
const WARM_UP_CYCLES: u64 = 2;
/// Processes per small-fleet scenario and size (`SCALE_SMALL_ROUNDS`).
const DEFAULT_SMALL_ROUNDS: usize = 3;
/// Empty cycles run by hand for their fixed cost.
const EMPTY_CYCLES: usize = 500;
/// The growth scenario: agents, cycles in all, and the early and late spans compared.
const GROWTH_AGENTS: usize = 100;
const GROWTH_CYCLES: usize = 1_000;
const GROWTH_SPAN: usize = 100;
/// What the allocator may keep of late cycles' working memory beyond the early ones' before
/// the growth counts as growth: well under a sample per poll (8 bytes × 80,000 polls).
const GROWTH_RSS_SLACK_KIB: i64 = 256;
const TARGET_MESSAGES: usize = 3;
const TARGET_DELIVERY: Duration = Duration::from_secs(5);

/// How long the outage scenario waits for the outbox to drain before giving up.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(60);
/// A child still running after this is stuck: it exits, and the bench reports the failure.
const CHILD_WATCHDOG: Duration = Duration::from_secs(150);

const CHILD_FLAG: &str = "--scale-child";

const SLACK_PATH: &str = "/slack/services/T0000/B0000/bench-token";
const DISCORD_PATH: &str = "/discord/api/webhooks/1/bench-token";

fn main() {
    // `cargo bench` passes `--bench`; anything but the child flag means "run the benchmark".
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == CHILD_FLAG) {
        Some(i) => child(&args[i + 1..]),
        None => parent(),
    }
}

// ------------------------------------------------------------------ measurements

/// Process CPU time (user + system, all threads) so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time (user + system) of every `postgres` process on the machine so far, from /proc: the
/// PostgreSQL server's share of a cycle (the benchmark's throwaway server is the only one).
fn postgres_cpu() -> Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so split after its ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the ')'.
        let time = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        total += time(11) + time(12);
    }
    Duration::from_secs_f64(total as f64 / ticks)
}

/// The system-wide monotonic clock in nanoseconds: comparable between processes.
fn mono_ns() -> u64 {
    // SAFETY: clock_gettime only writes the struct it is given.
    let ts = unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        assert_eq!(libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts), 0);
        ts
    };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// This process's peak resident set size (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// This process's resident set size now (VmRSS), in KiB.
fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// A size from `/proc/self/status` (`field` with its colon), in KiB; 0 when unreadable.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A positive count from the environment variable `name`, else `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// Measured cycles (or bare passes) after the warm-up; the median is reported.
fn measured_cycles() -> usize {
    env_count("SCALE_CYCLES", DEFAULT_CYCLES)
}

/// Runs `cycle` `measured_cycles()` times, timing each run.
async fn measure<F: Future<Output = ()>>(requests: usize, mut cycle: impl FnMut() -> F) -> Measure {
    let (mut wall_s, mut cpu_s, mut server_cpu_s) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..measured_cycles() {
        // Reading /proc costs CPU too: outside the process's own measured span.
        let server = postgres_cpu();
        let (cpu, t0) = (cpu_time(), Instant::now());
        cycle().await;
        wall_s.push(t0.elapsed().as_secs_f64());
        cpu_s.push((cpu_time() - cpu).as_secs_f64());
        // A server process that ended in between takes its time away: never below zero.
        server_cpu_s.push(postgres_cpu().saturating_sub(server).as_secs_f64());
    }
    Measure {
        requests,
        wall_s,
        cpu_s,
        server_cpu_s,
        peak_rss_kib: peak_rss_kib(),
        history: None,
    }
}

/// Processes per scenario (`SCALE_ROUNDS`).
fn rounds() -> usize {
    env_count("SCALE_ROUNDS", DEFAULT_ROUNDS)
}

fn median(xs: &[f64]) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len().is_multiple_of(2) {
        (xs[mid - 1] + xs[mid]) / 2.0
    } else {
        xs[mid]
    }
}

/// The measured poll cycles (or bare passes) of one scenario: one sample per cycle.
#[derive(Debug, Serialize, Deserialize)]
struct Measure {
    requests: usize,
    wall_s: Vec<f64>,
    cpu_s: Vec<f64>,
    /// The PostgreSQL server's CPU over each cycle (0 on SQLite, whose work is in `cpu_s`).
    server_cpu_s: Vec<f64>,
    /// Taken after the last cycle: the process's peak over setup, warm-up and every cycle.
    peak_rss_kib: u64,
    /// History rows (health intervals, events) after the warm-up and after the measured
    /// cycles: steady cycles must add none. `None` for the bare loop.
    #[serde(default)]
    history: Option<[HistoryRows; 2]>,
}

/// How many history rows the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct HistoryRows {
    intervals: usize,
    events: usize,
}

impl HistoryRows {
    async fn count(store: &ravan_watch::store::Store) -> Self {
        let intervals = store
            .health_intervals(chrono::DateTime::UNIX_EPOCH)
            .await
            .expect("read the health intervals")
            .len();
        let events = store
            .events(&ravan_watch::store::EventQuery {
                about: ravan_watch::store::EventsAbout::All,
                before: None,
                limit: u32::MAX,
            })
            .await
            .expect("read the events")
            .len();
        Self { intervals, events }
    }
}

impl Measure {
    /// The median cycle's wall time.
    fn wall(&self) -> Duration {
        Duration::from_secs_f64(median(&self.wall_s))
    }

    /// The median cycle's CPU time, per request.
    fn cpu_per_request(&self) -> Duration {
        Duration::from_secs_f64(median(&self.cpu_s) / self.requests as f64)
    }

    /// The median cycle's CPU time of this process and the PostgreSQL server, per request.
    fn total_cpu_per_request(&self) -> Duration {
        let total: Vec<f64> = self
            .cpu_s
            .iter()
            .zip(&self.server_cpu_s)
            .map(|(c, s)| c + s)
            .collect();
        Duration::from_secs_f64(median(&total) / self.requests as f64)
    }

    /// The cheapest and dearest cycle's CPU time per request.
    fn cpu_per_request_range(&self) -> (Duration, Duration) {
        let per = |x: f64| Duration::from_secs_f64(x / self.requests as f64);
        let min = self.cpu_s.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.cpu_s.iter().copied().fold(0.0, f64::max);
        (per(min), per(max))
    }

    fn rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }
}

/// One scenario measured in several processes.
struct Runs(Vec<Measure>);

impl Runs {
    fn median_of(&self, f: impl Fn(&Measure) -> Duration) -> Duration {
        let xs: Vec<f64> = self.0.iter().map(|m| f(m).as_secs_f64()).collect();
        Duration::from_secs_f64(median(&xs))
    }

    /// The median process's median cycle.
    fn wall(&self) -> Duration {
        self.median_of(Measure::wall)
    }

    /// The median process's median cycle, per request.
    fn cpu_per_request(&self) -> Duration {
        self.median_of(Measure::cpu_per_request)
    }

    /// The median process's median cycle of this process and the server, per request.
    fn total_cpu_per_request(&self) -> Duration {
        self.median_of(Measure::total_cpu_per_request)
    }

    /// The cheapest and dearest cycle of any process, per request.
    fn cpu_per_request_range(&self) -> (Duration, Duration) {
        let ranges = self.0.iter().map(Measure::cpu_per_request_range);
        ranges.fold((Duration::MAX, Duration::ZERO), |(lo, hi), (l, h)| {
            (lo.min(l), hi.max(h))
        })
    }

    /// The highest peak of any process.
    fn rss_mib(&self) -> f64 {
        self.0.iter().map(Measure::rss_mib).fold(0.0, f64::max)
    }

    /// Each process's median CPU per request, in the order they ran.
    fn per_process(&self) -> String {
        let each: Vec<String> = self
            .0
            .iter()
            .map(|m| fmt_duration(m.cpu_per_request()))
            .collect();
        each.join(", ")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct OutageResult {
    agents: usize,
    down_alerts: usize,
    cycle_wall_s: f64,
    /// From `run_cycle` returning to the first / last webhook request arriving at the sink.
    first_delivery_s: Option<f64>,
    last_delivery_s: Option<f64>,
    slack_messages: usize,
    discord_messages: usize,
    outbox_delivered: usize,
    outbox_failed: usize,
    outbox_pending: usize,
    peak_rss_kib: u64,
}

// ------------------------------------------------------------------ parent

/// The fake server process; killed when dropped (and it exits by itself when our end of its
/// stdin closes, should this process die first).
struct FakeProcess {
    child: Child,
    port: u16,
}

impl FakeProcess {
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args([CHILD_FLAG, "fake"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the fake server process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("read the fake's port");
        let port = line.trim().parse().expect("the fake prints its port");
        Self { child, port }
    }
}

impl Drop for FakeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one scenario in a fresh process and reads the JSON line it prints.
fn run_child<T: DeserializeOwned>(scenario: &str, agents: usize, port: u16) -> T {
    eprintln!("scale: {scenario} {agents} …");
    let output = Command::new(std::env::current_exe().expect("own path"))
        .args([CHILD_FLAG, scenario, &agents.to_string(), &port.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("start a scenario process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "scenario {scenario} {agents} failed ({}): {stdout}",
        output.status
    );
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty());
    serde_json::from_str(line.unwrap_or_default()).unwrap_or_else(|e| {
        panic!("scenario {scenario} {agents} printed no result ({e}): {stdout}")
    })
}

fn parent() {
    let started = Instant::now();
    // Other work on the machine shows in the figures: print the load they were taken under.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    let fake = FakeProcess::start();
    let only = std::env::var("SCALE_ONLY").unwrap_or_default();
    if only != "small" {
        large_fleets(&fake, &load);
    }
    if only != "large" {
        small_fleets(&fake, &load);
    }
    drop(fake);
    println!();
    println!("total benchmark time {}", fmt_duration(started.elapsed()));
}

/// 1,000 and 10,000 agents, cycles run by hand, against the bare loop; then the outage.
fn large_fleets(fake: &FakeProcess, load: &str) {
    let load = load.to_owned();
    let postgres = std::env::var(POSTGRES_VAR).is_ok_and(|v| !v.is_empty());
    let mut rows = Vec::new();
    let mut pg_rows = Vec::new();
    for (n, _) in SIZES {
        let (mut bare, mut watch, mut pg) = (Runs(Vec::new()), Runs(Vec::new()), Runs(Vec::new()));
        for _ in 0..rounds() {
            bare.0.push(run_child("bare", n, fake.port));
            watch.0.push(run_child("poll", n, fake.port));
            if postgres {
                pg.0.push(run_child("poll-pg", n, fake.port));
            }
        }
        if postgres {
            pg_rows.push((n, pg));
        }
        rows.push((n, bare, watch));
    }
    let outage: OutageResult = run_child("outage", OUTAGE_AGENTS, fake.port);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cycles = rows
        .first()
        .and_then(|(_, _, w)| w.0.first())
        .map_or(0, |m| m.cpu_s.len());
    let processes = rows.first().map_or(0, |(_, _, w)| w.0.len());
    println!();
    println!(
        "ravan-watch scale benchmark: fake Ravan on 127.0.0.1, concurrency {CONCURRENCY}, {cores} cores, load average before the run {load}"
    );
    println!(
        "cycle wall, CPU/request: median of {processes} processes' medians of {cycles} cycles after 1 warm-up (CPU range: cheapest..dearest cycle of any); peak RSS: VmHWM, the highest of the processes"
    );
    println!();
    let row = |n: &str, what: &str, wall: String, cpu: String, range: String, rss: String| {
        println!("{n:>7}  {what:<13} {wall:>10} {cpu:>12} {range:>19} {rss:>10}");
    };
    row(
        "agents",
        "",
        "cycle wall".into(),
        "CPU/request".into(),
        "CPU range".into(),
        "peak RSS".into(),
    );
    let range = |m: &Runs| {
        let (lo, hi) = m.cpu_per_request_range();
        format!("{}..{}", fmt_duration(lo), fmt_duration(hi))
    };
    for (n, bare, watch) in &rows {
        for (agents, label, m) in [
            (n.to_string(), "bare reqwest", bare),
            (String::new(), "ravan-watch", watch),
        ] {
            row(
                &agents,
                label,
                fmt_duration(m.wall()),
                fmt_duration(m.cpu_per_request()),
                range(m),
                format!("{:.1} MiB", m.rss_mib()),
            );
        }
        row(
            "",
            "ratio",
            format!(
                "{:.2}x",
                watch.wall().as_secs_f64() / bare.wall().as_secs_f64()
            ),
            format!("{:.2}x", cpu_ratio(bare, watch)),
            String::new(),
            format!("{:.2}x", watch.rss_mib() / bare.rss_mib()),
        );
    }
    println!();
    println!("CPU/request of each process, in the order they ran:");
    for (n, bare, watch) in &rows {
        println!("{n:>7}  bare reqwest  {}", bare.per_process());
        println!("{:>7}  ravan-watch   {}", "", watch.per_process());
    }
    println!();
    for ((n, bare, watch), (_, target)) in rows.iter().zip(SIZES) {
        let ratio = cpu_ratio(bare, watch);
        println!(
            "{n:>6} agents: CPU/poll ratio {ratio:.2}x (target <= {target}x) {}; each process against the bare one before it: {}",
            verdict(ratio <= target),
            pair_ratios(bare, watch)
        );
    }
    let measured = rows
        .iter()
        .map(|(n, _, w)| (n, "SQLite", w))
        .chain(pg_rows.iter().map(|(n, pg)| (n, "PostgreSQL", pg)));
    for (n, backend, watch) in measured {
        let history: Vec<[HistoryRows; 2]> = watch.0.iter().filter_map(|m| m.history).collect();
        let grew = history
            .iter()
            .filter(|[before, after]| before != after)
            .count();
        if let Some([before, after]) = history.first() {
            println!(
                "{n:>6} agents, {backend}: history rows after the warm-up {} intervals + {} events, after {cycles} steady cycles {} + {} (target: none added; {grew} of {} processes added some) {}",
                before.intervals,
                before.events,
                after.intervals,
                after.events,
                history.len(),
                verdict(grew == 0)
            );
        }
    }
    if pg_rows.is_empty() {
        println!(
            "PostgreSQL: not measured (set {POSTGRES_VAR}, or run scripts/test-postgres run -- cargo bench --bench scale)"
        );
    }
    for ((n, _, sqlite), (_, pg)) in rows.iter().zip(&pg_rows) {
        let ratio = cpu_ratio(sqlite, pg);
        let total =
            pg.total_cpu_per_request().as_secs_f64() / sqlite.cpu_per_request().as_secs_f64();
        println!(
            "{n:>6} agents: PostgreSQL {} wall, CPU/poll {} ({ratio:.2}x SQLite's, target <= {TARGET_PG_RATIO}x) {}; with the PostgreSQL server's CPU {} ({total:.2}x); peak RSS {:.1} MiB",
            fmt_duration(pg.wall()),
            fmt_duration(pg.cpu_per_request()),
            verdict(ratio <= TARGET_PG_RATIO),
            fmt_duration(pg.total_cpu_per_request()),
            pg.rss_mib()
        );
        println!(
            "{:>7}  PostgreSQL CPU/request per process: {}",
            "",
            pg.per_process()
        );
    }
    if let Some((n, _, watch)) = rows.iter().max_by_key(|(n, ..)| *n) {
        println!(
            "{n:>6} agents: ravan-watch peak RSS {:.1} MiB (target <= {TARGET_RSS_MIB} MiB) {}",
            watch.rss_mib(),
            verdict(watch.rss_mib() <= TARGET_RSS_MIB)
        );
    }

    let o = &outage;
    println!();
    println!(
        "outage: {} agents turn errored, FAILURE_THRESHOLD 1, default Slack + Discord webhooks",
        o.agents
    );
    println!(
        "  cycle: {} down alerts, run_cycle {}",
        o.down_alerts,
        fmt_duration(Duration::from_secs_f64(o.cycle_wall_s))
    );
    match (o.first_delivery_s, o.last_delivery_s) {
        (Some(first), Some(last)) => {
            let last = Duration::from_secs_f64(last.max(0.0));
            println!(
                "  end of cycle -> last webhook delivery {} (target <= {}) {}   (first after {})",
                fmt_duration(last),
                fmt_duration(TARGET_DELIVERY),
                verdict(last <= TARGET_DELIVERY && o.outbox_pending == 0),
                fmt_duration(Duration::from_secs_f64(first.max(0.0)))
            );
        }
        _ => println!("  no webhook delivery arrived {}", verdict(false)),
    }
    for (name, count) in [("Slack", o.slack_messages), ("Discord", o.discord_messages)] {
        println!(
            "  {name:<8} messages received {count:>5} (target <= {TARGET_MESSAGES}) {}",
            verdict(count <= TARGET_MESSAGES && count > 0)
        );
    }
    println!(
        "  outbox after: {} delivered, {} failed, {} still pending{}",
        o.outbox_delivered,
        o.outbox_failed,
        o.outbox_pending,
        if o.outbox_pending > 0 {
            format!(" (gave up waiting after {DELIVERY_DEADLINE:?})")
        } else {
            String::new()
        }
    );
    println!("  peak RSS {:.1} MiB", o.peak_rss_kib as f64 / 1024.0);
}

/// 10 and 100 agents polled every second by the whole service, against a bare loop polling
/// as often; the idle service with no agents; an empty cycle by hand; growth over 1,000 cycles.
fn small_fleets(fake: &FakeProcess, load: &str) {
    let rounds = env_count("SCALE_SMALL_ROUNDS", DEFAULT_SMALL_ROUNDS);
    let mut rows = Vec::new();
    for (n, target) in SMALL_SIZES {
        let (mut bare, mut watch) = (Vec::<Window>::new(), Vec::<Window>::new());
        for _ in 0..rounds {
            bare.push(run_child("bare-tick", n, fake.port));
            watch.push(run_child("serve", n, fake.port));
        }
        rows.push((n, target, bare, watch));
    }
    let idle: Vec<Window> = (0..rounds)
        .map(|_| run_child("serve", 0, fake.port))
        .collect();
    let empty: EmptyCycle = run_child("empty-cycle", 0, fake.port);
    let growth: Growth = run_child("growth", GROWTH_AGENTS, fake.port);

    let median_of = |ws: &[Window], f: fn(&Window) -> Duration| {
        let xs: Vec<f64> = ws.iter().map(|w| f(w).as_secs_f64()).collect();
        Duration::from_secs_f64(median(&xs))
    };
    let peak = |ws: &[Window]| {
        ws.iter()
            .map(|w| w.peak_rss_kib as f64 / 1024.0)
            .fold(0.0, f64::max)
    };
    println!();
    println!(
        "small fleets: POLL_SCHEDULE every second, the whole service as `serve` runs it (scheduler, leader lease, delivery worker, pruning, HTTP API), load average before the run {load}"
    );
    println!(
        "CPU: all threads over {} whole cycles after {WARM_UP_CYCLES} warm-up cycles, median of {rounds} processes; peak RSS: VmHWM, the highest",
        window_seconds()
    );
    println!();
    println!(
        "{:>7}  {:<13} {:>11} {:>12} {:>10}",
        "agents", "", "CPU/poll", "CPU/second", "peak RSS"
    );
    for (n, _, bare, watch) in &rows {
        for (agents, label, ws) in [
            (n.to_string(), "bare loop", bare),
            (String::new(), "ravan-watch", watch),
        ] {
            println!(
                "{agents:>7}  {label:<13} {:>11} {:>12} {:>6.1} MiB",
                fmt_duration(median_of(ws, Window::cpu_per_poll)),
                fmt_duration(median_of(ws, Window::cpu_per_second)),
                peak(ws)
            );
        }
    }
    println!(
        "{:>7}  {:<13} {:>11} {:>12} {:>6.1} MiB",
        0,
        "ravan-watch",
        "-",
        fmt_duration(median_of(&idle, Window::cpu_per_second)),
        peak(&idle)
    );
    println!();
    println!("CPU/poll of each process, in the order they ran:");
    for (n, _, bare, watch) in &rows {
        let each = |ws: &Vec<Window>| {
            let xs: Vec<String> = ws
                .iter()
                .map(|w| format!("{} ({} polls)", fmt_duration(w.cpu_per_poll()), w.polls))
                .collect();
            xs.join(", ")
        };
        println!("{n:>7}  bare loop     {}", each(bare));
        println!("{:>7}  ravan-watch   {}", "", each(watch));
    }
    println!();
    for (n, target, bare, watch) in &rows {
        let ratio = median_of(watch, Window::cpu_per_poll).as_secs_f64()
            / median_of(bare, Window::cpu_per_poll).as_secs_f64();
        println!(
            "{n:>6} agents, every second: CPU/poll ratio {ratio:.2}x (target <= {target}x) {}",
            verdict(ratio <= *target)
        );
    }
    let poll_100 = rows
        .iter()
        .find(|(n, ..)| *n == 100)
        .map(|(_, _, bare, _)| median_of(bare, Window::cpu_per_poll))
        .unwrap_or_default();
    let cycle = Duration::from_secs_f64(empty.cpu_s / empty.cycles as f64);
    let ten_polls = poll_100.mul_f64(TARGET_EMPTY_CYCLE_POLLS);
    println!(
        "     0 agents: an empty cycle (run_cycle by hand, mean of {}) costs {} of CPU; {TARGET_EMPTY_CYCLE_POLLS} polls of the bare loop at 100 agents cost {} (target: less) {}",
        empty.cycles,
        fmt_duration(cycle),
        fmt_duration(ten_polls),
        verdict(cycle < ten_polls)
    );
    println!(
        "     0 agents: the idle service with no agents spends {} of CPU a second (one cycle a second, the lease renewed every 2 s, the other tasks idle)",
        fmt_duration(median_of(&idle, Window::cpu_per_second))
    );
    if let Some((n, _, _, watch)) = rows.iter().find(|(n, ..)| *n == 100) {
        println!(
            "{n:>6} agents: the service's peak RSS {:.1} MiB (target <= {TARGET_SMALL_RSS_MIB} MiB) {}",
            peak(watch),
            verdict(peak(watch) <= TARGET_SMALL_RSS_MIB)
        );
    }
    let g = &growth;
    let grew_kib = g.late_rss_kib as i64 - g.early_rss_kib as i64;
    println!(
        "{:>6} agents, {GROWTH_CYCLES} cycles by hand: CPU/cycle {} over the first {GROWTH_SPAN}, {} over the last {GROWTH_SPAN} ({:.2}x); RSS {:.1} MiB after the first {GROWTH_SPAN}, {:+} KiB by the end (target: nothing grows) {}",
        g.agents,
        fmt_duration(Duration::from_secs_f64(g.early_cpu_s)),
        fmt_duration(Duration::from_secs_f64(g.late_cpu_s)),
        g.late_cpu_s / g.early_cpu_s,
        g.early_rss_kib as f64 / 1024.0,
        grew_kib,
        verdict(grew_kib <= GROWTH_RSS_SLACK_KIB && g.late_cpu_s <= g.early_cpu_s * 1.2)
    );
}

fn cpu_ratio(bare: &Runs, watch: &Runs) -> f64 {
    watch.cpu_per_request().as_secs_f64() / bare.cpu_per_request().as_secs_f64()
}

/// Each ravan-watch process's CPU per poll against the bare process run just before it.
fn pair_ratios(bare: &Runs, watch: &Runs) -> String {
    let each: Vec<String> = bare
        .0
        .iter()
        .zip(&watch.0)
        .map(|(b, w)| {
            let ratio = w.cpu_per_request().as_secs_f64() / b.cpu_per_request().as_secs_f64();
            format!("{ratio:.2}x")
        })
        .collect();
    each.join(", ")
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

// ------------------------------------------------------------------ children

fn child(args: &[String]) {
    let scenario = args.first().map(String::as_str).unwrap_or_default();
    if scenario == "fake" {
        return fake_server();
    }
    let agents: usize = args.get(1).and_then(|a| a.parse().ok()).expect("agents");
    let port: u16 = args.get(2).and_then(|a| a.parse().ok()).expect("port");
    std::thread::spawn(|| {
        std::thread::sleep(CHILD_WATCHDOG);
        eprintln!("scale: scenario still running after {CHILD_WATCHDOG:?}; giving up");
        std::process::exit(3);
    });
    // The service's runtime: `Runtime::new()`, one worker per core.
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let base = format!("http://127.0.0.1:{port}");
    let line = match scenario {
        "bare" => serde_json::to_string(&runtime.block_on(bare(agents, &base))),
        "poll" => serde_json::to_string(&runtime.block_on(poll(agents, &base, Backend::Sqlite))),
        "poll-pg" => {
            serde_json::to_string(&runtime.block_on(poll(agents, &base, Backend::Postgres)))
        }
        "outage" => serde_json::to_string(&runtime.block_on(outage(agents, &base))),
        "bare-tick" => serde_json::to_string(&runtime.block_on(bare_tick(agents, &base))),
        "serve" => serde_json::to_string(&runtime.block_on(serve(agents, &base))),
        "empty-cycle" => serde_json::to_string(&runtime.block_on(empty_cycle(&base))),
        "growth" => serde_json::to_string(&runtime.block_on(growth(agents, &base))),
        other => panic!("unknown scenario {other:?}"),
    };
    println!("{}", line.expect("results serialize"));
}

fn agent_ids(n: usize) -> Vec<AgentId> {
    (0..n)
        .map(|i| {
            format!("00000000-0000-4000-8000-{i:012}")
                .parse()
                .expect("a UUID")
        })
        .collect()
}

async fn control(base: &str, path: &str) -> String {
    let client = reqwest::Client::new();
    let response = client
        .put(format!("{base}/control/{path}"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("fake control {path}: {e}"));
    response.text().await.expect("control answer")
}

/// The floor: the same N requests, 16 at a time, bodies read, nothing else.
async fn bare(n: usize, base: &str) -> Measure {
    control(base, "mode/active").await;
    let ids: Vec<String> = agent_ids(n).iter().map(ToString::to_string).collect();
    let client = reqwest::Client::new();
    let pass = || {
        futures::stream::iter(&ids)
            .map(|id| {
                let request = client
                    .get(format!("{base}/api/v1/calcom/agents/{id}/status"))
                    .bearer_auth("bench-token");
                async move {
                    let response = request.send().await.ok()?;
                    let ok = response.status() == StatusCode::OK;
                    let body = response.bytes().await.ok()?;
                    (ok && !body.is_empty()).then_some(())
                }
            })
            .buffer_unordered(CONCURRENCY)
            .filter(|r| std::future::ready(r.is_some()))
            .count()
    };
    assert_eq!(pass().await, n, "warm-up: every request answered 200");
    measure(n, || async {
        assert_eq!(pass().await, n, "every request answered 200");
    })
    .await
}

/// Logs and metrics as `serve` has them (info level; the lines go nowhere).
fn service_instrumentation() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            ravan_watch::telemetry::DEFAULT_FILTER,
        ))
        .with_writer(std::io::sink)
        .try_init();
    ravan_watch::metrics::handle();
}

/// A monitor over `n` agents in a fresh SQLite database, with the delivery worker running.
struct Service {
    app: App,
    worker: Worker,
    /// Renews the lease every 2 s, as `serve` does.
    claiming: ravan_watch::supervise::Tasks,
    _dir: tempfile::TempDir,
}

impl Service {
    /// The service as `serve` wires it ([`App::build`]), on a fresh SQLite database with `n`
    /// agents, leading under the lease (renewed every 2 s), its delivery worker running and
    /// its cycles run by hand.
    async fn start(
        n: usize,
        base: &str,
        defaults: Vec<Webhook>,
        failure: u32,
        backend: Backend,
    ) -> Self {
        service_instrumentation();
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("bench.db").display()),
            Backend::Postgres => pg::fresh_database()
                .await
                .unwrap_or_else(|| panic!("{POSTGRES_VAR} is not set")),
        };
        let ids: Vec<String> = agent_ids(n).iter().map(ToString::to_string).collect();
        let ids = ids.join(",");
        let config = TestSettings::new(base)
            .token("bench-token")
            .database(&url)
            .agents(&ids)
            .failure(failure)
            .success(1)
            .set("REMINDER_INTERVAL", "0")
            .concurrency(CONCURRENCY)
            .config();
        let app = App::build_alerting(config, defaults)
            .await
            .expect("the service");
        // Under the lease, as `serve` runs: a steady cycle's progress goes with the renewal.
        let leadership = app.leadership().clone();
        assert_eq!(leadership.claim().await, Role::Leader, "the lease is free");
        let claiming = ravan_watch::supervise::Tasks::new();
        claiming.spawn(leadership.keep_claiming(claiming.token()));
        let worker = app.outbox().spawn();
        Self {
            app,
            worker,
            claiming,
            _dir: dir,
        }
    }

    async fn stop(self) {
        self.claiming.stop(Duration::from_secs(1)).await;
        self.worker.stop(DELIVERY_DEADLINE).await;
        self.app.store().close().await;
    }
}

fn webhooks(base: &str) -> Vec<Webhook> {
    let url = |path: &str| SecretUrl::new(format!("{base}{path}").parse().expect("URL"));
    vec![
        Webhook::new(Platform::Slack, url(SLACK_PATH)),
        Webhook::new(Platform::Discord, url(DISCORD_PATH)),
    ]
}

/// Where a scenario's service keeps its data.
#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// ravan-watch: one warm-up cycle, then the measured cycles, all agents healthy.
async fn poll(n: usize, base: &str, backend: Backend) -> Measure {
    control(base, "mode/active").await;
    // FAILURE_THRESHOLD's default, and default webhooks as a deployment would have them.
    let service = Service::start(n, base, webhooks(base), 2, backend).await;
    let warm = service
        .app
        .monitor()
        .run_cycle()
        .await
        .expect("warm-up cycle");
    assert_eq!((warm.polled, warm.failed), (n, 0), "warm-up cycle");
    let before = HistoryRows::count(service.app.store()).await;
    let mut measured = measure(n, || async {
        let report = service.app.monitor().run_cycle().await.expect("cycle");
        assert_eq!((report.polled, report.failed), (n, 0), "measured cycle");
        assert!(report.alerts.is_empty(), "healthy agents raise no alert");
    })
    .await;
    measured.history = Some([before, HistoryRows::count(service.app.store()).await]);
    service.stop().await;
    measured
}

#[derive(Deserialize)]
struct SinkStats {
    slack: Arrivals,
    discord: Arrivals,
}

#[derive(Deserialize)]
struct Arrivals {
    count: usize,
    first_ns: Option<u64>,
    last_ns: Option<u64>,
}

/// `n` healthy agents turn errored at once; how fast and in how many messages does the team
/// hear about it?
async fn outage(n: usize, base: &str) -> OutageResult {
    control(base, "mode/active").await;
    control(base, "sink/reset").await;
    let service = Service::start(n, base, webhooks(base), 1, Backend::Sqlite).await;
    let warm = service
        .app
        .monitor()
        .run_cycle()
        .await
        .expect("healthy cycle");
    assert_eq!((warm.polled, warm.failed), (n, 0), "healthy cycle");
    assert!(warm.alerts.is_empty(), "healthy agents raise no alert");

    control(base, "mode/errored").await;
    let t0 = Instant::now();
    let report = service
        .app
        .monitor()
        .run_cycle()
        .await
        .expect("outage cycle");
    let cycle_end = mono_ns();
    let cycle_wall = t0.elapsed();
    assert_eq!((report.polled, report.failed), (n, 0), "outage cycle");
    let down_alerts = report
        .alerts
        .iter()
        .filter(|a| a.kind_name() == "down")
        .count();

    // The worker was woken by the cycle; wait for it to empty the outbox (what is left after
    // the deadline is reported as pending).
    let store = service.app.store();
    poll_until(DELIVERY_DEADLINE, || async {
        (store.outbox_pending().await.expect("outbox count") == 0).then_some(())
    })
    .await;
    let entries = service.app.store().outbox().await.expect("outbox");
    let status_count = |s: OutboxStatus| entries.iter().filter(|e| e.status == s).count();
    let (delivered, failed, pending) = (
        status_count(OutboxStatus::Delivered),
        status_count(OutboxStatus::Failed),
        status_count(OutboxStatus::Pending),
    );
    service.stop().await;

    let stats: SinkStats =
        serde_json::from_str(&control(base, "sink").await).expect("sink stats parse");
    let since_cycle = |ns: u64| (ns as f64 - cycle_end as f64) / 1e9;
    let first = [stats.slack.first_ns, stats.discord.first_ns]
        .into_iter()
        .flatten()
        .min();
    let last = [stats.slack.last_ns, stats.discord.last_ns]
        .into_iter()
        .flatten()
        .max();
    OutageResult {
        agents: n,
        down_alerts,
        cycle_wall_s: cycle_wall.as_secs_f64(),
        first_delivery_s: first.map(since_cycle),
        last_delivery_s: last.map(since_cycle),
        slack_messages: stats.slack.count,
        discord_messages: stats.discord.count,
        outbox_delivered: delivered,
        outbox_failed: failed,
        outbox_pending: pending,
        peak_rss_kib: peak_rss_kib(),
    }
}

// ------------------------------------------------------------------ small fleets

/// A small fleet's figures: what a process spent over a window of wall time while polling
/// on a 1 s schedule, and the polls the fake answered meanwhile.
#[derive(Debug, Serialize, Deserialize)]
struct Window {
    polls: u64,
    seconds: f64,
    cpu_s: f64,
    peak_rss_kib: u64,
}

impl Window {
    fn cpu_per_poll(&self) -> Duration {
        Duration::from_secs_f64(self.cpu_s / self.polls.max(1) as f64)
    }

    fn cpu_per_second(&self) -> Duration {
        Duration::from_secs_f64(self.cpu_s / self.seconds)
    }
}

/// Seconds of the measured window (`SCALE_WINDOW`): one cycle a second.
fn window_seconds() -> u64 {
    env_count("SCALE_WINDOW", DEFAULT_WINDOW_SECONDS) as u64
}

/// Sleeps until the next half second of the wall clock: cycles on a 1 s cron schedule start on
/// whole seconds, so a window from one half second to another holds whole cycles only.
async fn to_half_second() {
    let now = chrono::Utc::now();
    let into = now.timestamp_subsec_millis() as u64;
    let wait = if into < 500 { 500 - into } else { 1_500 - into };
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

/// Sleeps until the next whole second of the wall clock.
async fn to_whole_second() {
    let into = chrono::Utc::now().timestamp_subsec_millis() as u64;
    tokio::time::sleep(Duration::from_millis(1_000 - into.min(999))).await;
}

/// Measures this process over [`window_seconds`] whole cycles, after `warm_up` cycles.
async fn measure_window(base: &str, warm_up: u64) -> Window {
    let client = reqwest::Client::new();
    let answered = || async {
        let text = client
            .put(format!("{base}/control/polls"))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("fake control polls")
            .text()
            .await
            .expect("control answer");
        text.parse::<u64>().expect("a count")
    };
    for _ in 0..warm_up {
        to_half_second().await;
    }
    to_half_second().await;
    let polls = answered().await;
    let (cpu, t0) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(window_seconds())).await;
    let (cpu, seconds) = (cpu_time() - cpu, t0.elapsed().as_secs_f64());
    let polls = answered().await - polls;
    Window {
        polls,
        seconds,
        cpu_s: cpu.as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
    }
}

/// The floor for a small fleet: a reqwest loop making the N status requests (16 at a time)
/// at every whole second, nothing else.
async fn bare_tick(n: usize, base: &str) -> Window {
    control(base, "mode/active").await;
    let ids: Vec<String> = agent_ids(n).iter().map(ToString::to_string).collect();
    let base_owned = base.to_owned();
    to_whole_second().await;
    let looping = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        loop {
            ticks.tick().await;
            let requests: Vec<_> = ids
                .iter()
                .map(|id| {
                    let request = client
                        .get(format!("{base_owned}/api/v1/calcom/agents/{id}/status"))
                        .bearer_auth("bench-token");
                    async move {
                        let response = request.send().await.ok()?;
                        response.bytes().await.ok()
                    }
                })
                .collect();
            let _: Vec<_> = futures::stream::iter(requests)
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        }
    });
    let measured = measure_window(base, WARM_UP_CYCLES).await;
    looping.abort();
    measured
}

/// The whole service as `serve` runs it ([`App::start`]: scheduler, leader lease, delivery
/// worker, pruning, HTTP API on 127.0.0.1), on a fresh SQLite database with `n` agents and
/// `POLL_SCHEDULE` every second, left alone for the window.
async fn serve(n: usize, base: &str) -> Window {
    control(base, "mode/active").await;
    service_instrumentation();
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let ids: Vec<String> = agent_ids(n).iter().map(ToString::to_string).collect();
    let ids = ids.join(",");
    let mut settings = TestSettings::new(base)
        .token("bench-token")
        .database(&url)
        .every_second()
        .any_port();
    if n > 0 {
        settings = settings.agents(&ids);
    }
    let config = settings.config();
    let service = App::build_alerting(config, webhooks(base))
        .await
        .expect("the service")
        .start()
        .await
        .expect("the service starts");
    let measured = measure_window(base, WARM_UP_CYCLES).await;
    service.stop().await;
    measured
}

/// One poll cycle with no agents at all, run by hand: the cycle's own fixed cost, without
/// the scheduler, the lease or the other tasks of the service.
#[derive(Debug, Serialize, Deserialize)]
struct EmptyCycle {
    cycles: usize,
    cpu_s: f64,
}

async fn empty_cycle(base: &str) -> EmptyCycle {
    let service = Service::start(0, base, webhooks(base), 2, Backend::Sqlite).await;
    let monitor = service.app.monitor();
    monitor.run_cycle().await.expect("warm-up cycle");
    let cycles = EMPTY_CYCLES;
    let cpu = cpu_time();
    for _ in 0..cycles {
        let report = monitor.run_cycle().await.expect("cycle");
        assert_eq!(report.polled, 0, "no agents");
    }
    let cpu_s = (cpu_time() - cpu).as_secs_f64();
    service.stop().await;
    EmptyCycle { cycles, cpu_s }
}

/// Whether anything a cycle costs grows with the cycles before it: `n` healthy agents,
/// [`GROWTH_CYCLES`] cycles by hand; CPU and resident memory early and late.
#[derive(Debug, Serialize, Deserialize)]
struct Growth {
    agents: usize,
    /// CPU per cycle over the first and the last [`GROWTH_SPAN`] cycles.
    early_cpu_s: f64,
    late_cpu_s: f64,
    /// VmRSS (KiB) after the first and after the last span.
    early_rss_kib: u64,
    late_rss_kib: u64,
}

async fn growth(n: usize, base: &str) -> Growth {
    control(base, "mode/active").await;
    let service = Service::start(n, base, webhooks(base), 2, Backend::Sqlite).await;
    let monitor = service.app.monitor();
    let span = |cycles: usize| async move {
        let cpu = cpu_time();
        for _ in 0..cycles {
            let report = monitor.run_cycle().await.expect("cycle");
            assert_eq!((report.polled, report.failed), (n, 0), "cycle");
        }
        (cpu_time() - cpu).as_secs_f64() / cycles as f64
    };
    let early_cpu_s = span(GROWTH_SPAN).await;
    let early_rss_kib = rss_kib();
    span(GROWTH_CYCLES - 2 * GROWTH_SPAN).await;
    let late_cpu_s = span(GROWTH_SPAN).await;
    let late_rss_kib = rss_kib();
    service.stop().await;
    Growth {
        agents: n,
        early_cpu_s,
        late_cpu_s,
        early_rss_kib,
        late_rss_kib,
    }
}

// ------------------------------------------------------------------ the fake server

/// The Slack and Discord sinks (and a Teams one no scenario uses yet): each webhook's arrival
/// on the system-wide monotonic clock.
#[derive(Default)]
struct Sink {
    slack: Mutex<Vec<u64>>,
    discord: Mutex<Vec<u64>>,
    teams: Mutex<Vec<u64>>,
}

/// One sink's webhook: records the arrival and gives `answer`.
struct Hook {
    sink: Arc<Sink>,
    platform: Platform,
    answer: ResponseTemplate,
}

impl Respond for Hook {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let times = match self.platform {
            Platform::Slack => &self.sink.slack,
            Platform::Discord => &self.sink.discord,
            // The bench alerts to Slack and Discord only; anything else would count here.
            Platform::Teams | Platform::Webhook => &self.sink.teams,
        };
        times.lock().expect("lock").push(mono_ns());
        self.answer.clone()
    }
}

/// `PUT /control/…`: the scenarios' levers and counts.
struct Control {
    ravan: FakeRavan,
    sink: Arc<Sink>,
}

impl Respond for Control {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let status = |s: &str, error| {
            Some(ResponseTemplate::new(200).set_body_json(ravan::status_body(s, error)))
        };
        match request.url.path() {
            // Every status request answered `active`, or `errored`.
            "/control/mode/active" => self.ravan.answer_all(status("active", None)),
            "/control/mode/errored" => self
                .ravan
                .answer_all(status("errored", Some("Cal.com token expired"))),
            "/control/sink" => {
                let arrivals = |times: &Mutex<Vec<u64>>| {
                    let times = times.lock().expect("lock");
                    serde_json::json!({
                        "count": times.len(),
                        "first_ns": times.iter().min(),
                        "last_ns": times.iter().max(),
                    })
                };
                return ResponseTemplate::new(200).set_body_string(
                    serde_json::json!({
                        "slack": arrivals(&self.sink.slack),
                        "discord": arrivals(&self.sink.discord),
                    })
                    .to_string(),
                );
            }
            "/control/sink/reset" => {
                self.sink.slack.lock().expect("lock").clear();
                self.sink.discord.lock().expect("lock").clear();
            }
            // Status requests answered so far: the small-fleet scenarios count their polls.
            "/control/polls" => {
                return ResponseTemplate::new(200)
                    .set_body_string(self.ravan.answered().to_string());
            }
            _ => return ResponseTemplate::new(400),
        }
        ResponseTemplate::new(204)
    }
}

fn fake_server() {
    fake::serve_for_parent(|| async {
        let ravan = FakeRavan::start_for_load().await;
        ravan.answer_all(Some(
            ResponseTemplate::new(200).set_body_json(ravan::status_body("active", None)),
        ));
        let sink = Arc::new(Sink::default());
        for (platform, path_of, answer) in [
            (
                Platform::Slack,
                SLACK_PATH,
                ResponseTemplate::new(200).set_body_string("ok"),
            ),
            (Platform::Discord, DISCORD_PATH, ResponseTemplate::new(204)),
        ] {
            Mock::given(method("POST"))
                .and(path(path_of))
                .respond_with(Hook {
                    sink: sink.clone(),
                    platform,
                    answer,
                })
                .mount(&ravan.server)
                .await;
        }
        Mock::given(method("PUT"))
            .and(path_regex("^/control/"))
            .respond_with(Control {
                ravan: ravan.clone(),
                sink,
            })
            .mount(&ravan.server)
            .await;
        let port = ravan.server.address().port();
        (ravan, port)
    });
}
