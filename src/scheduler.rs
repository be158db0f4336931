//! Runs poll cycles on the cron schedule (`POLL_SCHEDULE`).
//!
//! One task sleeps until the schedule's next tick and starts the cycle then: one wake-up a
//! tick, on time: the scheduler costs nothing between ticks, and no cycle starts late waiting
//! for a poller to notice it is due.
//!
//! A cycle that outlasts the interval is not started twice: the next tick finds the monitor's
//! cycle lock taken ([`Monitor::try_run_cycle`]) and leaves the running cycle alone. The monitor logs the overrun itself, once, with
//! its length and advice (see `Monitor::schedule`), so a skipped tick is only a debug line.
//!
//! Beside the ticks, a second loop runs the monitor's confirm rounds when its plan says
//! ([`crate::confirm`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::domain::PollSchedule;
use crate::monitor::Monitor;
use crate::supervise::Tasks;

/// The longest single sleep: the wall clock is read again at least this often, so a clock
/// that was set (NTP, a resumed VM) moves the next cycle with it.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);

/// The scheduling loop and the cycles it started.
pub struct Scheduler {
    tasks: Tasks,
}

impl Scheduler {
    pub fn start(schedule: &PollSchedule, monitor: Arc<Monitor>) -> Self {
        let tasks = Tasks::new();
        tasks.spawn(run(schedule.clone(), monitor.clone(), tasks.clone()));
        tasks.spawn(confirm(monitor, tasks.token()));
        Self { tasks }
    }

    /// Stops scheduling and waits up to `grace` for a running cycle to finish.
    pub async fn stop(self, grace: Duration) {
        if !self.tasks.stop(grace).await {
            tracing::warn!("a poll cycle was still running at shutdown and was abandoned");
        }
    }
}

/// The tick to run next: the first after `now`, and after the `last` one run, so no tick runs
/// twice (a timer may wake a hair before the wall clock says the tick has come).
fn next_tick(
    schedule: &PollSchedule,
    now: DateTime<Utc>,
    last: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    schedule.next_after(last.map_or(now, |last| now.max(last)))
}

/// Sleeps to each tick and starts its cycle, one of `tasks`, until they are stopped.
async fn run(schedule: PollSchedule, monitor: Arc<Monitor>, tasks: Tasks) {
    let stopped: CancellationToken = tasks.token();
    let mut last: Option<DateTime<Utc>> = None;
    loop {
        let Some(tick) = next_tick(&schedule, Utc::now(), last) else {
            tracing::warn!(
                schedule = schedule.as_str(),
                "POLL_SCHEDULE has no tick left: no more poll cycles"
            );
            return;
        };
        let until = (tick - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(until.min(LONGEST_SLEEP)) => {}
            _ = stopped.cancelled() => return,
        }
        if Utc::now() < tick {
            // A long wait is taken in steps; or the clock was set back.
            continue;
        }
        last = Some(tick);
        let monitor = monitor.clone();
        tasks.spawn(async move {
            match monitor.try_run_cycle().await {
                None => tracing::debug!("previous poll cycle still running: this tick is skipped"),
                // The cycle's state was not saved: the next cycle starts from the last saved
                // state, so its alerts are produced again rather than lost.
                Some(Err(e)) => tracing::error!(error = %e, "poll cycle failed"),
                Some(Ok(_)) => {}
            }
        });
    }
}

/// Runs each confirm round the monitor plans, until `stopped`.
async fn confirm(monitor: Arc<Monitor>, stopped: CancellationToken) {
    let plan = monitor.confirm_plan();
    crate::confirm::run_plan(plan, stopped, || async {
        match monitor.try_run_confirm().await {
            None => tracing::debug!("a tick's cycle polls the agents awaiting confirmation"),
            Some(Err(e)) => tracing::error!(error = %e, "confirm round failed"),
            Some(Ok(report)) => tracing::debug!(polled = report.polled, "confirm round done"),
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_next_tick_is_after_now_and_after_the_last_one_run() {
        let every_second = PollSchedule::parse("* * * * * *").unwrap();
        let half = PollSchedule::parse("0/30 * * * * *").unwrap();
        let now = at("2026-11-29T12:00:00.400Z");
        assert_eq!(
            next_tick(&every_second, now, None),
            Some(at("2026-11-29T12:00:01Z"))
        );
        assert_eq!(
            next_tick(&half, now, None),
            Some(at("2026-11-29T12:00:30Z"))
        );
        // The timer woke 2 ms early for the tick at :01 and ran it; the clock still reads
        // :00.998. The next is :02, not :01 again.
        let early = at("2026-11-29T12:00:00.998Z");
        let ran = Some(at("2026-11-29T12:00:01Z"));
        assert_eq!(
            next_tick(&every_second, early, ran),
            Some(at("2026-11-29T12:00:02Z"))
        );
        // Exactly on a tick: the next one.
        assert_eq!(
            next_tick(&half, at("2026-11-29T12:00:30Z"), None),
            Some(at("2026-11-29T12:01:00Z"))
        );
        // A pattern with no tick left (Feb 30th never comes).
        let never = PollSchedule::parse("0 0 0 30 2 *").unwrap();
        assert_eq!(next_tick(&never, now, None), None);
    }
}
