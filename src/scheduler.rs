//! Runs poll cycles on the cron schedule (tokio-cron-scheduler).
//!
//! A cycle that outlasts the interval is not started twice: the next tick finds the cycle lock
//! taken, logs that it skipped, and leaves the running cycle alone.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::config::PollSchedule;
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
                    tracing::warn!("previous poll cycle still running: this tick is skipped");
                    return;
                };
                monitor.run_cycle().await;
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
