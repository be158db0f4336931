//! The SQLite store on temporary databases: migration from empty, agents, the cycle commit and
//! the outbox surviving a reopen.

mod common;

use chrono::Utc;
use ravan_watch::domain::alert::Alert;
use ravan_watch::domain::{AgentId, Observation};
use ravan_watch::domain::{Platform, Webhook};
use ravan_watch::store::Fence;
use ravan_watch::store::{
    AgentPatch, AgentRecord, AgentUpdate, ListingApplied, NewAgent, OutboxStatus, Polled, Source,
    Store, StoreError,
};
use ravan_watch::tracker::{AgentState, MonitorState, OpenOutage};
use sqlx::Row;

use common::alerts::{agent_down, noon as now, webhook};
use common::ids::{agent_id, id};
use common::{AGENT_A as A, AGENT_B as B};

async fn temp_store() -> (Store, tempfile::TempDir, String) {
    let (dir, url) = common::temp_database();
    (Store::open(&url).await.unwrap(), dir, url)
}

/// A Slack webhook whose secret part is `name`.
fn hook(name: &str) -> Webhook {
    webhook(
        Platform::Slack,
        &format!("https://hooks.slack.com/services/T/B/{name}"),
    )
}

/// The alert these tests store: `agent`, named Sales, went down.
fn down(agent: &str) -> Alert {
    agent_down(agent, Some("Sales"))
}

/// An agent in an alerted outage, reminder clock included: what a restart must not forget.
fn errored_state() -> AgentState {
    AgentState {
        last: Some(Observation {
            status: "errored".into(),
            connected: false,
            accounts: vec![],
            connection: None,
        }),
        health_streak: 2,
        outage: Some(OpenOutage {
            alerted_status: "errored".into(),
            since: now(),
            last_notified_at: now() + chrono::Duration::minutes(5),
        }),
        ..AgentState::default()
    }
}

#[tokio::test]
async fn migrates_an_empty_database_and_reopens_it() {
    let (store, _dir, url) = temp_store().await;
    assert!(store.agents().await.unwrap().is_empty());
    assert_eq!(store.outbox_pending().await.unwrap(), 0);
    assert_eq!(
        store.monitor_state().await.unwrap(),
        MonitorState::default()
    );
    store.ping().await.unwrap();
    drop(store);
    let again = Store::open(&url).await.unwrap();
    again.ping().await.unwrap();
}

#[tokio::test]
async fn database_file_is_in_wal_mode() {
    let (store, dir, _) = temp_store().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    assert!(dir.path().join("state.db-wal").exists(), "WAL file present");
}

