//! The service wired from its settings, in one place (`serve`, `demo`, the tests and the
//! benchmark all build it here): [`App::build`] opens the store, merges `WATCH_AGENT_IDS`,
//! and builds the Ravan client, the outbox and the monitor; [`App::start`] binds
//! `LISTEN_ADDR` and runs the scheduler (poll cycles), the delivery worker, watch-all's
//! discovery and the management API until [`Service::stop`]. The cycles, deliveries, discovery
//! and pruning act only while this process holds the leader lease ([`crate::leader`]); a
//! standby serves the API. Stopping: no new cycles and no new sends; the running cycle and the
//! sends in progress finish (bounded), then the lease is released. Anything not yet delivered
//! stays in the outbox for the next leader.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState};
use crate::config::Config;
use crate::digest::Digester;
use crate::discovery::Discovery;
use crate::domain::Webhook;
use crate::leader::{CLAIM_EVERY, Leadership, RELEASE_TIMEOUT, Role};
use crate::monitor::Monitor;
use crate::notify::{Outbox, RetryPolicy, Worker};
use crate::organisation::OrgChecks;
use crate::ravan::RavanClient;
use crate::scheduler::Scheduler;
use crate::store::{Fence, Store};
use crate::supervise::Tasks;

/// How long a running poll cycle gets to finish at shutdown.
const CYCLE_SHUTDOWN: Duration = Duration::from_secs(4);
/// Beyond a webhook request's own time limit, what recording its answer may take at shutdown.
const RECORD_SHUTDOWN: Duration = Duration::from_secs(1);
/// Open API requests are short; they get this long to finish.
const HTTP_SHUTDOWN: Duration = Duration::from_secs(1);
/// A background task asked to stop ends at its next await: this bounds the wait for it.
const TASK_STOP: Duration = Duration::from_secs(1);
/// Counting the outbox at shutdown (for the log line) gets this long: like the release of the
/// lease ([`RELEASE_TIMEOUT`]), it waits on a pool and a busy timeout, and a database that is
/// locked or paused must not hold the exit.
const COUNT_SHUTDOWN: Duration = Duration::from_secs(1);
/// Closing the database's connections: one still held by an abandoned task never comes back.
const CLOSE_SHUTDOWN: Duration = Duration::from_millis(500);

/// The longest shutdown: the cycle and the deliveries in progress finish side by side; the
/// claims stop; then the lease's release, the outbox's count and the HTTP API's stop run side
/// by side, and the database is closed. A send in progress always gets its whole time limit,
/// so shutdown never cuts one between the webhook's answer and its record (which would send it
/// again after restart); every database call after it has a deadline of its own.
fn longest_shutdown(delivery_limit: Duration) -> Duration {
    CYCLE_SHUTDOWN.max(delivery_limit)
        + TASK_STOP
        + RELEASE_TIMEOUT.max(COUNT_SHUTDOWN).max(HTTP_SHUTDOWN)
        + CLOSE_SHUTDOWN
}

fn delivery_shutdown(policy: &RetryPolicy) -> Duration {
    policy.timeout + RECORD_SHUTDOWN
}
/// How often finished outbox entries older than `OUTBOX_RETENTION`, and history older than
/// `HISTORY_RETENTION`, are deleted (and at start).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Rows one delete statement removes: a short write, so a poll cycle never waits long.
const PRUNE_BATCH: u32 = 500;

/// The database `DATABASE_URL` names could not be opened. Shows the URL masked.
#[derive(Debug, thiserror::Error)]
#[error("DATABASE_URL {url}: cannot open the database: {source}")]
pub struct DatabaseUnavailable {
    url: String,
    source: crate::store::StoreError,
}

impl DatabaseUnavailable {
    /// Whether the setting is to blame (unreachable, refused, wrong password, a folder that
    /// does not exist: exit 2), rather than the database's state (a migration that failed, a
    /// lock held too long: worth a retry, exit 1) ([`crate::store::StoreError::is_setting`]).
    pub fn is_bad_setting(&self) -> bool {
        self.source.is_setting()
    }
}

/// A started service: the scheduler, the delivery worker and the HTTP API, running.
pub struct Service {
    addr: SocketAddr,
    store: Store,
    scheduler: Scheduler,
    scheduler_running: Arc<AtomicBool>,
    delivery: Worker,
    delivery_limit: Duration,
    /// Watch-all's discovery, the digests and the pruning: stopped first; a round in progress
    /// is dropped (each of their writes is whole or not at all).
    upkeep: Tasks,
    leadership: Leadership,
    /// The lease's claims, stopped once nothing polls or sends any more.
    claiming: Tasks,
    /// The HTTP API, stopped last, gracefully.
    http: Tasks,
}

