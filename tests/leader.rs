//! Leadership inside one process, where each of its two guards can be checked alone: the
//! lease's term fences every write in the database (a cycle of a leader that was taken over
//! behind its back commits nothing), and a leader that cannot renew stops acting before its
//! lease can pass to another (nothing is sent once its trust has run out). The same guards,
//! together, across real processes: `tests/failover.rs`.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::alerts::{agent_down, webhook};
use common::{AGENT_A, FakeRavan, wait_until};
use ravan_watch::domain::Platform;
use ravan_watch::leader::{Leadership, Role, TRUST};
use ravan_watch::notify::{Outbox, RetryPolicy};
use ravan_watch::store::{Fence, OutboxStatus, Store};
use wiremock::ResponseTemplate;

async fn store_watching_a() -> (Store, tempfile::TempDir) {
    let (dir, url) = common::temp_database();
    let store = Store::open(&url).await.unwrap();
    store
        .ensure_agents(&[AGENT_A.parse().unwrap()], Utc::now())
        .await
        .unwrap();
    (store, dir)
}

/// Agent A's down alert queued for a Slack webhook on `hook`, as a cycle under `fence` would.
async fn queue_down_alert(store: &Store, fence: Fence, hook: &wiremock::MockServer) {
    let slack = webhook(
        Platform::Slack,
        &format!("{}/services/T0/B0/secret", hook.uri()),
    );
    store
        .commit_cycle(
            fence,
            None,
            &[ravan_watch::store::AgentUpdate {
                agent_id: AGENT_A.parse().unwrap(),
                state: &Default::default(),
                alerts: vec![(agent_down(AGENT_A, None), vec![slack])],
                health: None,
            }],
            &Default::default(),
            &[],
            Utc::now(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_cycle_of_a_leader_taken_over_behind_its_back_commits_nothing_and_steps_down() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let (store, _dir) = store_watching_a().await;
    let leadership = Leadership::leased(store.clone());
    assert_eq!(leadership.claim().await, Role::Leader);
    let monitor = common::led_monitor(&ravan, &store, 4, 1, leadership.clone());
    let report = monitor.run_cycle().await.unwrap();
    assert!(!report.standby);
    assert_eq!(report.polled, 1);
    let before = store
        .agent(AGENT_A.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        before.state.last.as_ref().map(|o| o.status.as_str()),
        Some("active")
    );

    // Its lease passes to another while it still trusts it (as after a pause shorter than
    // the trust but a clock that jumped, or a database that lost the renewal).
    let Some(Fence::Term(term)) = leadership.fence() else {
        panic!("leading")
    };
    store
        .release_lease(leadership.holder(), term)
        .await
        .unwrap();
    let other = Leadership::leased(store.clone());
    assert_eq!(other.claim().await, Role::Leader);
    assert!(leadership.fence().is_some(), "it does not know yet");

    ravan.set_status(AGENT_A, "errored", Some("token revoked"));
    let report = monitor.run_cycle().await.unwrap();
    assert!(report.standby, "{report:?}");
    assert!(report.alerts.is_empty(), "{report:?}");
    let after = store
        .agent(AGENT_A.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.state.last.as_ref().map(|o| o.status.as_str()),
        Some("active"),
        "nothing was committed"
    );
    assert_eq!(leadership.role(), Role::Standby, "it stepped down");
    // And it stays down: the next cycle does not even poll.
    let polls = ravan.polls().await;
    assert!(monitor.run_cycle().await.unwrap().standby);
    assert_eq!(ravan.polls().await, polls);
}

/// How many commits other connections made to the SQLite file: `PRAGMA data_version` of a
/// connection of its own moves with each.
async fn commits_seen(conn: &mut sqlx::SqliteConnection) -> i64 {
    sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// A leader's cycle in which nothing changed writes nothing to the database (one small read:
/// the settings version). What it moved — when the agents were last checked, the monitor's
/// clean streak — goes with the lease's next renewal, which writes anyway, and with the
/// release at a clean stop.
#[tokio::test]
async fn a_leaders_steady_cycle_writes_nothing_and_its_renewal_records_the_poll() {
    use sqlx::Connection;
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let (dir, url) = common::temp_database();
    let store = Store::open(&url).await.unwrap();
    store
        .ensure_agents(&[AGENT_A.parse().unwrap()], Utc::now())
        .await
        .unwrap();
    let mut watcher = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let leadership = Leadership::leased(store.clone());
    assert_eq!(leadership.claim().await, Role::Leader);
    let monitor = common::led_monitor(&ravan, &store, 4, 1, leadership.clone());
    let checked = || async {
        let agent = store
            .agent(AGENT_A.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        agent.state.last_checked_at.unwrap()
    };

    let first = monitor.run_cycle().await.unwrap();
    assert_eq!(
        (first.polled, first.saved),
        (1, 1),
        "a first observation is saved"
    );
    let after_first = checked().await;
    let before = commits_seen(&mut watcher).await;
    for _ in 0..3 {
        let steady = monitor.run_cycle().await.unwrap();
        assert_eq!((steady.polled, steady.saved), (1, 0), "{steady:?}");
    }
    assert_eq!(
        commits_seen(&mut watcher).await,
        before,
        "steady cycles committed nothing"
    );
    assert_eq!(checked().await, after_first, "not yet recorded");
    assert_eq!(store.monitor_state().await.unwrap().clean_streak, 1);

    let polls_before = ravan.polls().await;
    assert_eq!(leadership.claim().await, Role::Leader);
    assert_eq!(commits_seen(&mut watcher).await, before + 1, "one renewal");
    let renewed = checked().await;
    // Milliseconds apart at least, likely more; the streak below shows the renewal wrote.
    assert!(renewed >= after_first, "{renewed} after {after_first}");
    assert_eq!(store.monitor_state().await.unwrap().clean_streak, 4);
    assert_eq!(ravan.polls().await, polls_before, "a renewal polls nothing");

    // A clean stop records the last steady cycle too.
    monitor.run_cycle().await.unwrap();
    leadership.release().await;
    assert!(checked().await >= renewed);
    assert_eq!(store.monitor_state().await.unwrap().clean_streak, 5);
    drop(dir);
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_sending_once_its_trust_runs_out() {
    let (store, _dir) = store_watching_a().await;
    let hook = common::webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
    queue_down_alert(&store, Fence::Unchecked, &hook).await;
    let leadership = Leadership::leased(store.clone());
    assert_eq!(leadership.claim().await, Role::Leader);
    let outbox = Outbox::new(store.clone(), RetryPolicy::default(), leadership.clone()).unwrap();

    // No renewal for a while: it still leads, but starts no send that could outlast its
    // trust (a send must end before any standby can take over).
    tokio::time::pause();
    let request = RetryPolicy::default().timeout;
    tokio::time::advance(TRUST - request).await;
    assert_eq!(leadership.role(), Role::Leader);
    assert!(leadership.fence_for(request).is_none());
    tokio::time::resume();
    let report = outbox.pass(Utc::now()).await.unwrap();
    assert_eq!(report.messages, 0, "{report:?}");
    // No renewal for as long as the trust lasts (the database is gone, or the process was
    // paused): it stands by, before the lease (longer than the trust) can pass to another.
    tokio::time::pause();
    tokio::time::advance(request + Duration::from_millis(1)).await;
    assert_eq!(leadership.role(), Role::Standby);
    assert!(leadership.fence().is_none());
    tokio::time::resume();
    let report = outbox.pass(Utc::now()).await.unwrap();
    assert_eq!(report.messages, 0, "{report:?}");
    assert!(common::bodies(&hook).await.is_empty());
    assert_eq!(
        store.outbox().await.unwrap()[0].status,
        OutboxStatus::Pending
    );

    // Renewed: it leads and sends again.
    assert_eq!(leadership.claim().await, Role::Leader);
    assert_eq!(outbox.pass(Utc::now()).await.unwrap().delivered, 1);
    assert_eq!(common::bodies(&hook).await.len(), 1);
}

#[tokio::test]
async fn a_lease_is_renewed_in_the_same_term_and_a_takeover_moves_it() {
    let (store, _dir) = store_watching_a().await;
    let a = Leadership::leased(store.clone());
    let b = Leadership::leased(store.clone());
    assert_ne!(a.holder(), b.holder());
    assert_eq!(a.claim().await, Role::Leader);
    let first = a.fence();
    assert_eq!(b.claim().await, Role::Standby);
    assert_eq!(a.claim().await, Role::Leader);
    assert_eq!(a.fence(), first, "a renewal keeps the term");
    a.release().await;
    assert_eq!(a.role(), Role::Standby);
    assert_eq!(b.claim().await, Role::Leader);
    match (first, b.fence()) {
        (Some(Fence::Term(old)), Some(Fence::Term(new))) => assert!(new > old),
        other => panic!("{other:?}"),
    }
    let lease = store.lease().await.unwrap().unwrap();
    assert_eq!(lease.holder, b.holder());
}

/// The delivery worker reads the outbox only when there is a reason to: a standby's worker
/// sleeps, and the moment its process takes the lease it delivers what the last leader left
/// (not at some later check).
#[tokio::test]
async fn a_standbys_worker_delivers_what_was_left_as_soon_as_it_leads() {
    let (store, _dir) = store_watching_a().await;
    let hook = common::webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
    let old = Leadership::leased(store.clone());
    assert_eq!(old.claim().await, Role::Leader);
    let standby = Leadership::leased(store.clone());
    assert_eq!(standby.claim().await, Role::Standby);
    let worker = Outbox::new(store.clone(), RetryPolicy::default(), standby.clone())
        .unwrap()
        .spawn();
    // The old leader's cycle queued an alert and it stopped before sending it.
    let Some(fence) = old.fence() else {
        panic!("leading")
    };
    queue_down_alert(&store, fence, &hook).await;
    old.release().await;
    assert!(
        common::bodies(&hook).await.is_empty(),
        "a standby sends nothing"
    );

    assert_eq!(standby.claim().await, Role::Leader);
    // Delivered and recorded (the record follows the webhook's answer: wait for both).
    wait_until(
        Duration::from_secs(5),
        "the new leader's worker to deliver what was left",
        || async { store.outbox().await.unwrap()[0].status == OutboxStatus::Delivered },
    )
    .await;
    assert_eq!(common::bodies(&hook).await.len(), 1);
    worker.stop(Duration::from_secs(5)).await;
}

/// A lease left by a process of this host (same boot and pid namespace) is taken at the first
/// claim once that process provably no longer runs, and never while it runs: a holder that is
/// alive (here: this very process, under another name) keeps it until it expires.
#[tokio::test]
async fn a_lease_left_by_a_process_gone_from_this_host_is_taken_at_once_and_never_a_live_ones() {
    use ravan_watch::store::Holder;
    use ravan_watch::util::process::{ProcessIdentity, start_time};
    let (store, _dir) = store_watching_a().await;
    let own = ProcessIdentity::own().expect("Linux's /proc");
    let ttl = Duration::from_secs(60);

    // Alive: this process, under another name.
    let alive = Holder {
        name: "alive".into(),
        host: own.host.clone(),
        pid: i64::from(own.pid),
        started: own.started as i64,
    };
    let alive_term = store.claim_lease(&alive, None, ttl).await.unwrap().unwrap();
    let leadership = Leadership::leased(store.clone());
    assert_eq!(leadership.claim().await, Role::Standby, "the holder runs");

    // Gone: a child that was killed and reaped, on this host.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let started = start_time(child.id()).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let gone = Holder {
        name: "gone".into(),
        host: own.host.clone(),
        pid: i64::from(child.id()),
        started: started as i64,
    };
    store.release_lease("alive", alive_term).await.unwrap();
    let term = store.claim_lease(&gone, None, ttl).await.unwrap().unwrap();
    assert_eq!(leadership.claim().await, Role::Leader, "the holder is gone");
    let lease = store.lease().await.unwrap().unwrap();
    assert_eq!(lease.holder, leadership.holder());
    assert_eq!(lease.term, term + 1, "a takeover moves the term");

    // The same pid on another host proves nothing.
    let elsewhere = Holder {
        host: format!("{}-elsewhere", own.host),
        ..gone
    };
    store
        .release_lease(leadership.holder(), term + 1)
        .await
        .unwrap();
    store
        .claim_lease(&elsewhere, None, ttl)
        .await
        .unwrap()
        .unwrap();
    let other = Leadership::leased(store.clone());
    assert_eq!(other.claim().await, Role::Standby, "not provably gone");
}

/// A lease whose holder's lock file beside the SQLite database is free is taken at the first
/// claim, whatever pid namespace the holder recorded (a container restarted after a crash has
/// a new one, and its pid 1 again, so only the file can tell); while the lock is held (a live
/// process in another container, maybe on the host's network with the same hostname and pid)
/// the lease waits for its expiry.
#[tokio::test]
async fn a_lease_whose_holders_lock_file_is_free_is_taken_at_once_whatever_its_namespace() {
    use ravan_watch::store::Holder;
    use std::fs::{File, TryLockError};
    let (store, dir) = store_watching_a().await;
    let database = dir.path().join("state.db");
    let locks = ravan_watch::util::alive::dir_beside(&database);
    let other = Holder {
        name: "web-1:1:1a2b".into(),
        host: "another-boot/pid:[4026532999]".into(),
        pid: 1,
        started: 5,
    };
    std::fs::create_dir_all(&locks).unwrap();
    let file = locks.join("web-1_1_1a2b.lock");
    File::create(&file).unwrap();
    // The holder: another process, holding its lock (flock(1) takes flock(2)'s lock; `-o`
    // keeps it from the command it runs, so killing flock frees it).
    let mut holder = std::process::Command::new("flock")
        .arg("-o")
        .arg(&file)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(5), "the holder's lock", || async {
        matches!(
            File::open(&file).unwrap().try_lock(),
            Err(TryLockError::WouldBlock)
        )
    })
    .await;
    let term = store
        .claim_lease(&other, None, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let leadership = Leadership::leased_beside(store.clone(), Some(&database));
    assert_eq!(leadership.claim().await, Role::Standby, "its lock is held");

    // Killed: the kernel drops its lock, the file stays.
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(leadership.claim().await, Role::Leader, "its lock is free");
    let lease = store.lease().await.unwrap().unwrap();
    assert_eq!(
        (lease.holder.as_str(), lease.term),
        (leadership.holder(), term + 1)
    );
    assert!(!file.exists(), "the dead holder's file is removed");
    assert!(
        locks
            .join(format!("{}.lock", leadership.holder().replace(':', "_")))
            .exists(),
        "the new holder holds its own"
    );
}