#[tokio::test]
async fn insert_conflict_get_list_delete() {
    let (store, _dir, _) = temp_store().await;
    let new = NewAgent {
        name: Some("Sales".into()),
        slack_webhook_url: Some("https://hooks.slack.com/services/T/B/x".parse().unwrap()),
        ..NewAgent::default()
    };
    let rec = store.insert_agent(id(A), &new, now()).await.unwrap();
    assert_eq!(rec.name.as_deref(), Some("Sales"));
    assert_eq!(rec.created_at, now());
    assert_eq!(rec.state, AgentState::default());
    assert_eq!(rec.own_webhooks().len(), 1);
    assert!(matches!(
        store.insert_agent(id(A), &new, now()).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .insert_agent(
            id(B),
            &NewAgent::default(),
            now() + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    let ids: Vec<_> = store
        .agents()
        .await
        .unwrap()
        .iter()
        .map(|a| a.agent_id)
        .collect();
    assert_eq!(ids, vec![id(A), id(B)], "oldest first");
    assert!(store.delete_agent(id(A), Utc::now()).await.unwrap());
    assert!(!store.delete_agent(id(A), Utc::now()).await.unwrap());
    assert!(store.agent(id(A)).await.unwrap().is_none());
}

#[tokio::test]
async fn ensure_agents_is_idempotent_and_keeps_existing_settings() {
    let (store, _dir, _) = temp_store().await;
    store
        .insert_agent(
            id(A),
            &NewAgent {
                name: Some("Kept".into()),
                ..NewAgent::default()
            },
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.ensure_agents(&[id(A), id(B)], now()).await.unwrap(),
        1
    );
    assert_eq!(
        store.ensure_agents(&[id(A), id(B)], now()).await.unwrap(),
        0
    );
    assert_eq!(store.agents().await.unwrap().len(), 2);
    assert_eq!(
        store.agent(id(A)).await.unwrap().unwrap().name.as_deref(),
        Some("Kept")
    );
}

#[tokio::test]
async fn patch_changes_only_what_it_names_and_null_clears() {
    let (store, _dir, _) = temp_store().await;
    let new = NewAgent {
        name: Some("Sales".into()),
        discord_webhook_url: Some("https://discord.com/api/webhooks/1/x".parse().unwrap()),
        ..NewAgent::default()
    };
    store.insert_agent(id(A), &new, now()).await.unwrap();
    let until = now() + chrono::Duration::hours(1);
    let rec = store
        .update_agent(
            id(A),
            &AgentPatch {
                muted: Some(true),
                muted_until: Some(Some(until)),
                ..AgentPatch::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(rec.muted);
    assert_eq!(rec.muted_until, Some(until));
    assert_eq!(rec.name.as_deref(), Some("Sales"), "untouched");
    assert!(rec.discord_webhook_url.is_some(), "untouched");
    let rec = store
        .update_agent(
            id(A),
            &AgentPatch {
                name: Some(None),
                discord_webhook_url: Some(None),
                ..AgentPatch::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.name, rec.discord_webhook_url), (None, None));
    assert!(rec.muted, "untouched");
    assert!(
        store
            .update_agent(id(B), &AgentPatch::default())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_cycle_commits_states_and_alerts_together() {
    let (store, _dir, url) = temp_store().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    let update = AgentUpdate {
        agent_id: id(A),
        state: errored_state(),
        alerts: vec![(down(A), vec![hook("one"), hook("two")])],
    };
    let monitor = MonitorState {
        trouble_streak: 1,
        ..MonitorState::default()
    };
    assert_eq!(
        store
            .commit_cycle(Fence::Unchecked, None, &[update], &monitor, &[], now())
            .await
            .unwrap(),
        2
    );

    drop(store);
    let store = Store::open(&url).await.unwrap();
    assert_eq!(
        store.agent(id(A)).await.unwrap().unwrap().state,
        errored_state()
    );
    assert_eq!(store.monitor_state().await.unwrap(), monitor);
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox.len(), 2);
    assert!(
        outbox
            .iter()
            .all(|e| e.status == OutboxStatus::Pending && e.alert == down(A) && e.attempts == 0)
    );
    assert_eq!(
        store.outbox_heads().await.unwrap().len(),
        2,
        "one head per destination"
    );
}

#[tokio::test]
async fn an_agent_removed_during_the_cycle_keeps_no_state_and_gets_no_alert() {
    let (store, _dir, _) = temp_store().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    store.delete_agent(id(A), Utc::now()).await.unwrap();
    let update = AgentUpdate {
        agent_id: id(A),
        state: errored_state(),
        alerts: vec![(down(A), vec![hook("x")])],
    };
    assert_eq!(
        store
            .commit_cycle(
                Fence::Unchecked,
                None,
                &[update],
                &MonitorState::default(),
                &[],
                now()
            )
            .await
            .unwrap(),
        0
    );
    assert!(store.agent(id(A)).await.unwrap().is_none());
    assert!(store.outbox().await.unwrap().is_empty());
}

/// Poll cycles re-read the agents' settings only when the settings version moved: every
/// change to an agent's settings must move it, and a cycle's state writes must not.
#[tokio::test]
async fn every_settings_change_moves_the_settings_version_and_state_writes_do_not() {
    let (store, _dir, _) = temp_store().await;
    let mut seen = vec![store.settings_version().await.unwrap()];
    let step = async |what: &str, seen: &mut Vec<i64>| {
        let v = store.settings_version().await.unwrap();
        assert!(v > *seen.last().unwrap(), "{what} did not move the version");
        seen.push(v);
    };
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    step("adding an agent at start-up", &mut seen).await;
    store
        .insert_agent(id(B), &NewAgent::default(), now())
        .await
        .unwrap();
    step("adding an agent over the API", &mut seen).await;
    for patch in [
        AgentPatch {
            name: Some(Some("Sales".into())),
            ..Default::default()
        },
        AgentPatch {
            slack_webhook_url: Some(Some(
                "https://hooks.slack.com/services/T/B/x".parse().unwrap(),
            )),
            ..Default::default()
        },
        AgentPatch {
            discord_webhook_url: Some(Some(
                "https://discord.com/api/webhooks/1/x".parse().unwrap(),
            )),
            ..Default::default()
        },
        AgentPatch {
            muted: Some(true),
            ..Default::default()
        },
        AgentPatch {
            muted_until: Some(Some(now())),
            ..Default::default()
        },
    ] {
        store.update_agent(id(A), &patch).await.unwrap().unwrap();
        step(&format!("{patch:?}"), &mut seen).await;
    }
    assert_eq!(store.lift_expired_mutes(now()).await.unwrap(), 1);
    step("a mute ending", &mut seen).await;
    store.delete_agent(id(B), Utc::now()).await.unwrap();
    step("removing an agent", &mut seen).await;

    let before = store.settings_version().await.unwrap();
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    let update = AgentUpdate {
        agent_id: id(A),
        state: errored_state(),
        alerts: vec![],
    };
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[update],
            &MonitorState::default(),
            &[],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.agent(id(A)).await.unwrap().unwrap().state,
        errored_state()
    );
    assert_eq!(
        store.settings_version().await.unwrap(),
        before,
        "no settings changed"
    );
    let watched = store.watched_settings().await.unwrap();
    assert_eq!(watched.version, before);
    assert_eq!(watched.agents.len(), 1);
    assert_eq!(
        watched.agents[0].state,
        AgentState::default(),
        "settings only"
    );
    assert_eq!(
        store.watched().await.unwrap().agents[0].state,
        errored_state()
    );
}

/// A cycle writes only the states that changed; the agents it polled and did not write were
/// still checked, at the start of the cycle, and the agent JSON says so. An agent added after
/// the cycle read its agents was not polled by it, and one removed and added again meanwhile is
/// given neither the removed one's state nor its alerts.
#[tokio::test]
async fn a_cycle_marks_every_agent_it_polled_as_checked_and_no_other() {
    let (store, _dir, url) = temp_store().await;
    store.ensure_agents(&[id(A), id(B)], now()).await.unwrap();
    let snapshot = store.watched().await.unwrap();
    let c = "00000000-0000-4000-8000-00000000000c";
    store.ensure_agents(&[id(c)], now()).await.unwrap();
    store.delete_agent(id(B), Utc::now()).await.unwrap();
    store
        .insert_agent(id(B), &NewAgent::default(), now())
        .await
        .unwrap();

    let started = now() + chrono::Duration::minutes(1);
    let polled_b = AgentState {
        last_checked_at: Some(started + chrono::Duration::seconds(2)),
        ..errored_state()
    };
    let update = AgentUpdate {
        agent_id: id(B),
        state: polled_b,
        alerts: vec![(down(B), vec![hook("x")])],
    };
    assert_eq!(
        commit_polled(&store, snapshot.version, started, update).await,
        0
    );
    assert!(store.outbox().await.unwrap().is_empty(), "not the new B's");

    drop(store);
    let store = Store::open(&url).await.unwrap();
    let a = store.agent(id(A)).await.unwrap().unwrap();
    assert_eq!(
        a.state.last_checked_at,
        Some(started),
        "polled, nothing to save"
    );
    assert_eq!(a.state.last, None);
    let b = store.agent(id(B)).await.unwrap().unwrap();
    assert_eq!(
        b.state,
        AgentState::default(),
        "re-added after the cycle read its agents"
    );
    let c = store.agent(id(c)).await.unwrap().unwrap();
    assert_eq!(
        c.state.last_checked_at, None,
        "added after the cycle read its agents"
    );
    let listed = store.agents().await.unwrap();
    assert_eq!(listed.iter().find(|x| x.agent_id == id(A)), Some(&a));

    // A saved state with a later check than the cycle's start keeps its own time.
    let later = started + chrono::Duration::seconds(3);
    let update = AgentUpdate {
        agent_id: id(A),
        state: AgentState {
            last_checked_at: Some(later),
            ..errored_state()
        },
        alerts: vec![(down(A), vec![hook("x")])],
    };
    let snapshot = store.watched_settings().await.unwrap();
    assert_eq!(
        commit_polled(&store, snapshot.version, started, update).await,
        1,
        "A was polled: its alert goes in"
    );
    assert_eq!(
        store
            .agent(id(A))
            .await
            .unwrap()
            .unwrap()
            .state
            .last_checked_at,
        Some(later)
    );
    let b = store.agent(id(B)).await.unwrap().unwrap();
    assert_eq!(
        b.state.last_checked_at,
        Some(started),
        "polled by this cycle"
    );
    // A commit that polled nothing keeps the last cycle's record.
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[],
            &MonitorState::default(),
            &[],
            now(),
        )
        .await
        .unwrap();
    let b = store.agent(id(B)).await.unwrap().unwrap();
    assert_eq!(b.state.last_checked_at, Some(started));
}

/// Commits a cycle that polled the agents of `version` from `started` and saved `update`;
/// returns the outbox entries written.
async fn commit_polled(
    store: &Store,
    version: i64,
    started: chrono::DateTime<Utc>,
    update: AgentUpdate,
) -> usize {
    let polled = Polled {
        version,
        started_at: started,
    };
    store
        .commit_cycle(
            Fence::Unchecked,
            Some(polled),
            &[update],
            &MonitorState::default(),
            &[],
            now(),
        )
        .await
        .unwrap()
}

/// A cycle's states are written a chunk at a time: every agent of a large cycle gets its own
/// state, in order, across chunk boundaries, and an agent in no update keeps its state.
#[tokio::test]
async fn a_large_cycle_writes_every_agents_state() {
    let (store, _dir, _) = temp_store().await;
    let ids: Vec<AgentId> = (0..2_501).map(|i| id(&agent_id(i))).collect();
    store.ensure_agents(&ids, now()).await.unwrap();
    let updates: Vec<AgentUpdate> = ids[..2_500]
        .iter()
        .enumerate()
        .map(|(i, agent)| {
            let mut state = errored_state();
            state.health_streak = i as u32;
            AgentUpdate {
                agent_id: *agent,
                state,
                alerts: vec![],
            }
        })
        .collect();
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &updates,
            &MonitorState::default(),
            &[],
            now(),
        )
        .await
        .unwrap();
    let stored = store.agents().await.unwrap();
    assert_eq!(stored.len(), 2_501);
    for (i, agent) in stored.iter().enumerate().take(2_500) {
        assert_eq!(agent.agent_id, ids[i]);
        assert_eq!(agent.state.health_streak, i as u32, "agent {i}");
        assert_eq!(agent.state.last, errored_state().last);
    }
    assert_eq!(
        stored[2_500].state,
        AgentState::default(),
        "not in the cycle"
    );
}

#[tokio::test]
async fn removing_an_agent_keeps_its_pending_alerts() {
    let (store, _dir, _) = temp_store().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    let update = AgentUpdate {
        agent_id: id(A),
        state: errored_state(),
        alerts: vec![(down(A), vec![hook("x")])],
    };
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[update],
            &MonitorState::default(),
            &[],
            now(),
        )
        .await
        .unwrap();
    store.delete_agent(id(A), Utc::now()).await.unwrap();
    assert_eq!(store.outbox_pending().await.unwrap(), 1);
}

#[tokio::test]
async fn outbox_heads_are_the_oldest_pending_per_destination() {
    let (store, _dir, _) = temp_store().await;
    let rows = vec![
        (down(A), vec![hook("one")]),
        (down(B), vec![hook("one"), hook("two")]),
    ];
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[],
            &MonitorState::default(),
            &rows,
            now(),
        )
        .await
        .unwrap();
    let all = store.outbox().await.unwrap();
    let heads: Vec<i64> = store
        .outbox_heads()
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(heads, vec![all[0].id, all[2].id]);
    store
        .mark_delivered(Fence::Unchecked, &[all[0].id], now())
        .await
        .unwrap();
    let heads: Vec<i64> = store
        .outbox_heads()
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(heads, vec![all[1].id, all[2].id]);
    store
        .mark_failed(
            Fence::Unchecked,
            &[all[1].id],
            "HTTP 404: no_service",
            now(),
        )
        .await
        .unwrap();
    let failed = store.outbox_entry(all[1].id).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.last_error.as_deref()),
        (OutboxStatus::Failed, Some("HTTP 404: no_service"))
    );
    assert_eq!(store.outbox_pending().await.unwrap(), 1);
}

