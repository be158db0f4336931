//! Leadership: which of the processes sharing one database polls, decides and delivers.
//!
//! Every `serve` process claims the lease ([`crate::store::LeaseStore`]) at start and then every
//! [`CLAIM_EVERY`]: the holder renews it, the others take it once it has expired. The holder
//! leads; the others stand by and serve only the API. A leader trusts its lease for [`TRUST`]
//! after the start of the claim that renewed it, measured on the monotonic clock, which is less
//! than the lease's [`LEASE_TTL`]: a leader that cannot renew (its database is gone, or it was
//! paused) stops before any standby can take over; a webhook request starts only while the
//! trust outlasts its time limit ([`Leadership::fence_for`]), so no send overlaps a takeover.
//! Its writes carry its term ([`Fence`]), so one that wakes up after a takeover records nothing
//! either, and steps down.
//!
//! Takeover after the leader dies: at most [`LEASE_TTL`] + [`CLAIM_EVERY`] (12 s), within the
//! promised `max(2 × the poll interval, 15 s)`. A clean shutdown releases the lease at once.
//! A leader that provably died — its lock file beside the SQLite database is free
//! ([`crate::util::alive`]: any pid namespace, so a restarted container too), or its pid in this
//! pid namespace is gone ([`crate::util::process`]) — has its lease taken at the first claim
//! that finds it so (at once at start, else within [`CLAIM_EVERY`]). Across hosts nothing can
//! be proven, and the expiry stays the rule.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::store::{Fence, Holder, LeaseInfo, Progress, Store, StoreError, Term};
use crate::util::alive::{self, Alive};
use crate::util::process::{self, ProcessIdentity};

/// How long a claimed lease lasts without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often the leader renews, and a standby tries to take over.
pub const CLAIM_EVERY: Duration = Duration::from_secs(2);
/// How long a leader trusts its lease after the start of the claim that renewed it: two
/// seconds short of the TTL, for a slow answer and clocks that drift.
pub const TRUST: Duration = Duration::from_secs(8);
/// A claim that takes longer than this is given up (and the next one tried).
const CLAIM_TIMEOUT: Duration = Duration::from_secs(4);
/// The release at shutdown (with the last progress) gets this long: a database that is locked
/// or does not answer must not hold the exit, and the lease passes at its expiry anyway.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(1);

/// What this process does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    Leader,
    Standby,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// This process's leadership, cheap to clone: asked before every cycle and every send.
#[derive(Clone)]
pub struct Leadership(Arc<Kind>);

enum Kind {
    /// Always leading, writes unchecked: tests that drive one process by hand.
    Solo,
    Leased(Box<Leased>),
}

struct Leased {
    store: Store,
    holder: Holder,
    /// On a SQLite file: the folder of the processes' lock files, and this process's lock,
    /// held while it runs ([`alive`]).
    alive: Option<(PathBuf, Alive)>,
    held: Mutex<Held>,
    /// The term this process leads in (`None`: it stands by), for tasks that wait to lead.
    term: watch::Sender<Option<Term>>,
    /// A steady cycle's progress the next renewal writes, with the term of that cycle.
    progress: Mutex<Option<(Term, Progress)>>,
    /// Whether the last claim failed (so a run of failures is logged once).
    failing: AtomicBool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Held {
    term: Option<Term>,
    /// Until when the lease is trusted; `None` when not held.
    until: Option<Instant>,
}

impl Leadership {
    /// Always the leader, with unchecked writes: for tests that drive a monitor or an outbox
    /// by hand. The service itself always leads by the lease ([`Leadership::leased`]).
    pub fn for_tests() -> Self {
        Self(Arc::new(Kind::Solo))
    }

    /// Leadership by the lease in `store`, not yet claimed ([`Leadership::claim`]).
    pub fn leased(store: Store) -> Self {
        Self::leased_beside(store, None)
    }

