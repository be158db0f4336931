//! Runs poll cycles on the cron schedule (tokio-cron-scheduler).
//!
//! A cycle that outlasts the interval is not started twice: the next tick finds the cycle lock
//! taken and leaves the running cycle alone. The monitor logs the overrun itself, once, with
//! its length and advice (see `Monitor::schedule`), so a skipped tick is only a debug line.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::domain::PollSchedule;
use crate::monitor::Monitor;

pub struct Scheduler {
    inner: JobScheduler,
    cycle: Arc<Mutex<()>>,
}

impl Scheduler {
    pub async fn start(
        schedule: &PollSchedule,
        monitor: Arc<Monitor>,
    ) -> Result<Self, JobSchedulerError> {
        let inner = JobScheduler::new().await?;
        let cycle = Arc::new(Mutex::new(()));
        let lock = cycle.clone();
        let job = Job::new_async(schedule.as_str(), move |_id, _sched| {
            let monitor = monitor.clone();
            let lock = lock.clone();
            Box::pin(async move {
                let Ok(_running) = lock.try_lock() else {
                    tracing::debug!("previous poll cycle still running: this tick is skipped");
                    return;
                };
                if let Err(e) = monitor.run_cycle().await {
                    // The cycle's state was not saved: the next cycle starts from the last saved
                    // state, so its alerts are produced again rather than lost.
                    tracing::error!(error = %e, "poll cycle failed");
                }
            })
        })?;
        inner.add(job).await?;
        inner.start().await?;
        Ok(Self { inner, cycle })
    }

    /// Stops scheduling and waits up to `grace` for a running cycle to finish.
    pub async fn stop(mut self, grace: Duration) {
        if let Err(e) = self.inner.shutdown().await {
            tracing::warn!(error = %e, "scheduler did not shut down cleanly");
        }
        if tokio::time::timeout(grace, self.cycle.lock())
            .await
            .is_err()
        {
            tracing::warn!("a poll cycle was still running at shutdown and was abandoned");
        }
    }
}