#[tokio::test]
async fn unreadable_stored_data_is_an_error_not_a_panic() {
    let (store, dir, _) = temp_store().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    drop(store);
    let path = dir.path().join("state.db");
    let raw = sqlx_raw(&path, "UPDATE agents SET state = 'not json'").await;
    assert_eq!(raw, 1);
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert!(matches!(store.agents().await, Err(StoreError::Corrupt(_))));
}

/// A connection of its own to the database file, past the store.
async fn raw_connection(path: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

async fn sqlx_raw(path: &std::path::Path, sql: &str) -> u64 {
    let mut conn = raw_connection(path).await;
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .unwrap()
        .rows_affected()
}

// ---------------------------------------------------------------- watch-all listings

const C: &str = "c0ffee00-1d2e-4f3a-8b4c-5d6e7f809103";

/// A listing of `entries`, each agent with its listed name.
fn listing(entries: &[(&str, &str)]) -> Vec<(AgentId, Option<String>)> {
    entries
        .iter()
        .map(|(agent, name)| (id(agent), Some((*name).to_owned())))
        .collect()
}

async fn watched_agent(store: &Store, agent: &str) -> AgentRecord {
    store
        .agent(id(agent))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{agent} is not watched"))
}

async fn is_watched(store: &Store, agent: &str) -> bool {
    store.agent(id(agent)).await.unwrap().is_some()
}

/// Applies `entries` and returns what it changed.
async fn apply(store: &Store, entries: &[(&str, &str)]) -> ListingApplied {
    store
        .apply_listing(Fence::Unchecked, &listing(entries), now())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_listed_agent_not_watched_is_discovered_and_the_same_listing_again_changes_nothing() {
    let (store, _dir, _) = temp_store().await;
    let before = store.settings_version().await.unwrap();

    let applied = apply(&store, &[(A, "Sales")]).await;
    assert_eq!(
        applied,
        ListingApplied {
            added: vec![id(A)],
            ..ListingApplied::default()
        }
    );
    let a = watched_agent(&store, A).await;
    assert_eq!(a.source, Source::Discovered);
    assert_eq!(a.listed_name.as_deref(), Some("Sales"));
    assert_eq!(a.name, None, "the operator set no name");
    assert_eq!(a.display_name(), Some("Sales"), "the listing's name shows");
    assert_eq!(a.created_at, now());
    assert_eq!(a.state, AgentState::default());
    let added = store.settings_version().await.unwrap();
    assert!(added > before, "adding an agent moves the settings version");

    let agents = store.agents().await.unwrap();
    assert_eq!(
        apply(&store, &[(A, "Sales")]).await,
        ListingApplied::default()
    );
    assert_eq!(store.settings_version().await.unwrap(), added);
    assert_eq!(store.agents().await.unwrap(), agents);
}

#[tokio::test]
async fn a_listed_agent_already_watched_keeps_its_source_and_the_operators_name_wins() {
    let (store, _dir, _) = temp_store().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    store
        .insert_agent(id(B), &NewAgent::default(), now())
        .await
        .unwrap();
    let before = store.settings_version().await.unwrap();

    let applied = apply(&store, &[(A, "Alpha"), (B, "Beta")]).await;
    assert_eq!(
        applied,
        ListingApplied {
            renamed: 2,
            ..ListingApplied::default()
        },
        "both get their listed name; neither is added"
    );
    assert!(store.settings_version().await.unwrap() > before);
    let a = watched_agent(&store, A).await;
    assert_eq!(
        (a.source, a.listed_name.as_deref(), a.display_name()),
        (Source::Env, Some("Alpha"), Some("Alpha"))
    );
    let b = watched_agent(&store, B).await;
    assert_eq!(
        (b.source, b.listed_name.as_deref()),
        (Source::Api, Some("Beta"))
    );

    let named = AgentPatch {
        name: Some(Some("Front desk".into())),
        ..AgentPatch::default()
    };
    let b = store.update_agent(id(B), &named).await.unwrap().unwrap();
    assert_eq!(
        b.display_name(),
        Some("Front desk"),
        "the operator's name wins"
    );
    assert_eq!(b.listed_name.as_deref(), Some("Beta"), "still recorded");

    let unchanged = store.settings_version().await.unwrap();
    assert_eq!(
        apply(&store, &[(A, "Alpha"), (B, "Beta")]).await,
        ListingApplied::default(),
        "no listed name changed"
    );
    assert_eq!(store.settings_version().await.unwrap(), unchanged);

    let applied = apply(&store, &[(A, "Alpha"), (B, "Beta II")]).await;
    assert_eq!(
        applied,
        ListingApplied {
            renamed: 1,
            ..ListingApplied::default()
        }
    );
    assert!(
        store.settings_version().await.unwrap() > unchanged,
        "a new listed name is a settings change"
    );
    let b = watched_agent(&store, B).await;
    assert_eq!(b.listed_name.as_deref(), Some("Beta II"));
    assert_eq!(
        b.name.as_deref(),
        Some("Front desk"),
        "untouched by listings"
    );
    assert_eq!(b.display_name(), Some("Front desk"));
    assert_eq!(b.source, Source::Api);
    let a = watched_agent(&store, A).await;
    assert_eq!(
        (a.source, a.listed_name.as_deref()),
        (Source::Env, Some("Alpha"))
    );
}

#[tokio::test]
async fn a_discovered_agent_is_removed_only_when_absent_from_two_listings_in_a_row() {
    let (store, _dir, _) = temp_store().await;
    apply(&store, &[(A, "a"), (B, "b")]).await;

    // absent
    let version = store.settings_version().await.unwrap();
    assert_eq!(apply(&store, &[(B, "b")]).await, ListingApplied::default());
    assert!(is_watched(&store, A).await, "absent once: still watched");
    assert_eq!(
        store.settings_version().await.unwrap(),
        version,
        "counting an absence changes no setting"
    );
    // present: the count restarts
    assert_eq!(
        apply(&store, &[(A, "a"), (B, "b")]).await,
        ListingApplied::default()
    );
    // absent
    assert_eq!(apply(&store, &[(B, "b")]).await, ListingApplied::default());
    assert!(
        is_watched(&store, A).await,
        "absent, present, absent: still watched"
    );
    // absent a second time in a row
    let applied = apply(&store, &[(B, "b")]).await;
    assert_eq!(
        applied,
        ListingApplied {
            removed: vec![id(A)],
            ..ListingApplied::default()
        }
    );
    assert!(!is_watched(&store, A).await);
    assert!(is_watched(&store, B).await, "listed every time");
    assert!(
        store.settings_version().await.unwrap() > version,
        "a removal moves the settings version"
    );
    assert!(store.outbox().await.unwrap().is_empty(), "no alert for it");

    // Several removed at once come back sorted.
    let mut many: Vec<(AgentId, Option<String>)> =
        (0..20).rev().map(|i| (id(&agent_id(i)), None)).collect();
    many.push((id(B), None));
    store
        .apply_listing(Fence::Unchecked, &many, now())
        .await
        .unwrap();
    apply(&store, &[]).await;
    let applied = apply(&store, &[]).await;
    let mut all: Vec<AgentId> = many.iter().map(|(agent, _)| *agent).collect();
    all.sort();
    assert_eq!(applied.removed, all);
    assert!(store.agents().await.unwrap().is_empty());
}

#[tokio::test]
async fn env_and_api_agents_are_never_removed_by_listings() {
    let (store, _dir, _) = temp_store().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    store
        .insert_agent(id(B), &NewAgent::default(), now())
        .await
        .unwrap();
    apply(&store, &[(A, "a"), (B, "b"), (C, "c")]).await;
    // C, discovered, goes at its second absence; A and B stay however many there are.
    for round in 0..6 {
        let applied = apply(&store, &[]).await;
        let removed = if round == 1 { vec![id(C)] } else { vec![] };
        assert_eq!(applied.removed, removed, "round {round}");
    }
    assert_eq!(watched_agent(&store, A).await.source, Source::Env);
    assert_eq!(watched_agent(&store, B).await.source, Source::Api);
    assert_eq!(store.agents().await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_agent_removed_over_the_api_is_not_listed_back_until_added_again() {
    let (store, dir, _) = temp_store().await;
    let unwatched = async || {
        sqlx_rows(
            &dir.path().join("state.db"),
            "SELECT agent_id FROM unwatched_agents",
        )
        .await
        .iter()
        .map(|row| row.get::<String, _>("agent_id"))
        .collect::<Vec<_>>()
    };
    apply(&store, &[(A, "a"), (B, "b")]).await;
    assert!(store.delete_agent(id(A), now()).await.unwrap());
    assert_eq!(unwatched().await, [A]);
    for _ in 0..3 {
        let applied = apply(&store, &[(A, "a"), (B, "b")]).await;
        assert_eq!(
            applied,
            ListingApplied {
                excluded: 1,
                ..ListingApplied::default()
            }
        );
        assert!(!is_watched(&store, A).await);
    }

    let a = store
        .insert_agent(id(A), &NewAgent::default(), now())
        .await
        .unwrap();
    assert_eq!(a.source, Source::Api);
    assert!(
        unwatched().await.is_empty(),
        "added again: no longer excluded"
    );
    let applied = apply(&store, &[(A, "a"), (B, "b")]).await;
    assert_eq!(
        applied,
        ListingApplied {
            renamed: 1,
            ..ListingApplied::default()
        },
        "watched again: listed, not excluded, not added"
    );
    let a = watched_agent(&store, A).await;
    assert_eq!(
        (a.source, a.listed_name.as_deref()),
        (Source::Api, Some("a"))
    );
    for _ in 0..3 {
        let applied = apply(&store, &[(B, "b")]).await;
        assert!(applied.removed.is_empty(), "{applied:?}");
    }
    assert_eq!(watched_agent(&store, A).await.source, Source::Api);
}

#[tokio::test]
async fn an_agent_removed_over_the_api_stays_excluded_after_a_reopen() {
    let (store, _dir, url) = temp_store().await;
    apply(&store, &[(A, "a")]).await;
    assert!(store.delete_agent(id(A), now()).await.unwrap());
    store.close().await;
    drop(store);

    let store = Store::open(&url).await.unwrap();
    let applied = apply(&store, &[(A, "a"), (B, "b")]).await;
    assert_eq!(
        applied,
        ListingApplied {
            added: vec![id(B)],
            excluded: 1,
            ..ListingApplied::default()
        }
    );
    assert!(!is_watched(&store, A).await);
}

#[tokio::test]
async fn ensure_agents_makes_a_discovered_agent_env_sourced() {
    let (store, _dir, _) = temp_store().await;
    apply(&store, &[(A, "a")]).await;
    let before = store.settings_version().await.unwrap();
    assert_eq!(store.ensure_agents(&[id(A)], now()).await.unwrap(), 0);
    let a = watched_agent(&store, A).await;
    assert_eq!(a.source, Source::Env);
    assert_eq!(a.listed_name.as_deref(), Some("a"), "kept");
    let after = store.settings_version().await.unwrap();
    assert!(after > before, "a source change is a settings change");
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    assert_eq!(
        store.settings_version().await.unwrap(),
        after,
        "already env"
    );
    for _ in 0..3 {
        assert!(apply(&store, &[]).await.removed.is_empty());
    }
    assert!(is_watched(&store, A).await);
}

#[tokio::test]
async fn an_agent_removed_by_a_listing_and_listed_again_is_a_new_agent() {
    let (store, _dir, _) = temp_store().await;
    apply(&store, &[(A, "a")]).await;
    let update = AgentUpdate {
        agent_id: id(A),
        state: errored_state(),
        alerts: vec![],
    };
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[update],
            &MonitorState::default(),
            &[],
            now(),
        )
        .await
        .unwrap();
    let old = watched_agent(&store, A).await;
    assert_eq!(old.state, errored_state(), "the old agent has a state");
    let snapshot = store.watched_settings().await.unwrap();

    apply(&store, &[]).await;
    assert_eq!(apply(&store, &[]).await.removed, vec![id(A)]);
    let later = now() + chrono::Duration::hours(1);
    let applied = store
        .apply_listing(Fence::Unchecked, &listing(&[(A, "a")]), later)
        .await
        .unwrap();
    assert_eq!(applied.added, vec![id(A)]);
    let new = watched_agent(&store, A).await;
    assert!(new.added_version > old.added_version);
    assert!(new.added_version > snapshot.version);
    assert_eq!(new.created_at, later);
    assert_eq!(new.state, AgentState::default());
    assert_eq!(new.source, Source::Discovered);

    // The cycle that polled the old agent commits after it was replaced.
    let update = AgentUpdate {
        agent_id: id(A),
        state: errored_state(),
        alerts: vec![(down(A), vec![hook("x")])],
    };
    assert_eq!(
        commit_polled(&store, snapshot.version, now(), update).await,
        0
    );
    assert_eq!(
        watched_agent(&store, A).await.state,
        AgentState::default(),
        "not the old agent's state, nor its check time"
    );
    assert!(store.outbox().await.unwrap().is_empty(), "not its alert");
}

#[tokio::test]
async fn a_listing_of_a_thousand_agents_applies_at_once_and_again_changes_nothing() {
    let (store, _dir, _) = temp_store().await;
    let listed: Vec<(AgentId, Option<String>)> = (0..1_000)
        .map(|i| (id(&agent_id(i)), Some(format!("agent {i}"))))
        .collect();
    let applied = store
        .apply_listing(Fence::Unchecked, &listed, now())
        .await
        .unwrap();
    let ids: Vec<AgentId> = listed.iter().map(|(agent, _)| *agent).collect();
    assert_eq!(applied.added, ids);
    assert_eq!(
        (applied.removed.len(), applied.excluded, applied.renamed),
        (0, 0, 0)
    );
    let agents = store.agents().await.unwrap();
    assert_eq!(agents.len(), 1_000);
    for (agent, (listed_id, name)) in agents.iter().zip(&listed) {
        assert_eq!(agent.agent_id, *listed_id);
        assert_eq!(agent.listed_name, *name);
        assert_eq!(agent.source, Source::Discovered);
    }

    let version = store.settings_version().await.unwrap();
    assert_eq!(
        store
            .apply_listing(Fence::Unchecked, &listed, now())
            .await
            .unwrap(),
        ListingApplied::default()
    );
    assert_eq!(store.settings_version().await.unwrap(), version);
    assert_eq!(store.agents().await.unwrap(), agents);
}

/// What a listing writes, read from the database itself: the source, the listed name and the
/// absence count, and nothing else of the agent's row.
#[tokio::test]
async fn a_listing_writes_only_the_source_the_listed_name_and_the_absence_count() {
    let (store, dir, _) = temp_store().await;
    store.ensure_agents(&[id(C)], now()).await.unwrap();
    apply(&store, &[(A, "Sales"), (B, "Support"), (C, "Billing")]).await;
    apply(&store, &[(B, "Support")]).await;

    let rows = sqlx_rows(
        &dir.path().join("state.db"),
        "SELECT agent_id, source, listed_name, absent_listings, name, slack_webhook_url,
                discord_webhook_url, muted, muted_until, state
         FROM agents ORDER BY agent_id",
    )
    .await;
    let got: Vec<(String, String, Option<String>, i64)> = rows
        .iter()
        .map(|row| {
            (
                row.get("agent_id"),
                row.get("source"),
                row.get("listed_name"),
                row.get("absent_listings"),
            )
        })
        .collect();
    let want = vec![
        (
            A.to_owned(),
            "discovered".to_owned(),
            Some("Sales".to_owned()),
            1,
        ),
        (
            B.to_owned(),
            "discovered".to_owned(),
            Some("Support".to_owned()),
            0,
        ),
        (
            C.to_owned(),
            "env".to_owned(),
            Some("Billing".to_owned()),
            0,
        ),
    ];
    assert_eq!(got, want);
    for row in &rows {
        let rest: (
            Option<String>,
            Option<String>,
            Option<String>,
            bool,
            Option<i64>,
            String,
        ) = (
            row.get("name"),
            row.get("slack_webhook_url"),
            row.get("discord_webhook_url"),
            row.get("muted"),
            row.get("muted_until"),
            row.get("state"),
        );
        assert_eq!(rest, (None, None, None, false, None, "{}".to_owned()));
    }
}

async fn sqlx_rows(path: &std::path::Path, sql: &str) -> Vec<sqlx::sqlite::SqliteRow> {
    let mut conn = raw_connection(path).await;
    sqlx::query(sql).fetch_all(&mut conn).await.unwrap()
}

#[tokio::test]
async fn a_discovered_agent_changed_over_the_api_becomes_the_operators() {
    let (store, _dir, _) = temp_store().await;
    apply(&store, &[(A, "Front desk"), (B, "Sales")]).await;
    let patch = AgentPatch {
        muted: Some(true),
        ..AgentPatch::default()
    };
    let changed = store.update_agent(id(A), &patch).await.unwrap().unwrap();
    assert_eq!(
        changed.source,
        Source::Api,
        "the operator's settings are not dropped"
    );
    assert_eq!(watched_agent(&store, B).await.source, Source::Discovered);
    for _ in 0..3 {
        apply(&store, &[]).await;
    }
    assert!(is_watched(&store, A).await, "never removed by the listing");
    assert!(watched_agent(&store, A).await.muted);
    assert!(!is_watched(&store, B).await, "the untouched one is");
}

// ---------------------------------------------------------------- rows that do not decode

/// A stored value the code cannot read is a `StoreError` naming the row, never a panic and
/// never a silent rewrite into another value (issue 12, item 5).
#[tokio::test]
async fn rows_that_do_not_decode_are_errors_naming_the_row_not_panics_or_rewrites() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "a text in an integer column",
            "UPDATE agents SET created_at = 'yesterday'",
            A,
        ),
        (
            "a time out of range",
            "UPDATE agents SET muted_until = 9223372036854775807, muted = 1",
            A,
        ),
        (
            "an unknown source",
            "UPDATE agents SET source = 'martian'",
            A,
        ),
        (
            "a boolean that is text",
            "UPDATE agents SET muted = 'maybe'",
            A,
        ),
    ];
    for (what, sql, key) in cases {
        let (store, dir, _) = temp_store().await;
        store.ensure_agents(&[id(A)], now()).await.unwrap();
        // The column constraints of the migrations would refuse some of these: go around them.
        let path = dir.path().join("state.db");
        let sql = format!("PRAGMA ignore_check_constraints = ON; {sql}");
        sqlx_raw(&path, &sql).await;
        for result in [
            store.agent(id(A)).await.map(|_| ()),
            store.agents().await.map(|_| ()),
            store.watched_settings().await.map(|_| ()),
        ] {
            let err = result.expect_err(what).to_string();
            assert!(err.contains(key), "{what}: the error names the row: {err}");
        }
    }

    let (store, dir, _) = temp_store().await;
    let path = dir.path().join("state.db");
    store
        .mark_webhook_dead(Fence::Unchecked, &hook("x"), "gone", now())
        .await
        .unwrap();
    sqlx_raw(&path, "UPDATE dead_webhooks SET platform = 'teams'").await;
    let err = store.dead_webhooks().await.expect_err("unknown platform");
    assert!(err.to_string().contains("teams"), "{err}");

    let (store, dir, _) = temp_store().await;
    let path = dir.path().join("state.db");
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[],
            &MonitorState::default(),
            &[(down(A), vec![hook("y")])],
            now(),
        )
        .await
        .unwrap();
    for (what, sql) in [
        (
            "an unknown status",
            "PRAGMA ignore_check_constraints = ON; UPDATE outbox SET status = 'lost'",
        ),
        ("attempts out of range", "UPDATE outbox SET attempts = -1"),
        (
            "a time out of range",
            "UPDATE outbox SET next_attempt_at = -9223372036854775807",
        ),
    ] {
        let before = sqlx_rows(&path, "SELECT * FROM outbox").await.len();
        sqlx_raw(&path, sql).await;
        let err = store.outbox().await.expect_err(what).to_string();
        assert!(
            err.contains("outbox") && err.contains("id 1"),
            "{what}: {err}"
        );
        // Restore for the next case.
        sqlx_raw(
            &path,
            "PRAGMA ignore_check_constraints = ON; UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0",
        )
        .await;
        assert_eq!(sqlx_rows(&path, "SELECT * FROM outbox").await.len(), before);
    }
    store.outbox().await.expect("restored rows read again");
}