    /// [`Leadership::leased`], for a store in the SQLite file `database` when given: this
    /// process then holds its lock file beside it while it runs, so that whoever finds its
    /// lease after it died can tell at once ([`alive`]).
    pub fn leased_beside(store: Store, database: Option<&Path>) -> Self {
        let holder = this_holder();
        let alive = database.and_then(|database| {
            let dir = alive::dir_beside(database);
            match Alive::hold(&dir, &holder.name) {
                Ok(lock) => Some((dir, lock)),
                Err(e) => {
                    tracing::warn!(folder = %dir.display(), error = %e, "cannot hold a lock file beside the database: after a crash, the next process waits for the lease to expire");
                    None
                }
            }
        });
        Self(Arc::new(Kind::Leased(Box::new(Leased {
            store,
            alive,
            holder,
            held: Mutex::new(Held::default()),
            term: watch::Sender::new(None),
            progress: Mutex::new(None),
            failing: AtomicBool::new(false),
        }))))
    }

    /// The fence for a leader's write, or `None` when this process must not act as leader now
    /// (standing by, or its lease is no longer trusted).
    pub fn fence(&self) -> Option<Fence> {
        self.fence_for(Duration::ZERO)
    }

    /// [`Leadership::fence`] for an act that takes up to `needed` and must end while the
    /// lease is still this process's (a webhook request): `None` unless the trust lasts that
    /// much longer. A send started under it has ended before any standby can take over, so
    /// the new leader never sends it a second time.
    pub fn fence_for(&self, needed: Duration) -> Option<Fence> {
        match &*self.0 {
            Kind::Solo => Some(Fence::Unchecked),
            Kind::Leased(l) => {
                let held = *l.held.lock().expect("not poisoned");
                match (held.term, held.until) {
                    (Some(term), Some(until)) if Instant::now() + needed < until => {
                        Some(Fence::Term(term))
                    }
                    _ => None,
                }
            }
        }
    }

    pub fn role(&self) -> Role {
        if self.fence().is_some() {
            Role::Leader
        } else {
            Role::Standby
        }
    }

    /// Who this process is in the lease (`host:pid:…`); empty for [`Leadership::for_tests`].
    pub fn holder(&self) -> &str {
        match &*self.0 {
            Kind::Solo => "",
            Kind::Leased(l) => &l.holder.name,
        }
    }

    /// Changes when this process starts or stops leading (its term, `None` while it stands
    /// by): a task that acts only as leader waits on it rather than checking every so often.
    /// Never changes for [`Leadership::for_tests`].
    pub fn terms(&self) -> watch::Receiver<Option<Term>> {
        match &*self.0 {
            Kind::Solo => watch::channel(None).1,
            Kind::Leased(l) => l.term.subscribe(),
        }
    }

    /// Hands a steady cycle's progress (see [`Progress`]) to the lease's next renewal, which
    /// writes it in its own transaction, within [`CLAIM_EVERY`]: so a cycle that changed
    /// nothing else writes nothing. `false` when no renewal here would write it
    /// ([`Leadership::for_tests`], or `fence` is not this process's term): the caller writes it.
    pub fn carry_progress(&self, fence: Fence, progress: Progress) -> bool {
        match (&*self.0, fence) {
            (Kind::Leased(l), Fence::Term(term)) => {
                *l.progress.lock().expect("not poisoned") = Some((term, progress));
                true
            }
            _ => false,
        }
    }

    /// A cycle wrote its progress itself (it had more to write): the progress carried for an
    /// earlier cycle is dropped, since the store would refuse it as older anyway.
    pub fn progress_saved(&self) {
        if let Kind::Leased(l) = &*self.0 {
            l.progress.lock().expect("not poisoned").take();
        }
    }

    /// A leader's write was refused ([`crate::store::StoreError::Fenced`]): another process
    /// leads now, so this one steps down at once.
    pub fn lost(&self, fence: Fence) {
        let (Kind::Leased(l), Fence::Term(term)) = (&*self.0, fence) else {
            return;
        };
        let mut held = l.held.lock().expect("not poisoned");
        if held.term == Some(term) {
            *held = Held::default();
            drop(held);
            l.announce(None);
            ::metrics::gauge!(metrics::LEADER).set(0.0);
            tracing::warn!(term, "the lease passed to another process: standing by");
        }
    }

