//! Leadership inside one process, where each of its two guards can be checked alone: the
//! lease's term fences every write in the database (a cycle of a leader that was taken over
//! behind its back commits nothing), and a leader that cannot renew stops acting before its
//! lease can pass to another (nothing is sent once its trust has run out). The same guards,
//! together, across real processes: `tests/failover.rs`.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::alerts::{agent_down, webhook};
use common::{AGENT_A, FakeRavan};
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

#[tokio::test]
async fn a_cycle_of_a_leader_taken_over_behind_its_back_commits_nothing_and_steps_down() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let (store, _dir) = store_watching_a().await;
    let leadership = Leadership::leased(store.clone());
    assert_eq!(leadership.claim().await, Role::Leader);
    let monitor = common::test_monitor(&ravan, &store, 4, 1).leadership(leadership.clone());
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

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_sending_once_its_trust_runs_out() {
    let (store, _dir) = store_watching_a().await;
    let hook = common::webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
    let slack = webhook(
        Platform::Slack,
        &format!("{}/services/T0/B0/secret", hook.uri()),
    );
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[ravan_watch::store::AgentUpdate {
                agent_id: AGENT_A.parse().unwrap(),
                state: Default::default(),
                alerts: vec![(agent_down(AGENT_A, None), vec![slack])],
                health: None,
            }],
            &Default::default(),
            &[],
            Utc::now(),
        )
        .await
        .unwrap();
    let leadership = Leadership::leased(store.clone());
    assert_eq!(leadership.claim().await, Role::Leader);
    let outbox = Outbox::new(store.clone(), RetryPolicy::default())
        .unwrap()
        .leadership(leadership.clone());

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