/// One cycle's alerts share a batch and the next cycle's get another, whatever the clock says:
/// two commits at the same instant (or a clock stepped back) are never merged into one batch,
/// and batches only grow (issue 12, item 7).
#[tokio::test]
async fn batches_follow_a_sequence_not_the_clock() {
    let (store, _dir, _) = temp_store().await;
    let commit = |at| {
        let store = store.clone();
        async move {
            store
                .commit_cycle(
                    Fence::Unchecked,
                    None,
                    &[],
                    &MonitorState::default(),
                    &[
                        (down(A), vec![hook("x"), hook("y")]),
                        (down(B), vec![hook("x")]),
                    ],
                    at,
                )
                .await
                .unwrap()
        }
    };
    commit(now()).await;
    commit(now()).await;
    commit(now() - chrono::Duration::hours(1)).await;
    let batches: Vec<i64> = store
        .outbox()
        .await
        .unwrap()
        .iter()
        .map(|e| e.batch)
        .collect();
    assert_eq!(batches.len(), 9);
    for cycle in batches.chunks(3) {
        assert!(
            cycle.iter().all(|b| *b == cycle[0]),
            "one batch a cycle: {batches:?}"
        );
    }
    assert!(
        batches[0] < batches[3] && batches[3] < batches[6],
        "each cycle a later batch: {batches:?}"
    );
}

