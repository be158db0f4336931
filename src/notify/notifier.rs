//! One ordered, in-memory queue and worker per webhook.
//!
//! Alerts for one destination are delivered in the order they were produced; a destination
//! that is retrying or rate-limited delays only its own queue. At shutdown the queues are closed,
//! what is already queued gets a bounded grace period, and whatever is left is logged by count
//! (durable delivery across restarts is the outbox's job, not this one's).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::{Sender, Webhook, text};
use crate::alert::Alert;

struct Queue {
    hook: Webhook,
    tx: mpsc::UnboundedSender<Alert>,
    /// Alerts queued or being delivered.
    pending: Arc<AtomicUsize>,
}

/// The producer side: cheap to share, enqueues each alert for every destination.
pub struct Notifier {
    queues: Vec<Queue>,
    closing: watch::Sender<bool>,
    workers: tokio::sync::Mutex<JoinSet<()>>,
}

impl Notifier {
    /// Starts one worker per webhook. With no webhooks, alerts are only logged.
    pub fn start(sender: Sender, hooks: Vec<Webhook>) -> Self {
        let (closing, _) = watch::channel(false);
        let mut workers = JoinSet::new();
        let queues = hooks
            .into_iter()
            .map(|hook| {
                let (tx, rx) = mpsc::unbounded_channel();
                let pending = Arc::new(AtomicUsize::new(0));
                workers.spawn(worker(
                    sender.clone(),
                    hook.clone(),
                    rx,
                    pending.clone(),
                    closing.subscribe(),
                ));
                Queue { hook, tx, pending }
            })
            .collect();
        Self {
            queues,
            closing,
            workers: tokio::sync::Mutex::new(workers),
        }
    }

    /// Logs the alert and queues it for every destination.
    pub fn notify(&self, alert: &Alert) {
        tracing::info!(alert = %text::headline(alert), destinations = self.queues.len(), "alert");
        for q in &self.queues {
            q.pending.fetch_add(1, Ordering::SeqCst);
            if q.tx.send(alert.clone()).is_err() {
                q.pending.fetch_sub(1, Ordering::SeqCst);
                tracing::error!(webhook = %q.hook, alert = %text::headline(alert), "alert not queued: the notifier is shutting down");
            }
        }
    }

    /// Alerts queued or in delivery, over all destinations.
    pub fn pending(&self) -> usize {
        self.queues
            .iter()
            .map(|q| q.pending.load(Ordering::SeqCst))
            .sum()
    }

    /// Stops taking alerts, gives the queued ones up to `grace` to go out, then logs what is
    /// left for each destination and stops.
    pub async fn shutdown(&self, grace: Duration) {
        self.closing.send_replace(true);
        let mut workers = self.workers.lock().await;
        let drained = tokio::time::timeout(grace, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            for q in &self.queues {
                let left = q.pending.load(Ordering::SeqCst);
                if left > 0 {
                    tracing::error!(webhook = %q.hook, undelivered = left, "shutting down with alerts not delivered");
                }
            }
            workers.shutdown().await;
        }
    }
}

async fn worker(
    sender: Sender,
    hook: Webhook,
    mut rx: mpsc::UnboundedReceiver<Alert>,
    pending: Arc<AtomicUsize>,
    mut closing: watch::Receiver<bool>,
) {
    let mut closed = false;
    loop {
        let alert = tokio::select! {
            biased;
            alert = rx.recv() => match alert {
                Some(alert) => alert,
                None => break,
            },
            // Shutdown (or the notifier dropped): after close(), recv() still yields what was
            // queued, then None.
            _ = closing.changed(), if !closed => {
                rx.close();
                closed = true;
                continue;
            }
        };
        let body = hook.render(&alert);
        match sender.deliver(&hook, &body).await {
            Ok(()) => {
                tracing::debug!(webhook = %hook, alert = %text::headline(&alert), "delivered")
            }
            Err(err) => {
                tracing::error!(webhook = %hook, alert = %text::headline(&alert), error = %err, "alert not delivered: giving up")
            }
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}