    /// Claims (or renews) the lease once; returns the role afterwards. A claim that fails
    /// leaves a held lease trusted until its time runs out, so one slow answer is no step-down.
    pub async fn claim(&self) -> Role {
        let Kind::Leased(l) = &*self.0 else {
            return Role::Leader;
        };
        let before = *l.held.lock().expect("not poisoned");
        let was_leading = self.role() == Role::Leader;
        let started = Instant::now();
        // A renewal carries the progress of the term's steady cycles (never a takeover).
        let progress = before.term.and_then(|term| l.take_progress(term));
        let claim = async {
            match (before.term, &progress) {
                (Some(term), Some(progress)) => {
                    l.store
                        .renew_lease_with(&l.holder, term, LEASE_TTL, progress)
                        .await
                }
                _ => match l.store.claim_lease(&l.holder, before.term, LEASE_TTL).await {
                    Ok(None) => l.take_over_if_gone().await,
                    other => other,
                },
            }
        };
        let claimed = tokio::time::timeout(CLAIM_TIMEOUT, claim).await;
        if !matches!(claimed, Ok(Ok(_))) {
            // Not written (or not known to be): the next renewal tries, unless a later cycle
            // has handed over its own meanwhile.
            if let (Some(term), Some(progress)) = (before.term, progress) {
                l.progress
                    .lock()
                    .expect("not poisoned")
                    .get_or_insert((term, progress));
            }
        }
        let outcome = match claimed {
            Ok(Ok(term)) => Ok(term),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {CLAIM_TIMEOUT:?}")),
        };
        {
            let mut held = l.held.lock().expect("not poisoned");
            match &outcome {
                Ok(Some(term)) => {
                    *held = Held {
                        term: Some(*term),
                        until: Some(started + TRUST),
                    }
                }
                Ok(None) => *held = Held::default(),
                // Keep what is held: it stays trusted until `until`.
                Err(_) => {}
            }
        }
        let role = self.role();
        // As leader only while trusted: a lease that lapsed and was then renewed in the same
        // term wakes the waiting tasks too.
        l.announce(self.fence().and_then(|f| match f {
            Fence::Term(term) => Some(term),
            Fence::Unchecked => None,
        }));
        ::metrics::gauge!(metrics::LEADER).set(if role == Role::Leader { 1.0 } else { 0.0 });
        match &outcome {
            Ok(Some(term)) if !was_leading => {
                tracing::info!(term, holder = %l.holder.name, "leading: this process polls and delivers")
            }
            Ok(None) if was_leading => {
                tracing::warn!("the lease passed to another process: standing by")
            }
            // Logged once when claims start failing, and once when they work again.
            Err(e) if !l.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(error = %e, role = role.as_str(), "cannot claim the leader lease; trying again every {CLAIM_EVERY:?}")
            }
            Err(_) => {}
            Ok(_) if l.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("the leader lease can be claimed again")
            }
            Ok(_) => {}
        }
        if was_leading && role == Role::Standby && outcome.is_err() {
            tracing::warn!("the leader lease could not be renewed in time: standing by");
        }
        role
    }

    /// Claims at once, then every [`CLAIM_EVERY`], until `stop`.
    pub async fn keep_claiming(self, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(CLAIM_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut announced_standby = false;
        loop {
            // A claim in progress is dropped at the stop: none takes the lease back after a
            // release.
            let role = tokio::select! {
                _ = stop.cancelled() => return,
                role = async {
                    ticks.tick().await;
                    self.claim().await
                } => role,
            };
            if role == Role::Standby && !announced_standby {
                let holder = match &*self.0 {
                    Kind::Leased(l) => l.store.lease().await.ok().flatten(),
                    Kind::Solo => None,
                };
                tracing::info!(
                    leader = holder.as_ref().map_or("", |h| h.holder.as_str()),
                    "standing by: another process holds the leader lease"
                );
            }
            announced_standby = role == Role::Standby;
        }
    }

    /// Gives the lease up (a clean shutdown), so a standby takes over at its next claim.
    /// Gives up after [`RELEASE_TIMEOUT`] (a database that is locked or does not answer) and
    /// returns `false`: the lease then passes when it expires, and the last steady cycles'
    /// progress is not recorded (the next leader's first cycle records its own).
    pub async fn release(&self) -> bool {
        let Kind::Leased(l) = &*self.0 else {
            return true;
        };
        let held = std::mem::take(&mut *l.held.lock().expect("not poisoned"));
        l.announce(None);
        ::metrics::gauge!(metrics::LEADER).set(0.0);
        let Some(term) = held.term else { return true };
        let release = async {
            // The last steady cycles' progress first, so the store shows the last poll.
            if let Some(progress) = l.take_progress(term)
                && let Err(e) = l.store.save_progress(Fence::Term(term), &progress).await
            {
                tracing::warn!(error = %e, "cannot save the last poll cycle's progress");
            }
            match l.store.release_lease(&l.holder.name, term).await {
                Ok(()) => tracing::info!(term, "leader lease released"),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot release the leader lease: a standby takes over when it expires")
                }
            }
        };
        tokio::time::timeout(RELEASE_TIMEOUT, release).await.is_ok()
    }
}