/// Adding an agent with a webhook known dead is the operator's word that it works now, as
/// setting it with PATCH is (issue 12, item 8).
#[tokio::test]
async fn adding_an_agent_with_a_dead_webhook_clears_it() {
    let (store, _dir, _) = temp_store().await;
    let dead = hook("revived");
    let other = hook("still-dead");
    store
        .mark_webhook_dead(Fence::Unchecked, &dead, "no_service", now())
        .await
        .unwrap();
    store
        .mark_webhook_dead(Fence::Unchecked, &other, "no_service", now())
        .await
        .unwrap();
    let new = NewAgent {
        slack_webhook_url: Some(dead.url.expose().clone()),
        ..NewAgent::default()
    };
    store.insert_agent(id(A), &new, now()).await.unwrap();
    let still: Vec<Webhook> = store
        .dead_webhooks()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.webhook)
        .collect();
    assert_eq!(still, vec![other]);
}

// ---------------------------------------------------------------- retention

/// Delivered and failed entries older than the retention go, in batches, and nothing else does;
/// the database's size is known (issue 12, item 4).
#[tokio::test]
async fn finished_outbox_entries_older_than_the_retention_are_deleted_in_batches() {
    let (store, _dir, _) = temp_store().await;
    let day = chrono::Duration::days(1);
    // 30 days of one cycle a day, 3 alerts each.
    for d in 0..30 {
        let at = now() - day * (30 - d);
        store
            .commit_cycle(
                Fence::Unchecked,
                None,
                &[],
                &MonitorState::default(),
                &[
                    (down(A), vec![hook("x"), hook("y")]),
                    (down(B), vec![hook("x")]),
                ],
                at,
            )
            .await
            .unwrap();
    }
    let all = store.outbox().await.unwrap();
    assert_eq!(all.len(), 90);
    // Days 0..10 delivered, 10..20 failed, 20..30 pending; finished when produced.
    for e in &all {
        let age = (now() - e.created_at).num_days();
        if age > 20 {
            store
                .mark_delivered(Fence::Unchecked, &[e.id], e.created_at)
                .await
                .unwrap();
        } else if age > 10 {
            store
                .mark_failed(Fence::Unchecked, &[e.id], "gone", e.created_at)
                .await
                .unwrap();
        }
    }
    let before = store.database_bytes().await.unwrap();
    assert!(before > 0);

    let retention = std::time::Duration::from_secs(7 * 86_400);
    let deleted = store.prune_outbox(now(), retention, 7).await.unwrap();
    // Finished and older than 7 days: the delivered ones and the failed ones (all > 10 days).
    assert_eq!(deleted, 60);
    let left = store.outbox().await.unwrap();
    assert_eq!(left.len(), 30);
    assert!(
        left.iter().all(|e| e.status == OutboxStatus::Pending),
        "pending ones stay, however old"
    );
    assert_eq!(store.prune_outbox(now(), retention, 7).await.unwrap(), 0);
}

