//! Confirm polls (`CONFIRM_INTERVAL`): when an agent's answer disagrees with its alerted health,
//! it alone is polled again soon, so `FAILURE_THRESHOLD` costs seconds rather than poll
//! intervals. Which agents is the tracker's to say
//! ([`AgentState::awaiting_confirmation`](crate::tracker::AgentState::awaiting_confirmation));
//! this module says when, and runs the rounds when they come.
//!
//! The plan is one instant on a [`watch`] channel, set by the monitor after each committed
//! cycle or round: a new plan replaces the old, and `None` means nothing to confirm. Its
//! times are tokio's, so a paused clock drives them in tests.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A confirm round this close to the next tick is left to the tick: it would poll the same
/// agents twice within a moment.
pub const TICK_MARGIN: Duration = Duration::from_secs(1);

/// How long after `now` to poll the agents awaiting confirmation: `interval`, unless the next
/// tick comes first (or within [`TICK_MARGIN`] after), when the tick's poll is the
/// confirmation. `None` when confirm polls are off (a zero interval) or the tick decides.
pub fn delay(
    now: DateTime<Utc>,
    interval: Duration,
    next_tick: Option<DateTime<Utc>>,
) -> Option<Duration> {
    if interval.is_zero() {
        return None;
    }
    let Some(tick) = next_tick else {
        return Some(interval);
    };
    let until_tick = (tick - now).to_std().unwrap_or_default();
    (interval + TICK_MARGIN <= until_tick).then_some(interval)
}

/// Runs `round` each time the plan on `plan` comes due, until `stopped`. A plan replaced
/// while waiting is waited for afresh; `round` clears the plan it runs (and may set the next).
pub async fn run_plan<F, Fut>(
    mut plan: watch::Receiver<Option<Instant>>,
    stopped: CancellationToken,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let due = *plan.borrow_and_update();
        let wait = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = wait => round().await,
            changed = plan.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = stopped.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_confirm_poll_comes_after_the_interval_unless_the_tick_comes_first() {
        let now = at("2026-12-07T12:00:00.200Z");
        let five = Duration::from_secs(5);
        assert_eq!(
            delay(now, five, Some(at("2026-12-07T12:00:30Z"))),
            Some(five)
        );
        assert_eq!(delay(now, five, None), Some(five), "no schedule: always");
        // The tick is 6.8 s away: 5 s + the margin fits.
        assert_eq!(
            delay(now, five, Some(at("2026-12-07T12:00:07Z"))),
            Some(five)
        );
        // 5.8 s away: the round would come 0.8 s before the tick polls everyone.
        assert_eq!(delay(now, five, Some(at("2026-12-07T12:00:06Z"))), None);
        assert_eq!(delay(now, five, Some(at("2026-12-07T12:00:03Z"))), None);
        // A tick already past (a cycle that overran).
        assert_eq!(delay(now, five, Some(at("2026-12-07T11:59:00Z"))), None);
        assert_eq!(delay(now, Duration::ZERO, None), None, "off");
    }

    /// Runs `run_plan` on a paused clock, recording when each round ran (seconds after the
    /// start); each round clears the plan, as the monitor's does.
    async fn rounds_of(script: impl AsyncFnOnce(&watch::Sender<Option<Instant>>)) -> Vec<u64> {
        let start = Instant::now();
        let (tx, rx) = watch::channel(None);
        let ran = Arc::new(Mutex::new(Vec::new()));
        let stopped = CancellationToken::new();
        let (ran2, tx2) = (ran.clone(), tx.clone());
        let task = tokio::spawn(run_plan(rx, stopped.clone(), move || {
            let (ran, tx) = (ran2.clone(), tx2.clone());
            async move {
                ran.lock().unwrap().push(start.elapsed().as_secs());
                tx.send_replace(None);
            }
        }));
        script(&tx).await;
        stopped.cancel();
        task.await.unwrap();
        ran.lock().unwrap().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn a_planned_round_runs_when_due_and_only_then() {
        let ran = rounds_of(async |plan| {
            plan.send_replace(Some(Instant::now() + Duration::from_secs(5)));
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
        .await;
        assert_eq!(ran, vec![5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_replaced_plan_runs_at_its_new_time_and_a_cleared_one_never() {
        let ran = rounds_of(async |plan| {
            plan.send_replace(Some(Instant::now() + Duration::from_secs(5)));
            tokio::time::sleep(Duration::from_secs(2)).await;
            plan.send_replace(Some(Instant::now() + Duration::from_secs(5)));
            tokio::time::sleep(Duration::from_secs(10)).await;
            plan.send_replace(Some(Instant::now() + Duration::from_secs(5)));
            tokio::time::sleep(Duration::from_secs(1)).await;
            plan.send_replace(None);
            tokio::time::sleep(Duration::from_secs(3600)).await;
        })
        .await;
        assert_eq!(ran, vec![7]);
    }
}
