//! Keeps a long-running task alive. A panic in it (a bug; outside input must never cause one)
//! would otherwise end the task silently, leaving its work undone until the next restart, where
//! it would panic again. Supervised, the panic is logged as an error, the task starts again
//! after a pause (1 s, doubling up to a minute), and its [`TaskHealth`] says how often it died,
//! so `/readyz` and the status page can show a task that keeps dying.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Panics within this window count towards [`TaskHealth::failing`].
const WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// This many panics within the window: the task keeps dying.
const FAILING_AFTER: usize = 3;
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// The pause before restarting a task after its `n`-th panic in a row (1-based): 1 s,
/// doubling, at most a minute.
pub fn pause_after(n: u32) -> Duration {
    FIRST_PAUSE
        .saturating_mul(2u32.saturating_pow(n.saturating_sub(1)))
        .min(LONGEST_PAUSE)
}

/// How often a supervised task died; shared with whoever reports on it.
#[derive(Clone, Debug, Default)]
pub struct TaskHealth(Arc<Mutex<Deaths>>);

/// The panics of a supervised task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deaths {
    /// Panics since start.
    pub count: u64,
    /// The last one: when, and what it said.
    pub last: Option<(DateTime<Utc>, String)>,
    /// The times of the recent ones (within the window).
    recent: VecDeque<DateTime<Utc>>,
}

impl TaskHealth {
    pub fn deaths(&self) -> Deaths {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the task keeps dying: `FAILING_AFTER` (3) panics within the last ten minutes.
    pub fn failing(&self, now: DateTime<Utc>) -> bool {
        let deaths = self.0.lock().unwrap_or_else(|e| e.into_inner());
        deaths.recent.iter().filter(|t| now - **t < WINDOW).count() >= FAILING_AFTER
    }

    /// Counts one panic, with what it said.
    pub fn record(&self, message: String, at: DateTime<Utc>) {
        let mut deaths = self.0.lock().unwrap_or_else(|e| e.into_inner());
        deaths.count += 1;
        deaths.last = Some((at, message));
        deaths.recent.push_back(at);
        while deaths.recent.front().is_some_and(|t| at - *t >= WINDOW) {
            deaths.recent.pop_front();
        }
    }
}

/// Runs the future `start` makes until it returns; when it panics, logs the panic, records it
/// in `health`, pauses and starts a new one.
pub async fn supervise<F, Fut>(name: &'static str, health: TaskHealth, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut panics = 0;
    loop {
        match AssertUnwindSafe(start()).catch_unwind().await {
            Ok(()) => return,
            Err(panic) => {
                panics += 1;
                let pause = pause_after(panics);
                let message = panic_message(panic.as_ref());
                tracing::error!(task = name, panic = %message, restart_in = ?pause, "task panicked: restarting it");
                health.record(message, Utc::now());
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Tasks started and stopped together: each is given [`Tasks::token`] and ends when it is
/// cancelled; [`Tasks::stop`] cancels it and waits for them all.
#[derive(Clone, Default)]
pub struct Tasks {
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Tasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// What the tasks watch to know they are to stop.
    pub fn token(&self) -> CancellationToken {
        self.stop.clone()
    }

    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Asks the tasks to stop and waits up to `grace` for every one to end; `false` when one
    /// was still running then (it is left to end by itself).
    pub async fn stop(&self, grace: Duration) -> bool {
        self.stop.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// What a panic said, when it said it as a string.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_logged_counted_and_restarted_until_it_returns() {
        let health = TaskHealth::default();
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        supervise("test task", health.clone(), move || {
            let runs = counted.clone();
            async move {
                let n = runs.fetch_add(1, Ordering::SeqCst);
                if n < 3 {
                    panic!("boom {n}");
                }
            }
        })
        .await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            4,
            "three panics, then a clean return"
        );
        let deaths = health.deaths();
        assert_eq!(deaths.count, 3);
        assert_eq!(
            deaths.last.as_ref().map(|(_, m)| m.as_str()),
            Some("boom 2")
        );
        assert!(health.failing(Utc::now()), "three deaths in a few seconds");
        assert!(!health.failing(Utc::now() + chrono::TimeDelta::minutes(11)));
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_stop_when_asked_and_a_slow_one_is_reported() {
        let tasks = Tasks::new();
        let token = tasks.token();
        tasks.spawn(async move { token.cancelled().await });
        assert!(
            tasks.stop(Duration::from_secs(1)).await,
            "it stopped when asked"
        );

        let tasks = Tasks::new();
        tasks.spawn(tokio::time::sleep(Duration::from_secs(10)));
        assert!(
            !tasks.stop(Duration::from_secs(1)).await,
            "it ignored the token"
        );
    }

    #[test]
    fn pauses_double_from_a_second_to_a_minute() {
        let pauses: Vec<u64> = (1..=9).map(|n| pause_after(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(pause_after(u32::MAX), LONGEST_PAUSE);
        assert_eq!(pause_after(0), FIRST_PAUSE);
    }

    #[test]
    fn a_task_that_died_once_or_twice_is_not_failing() {
        let health = TaskHealth::default();
        let now = Utc::now();
        health.record("a".into(), now - chrono::TimeDelta::minutes(20));
        health.record("b".into(), now - chrono::TimeDelta::minutes(1));
        health.record("c".into(), now);
        assert!(!health.failing(now), "one of the three is too old");
        assert_eq!(health.deaths().count, 3);
    }
}