/// The service's parts, wired and not yet running.
pub struct App {
    config: Config,
    store: Store,
    /// This process's leadership by the lease, given to everything that acts as the leader.
    leadership: Leadership,
    outbox: Outbox,
    monitor: Monitor,
    discovery: Option<Discovery>,
    /// `DIGEST_SCHEDULE`'s digests, when set.
    digester: Option<Digester>,
    defaults: Vec<Webhook>,
    policy: RetryPolicy,
    added_from_env: u64,
}

impl App {
    /// Wires the service from `config`; alerts without webhooks of their own go to the default
    /// webhooks it names (`SLACK_WEBHOOK_URL`, `DISCORD_WEBHOOK_URL`, `TEAMS_WEBHOOK_URL`).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let defaults = config.default_webhooks();
        Self::build_alerting(config, defaults).await
    }

    /// [`App::build`], with `defaults` as the default webhooks (the demo adds its terminal).
    pub async fn build_alerting(config: Config, defaults: Vec<Webhook>) -> anyhow::Result<Self> {
        let auth = config.require_auth()?;
        // Install the metrics recorder before anything counts.
        crate::metrics::handle();
        let ravan = RavanClient::new(config.base_url.clone(), auth, config.poll_timeout)?;
        let store = Store::open(config.database_url.expose())
            .await
            .map_err(|source| DatabaseUnavailable {
                url: config.database_url.masked(),
                source,
            })?;
        let added_from_env = store
            .ensure_agents(&config.watch_agent_ids, Utc::now())
            .await
            .context("adding WATCH_AGENT_IDS")?;
        // A restart is the operator's way to say the default webhooks work again.
        for hook in &defaults {
            store.clear_webhook_dead(hook).await?;
        }
        let policy = RetryPolicy::default();
        // Not yet claimed: a lone process leads from its first cycle after [`App::start`]'s
        // first claim; by hand, after `app.leadership().claim()`.
        let database = crate::store::sqlite_file(config.database_url.expose());
        let leadership = Leadership::leased_beside(store.clone(), database.as_deref());
        let outbox = Outbox::new(store.clone(), policy, leadership.clone())
            .context("building the webhook client")?
            .with_defaults(defaults.clone())
            .with_zone(config.timezone.into())
            .with_signing(config.webhook_secret.clone());
        let mut monitor = Monitor::new(
            ravan.clone(),
            store.clone(),
            outbox.clone(),
            leadership.clone(),
            defaults.clone(),
            config.thresholds,
            config.poll_concurrency.get(),
        )
        .check_org_linked(config.check_org_linked)
        .confirm_after(config.confirm_interval)
        .schedule(config.poll_schedule.clone());
        let settings = &config.integrations;
        if settings.check {
            monitor = monitor.org_checks(OrgChecks::new(
                ravan.clone(),
                store.clone(),
                defaults.clone(),
                config.thresholds,
                settings.token_expiry_warning,
                settings.org_id.clone(),
            ));
        }
        let mut discovery = None;
        if config.watch_all_agents {
            let listing = Discovery::new(ravan, store.clone(), leadership.clone());
            monitor = monitor.watch_all(listing.health());
            discovery = Some(listing);
        }
        let digester = config.digest_schedule.clone().map(|schedule| {
            Digester::new(
                store.clone(),
                outbox.clone(),
                leadership.clone(),
                schedule,
                config.timezone.into(),
                defaults.clone(),
            )
        });
        Ok(Self {
            config,
            store,
            leadership,
            outbox,
            monitor,
            discovery,
            digester,
            defaults,
            policy,
            added_from_env,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The lease the monitor, the outbox and discovery act under: cycles and deliveries run
    /// by hand (tests, the benchmark) need it claimed, as [`App::start`] claims it.
    pub fn leadership(&self) -> &Leadership {
        &self.leadership
    }

    /// The digester (`DIGEST_SCHEDULE`), to send a tick's digest by hand (tests).
    pub fn digester(&self) -> Option<&Digester> {
        self.digester.as_ref()
    }

    /// The monitor, to run cycles by hand (tests and the benchmark) instead of [`App::start`].
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// Binds `LISTEN_ADDR` and starts everything.
    pub async fn start(self) -> anyhow::Result<Service> {
        let App {
            config,
            store,
            leadership,
            outbox,
            monitor,
            discovery,
            digester,
            defaults,
            policy,
            added_from_env,
        } = self;
        let admin_token = config.require_admin_token()?.cloned();
        if defaults.is_empty() {
            tracing::warn!(
                "none of SLACK_WEBHOOK_URL, DISCORD_WEBHOOK_URL, TEAMS_WEBHOOK_URL is set: agents without webhooks of their own alert only in the log"
            );
        }
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding LISTEN_ADDR {}", config.listen_addr))?;
        let addr = listener.local_addr()?;
        // The first claim before anything runs: a lone process leads from its first cycle.
        if leadership.claim().await == Role::Standby {
            tracing::info!(
                "another process holds the leader lease: standing by (serving the API) until it goes"
            );
        }
        let claiming = Tasks::new();
        claiming.spawn(leadership.clone().keep_claiming(claiming.token()));
        let upkeep = Tasks::new();
        if let Some(discovery) = discovery {
            upkeep.spawn(discovery.run(config.discovery_interval, upkeep.token()));
        }
        if let Some(digester) = digester {
            if defaults.is_empty() {
                tracing::warn!(
                    "DIGEST_SCHEDULE is set, but no default webhook is: no digest is sent"
                );
            } else {
                upkeep.spawn(digester.run(upkeep.token()));
            }
        }
        let delivery = outbox.spawn();
        let retention = Retention {
            outbox: config.outbox_retention,
            history: config.history_retention,
        };
        let stop = upkeep.token();
        upkeep.spawn(prune(store.clone(), retention, leadership.clone(), stop));
        let scheduler_running = Arc::new(AtomicBool::new(false));
        let router = api::router(ApiState {
            store: store.clone(),
            admin_token,
            allowed_hosts: config.webhook_allowed_hosts.clone(),
            scheduler_running: scheduler_running.clone(),
            default_webhooks: defaults,
            delivery: delivery.health(),
            leadership: leadership.clone(),
            zone: config.timezone.into(),
            signing: config.webhook_secret.is_some(),
        });
        let http = Tasks::new();
        http.spawn(
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(http.token().cancelled_owned())
            .into_future(),
        );
        let scheduler = Scheduler::start(&config.poll_schedule, Arc::new(monitor));
        scheduler_running.store(true, Ordering::SeqCst);
        let watched = store.agents().await?.len();
        tracing::info!(
            %addr,
            agents = watched,
            added_from_env,
            schedule = config.poll_schedule.as_str(),
            watch_all = config.watch_all_agents,
            check_org_linked = config.check_org_linked,
            ravan = %config.base_url,
            "ravan-watch is watching"
        );
        Ok(Service {
            addr,
            store,
            scheduler,
            scheduler_running,
            delivery,
            delivery_limit: delivery_shutdown(&policy),
            upkeep,
            leadership,
            claiming,
            http,
        })
    }
}

impl Service {
    /// Where the HTTP API listens (useful with `LISTEN_ADDR=127.0.0.1:0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops in order: no new cycles and no new sends; the running cycle and the sends in
    /// progress finish, side by side; the HTTP API stops. Each step is bounded, and all of
    /// them fit in Docker's stop timeout (`longest_shutdown`). Returns how many alerts are
    /// still pending (`None` when the outbox could not be counted).
    pub async fn stop(self) -> Option<i64> {
        let started = std::time::Instant::now();
        tracing::info!(within = ?longest_shutdown(self.delivery_limit), "shutting down");
        self.scheduler_running.store(false, Ordering::SeqCst);
        let ((), finished, _) = tokio::join!(
            self.scheduler.stop(CYCLE_SHUTDOWN),
            self.delivery.stop(self.delivery_limit),
            // Each of their writes is one transaction: stopping between two loses nothing.
            self.upkeep.stop(TASK_STOP),
        );
        if !finished {
            tracing::warn!(
                "a delivery (its send, or the record of its answer in a database that did not answer) was still in progress at shutdown and was abandoned: it stays pending and may be sent again after the next start"
            );
        }
        // Nothing polls or sends any more: a standby may take over at once (a claim in
        // progress is dropped first, so none takes the lease back after the release).
        if !self.claiming.stop(TASK_STOP).await {
            tracing::warn!("the lease's claims did not stop in time");
        }
        // The database may be locked or not answer: each call here has a deadline, and what
        // did not end in time is abandoned (and named) rather than holding the exit.
        let mut abandoned = Vec::new();
        let (released, pending, http_stopped) = tokio::join!(
            self.leadership.release(),
            tokio::time::timeout(COUNT_SHUTDOWN, self.store.outbox_pending()),
            self.http.stop(HTTP_SHUTDOWN),
        );
        if !released {
            abandoned.push(
                "releasing the leader lease (a standby takes over when it expires) and recording the last poll",
            );
        }
        let pending = match pending {
            Ok(Ok(n)) => Some(n),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot count the outbox at shutdown");
                None
            }
            Err(_) => {
                abandoned.push("counting the alerts not yet delivered");
                None
            }
        };
        if let Some(n @ 1..) = pending {
            tracing::warn!(
                pending = n,
                "alerts not yet delivered stay in the outbox and are sent after the next start"
            );
        }
        if !http_stopped {
            tracing::debug!("HTTP requests still open at shutdown are dropped with the store");
        }
        if tokio::time::timeout(CLOSE_SHUTDOWN, self.store.close())
            .await
            .is_err()
        {
            abandoned.push("closing the database's connections");
        }
        if !abandoned.is_empty() {
            tracing::warn!(
                "the database did not answer in time at shutdown: abandoned {}; nothing \
                 committed is lost, and alerts not yet delivered stay in the outbox",
                abandoned.join("; ")
            );
        }
        tracing::info!(took = ?started.elapsed(), "stopped");
        pending
    }
}

/// How long finished deliveries and history are kept.
#[derive(Debug, Clone, Copy)]
struct Retention {
    outbox: Duration,
    history: Duration,
}

/// Deletes delivered and failed outbox entries older than `OUTBOX_RETENTION`, and events and
/// health intervals older than `HISTORY_RETENTION`, at start and then every [`PRUNE_EVERY`],
/// so the database does not grow forever. Only the leader prunes (a standby checks again
/// every [`CLAIM_EVERY`]).
async fn prune(
    store: Store,
    retention: Retention,
    leadership: Leadership,
    stop: CancellationToken,
) {
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let Some(fence) = leadership.fence() else {
            next = tokio::time::Instant::now() + CLAIM_EVERY;
            continue;
        };
        next = tokio::time::Instant::now() + PRUNE_EVERY;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = prune_once(&store, retention, fence) => {}
        }
    }
}