/// A simulated year of alerts (40 deliveries a day, delivered, pruned daily with the default
/// 7-day retention) leaves a week of them: the database stops growing. Prints its size.
#[tokio::test]
async fn a_year_of_alerts_with_daily_pruning_keeps_about_a_week() {
    let (store, _dir, _) = temp_store().await;
    let retention = std::time::Duration::from_secs(7 * 86_400);
    let start = now() - chrono::Duration::days(365);
    let routed: Vec<_> = (0..20)
        .map(|_| (down(A), vec![hook("x"), hook("y")]))
        .collect();
    let mut peak = 0;
    for day in 0..365 {
        let at = start + chrono::Duration::days(day);
        store
            .commit_cycle(
                Fence::Unchecked,
                None,
                &[],
                &MonitorState::default(),
                &routed,
                at,
            )
            .await
            .unwrap();
        let ids: Vec<i64> = store
            .outbox()
            .await
            .unwrap()
            .iter()
            .filter(|e| e.status == OutboxStatus::Pending)
            .map(|e| e.id)
            .collect();
        store
            .mark_delivered(Fence::Unchecked, &ids, at)
            .await
            .unwrap();
        store.prune_outbox(at, retention, 500).await.unwrap();
        peak = peak.max(store.database_bytes().await.unwrap());
    }
    let left = store.outbox().await.unwrap().len();
    assert_eq!(
        left,
        40 * 8,
        "a week of deliveries (and the day in progress)"
    );
    let size = store.database_bytes().await.unwrap();
    println!(
        "a year of 40 deliveries a day, pruned daily: {left} outbox rows, database {} KiB (peak {} KiB)",
        size / 1024,
        peak / 1024
    );
    assert!(size <= peak);
}