impl Leased {
    /// The progress carried for `term`'s cycles, taken (one of another term is dropped).
    fn take_progress(&self, term: Term) -> Option<Progress> {
        let (carried, progress) = self.progress.lock().expect("not poisoned").take()?;
        (carried == term).then_some(progress)
    }

    /// Takes the lease (as a takeover, fenced by its term) when its holder ran on this host
    /// and provably no longer runs; `None` when it runs, or may.
    async fn take_over_if_gone(&self) -> Result<Option<Term>, StoreError> {
        let Some(lease) = self.store.lease().await? else {
            return Ok(None);
        };
        if lease.holder.is_empty() || lease.holder == self.holder.name || !self.gone(&lease) {
            return Ok(None);
        }
        let taken = self
            .store
            .take_over_lease(&self.holder, lease.term, LEASE_TTL)
            .await?;
        if taken.is_some() {
            tracing::info!(
                previous = %lease.holder,
                "the lease's holder no longer runs: taken over without waiting for it to expire"
            );
        }
        Ok(taken)
    }

    /// Whether the lease's holder provably ended: its lock file beside the SQLite database is
    /// free, or, in this process's pid namespace, its pid is gone or another process's.
    fn gone(&self, lease: &LeaseInfo) -> bool {
        if let Some((dir, _)) = &self.alive
            && alive::gone(dir, &lease.holder)
        {
            return true;
        }
        if self.holder.host.is_empty() || lease.host != self.holder.host {
            return false;
        }
        match (u32::try_from(lease.pid), u64::try_from(lease.started)) {
            (Ok(pid), Ok(started)) => process::gone(pid, started),
            _ => false,
        }
    }

    /// Tells the waiting tasks the term this process now leads in, when it changed.
    fn announce(&self, term: Option<Term>) {
        self.term
            .send_if_modified(|t| std::mem::replace(t, term) != term);
    }
}

/// This process in the lease: its name, and where it runs (unknown without Linux's `/proc`:
/// then only the lease's expiry frees a lease it leaves behind).
fn this_holder() -> Holder {
    let own = ProcessIdentity::own();
    Holder {
        name: holder_name(),
        host: own.as_ref().map(|p| p.host.clone()).unwrap_or_default(),
        pid: own.as_ref().map_or(0, |p| i64::from(p.pid)),
        started: own
            .as_ref()
            .and_then(|p| i64::try_from(p.started).ok())
            .unwrap_or(0),
    }
}

/// A name for this process in the lease, unique across restarts: the host (`HOSTNAME`, which
/// containers set to theirs), the pid and the start time.
fn holder_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let host = if host.is_empty() {
        "host"
    } else {
        host.as_str()
    };
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{host}:{}:{started:x}", std::process::id())
}