/// Deletes what is past its retention, once, as the leader of the term `fence` says.
async fn prune_once(store: &Store, retention: Retention, fence: Fence) {
    match store
        .prune_outbox(fence, Utc::now(), retention.outbox, PRUNE_BATCH)
        .await
    {
        Ok(0) => {}
        Ok(n) => {
            ::metrics::counter!(crate::metrics::OUTBOX_PRUNED).increment(n);
            tracing::info!(
                deleted = n,
                "finished alert deliveries older than OUTBOX_RETENTION deleted"
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot delete old alert deliveries; trying again later")
        }
    }
    match store
        .prune_history(fence, Utc::now(), retention.history, PRUNE_BATCH)
        .await
    {
        Ok(0) => {}
        Ok(n) => {
            ::metrics::counter!(crate::metrics::EVENTS_PRUNED).increment(n);
            tracing::info!(deleted = n, "events older than HISTORY_RETENTION deleted");
        }
        Err(e) => tracing::warn!(error = %e, "cannot delete old history; trying again later"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lease's timings keep their promises: a standby takes over within 15 s of the
    /// leader's death (the promised `max(2 × the poll interval, 15 s)` at a 1 s interval), a
    /// leader stops trusting its lease before it can pass, and between two renewals its trust
    /// always outlasts a webhook request, so sending never pauses while renewals work.
    #[test]
    fn the_lease_timings_keep_their_promises() {
        use crate::leader::{CLAIM_EVERY, LEASE_TTL, TRUST};
        assert!(LEASE_TTL + CLAIM_EVERY <= Duration::from_secs(15));
        assert!(TRUST < LEASE_TTL);
        let request = RetryPolicy::default().timeout;
        assert!(TRUST - request >= CLAIM_EVERY, "{TRUST:?} {request:?}");
    }

    /// Docker's default stop timeout, after which it kills the container.
    const DOCKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

    /// A send in progress gets its whole time limit and the moment to record its answer, and
    /// still the whole shutdown ends before Docker kills the container.
    #[test]
    fn shutdown_never_cuts_a_send_and_fits_in_dockers_stop_timeout() {
        let policy = RetryPolicy::default();
        let delivery = delivery_shutdown(&policy);
        assert!(delivery > policy.timeout);
        let longest = longest_shutdown(delivery);
        assert!(longest < DOCKER_STOP_TIMEOUT, "{longest:?}");
    }
}
