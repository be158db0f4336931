//! The store on temporary databases, each test on both backends with the same body: SQLite (a
//! file in a temporary directory) and PostgreSQL (a fresh database on the server
//! `RAVAN_WATCH_TEST_POSTGRES_URL` names; skipped without it, see tests/common/postgres.rs).
//! Migration from empty, agents, the cycle commit, the outbox surviving a reopen, the lease and
//! its fence. A few tests are about one backend's internals (SQLite's WAL file, raw corrupt
//! rows) and run on that one only.

mod common;

use std::time::Duration;

use chrono::Utc;
use ravan_watch::domain::alert::{
    AgentAlertKind, Alert, IntegrationAlert, IntegrationAlertKind, IntegrationName,
    MonitorAlertKind,
};
use ravan_watch::domain::{AgentId, HealthEdge, HealthInterval, Observation};
use ravan_watch::domain::{Platform, Webhook};
use ravan_watch::store::{
    AgentPatch, AgentRecord, AgentUpdate, Event, EventQuery, EventsAbout, ListingApplied, NewAgent,
    OutboxStatus, Polled, Routed, Source, Store, StoreError,
};
use ravan_watch::store::{Fence, Holder};
use ravan_watch::tracker::{
    AgentState, IntegrationOutage, IntegrationState, MonitorState, OpenOutage,
};
use sqlx::{Connection, Row};

use common::alerts::{agent_down, monitor_alert, monitor_down, noon as now, webhook};
use common::ids::{agent_id, id};
use common::{AGENT_A as A, AGENT_B as B, wait_until, wait_until_some};

/// The database a test runs on: a SQLite file in a temporary directory, or a fresh database on
/// the PostgreSQL test server.
struct Db {
    url: String,
    /// The SQLite file's directory, kept until the test ends; `None` on PostgreSQL.
    dir: Option<tempfile::TempDir>,
}

impl Db {
    fn sqlite() -> Self {
        let (dir, url) = common::temp_database();
        Self {
            url,
            dir: Some(dir),
        }
    }

    /// `None` when no PostgreSQL server is configured (the test is skipped).
    async fn postgres() -> Option<Self> {
        Some(Self {
            url: common::postgres::fresh_database().await?,
            dir: None,
        })
    }

    fn is_postgres(&self) -> bool {
        self.dir.is_none()
    }

    /// Opens the store (again: a reopen is what a restart does).
    async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    fn sqlite_path(&self) -> std::path::PathBuf {
        self.dir
            .as_ref()
            .expect("a SQLite database")
            .path()
            .join("state.db")
    }

    /// Runs `sql` (one or more statements) past the store, on a connection of its own; returns
    /// how many rows it changed.
    async fn raw(&self, sql: &str) -> u64 {
        if self.is_postgres() {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(sql)
                .execute(&mut conn)
                .await
                .unwrap()
                .rows_affected()
        } else {
            sqlx_raw(&self.sqlite_path(), sql).await
        }
    }

    /// Whether `sql` (one statement) runs past the store: `Err` when the database refuses it.
    async fn raw_result(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let done = if self.is_postgres() {
            let mut conn = sqlx::PgConnection::connect(&self.url).await?;
            sqlx::query(sql).execute(&mut conn).await?.rows_affected()
        } else {
            let mut conn = raw_connection(&self.sqlite_path()).await;
            sqlx::query(sql).execute(&mut conn).await?.rows_affected()
        };
        Ok(done)
    }

    /// The first column of every row `sql` reads, as text, read past the store.
    async fn strings(&self, sql: &str) -> Vec<String> {
        if self.is_postgres() {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        } else {
            let mut conn = raw_connection(&self.sqlite_path()).await;
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        }
    }
}

/// Each named `async fn name(db: Db)` becomes two tests, `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Db::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = super::Db::postgres().await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    migrates_an_empty_database_and_reopens_it,
    insert_conflict_get_list_delete,
    ensure_agents_is_idempotent_and_keeps_existing_settings,
    patch_changes_only_what_it_names_and_null_clears,
    a_cycle_commits_states_and_alerts_together,
    an_agent_removed_during_the_cycle_keeps_no_state_and_gets_no_alert,
    every_settings_change_moves_the_settings_version_and_state_writes_do_not,
    a_cycle_marks_every_agent_it_polled_as_checked_and_no_other,
    a_large_cycle_writes_every_agents_state,
    removing_an_agent_keeps_its_pending_alerts,
    outbox_heads_are_the_oldest_pending_per_destination,
    unreadable_stored_data_is_an_error_not_a_panic,
    a_listed_agent_not_watched_is_discovered_and_the_same_listing_again_changes_nothing,
    a_listed_agent_already_watched_keeps_its_source_and_the_operators_name_wins,
    a_discovered_agent_is_removed_only_when_absent_from_two_listings_in_a_row,
    env_and_api_agents_are_never_removed_by_listings,
    an_agent_removed_over_the_api_is_not_listed_back_until_added_again,
    an_agent_removed_over_the_api_stays_excluded_after_a_reopen,
    ensure_agents_makes_a_discovered_agent_env_sourced,
    an_agent_removed_by_a_listing_and_listed_again_is_a_new_agent,
    a_listing_of_a_thousand_agents_applies_at_once_and_again_changes_nothing,
    a_listing_writes_only_the_source_the_listed_name_and_the_absence_count,
    a_discovered_agent_changed_over_the_api_becomes_the_operators,
    batches_follow_a_sequence_not_the_clock,
    adding_an_agent_with_a_dead_webhook_clears_it,
    finished_outbox_entries_older_than_the_retention_are_deleted_in_batches,
    a_year_of_alerts_with_daily_pruning_keeps_about_a_week,
    a_lease_held_is_refused_to_another_until_it_expires,
    a_renewal_keeps_the_term_and_a_release_frees_the_lease_at_once,
    a_lease_records_where_its_holder_runs_and_is_taken_over_only_in_the_gone_holders_term,
    a_renewal_writes_a_steady_cycles_progress_only_in_its_own_term_and_never_an_older_one,
    a_write_fenced_by_an_old_term_is_refused_and_writes_nothing,
    a_cycle_writes_one_event_per_alert_with_a_pending_delivery_per_webhook,
    deliveries_follow_their_outbox_entries_and_outlive_them,
    monitor_alerts_and_alerts_routed_nowhere_are_events_too,
    health_edges_open_and_close_intervals_and_steady_commits_leave_them,
    fenced_commits_and_removed_agents_write_no_event_and_no_interval,
    events_come_newest_first_a_page_at_a_time,
    watched_events_are_the_current_watchs_and_removal_deletes_intervals,
    prune_history_deletes_old_events_and_closed_intervals_in_batches,
    unreadable_history_is_an_error_naming_the_row,
    a_database_error_names_the_operation,
    a_storm_of_alerts_is_written_whole_and_in_order,
    an_integrations_state_and_its_alerts_are_written_together_and_survive_a_reopen,
    an_integration_write_fenced_by_an_old_term_writes_nothing,
    an_unreadable_integration_state_is_an_error_naming_it,
);

/// A SQLite store on a temporary file, for the tests about SQLite itself.
async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let db = Db::sqlite();
    let store = db.open().await;
    (store, db.dir.unwrap())
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

async fn migrates_an_empty_database_and_reopens_it(db: Db) {
    let store = db.open().await;
    assert!(store.agents().await.unwrap().is_empty());
    assert_eq!(store.outbox_pending().await.unwrap(), 0);
    assert_eq!(
        store.monitor_state().await.unwrap(),
        MonitorState::default()
    );
    store.ping().await.unwrap();
    drop(store);
    let again = db.open().await;
    again.ping().await.unwrap();
}

#[tokio::test]
async fn database_file_is_in_wal_mode() {
    let (store, dir) = sqlite_store().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    assert!(dir.path().join("state.db-wal").exists(), "WAL file present");
}

async fn insert_conflict_get_list_delete(db: Db) {
    let store = db.open().await;
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

async fn ensure_agents_is_idempotent_and_keeps_existing_settings(db: Db) {
    let store = db.open().await;
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

async fn patch_changes_only_what_it_names_and_null_clears(db: Db) {
    let store = db.open().await;
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

async fn a_cycle_commits_states_and_alerts_together(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    let update = AgentUpdate {
        agent_id: id(A),
        state: &errored_state(),
        alerts: vec![(down(A), vec![hook("one"), hook("two")])],
        health: None,
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
    let store = db.open().await;
    assert_eq!(
        store.agent(id(A)).await.unwrap().unwrap().state,
        errored_state()
    );
    assert_eq!(store.monitor_state().await.unwrap(), monitor);
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox.len(), 2);
    assert!(outbox.iter().all(|e| e.status == OutboxStatus::Pending
        && e.alert() == Some(&down(A))
        && e.attempts == 0));
    assert_eq!(
        store.outbox_heads().await.unwrap().len(),
        2,
        "one head per destination"
    );
}

async fn an_agent_removed_during_the_cycle_keeps_no_state_and_gets_no_alert(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    store.delete_agent(id(A), Utc::now()).await.unwrap();
    let update = AgentUpdate {
        agent_id: id(A),
        state: &errored_state(),
        alerts: vec![(down(A), vec![hook("x")])],
        health: None,
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
async fn every_settings_change_moves_the_settings_version_and_state_writes_do_not(db: Db) {
    let store = db.open().await;
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
    assert_eq!(
        store
            .lift_expired_mutes(Fence::Unchecked, now())
            .await
            .unwrap(),
        1
    );
    step("a mute ending", &mut seen).await;
    store.delete_agent(id(B), Utc::now()).await.unwrap();
    step("removing an agent", &mut seen).await;

    let before = store.settings_version().await.unwrap();
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    let update = AgentUpdate {
        agent_id: id(A),
        state: &errored_state(),
        alerts: vec![],
        health: None,
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
async fn a_cycle_marks_every_agent_it_polled_as_checked_and_no_other(db: Db) {
    let store = db.open().await;
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
        state: &polled_b,
        alerts: vec![(down(B), vec![hook("x")])],
        health: None,
    };
    assert_eq!(
        commit_polled(&store, snapshot.version, started, update).await,
        0
    );
    assert!(store.outbox().await.unwrap().is_empty(), "not the new B's");

    drop(store);
    let store = db.open().await;
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
        state: &AgentState {
            last_checked_at: Some(later),
            ..errored_state()
        },
        alerts: vec![(down(A), vec![hook("x")])],
        health: None,
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
    update: AgentUpdate<'_>,
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
async fn a_large_cycle_writes_every_agents_state(db: Db) {
    let store = db.open().await;
    let ids: Vec<AgentId> = (0..2_501).map(|i| id(&agent_id(i))).collect();
    store.ensure_agents(&ids, now()).await.unwrap();
    let states: Vec<AgentState> = (0..2_500)
        .map(|i| AgentState {
            health_streak: i,
            ..errored_state()
        })
        .collect();
    let updates: Vec<AgentUpdate> = ids
        .iter()
        .zip(&states)
        .map(|(agent, state)| AgentUpdate {
            agent_id: *agent,
            state,
            alerts: vec![],
            health: None,
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

async fn removing_an_agent_keeps_its_pending_alerts(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    let update = AgentUpdate {
        agent_id: id(A),
        state: &errored_state(),
        alerts: vec![(down(A), vec![hook("x")])],
        health: None,
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

async fn outbox_heads_are_the_oldest_pending_per_destination(db: Db) {
    let store = db.open().await;
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

async fn unreadable_stored_data_is_an_error_not_a_panic(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    store.close().await;
    drop(store);
    assert_eq!(db.raw("UPDATE agents SET state = 'not json'").await, 1);
    let store = db.open().await;
    match store.agents().await {
        Err(StoreError::Corrupt(why)) => assert!(why.contains(A), "names the row: {why}"),
        other => panic!("not an error naming the row: {other:?}"),
    }
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

async fn a_listed_agent_not_watched_is_discovered_and_the_same_listing_again_changes_nothing(
    db: Db,
) {
    let store = db.open().await;
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

async fn a_listed_agent_already_watched_keeps_its_source_and_the_operators_name_wins(db: Db) {
    let store = db.open().await;
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

async fn a_discovered_agent_is_removed_only_when_absent_from_two_listings_in_a_row(db: Db) {
    let store = db.open().await;
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

async fn env_and_api_agents_are_never_removed_by_listings(db: Db) {
    let store = db.open().await;
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

async fn an_agent_removed_over_the_api_is_not_listed_back_until_added_again(db: Db) {
    let store = db.open().await;
    let unwatched = async || db.strings("SELECT agent_id FROM unwatched_agents").await;
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

async fn an_agent_removed_over_the_api_stays_excluded_after_a_reopen(db: Db) {
    let store = db.open().await;
    apply(&store, &[(A, "a")]).await;
    assert!(store.delete_agent(id(A), now()).await.unwrap());
    store.close().await;
    drop(store);

    let store = db.open().await;
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

async fn ensure_agents_makes_a_discovered_agent_env_sourced(db: Db) {
    let store = db.open().await;
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

async fn an_agent_removed_by_a_listing_and_listed_again_is_a_new_agent(db: Db) {
    let store = db.open().await;
    apply(&store, &[(A, "a")]).await;
    let update = AgentUpdate {
        agent_id: id(A),
        state: &errored_state(),
        alerts: vec![],
        health: None,
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
        state: &errored_state(),
        alerts: vec![(down(A), vec![hook("x")])],
        health: None,
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

async fn a_listing_of_a_thousand_agents_applies_at_once_and_again_changes_nothing(db: Db) {
    let store = db.open().await;
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
async fn a_listing_writes_only_the_source_the_listed_name_and_the_absence_count(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(C)], now()).await.unwrap();
    apply(&store, &[(A, "Sales"), (B, "Support"), (C, "Billing")]).await;
    apply(&store, &[(B, "Support")]).await;

    let rows = agent_columns(&db).await;
    let got: Vec<(String, String, Option<String>, i64)> = rows
        .iter()
        .map(|row| (row.0.clone(), row.1.clone(), row.2.clone(), row.3))
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
        let rest = (
            row.4.clone(),
            row.5.clone(),
            row.6.clone(),
            row.7,
            row.8,
            row.9.clone(),
        );
        assert_eq!(rest, (None, None, None, false, None, "{}".to_owned()));
    }
}

/// A row of `agents` as stored: agent_id, source, listed_name, absent_listings, name,
/// slack_webhook_url, discord_webhook_url, muted, muted_until, state.
type AgentColumns = (
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    Option<i64>,
    String,
);

/// Every agent's row read from the database itself, by id.
async fn agent_columns(db: &Db) -> Vec<AgentColumns> {
    const SQL: &str = "SELECT agent_id, source, listed_name, absent_listings, name,
            slack_webhook_url, discord_webhook_url, muted, muted_until, state
        FROM agents ORDER BY agent_id";
    macro_rules! decode {
        ($rows:expr) => {
            $rows
                .iter()
                .map(|row| {
                    (
                        row.get("agent_id"),
                        row.get("source"),
                        row.get("listed_name"),
                        row.get("absent_listings"),
                        row.get("name"),
                        row.get("slack_webhook_url"),
                        row.get("discord_webhook_url"),
                        row.get("muted"),
                        row.get("muted_until"),
                        row.get("state"),
                    )
                })
                .collect()
        };
    }
    if db.is_postgres() {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        decode!(sqlx::query(SQL).fetch_all(&mut conn).await.unwrap())
    } else {
        decode!(sqlx_rows(&db.sqlite_path(), SQL).await)
    }
}

async fn sqlx_rows(path: &std::path::Path, sql: &str) -> Vec<sqlx::sqlite::SqliteRow> {
    let mut conn = raw_connection(path).await;
    sqlx::query(sql).fetch_all(&mut conn).await.unwrap()
}

async fn a_discovered_agent_changed_over_the_api_becomes_the_operators(db: Db) {
    let store = db.open().await;
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
        let (store, dir) = sqlite_store().await;
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

    let (store, dir) = sqlite_store().await;
    let path = dir.path().join("state.db");
    store
        .mark_webhook_dead(Fence::Unchecked, &hook("x"), "gone", now(), None)
        .await
        .unwrap();
    sqlx_raw(&path, "UPDATE dead_webhooks SET platform = 'email'").await;
    let err = store.dead_webhooks().await.expect_err("unknown platform");
    assert!(err.to_string().contains("email"), "{err}");

    let (store, dir) = sqlite_store().await;
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
async fn batches_follow_a_sequence_not_the_clock(db: Db) {
    let store = db.open().await;
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
async fn adding_an_agent_with_a_dead_webhook_clears_it(db: Db) {
    let store = db.open().await;
    let dead = hook("revived");
    let other = hook("still-dead");
    store
        .mark_webhook_dead(Fence::Unchecked, &dead, "no_service", now(), None)
        .await
        .unwrap();
    store
        .mark_webhook_dead(Fence::Unchecked, &other, "no_service", now(), None)
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
async fn finished_outbox_entries_older_than_the_retention_are_deleted_in_batches(db: Db) {
    let store = db.open().await;
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
    let deleted = store
        .prune_outbox(Fence::Unchecked, now(), retention, 7)
        .await
        .unwrap();
    // Finished and older than 7 days: the delivered ones and the failed ones (all > 10 days).
    assert_eq!(deleted, 60);
    let left = store.outbox().await.unwrap();
    assert_eq!(left.len(), 30);
    assert!(
        left.iter().all(|e| e.status == OutboxStatus::Pending),
        "pending ones stay, however old"
    );
    assert_eq!(
        store
            .prune_outbox(Fence::Unchecked, now(), retention, 7)
            .await
            .unwrap(),
        0
    );
}

/// A simulated year of alerts (40 deliveries a day, delivered, pruned daily with the default
/// 7-day retention) leaves a week of them: the database stops growing. Prints its size.
async fn a_year_of_alerts_with_daily_pruning_keeps_about_a_week(db: Db) {
    let store = db.open().await;
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
        store
            .prune_outbox(Fence::Unchecked, at, retention, 500)
            .await
            .unwrap();
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

// ---------------------------------------------------------------- the leader lease

/// A lease held is refused to another until it expires (by the database's clock, which
/// `tokio::time::pause` would not stop: real short leases), then taken over with a new term.
async fn a_lease_held_is_refused_to_another_until_it_expires(db: Db) {
    let store = db.open().await;
    assert_eq!(store.lease().await.unwrap(), None, "nobody took it yet");
    let ttl = Duration::from_millis(400);
    let first = store
        .claim_lease(&Holder::named("a"), None, ttl)
        .await
        .unwrap()
        .expect("a free lease is taken");
    assert_eq!(
        store
            .claim_lease(&Holder::named("b"), None, ttl)
            .await
            .unwrap(),
        None,
        "held by a"
    );
    let second = wait_until_some(Duration::from_secs(10), "the lease to expire", || async {
        store
            .claim_lease(&Holder::named("b"), None, ttl)
            .await
            .unwrap()
    })
    .await;
    assert!(second > first, "a takeover moves the term");
    let lease = store.lease().await.unwrap().unwrap();
    assert_eq!((lease.holder.as_str(), lease.term), ("b", second));
    assert_eq!(
        store
            .claim_lease(&Holder::named("a"), Some(first), ttl)
            .await
            .unwrap(),
        None,
        "a's term is over: no renewal"
    );
}

async fn a_renewal_keeps_the_term_and_a_release_frees_the_lease_at_once(db: Db) {
    let store = db.open().await;
    let ttl = Duration::from_secs(60);
    let term = store
        .claim_lease(&Holder::named("a"), None, ttl)
        .await
        .unwrap()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            store
                .claim_lease(&Holder::named("a"), Some(term), ttl)
                .await
                .unwrap(),
            Some(term),
            "a renewal keeps the term"
        );
    }
    assert_eq!(
        store
            .claim_lease(&Holder::named("a"), None, ttl)
            .await
            .unwrap(),
        None,
        "not a renewal without the term held"
    );
    assert_eq!(
        store
            .claim_lease(&Holder::named("b"), None, ttl)
            .await
            .unwrap(),
        None
    );
    // Releases by another holder, or of another term, do nothing.
    store.release_lease("b", term).await.unwrap();
    store.release_lease("a", term - 1).await.unwrap();
    assert_eq!(
        store
            .claim_lease(&Holder::named("b"), None, ttl)
            .await
            .unwrap(),
        None
    );

    store.release_lease("a", term).await.unwrap();
    let taken = store
        .claim_lease(&Holder::named("b"), None, ttl)
        .await
        .unwrap();
    assert_eq!(taken, Some(term + 1), "released: taken at once");
    assert_eq!(
        store
            .claim_lease(&Holder::named("a"), Some(term), ttl)
            .await
            .unwrap(),
        None
    );
}

/// The lease row says where its holder runs (for others on its host to tell whether it still
/// does), and a takeover from a holder found gone succeeds only while the lease is still in
/// the term it was found in: a second takeover, or one after another took the lease, fails.
async fn a_lease_records_where_its_holder_runs_and_is_taken_over_only_in_the_gone_holders_term(
    db: Db,
) {
    let store = db.open().await;
    let ttl = Duration::from_secs(60);
    let a = Holder {
        name: "a".into(),
        host: "boot/pid:[1]".into(),
        pid: 4242,
        started: 987_654,
    };
    let term = store.claim_lease(&a, None, ttl).await.unwrap().unwrap();
    let lease = store.lease().await.unwrap().unwrap();
    assert_eq!(
        (lease.host.as_str(), lease.pid, lease.started, lease.term),
        ("boot/pid:[1]", 4242, 987_654, term)
    );
    assert_eq!(
        store
            .claim_lease(&Holder::named("b"), None, ttl)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_over_lease(&Holder::named("b"), term - 1, ttl)
            .await
            .unwrap(),
        None,
        "not the term a holds"
    );
    let taken = store
        .take_over_lease(&Holder::named("b"), term, ttl)
        .await
        .unwrap();
    assert_eq!(taken, Some(term + 1), "a takeover moves the term");
    let lease = store.lease().await.unwrap().unwrap();
    assert_eq!(
        (lease.holder.as_str(), lease.host.as_str(), lease.pid),
        ("b", "", 0)
    );
    assert_eq!(
        store
            .take_over_lease(&Holder::named("c"), term, ttl)
            .await
            .unwrap(),
        None,
        "b took it first: a's term is over"
    );
    assert_eq!(store.claim_lease(&a, Some(term), ttl).await.unwrap(), None);
}

/// A leader's steady cycles hand their progress (which agents were polled and when, the
/// monitor's streak) to the lease's renewal: it is written with a renewal in the same term,
/// never with a takeover nor once the term is over, and never over a later cycle's.
async fn a_renewal_writes_a_steady_cycles_progress_only_in_its_own_term_and_never_an_older_one(
    db: Db,
) {
    use ravan_watch::store::Progress;
    let store = db.open().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    let version = store.settings_version().await.unwrap();
    let progress = |minutes: i64, streak: u32| Progress {
        polled: Polled {
            version,
            started_at: now() + chrono::TimeDelta::minutes(minutes),
        },
        monitor: MonitorState {
            clean_streak: streak,
            last_good_cycle_at: Some(now() + chrono::TimeDelta::minutes(minutes)),
            ..MonitorState::default()
        },
    };
    let checked = || async {
        store
            .agent(id(A))
            .await
            .unwrap()
            .unwrap()
            .state
            .last_checked_at
    };
    let ttl = Duration::from_secs(60);
    let term = store
        .claim_lease(&Holder::named("a"), None, ttl)
        .await
        .unwrap()
        .unwrap();

    let renewed = store
        .renew_lease_with(&Holder::named("a"), term, ttl, &progress(2, 7))
        .await;
    assert_eq!(renewed.unwrap(), Some(term), "a renewal keeps the term");
    assert_eq!(checked().await, Some(now() + chrono::TimeDelta::minutes(2)));
    assert_eq!(store.monitor_state().await.unwrap(), progress(2, 7).monitor);

    // An older cycle's progress (a renewal that overtook a later commit) changes nothing.
    let renewed = store
        .renew_lease_with(&Holder::named("a"), term, ttl, &progress(1, 6))
        .await;
    assert_eq!(renewed.unwrap(), Some(term));
    assert_eq!(checked().await, Some(now() + chrono::TimeDelta::minutes(2)));
    assert_eq!(store.monitor_state().await.unwrap().clean_streak, 7);
    let saved = store
        .save_progress(Fence::Term(term), &progress(0, 1))
        .await;
    saved.unwrap();
    assert_eq!(store.monitor_state().await.unwrap().clean_streak, 7);

    // Released and taken over: the old term's progress goes nowhere, by either way.
    store.release_lease("a", term).await.unwrap();
    let taken = store
        .claim_lease(&Holder::named("b"), None, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .renew_lease_with(&Holder::named("a"), term, ttl, &progress(3, 8))
            .await
            .unwrap(),
        None,
        "a's term is over: no renewal"
    );
    assert!(matches!(
        store.save_progress(Fence::Term(term), &progress(3, 8)).await,
        Err(StoreError::Fenced(t)) if t == term
    ));
    assert_eq!(checked().await, Some(now() + chrono::TimeDelta::minutes(2)));
    assert_eq!(store.lease().await.unwrap().unwrap().holder, "b");

    // The new leader's, in its term: written.
    store
        .save_progress(Fence::Term(taken), &progress(4, 1))
        .await
        .unwrap();
    assert_eq!(checked().await, Some(now() + chrono::TimeDelta::minutes(4)));
}

/// What a fenced write could change, read through the store.
async fn everything(
    store: &Store,
) -> (
    Vec<AgentRecord>,
    Vec<ravan_watch::store::OutboxEntry>,
    MonitorState,
    Vec<ravan_watch::store::DeadWebhook>,
    i64,
) {
    (
        store.agents().await.unwrap(),
        store.outbox().await.unwrap(),
        store.monitor_state().await.unwrap(),
        store.dead_webhooks().await.unwrap(),
        store.settings_version().await.unwrap(),
    )
}

fn is_fenced<T: std::fmt::Debug>(result: Result<T, StoreError>, term: i64) -> bool {
    match result {
        Err(StoreError::Fenced(t)) => t == term,
        other => panic!("not fenced at term {term}: {other:?}"),
    }
}

/// Every write that takes a fence refuses a term that is over, and writes nothing; the current
/// term and `Fence::Unchecked` are accepted.
async fn a_write_fenced_by_an_old_term_is_refused_and_writes_nothing(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[],
            &MonitorState::default(),
            &[(down(A), vec![hook("x")])],
            now(),
        )
        .await
        .unwrap();
    let entry = store.outbox().await.unwrap()[0].id;
    let ttl = Duration::from_secs(60);
    let old = store
        .claim_lease(&Holder::named("a"), None, ttl)
        .await
        .unwrap()
        .unwrap();
    store.release_lease("a", old).await.unwrap();
    let current = store
        .claim_lease(&Holder::named("b"), None, ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(current > old);

    let before = everything(&store).await;
    let update = AgentUpdate {
        agent_id: id(A),
        state: &errored_state(),
        alerts: vec![(down(A), vec![hook("y")])],
        health: None,
    };
    let monitor = MonitorState {
        trouble_streak: 3,
        ..MonitorState::default()
    };
    let commit = async |fence| {
        store
            .commit_cycle(
                fence,
                None,
                std::slice::from_ref(&update),
                &monitor,
                &[],
                now(),
            )
            .await
    };
    let fence = Fence::Term(old);
    assert!(is_fenced(commit(fence).await, old));
    assert!(is_fenced(
        store.mark_delivered(fence, &[entry], now()).await,
        old
    ));
    assert!(is_fenced(
        store
            .schedule_retry(fence, &[entry], "HTTP 503", now())
            .await,
        old
    ));
    assert!(is_fenced(
        store.mark_failed(fence, &[entry], "gone", now()).await,
        old
    ));
    assert!(is_fenced(
        store
            .mark_webhook_dead(fence, &hook("x"), "gone", now(), None)
            .await,
        old
    ));
    assert!(is_fenced(
        store
            .apply_listing(fence, &listing(&[(B, "b")]), now())
            .await,
        old
    ));
    assert!(is_fenced(
        store.prune_outbox(fence, now(), Duration::ZERO, 10).await,
        old
    ));
    assert!(is_fenced(
        store.prune_history(fence, now(), Duration::ZERO, 10).await,
        old
    ));
    assert!(is_fenced(store.lift_expired_mutes(fence, now()).await, old));
    assert_eq!(everything(&store).await, before, "nothing written");

    for fence in [Fence::Term(current), Fence::Unchecked] {
        assert_eq!(commit(fence).await.unwrap(), 1);
        store
            .schedule_retry(fence, &[entry], "HTTP 503", now())
            .await
            .unwrap();
        store.mark_delivered(fence, &[entry], now()).await.unwrap();
        store
            .mark_failed(fence, &[entry], "gone", now())
            .await
            .unwrap();
        store
            .mark_webhook_dead(fence, &hook("x"), "gone", now(), None)
            .await
            .unwrap();
        store
            .apply_listing(fence, &listing(&[(B, "b")]), now())
            .await
            .unwrap();
    }
    assert_eq!(
        store.agent(id(A)).await.unwrap().unwrap().state,
        errored_state()
    );
    assert_eq!(store.monitor_state().await.unwrap(), monitor);
    assert_eq!(store.outbox().await.unwrap().len(), 3);
    assert_eq!(store.dead_webhooks().await.unwrap().len(), 1);
    assert!(is_watched(&store, B).await);
}

/// An alert for every one of 1,500 agents, to two webhooks each, in one commit (more rows than
/// one statement writes): every event, entry and delivery is written, in the cycle's order, and
/// the next cycle's ids come after them.
async fn a_storm_of_alerts_is_written_whole_and_in_order(db: Db) {
    let store = db.open().await;
    let agents: Vec<String> = (0..1_500).map(agent_id).collect();
    let ids: Vec<AgentId> = agents.iter().map(|a| id(a)).collect();
    store.ensure_agents(&ids, now()).await.unwrap();
    let updates: Vec<AgentUpdate> = agents
        .iter()
        .map(|a| update(a, vec![(down(a), vec![hook("a"), hook("b")])], None))
        .collect();
    let monitor = MonitorState::default();
    let written = store
        .commit_cycle(Fence::Unchecked, None, &updates, &monitor, &[], now())
        .await
        .unwrap();
    assert_eq!(written, 3_000);
    let outbox = store.outbox().await.unwrap();
    let order: Vec<(Option<AgentId>, String)> = outbox
        .iter()
        .map(|e| {
            (
                e.alert().and_then(|a| a.agent_id()).copied(),
                e.webhook.url.expose().to_string(),
            )
        })
        .collect();
    let expected: Vec<(Option<AgentId>, String)> = ids
        .iter()
        .flat_map(|a| [hook("a"), hook("b")].map(|h| (Some(*a), h.url.expose().to_string())))
        .collect();
    assert_eq!(order, expected, "entries in the cycle's order");
    assert!(
        outbox
            .windows(2)
            .all(|w| w[0].id < w[1].id && w[0].batch == w[1].batch)
    );
    let events = all_events(&store, EventsAbout::All).await;
    assert_eq!(events.len(), 1_000, "a page of them");
    assert!(events.iter().all(|e| e.deliveries.len() == 2));
    let event_of = |e: &ravan_watch::store::OutboxEntry| e.event_id.unwrap();
    assert!(
        outbox
            .windows(2)
            .all(|w| event_of(&w[0]) <= event_of(&w[1]))
    );

    let last = outbox.last().unwrap().id;
    let next = [update(
        &agents[0],
        vec![(down(&agents[0]), vec![hook("c")])],
        None,
    )];
    store
        .commit_cycle(Fence::Unchecked, None, &next, &monitor, &[], now())
        .await
        .unwrap();
    let newest = store.outbox().await.unwrap().pop().unwrap();
    assert!(newest.id > last && event_of(&newest) > event_of(outbox.last().unwrap()));
}

/// A failed statement's error names the store's operation, so a failed cycle's log line says
/// which write broke.
async fn a_database_error_names_the_operation(db: Db) {
    let store = db.open().await;
    store.close().await;
    let monitor = MonitorState::default();
    let err = store
        .commit_cycle(Fence::Unchecked, None, &[], &monitor, &[], now())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("commit the cycle: database error"),
        "{err}"
    );
    let err = store
        .mark_delivered(Fence::Unchecked, &[1], now())
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("mark delivered: "), "{err}");
    let err = store.watched().await.unwrap_err();
    assert!(
        err.to_string().starts_with("read the watched agents: "),
        "{err}"
    );
}

// ---------------------------------------------------------------- database URLs

/// A URL of no backend, and a server that cannot be reached, are errors that never show the
/// URL's password.
#[tokio::test]
async fn a_bad_or_unreachable_database_url_never_shows_its_password() {
    for url in [
        "mysql://ravan:hunter2@db.example/watch",
        "ravan:hunter2@db.example/watch",
        "hunter2",
    ] {
        let err = Store::open(url).await.err().expect(url);
        assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{url}: {err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    let port = common::free_port();
    for url in [
        format!("postgres://ravan:hunter2@127.0.0.1:{port}/watch"),
        "postgresql://ravan:hunter2@unreachable.invalid/watch".to_owned(),
    ] {
        let err = Store::open(&url).await.err().expect("unreachable");
        let shown = err.to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}

// ---------------------------------------------------------------- PostgreSQL only

mod postgres_only {
    use super::*;

    /// A wrong password is refused without the password in the error (on a server that asks
    /// for one; a `trust` server lets anyone in, and then there is nothing to check).
    #[tokio::test]
    async fn a_wrong_password_is_not_in_the_error() {
        let Some(db) = Db::postgres().await else {
            return;
        };
        let mut url = url::Url::parse(&db.url).unwrap();
        url.set_password(Some("wrong-hunter2")).unwrap();
        match Store::open(url.as_str()).await {
            Ok(_) => eprintln!("the test server trusts every password: nothing to check"),
            Err(err) => {
                assert!(!err.to_string().contains("hunter2"), "{err}");
                assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
            }
        }
    }

    /// A stored value the code cannot read is an error naming the row, as on SQLite. The
    /// column types refuse most of SQLite's cases (text in an integer column); these remain.
    #[tokio::test]
    async fn rows_that_do_not_decode_are_errors_naming_the_row() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "a time out of range",
                "UPDATE agents SET muted_until = 9223372036854775807, muted = TRUE",
                A,
            ),
            (
                "an unknown source",
                "ALTER TABLE agents DROP CONSTRAINT agents_source_check;
                 UPDATE agents SET source = 'martian'",
                A,
            ),
            (
                "an id that is not a UUID",
                "UPDATE agents SET agent_id = 'not-a-uuid'",
                "not-a-uuid",
            ),
        ];
        for (what, sql, key) in cases {
            let Some(db) = Db::postgres().await else {
                return;
            };
            let store = db.open().await;
            store.ensure_agents(&[id(A)], now()).await.unwrap();
            db.raw(sql).await;
            for result in [
                store.agent(id(A)).await.map(|_| ()),
                store.agents().await.map(|_| ()),
                store.watched_settings().await.map(|_| ()),
            ] {
                if *key != A && result.is_ok() {
                    continue; // `agent(A)` finds no row once its id is rewritten.
                }
                let err = result.expect_err(what).to_string();
                assert!(err.contains(key), "{what}: the error names the row: {err}");
            }
        }

        let Some(db) = Db::postgres().await else {
            return;
        };
        let store = db.open().await;
        store
            .mark_webhook_dead(Fence::Unchecked, &hook("x"), "gone", now(), None)
            .await
            .unwrap();
        db.raw("UPDATE dead_webhooks SET platform = 'email'").await;
        let err = store.dead_webhooks().await.expect_err("unknown platform");
        assert!(err.to_string().contains("email"), "{err}");

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
                "ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_status_check;
                 UPDATE outbox SET status = 'lost'",
            ),
            ("attempts out of range", "UPDATE outbox SET attempts = -1"),
            (
                "a time out of range",
                "UPDATE outbox SET next_attempt_at = -9223372036854775807",
            ),
        ] {
            assert_eq!(db.raw(sql).await, 1);
            let err = store.outbox().await.expect_err(what).to_string();
            assert!(
                err.contains("outbox") && err.contains("id 1"),
                "{what}: {err}"
            );
            db.raw("UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0")
                .await;
        }
        assert_eq!(
            store
                .outbox()
                .await
                .expect("restored rows read again")
                .len(),
            1
        );
    }

    /// How many connections to this database wait on a lock.
    async fn lock_waiters(conn: &mut sqlx::PgConnection) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(conn)
        .await
        .unwrap()
    }

    /// A takeover that comes while the old leader's write is in flight waits for that write
    /// (its fence check holds the lease row `FOR SHARE`); once the takeover has committed, the
    /// old term writes nothing. Never both: the write made under the old term committed before
    /// the new term began. Deterministic: the write is held mid-transaction by a lock this test
    /// takes, and each step waits for PostgreSQL to show the waiter.
    #[tokio::test]
    async fn a_takeover_waits_for_a_fenced_write_in_flight_and_fences_the_next() {
        let Some(db) = Db::postgres().await else {
            return;
        };
        let store = db.open().await;
        let watcher = tokio::sync::Mutex::new(sqlx::PgConnection::connect(&db.url).await.unwrap());
        let waiters = || async { lock_waiters(&mut *watcher.lock().await).await };
        let mut blocker = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let ttl = Duration::from_millis(300);
        let old = store
            .claim_lease(&Holder::named("a"), None, ttl)
            .await
            .unwrap()
            .unwrap();

        // The write stops at the batch number, after its fence check, until the blocker ends.
        let mut held = blocker.begin().await.unwrap();
        sqlx::query("SELECT last FROM outbox_batch_sequence WHERE id = 1 FOR UPDATE")
            .execute(&mut *held)
            .await
            .unwrap();
        let write = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .commit_cycle(
                        Fence::Term(old),
                        None,
                        &[],
                        &MonitorState::default(),
                        &[(down(A), vec![hook("x")])],
                        now(),
                    )
                    .await
            }
        });
        wait_until(Duration::from_secs(10), "the write to wait", || async {
            waiters().await >= 1
        })
        .await;
        // The lease expires by the server's clock while the write is in flight.
        wait_until(Duration::from_secs(10), "the lease to expire", || async {
            sqlx::query_scalar(
                "SELECT expires_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint
                 FROM leader_lease WHERE id = 1",
            )
            .fetch_one(&mut *watcher.lock().await)
            .await
            .unwrap()
        })
        .await;
        let takeover = tokio::spawn({
            let store = store.clone();
            async move { store.claim_lease(&Holder::named("b"), None, ttl).await }
        });
        wait_until(
            Duration::from_secs(10),
            "the takeover to wait for the write",
            || async { waiters().await >= 2 },
        )
        .await;
        assert!(!takeover.is_finished(), "the takeover waits");

        held.rollback().await.unwrap();
        assert_eq!(
            write.await.unwrap().unwrap(),
            1,
            "the write in flight commits"
        );
        let new = takeover.await.unwrap().unwrap();
        assert_eq!(new, Some(old + 1), "then the takeover");
        let late = store
            .commit_cycle(
                Fence::Term(old),
                None,
                &[],
                &MonitorState::default(),
                &[(down(A), vec![hook("x")])],
                now(),
            )
            .await;
        assert!(is_fenced(late, old));
        assert_eq!(
            store.outbox().await.unwrap().len(),
            1,
            "the first write only"
        );
    }

    /// `copy-db` into PostgreSQL: a snapshot written into an empty database reads back equal
    /// (ids, versions, batches, states and all), new rows continue after the copied ones, and
    /// a database that holds anything is refused.
    #[tokio::test]
    async fn a_copy_round_trips_and_refuses_a_database_that_is_not_empty() {
        let Some(from) = Db::postgres().await else {
            return;
        };
        let source = from.open().await;
        source.ensure_agents(&[id(A)], now()).await.unwrap();
        let new = NewAgent {
            name: Some("Sales".into()),
            slack_webhook_url: Some("https://hooks.slack.com/services/T/B/own".parse().unwrap()),
            muted: true,
            muted_until: Some(now() + chrono::Duration::hours(2)),
            ..NewAgent::default()
        };
        source.insert_agent(id(B), &new, now()).await.unwrap();
        apply(&source, &[(A, "Alpha"), (C, "Gamma")]).await;
        apply(&source, &[(A, "Alpha")]).await; // C absent once
        source.delete_agent(id(B), now()).await.unwrap();
        source.insert_agent(id(B), &new, now()).await.unwrap();
        source
            .ensure_agents(&[id(&agent_id(7))], now())
            .await
            .unwrap();
        source.delete_agent(id(&agent_id(7)), now()).await.unwrap();
        let snapshot = source.watched_settings().await.unwrap();
        let update = AgentUpdate {
            agent_id: id(A),
            state: &errored_state(),
            alerts: vec![(down(A), vec![hook("x"), hook("y")])],
            health: None,
        };
        commit_polled(&source, snapshot.version, now(), update).await;
        let monitor = MonitorState {
            trouble_streak: 2,
            ..MonitorState::default()
        };
        source
            .commit_cycle(
                Fence::Unchecked,
                None,
                &[],
                &monitor,
                &[(down(B), vec![hook("z")])],
                now(),
            )
            .await
            .unwrap();
        let ids: Vec<i64> = source
            .outbox()
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        source
            .mark_delivered(Fence::Unchecked, &ids[..1], now())
            .await
            .unwrap();
        source
            .schedule_retry(Fence::Unchecked, &ids[1..2], "HTTP 503", now())
            .await
            .unwrap();
        source
            .mark_webhook_dead(Fence::Unchecked, &hook("dead"), "no_service", now(), None)
            .await
            .unwrap();
        let exported = source.export().await.unwrap();
        assert_eq!(exported.agents.len(), 3);
        assert_eq!(exported.outbox.len(), 3);
        assert!(exported.monitor.is_some());

        let to = Db::postgres().await.unwrap();
        let target = to.open().await;
        target.import(&exported).await.unwrap();
        assert_eq!(
            target.export().await.unwrap(),
            exported,
            "the same, read back"
        );
        assert_eq!(
            target.agents().await.unwrap(),
            source.agents().await.unwrap()
        );
        assert_eq!(
            target.settings_version().await.unwrap(),
            exported.settings_version
        );
        // New rows continue after the copied ones.
        target
            .commit_cycle(
                Fence::Unchecked,
                None,
                &[],
                &monitor,
                &[(down(A), vec![hook("x")])],
                now(),
            )
            .await
            .unwrap();
        let last = target.outbox().await.unwrap().pop().unwrap();
        assert!(last.id > *ids.last().unwrap());
        assert_eq!(last.batch, exported.last_batch + 1);
        let fresh = agent_id(8);
        target.ensure_agents(&[id(&fresh)], now()).await.unwrap();
        assert!(
            watched_agent(&target, &fresh).await.added_version > exported.settings_version,
            "settings versions continue"
        );

        // Anything in the target is refused, and nothing is written.
        let err = target.import(&exported).await.expect_err("not empty");
        assert!(matches!(err, StoreError::NotEmpty(_)), "{err}");
        let only_dead = Db::postgres().await.unwrap();
        let store = only_dead.open().await;
        store
            .mark_webhook_dead(Fence::Unchecked, &hook("dead"), "no_service", now(), None)
            .await
            .unwrap();
        match store.import(&exported).await {
            Err(StoreError::NotEmpty(what)) => assert!(what.contains("dead webhook"), "{what}"),
            other => panic!("imported into a database with a dead webhook: {other:?}"),
        }
        assert!(store.agents().await.unwrap().is_empty());
    }
}

// ---------------------------------------------------------------- history (issue 15)

/// Every event, newest first (a page large enough for these tests).
async fn all_events(store: &Store, about: EventsAbout) -> Vec<Event> {
    store
        .events(&EventQuery {
            about,
            before: None,
            limit: 1_000,
        })
        .await
        .unwrap()
}

/// A commit of one agent's update, nothing else.
async fn commit_update(
    store: &Store,
    fence: Fence,
    update: AgentUpdate<'_>,
) -> Result<usize, StoreError> {
    store
        .commit_cycle(fence, None, &[update], &MonitorState::default(), &[], now())
        .await
}

/// The state every [`update`] carries (`errored_state` is fixed: `now` is noon).
static ERRORED: std::sync::LazyLock<AgentState> = std::sync::LazyLock::new(errored_state);

/// An update of `agent` with `alerts` and the health edge `health`.
fn update(agent: &str, alerts: Vec<Routed>, health: Option<HealthEdge>) -> AgentUpdate<'static> {
    AgentUpdate {
        agent_id: id(agent),
        state: &ERRORED,
        alerts,
        health,
    }
}

fn edge(hours: i64, healthy: Option<bool>) -> HealthEdge {
    let at = now() + chrono::Duration::hours(hours);
    HealthEdge {
        at,
        healthy,
        closes_at: at,
    }
}

fn interval(healthy: bool, start: i64, end: Option<i64>) -> HealthInterval {
    HealthInterval {
        healthy,
        start: now() + chrono::Duration::hours(start),
        end: end.map(|h| now() + chrono::Duration::hours(h)),
    }
}

/// How many rows `table` holds, read past the store.
async fn count(db: &Db, table: &str) -> usize {
    db.strings(&format!("SELECT CAST(COUNT(*) AS TEXT) FROM {table}"))
        .await[0]
        .parse()
        .unwrap()
}

/// A cycle's alert is one event, written with the outbox entries: one pending delivery per
/// webhook, the webhook masked (its secret never reaches the log), each entry naming it.
async fn a_cycle_writes_one_event_per_alert_with_a_pending_delivery_per_webhook(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    let hooks = vec![hook("secret-one"), hook("secret-two")];
    let written = commit_update(
        &store,
        Fence::Unchecked,
        update(A, vec![(down(A), hooks)], None),
    )
    .await
    .unwrap();
    assert_eq!(written, 2);

    let events = all_events(&store, EventsAbout::All).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    let added = store.agent(id(A)).await.unwrap().unwrap().added_version;
    assert_eq!(event.at, down(A).at());
    assert_eq!(event.agent_id, Some(id(A)));
    assert_eq!(event.kind, "down");
    assert_eq!(
        (event.from_status.as_deref(), event.to_status.as_deref()),
        (Some("active"), Some("errored"))
    );
    assert_eq!(event.summary, down(A).summary());
    assert_eq!(event.deliveries.len(), 2);
    for d in &event.deliveries {
        assert_eq!(d.platform, Platform::Slack);
        assert_eq!(d.webhook, "https://hooks.slack.com/services/T/B/***");
        assert_eq!(
            (d.outcome, d.at, d.error.as_deref()),
            (OutboxStatus::Pending, None, None)
        );
    }
    let stored = db.strings("SELECT webhook FROM event_deliveries").await;
    assert_eq!(stored.len(), 2);
    assert!(
        stored.iter().all(|w| !w.contains("secret")),
        "the secret is stored: {stored:?}"
    );
    let versions = db
        .strings("SELECT CAST(agent_version AS TEXT) FROM events")
        .await;
    assert_eq!(versions, vec![added.to_string()]);
    let outbox = store.outbox().await.unwrap();
    assert!(
        outbox.iter().all(|e| e.event_id == Some(event.id)),
        "{outbox:?}"
    );
}

/// A delivery moves with its outbox entry's marks, and stays after the outbox forgets it.
async fn deliveries_follow_their_outbox_entries_and_outlive_them(db: Db) {
    let store = db.open().await;
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[],
            &MonitorState::default(),
            &[(down(A), vec![hook("a"), hook("b"), hook("c")])],
            now(),
        )
        .await
        .unwrap();
    let ids: Vec<i64> = store.outbox().await.unwrap().iter().map(|e| e.id).collect();
    let later = now() + chrono::Duration::minutes(5);
    store
        .schedule_retry(Fence::Unchecked, &ids[..2], "HTTP 503", later)
        .await
        .unwrap();
    let deliveries = all_events(&store, EventsAbout::All).await[0]
        .deliveries
        .clone();
    for d in &deliveries[..2] {
        assert_eq!(
            (d.outcome, d.at, d.error.as_deref()),
            (OutboxStatus::Pending, None, Some("HTTP 503"))
        );
    }
    assert_eq!(deliveries[2].error, None);

    store
        .mark_delivered(Fence::Unchecked, &ids[..1], later)
        .await
        .unwrap();
    store
        .mark_failed(Fence::Unchecked, &ids[1..2], "HTTP 404: no_service", later)
        .await
        .unwrap();
    let deliveries = all_events(&store, EventsAbout::All).await[0]
        .deliveries
        .clone();
    assert_eq!(
        deliveries
            .iter()
            .map(|d| (d.outcome, d.at, d.error.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            (OutboxStatus::Delivered, Some(later), None),
            (
                OutboxStatus::Failed,
                Some(later),
                Some("HTTP 404: no_service")
            ),
            (OutboxStatus::Pending, None, None),
        ]
    );

    let pruned = store
        .prune_outbox(
            Fence::Unchecked,
            later + chrono::Duration::days(30),
            Duration::from_secs(60),
            10,
        )
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    assert_eq!(store.outbox().await.unwrap().len(), 1);
    assert_eq!(
        all_events(&store, EventsAbout::All).await[0].deliveries,
        deliveries,
        "deliveries outlive their outbox entries"
    );
}

/// The monitor's alerts are events about no agent; an alert routed nowhere is still an event,
/// without deliveries.
async fn monitor_alerts_and_alerts_routed_nowhere_are_events_too(db: Db) {
    let store = db.open().await;
    let written = store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[],
            &MonitorState::default(),
            &[
                (monitor_down("every poll fails"), vec![hook("m")]),
                (down(A), vec![]),
            ],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(written, 1);
    let monitor = all_events(&store, EventsAbout::Monitor).await;
    assert_eq!(monitor.len(), 1);
    assert_eq!(monitor[0].agent_id, None);
    assert_eq!(monitor[0].kind, "monitor_down");
    assert_eq!(
        (monitor[0].from_status.clone(), monitor[0].to_status.clone()),
        (None, None)
    );
    assert_eq!(
        monitor[0].summary,
        monitor_down("every poll fails").summary()
    );
    assert_eq!(monitor[0].deliveries.len(), 1);
    let about_a = all_events(&store, EventsAbout::Agent(id(A))).await;
    assert_eq!(about_a.len(), 1);
    assert!(about_a[0].deliveries.is_empty());
    assert_eq!(all_events(&store, EventsAbout::All).await.len(), 2);
    assert_eq!(
        db.strings("SELECT CAST(COUNT(*) AS TEXT) FROM events WHERE agent_id IS NULL")
            .await,
        vec!["1"]
    );
}

/// The id and end of every interval row, read past the store.
async fn interval_rows(db: &Db) -> Vec<String> {
    db.strings(
        "SELECT CAST(id AS TEXT) || ':' || CAST(COALESCE(ended_at, -1) AS TEXT)
         FROM health_intervals ORDER BY id",
    )
    .await
}

/// An edge closes the open interval and opens one of the health observed; a failed poll only
/// closes; a commit without an edge leaves the rows alone.
async fn health_edges_open_and_close_intervals_and_steady_commits_leave_them(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(A), id(B)], now()).await.unwrap();
    let long_ago = now() - chrono::Duration::days(365);
    commit_update(
        &store,
        Fence::Unchecked,
        update(A, vec![], Some(edge(0, Some(true)))),
    )
    .await
    .unwrap();
    assert_eq!(
        store
            .agent_health_intervals(&id(A), long_ago)
            .await
            .unwrap(),
        vec![interval(true, 0, None)]
    );
    commit_update(
        &store,
        Fence::Unchecked,
        update(A, vec![], Some(edge(2, Some(false)))),
    )
    .await
    .unwrap();
    let two = vec![interval(true, 0, Some(2)), interval(false, 2, None)];
    assert_eq!(
        store
            .agent_health_intervals(&id(A), long_ago)
            .await
            .unwrap(),
        two
    );

    let rows = interval_rows(&db).await;
    let streak_of_7 = AgentState {
        health_streak: 7,
        ..errored_state()
    };
    let steady = AgentUpdate {
        state: &streak_of_7,
        ..update(A, vec![], None)
    };
    commit_update(&store, Fence::Unchecked, steady)
        .await
        .unwrap();
    assert_eq!(
        store
            .agent(id(A))
            .await
            .unwrap()
            .unwrap()
            .state
            .health_streak,
        7
    );
    assert_eq!(interval_rows(&db).await, rows, "no interval row written");

    commit_update(
        &store,
        Fence::Unchecked,
        update(A, vec![], Some(edge(3, None))),
    )
    .await
    .unwrap();
    assert_eq!(
        store
            .agent_health_intervals(&id(A), long_ago)
            .await
            .unwrap(),
        vec![interval(true, 0, Some(2)), interval(false, 2, Some(3))],
        "a failed poll closes and opens nothing"
    );
    commit_update(
        &store,
        Fence::Unchecked,
        update(B, vec![], Some(edge(1, Some(true)))),
    )
    .await
    .unwrap();
    // Since 2 h: the interval that ended then is not shown.
    let since = now() + chrono::Duration::hours(2);
    assert_eq!(
        store.health_intervals(since).await.unwrap(),
        vec![
            (id(A), interval(false, 2, Some(3))),
            (id(B), interval(true, 1, None)),
        ]
    );
    assert_eq!(
        store.agent_health_intervals(&id(A), since).await.unwrap(),
        vec![interval(false, 2, Some(3))]
    );
    assert_eq!(store.health_intervals(long_ago).await.unwrap().len(), 3);

    // Polling resumed after a gap: B's open interval ends at the poll before it (5 h), and a
    // new one begins at the poll after it (9 h).
    let resumed = HealthEdge {
        closes_at: now() + chrono::Duration::hours(5),
        ..edge(9, Some(true))
    };
    commit_update(&store, Fence::Unchecked, update(B, vec![], Some(resumed)))
        .await
        .unwrap();
    assert_eq!(
        store
            .agent_health_intervals(&id(B), long_ago)
            .await
            .unwrap(),
        vec![interval(true, 1, Some(5)), interval(true, 9, None)]
    );
}

/// A commit fenced by an old term, and the updates of an agent removed (or removed and added
/// again) while its cycle ran, write no event, no delivery and no interval.
async fn fenced_commits_and_removed_agents_write_no_event_and_no_interval(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    let ttl = Duration::from_secs(60);
    let old = store
        .claim_lease(&Holder::named("a"), None, ttl)
        .await
        .unwrap()
        .unwrap();
    store.release_lease("a", old).await.unwrap();
    store
        .claim_lease(&Holder::named("b"), None, ttl)
        .await
        .unwrap()
        .unwrap();
    let alerting = || {
        update(
            A,
            vec![(down(A), vec![hook("x")])],
            Some(edge(0, Some(false))),
        )
    };
    assert!(is_fenced(
        commit_update(&store, Fence::Term(old), alerting()).await,
        old
    ));
    assert!(all_events(&store, EventsAbout::All).await.is_empty());
    assert_eq!(count(&db, "event_deliveries").await, 0);
    assert_eq!(count(&db, "health_intervals").await, 0);

    // Removed and added again after the cycle read the agents.
    let version = store.settings_version().await.unwrap();
    store.delete_agent(id(A), now()).await.unwrap();
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    assert_eq!(commit_polled(&store, version, now(), alerting()).await, 0);
    // Removed.
    store.delete_agent(id(A), now()).await.unwrap();
    assert_eq!(
        commit_update(&store, Fence::Unchecked, alerting())
            .await
            .unwrap(),
        0
    );
    assert!(all_events(&store, EventsAbout::All).await.is_empty());
    assert_eq!(count(&db, "health_intervals").await, 0);

    // A fenced mark leaves the delivery as it was.
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &[],
            &MonitorState::default(),
            &[(down(A), vec![hook("x")])],
            now(),
        )
        .await
        .unwrap();
    let entry = store.outbox().await.unwrap()[0].id;
    assert!(is_fenced(
        store
            .mark_delivered(Fence::Term(old), &[entry], now())
            .await,
        old
    ));
    assert!(is_fenced(
        store
            .mark_failed(Fence::Term(old), &[entry], "x", now())
            .await,
        old
    ));
    assert!(is_fenced(
        store
            .schedule_retry(Fence::Term(old), &[entry], "x", now())
            .await,
        old
    ));
    let d = &all_events(&store, EventsAbout::All).await[0].deliveries[0];
    assert_eq!(
        (d.outcome, d.error.as_deref()),
        (OutboxStatus::Pending, None)
    );
}

/// Pages: newest first, `before` the last id seen, at most `limit`; each event with its own
/// deliveries.
async fn events_come_newest_first_a_page_at_a_time(db: Db) {
    let store = db.open().await;
    for i in 0..5 {
        let hooks: Vec<Webhook> = (0..i % 3).map(|k| hook(&format!("h{i}-{k}"))).collect();
        store
            .commit_cycle(
                Fence::Unchecked,
                None,
                &[],
                &MonitorState::default(),
                &[(monitor_down(&format!("reason {i}")), hooks)],
                now(),
            )
            .await
            .unwrap();
    }
    let page = async |before: Option<i64>, limit: u32| {
        store
            .events(&EventQuery {
                about: EventsAbout::All,
                before,
                limit,
            })
            .await
            .unwrap()
    };
    let all = page(None, 100).await;
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    for (n, e) in all.iter().enumerate() {
        let i = 4 - n;
        assert_eq!(e.summary, monitor_down(&format!("reason {i}")).summary());
        assert_eq!(e.deliveries.len(), i % 3, "event {i}'s own deliveries");
    }
    let first = page(None, 2).await;
    assert_eq!(first, all[..2]);
    let second = page(Some(first[1].id), 2).await;
    assert_eq!(second, all[2..4]);
    let third = page(Some(second[1].id), 2).await;
    assert_eq!(third, all[4..]);
    assert!(page(Some(third[0].id), 2).await.is_empty());
    assert!(page(None, 0).await.is_empty());
}

/// `Watched` shows the agent as watched now; `Agent` and `All` every event, also from an
/// earlier watch. Removal (over the API or by watch-all) deletes the intervals, not the events.
async fn watched_events_are_the_current_watchs_and_removal_deletes_intervals(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    commit_update(
        &store,
        Fence::Unchecked,
        update(
            A,
            vec![(down(A), vec![hook("x")])],
            Some(edge(0, Some(false))),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        all_events(&store, EventsAbout::Watched(id(A))).await.len(),
        1
    );
    store.delete_agent(id(A), now()).await.unwrap();
    assert_eq!(
        count(&db, "health_intervals").await,
        0,
        "intervals go with the agent"
    );
    assert!(
        store
            .agent_health_intervals(&id(A), now() - chrono::Duration::days(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        all_events(&store, EventsAbout::Watched(id(A)))
            .await
            .is_empty(),
        "not watched"
    );
    assert_eq!(
        all_events(&store, EventsAbout::Agent(id(A))).await.len(),
        1,
        "events stay"
    );

    store
        .insert_agent(id(A), &NewAgent::default(), now())
        .await
        .unwrap();
    let recovered = Alert::Agent(common::alerts::agent_alert(
        AgentAlertKind::Recovered,
        A,
        None,
        ("errored", "active"),
        now() + chrono::Duration::hours(1),
    ));
    commit_update(
        &store,
        Fence::Unchecked,
        update(A, vec![(recovered, vec![])], None),
    )
    .await
    .unwrap();
    let watched = all_events(&store, EventsAbout::Watched(id(A))).await;
    assert_eq!(
        watched.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        vec!["recovered"]
    );
    let every = all_events(&store, EventsAbout::Agent(id(A))).await;
    assert_eq!(
        every.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        vec!["recovered", "down"]
    );
    assert_eq!(all_events(&store, EventsAbout::All).await, every);
    assert!(
        all_events(&store, EventsAbout::Agent(id(B)))
            .await
            .is_empty()
    );

    // Watch-all unwatching a discovered agent deletes its intervals too.
    apply(&store, &[(B, "b")]).await;
    commit_update(
        &store,
        Fence::Unchecked,
        update(B, vec![], Some(edge(0, Some(true)))),
    )
    .await
    .unwrap();
    assert_eq!(count(&db, "health_intervals").await, 1);
    apply(&store, &[]).await;
    let removed = apply(&store, &[]).await.removed;
    assert_eq!(removed, vec![id(B)]);
    assert_eq!(count(&db, "health_intervals").await, 0);
}

/// Events older than the retention go with their deliveries, and closed intervals that ended
/// before it; open intervals and recent rows stay. In batches, however many there are.
async fn prune_history_deletes_old_events_and_closed_intervals_in_batches(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(A), id(B)], now()).await.unwrap();
    let day = chrono::Duration::days(1);
    for d in 1..=10 {
        let alert = Alert::Monitor(monitor_alert(MonitorAlertKind::Down, "x", now() - day * d));
        store
            .commit_cycle(
                Fence::Unchecked,
                None,
                &[],
                &MonitorState::default(),
                &[(alert, vec![hook("a"), hook("b")])],
                now(),
            )
            .await
            .unwrap();
    }
    for (days, healthy) in [(10, true), (8, false), (6, true), (3, false)] {
        let edge = HealthEdge {
            at: now() - day * days,
            healthy: Some(healthy),
            closes_at: now() - day * days,
        };
        commit_update(&store, Fence::Unchecked, update(A, vec![], Some(edge)))
            .await
            .unwrap();
    }
    let edge = HealthEdge {
        at: now() - day * 20,
        healthy: Some(true),
        closes_at: now() - day * 20,
    };
    commit_update(&store, Fence::Unchecked, update(B, vec![], Some(edge)))
        .await
        .unwrap();
    assert_eq!(count(&db, "health_intervals").await, 5);

    let retention = Duration::from_secs(5 * 86_400);
    let deleted = store
        .prune_history(Fence::Unchecked, now(), retention, 2)
        .await
        .unwrap();
    assert_eq!(deleted, 5, "the events of days 6 to 10");
    let left = all_events(&store, EventsAbout::All).await;
    assert_eq!(left.len(), 5);
    assert!(left.iter().all(|e| e.at >= now() - day * 5));
    assert!(left.iter().all(|e| e.deliveries.len() == 2));
    assert_eq!(
        count(&db, "event_deliveries").await,
        10,
        "theirs gone with them"
    );
    let long_ago = now() - day * 365;
    assert_eq!(
        store
            .agent_health_intervals(&id(A), long_ago)
            .await
            .unwrap(),
        vec![
            HealthInterval {
                healthy: true,
                start: now() - day * 6,
                end: Some(now() - day * 3),
            },
            HealthInterval {
                healthy: false,
                start: now() - day * 3,
                end: None,
            },
        ]
    );
    assert_eq!(
        store
            .agent_health_intervals(&id(B), long_ago)
            .await
            .unwrap()
            .len(),
        1,
        "open, however old"
    );
    assert_eq!(
        store
            .prune_history(Fence::Unchecked, now(), retention, 2)
            .await
            .unwrap(),
        0
    );
    assert_eq!(count(&db, "health_intervals").await, 3);
}

/// A history row the code cannot read is an error naming the row, never a panic.
async fn unreadable_history_is_an_error_naming_the_row(db: Db) {
    let store = db.open().await;
    store.ensure_agents(&[id(A)], now()).await.unwrap();
    commit_update(
        &store,
        Fence::Unchecked,
        update(
            A,
            vec![(down(A), vec![hook("x")])],
            Some(edge(0, Some(true))),
        ),
    )
    .await
    .unwrap();
    let unchecked = |table: &str, column: &str, sql: &str| {
        if db.is_postgres() {
            format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_{column}_check; {sql}")
        } else {
            format!("PRAGMA ignore_check_constraints = ON; {sql}")
        }
    };
    let cases = [
        (
            "UPDATE events SET kind = 'exploded'".to_owned(),
            "event id 1",
            "exploded",
        ),
        (
            unchecked(
                "event_deliveries",
                "outcome",
                "UPDATE event_deliveries SET outcome = 'lost'",
            ),
            "outbox_id 1",
            "lost",
        ),
        (
            unchecked(
                "event_deliveries",
                "platform",
                "UPDATE event_deliveries SET platform = 'email'",
            ),
            "outbox_id 1",
            "email",
        ),
    ];
    for (sql, key, value) in cases {
        assert_eq!(db.raw(&sql).await, 1, "{sql}");
        match store
            .events(&EventQuery {
                about: EventsAbout::All,
                before: None,
                limit: 10,
            })
            .await
        {
            Err(StoreError::Corrupt(why)) => {
                assert!(why.contains(key) && why.contains(value), "{sql}: {why}")
            }
            other => panic!("{sql}: not a corrupt row: {other:?}"),
        }
        db.raw("UPDATE events SET kind = 'down'").await;
        db.raw("UPDATE event_deliveries SET outcome = 'pending', platform = 'slack'")
            .await;
    }
    assert_eq!(
        all_events(&store, EventsAbout::All).await.len(),
        1,
        "restored"
    );

    db.raw("UPDATE health_intervals SET started_at = 9223372036854775807")
        .await;
    for result in [
        store.health_intervals(now()).await.map(|_| ()),
        store
            .agent_health_intervals(&id(A), now())
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(StoreError::Corrupt(why)) => assert!(why.contains("health interval id 1"), "{why}"),
            other => panic!("not a corrupt row: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------- integrations

/// The organisation's Cal.com, alerted down since noon, its token's expiry kept.
fn calcom_down_state() -> IntegrationState {
    IntegrationState {
        status: Some("errored".into()),
        healthy: Some(false),
        detail: Some("Token refresh failed".into()),
        since: Some(now()),
        health_streak: 2,
        status_before_run: Some("active".into()),
        seen_healthy: true,
        outage: Some(IntegrationOutage {
            since: now(),
            alerted_status: "errored".into(),
        }),
        last_checked_at: Some(now() + chrono::Duration::minutes(1)),
        last_error: None,
        token_expires: Some(now() + chrono::Duration::days(2)),
        token_seen_since: Some(now() - chrono::Duration::days(1)),
        token_expired_seen_at: None,
        token_warned_for: Some(now() + chrono::Duration::days(2)),
        held: vec![ravan_watch::domain::alert::AgentRef {
            id: id(A),
            name: Some("Sales line".into()),
        }],
    }
}

fn integration_alert(kind: IntegrationAlertKind, name: IntegrationName) -> Alert {
    Alert::Integration(IntegrationAlert {
        kind,
        integration: name,
        from: Some("active".into()),
        status: "errored".into(),
        detail: Some("Token refresh failed".into()),
        at: now(),
        since: now(),
        token_expires: None,
        affected: vec![],
        affected_count: 0,
        org_linked: None,
    })
}

async fn an_integrations_state_and_its_alerts_are_written_together_and_survive_a_reopen(db: Db) {
    let store = db.open().await;
    assert!(
        store.integrations().await.unwrap().is_empty(),
        "none checked"
    );
    let ghl = IntegrationState {
        status: Some("not_connected".into()),
        healthy: Some(false),
        last_checked_at: Some(now()),
        ..IntegrationState::default()
    };
    // Written in the other order: read back by name.
    let none = store
        .save_integration(Fence::Unchecked, IntegrationName::Ghl, &ghl, &[], now())
        .await
        .unwrap();
    assert_eq!(none, 0);
    assert_eq!(count(&db, "events").await, 0, "no alert, no event");
    let down = integration_alert(IntegrationAlertKind::Down, IntegrationName::CalcomOrg);
    let queued = store
        .save_integration(
            Fence::Unchecked,
            IntegrationName::CalcomOrg,
            &calcom_down_state(),
            &[(down.clone(), vec![hook("a"), hook("b")])],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(queued, 2, "one entry per destination");
    drop(store);

    let store = db.open().await;
    let expected = vec![
        (IntegrationName::CalcomOrg, calcom_down_state()),
        (IntegrationName::Ghl, ghl.clone()),
    ];
    assert_eq!(
        store.integrations().await.unwrap(),
        expected,
        "after a reopen"
    );
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox.len(), 2);
    assert!(
        outbox.iter().all(|e| e.alert() == Some(&down)),
        "{outbox:?}"
    );
    let events = all_events(&store, EventsAbout::All).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.kind, "integration_down");
    assert_eq!(event.integration.as_deref(), Some("calcom_org"));
    assert_eq!(event.agent_id, None);
    assert_eq!(event.webhook, None);
    assert_eq!(
        (event.from_status.as_deref(), event.to_status.as_deref()),
        (Some("active"), Some("errored"))
    );
    assert_eq!(event.summary, down.summary());
    assert_eq!(event.deliveries.len(), 2);

    // A later write replaces the state; its recovery is a second event, in a batch of its own.
    let recovered = IntegrationState {
        outage: None,
        healthy: Some(true),
        status: Some("active".into()),
        ..calcom_down_state()
    };
    let up = integration_alert(IntegrationAlertKind::Recovered, IntegrationName::CalcomOrg);
    store
        .save_integration(
            Fence::Unchecked,
            IntegrationName::CalcomOrg,
            &recovered,
            &[(up, vec![hook("a")])],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.integrations().await.unwrap(),
        vec![
            (IntegrationName::CalcomOrg, recovered),
            (IntegrationName::Ghl, ghl)
        ]
    );
    let batches: Vec<i64> = store
        .outbox()
        .await
        .unwrap()
        .iter()
        .map(|e| e.batch)
        .collect();
    assert_eq!(batches.len(), 3);
    assert!(batches[2] > batches[0], "{batches:?}");
    let kinds: Vec<String> = all_events(&store, EventsAbout::All)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["integration_recovered", "integration_down"],
        "newest first"
    );
}

async fn an_integration_write_fenced_by_an_old_term_writes_nothing(db: Db) {
    let store = db.open().await;
    let ttl = Duration::from_secs(60);
    let old = store
        .claim_lease(&Holder::named("a"), None, ttl)
        .await
        .unwrap()
        .unwrap();
    store.release_lease("a", old).await.unwrap();
    let current = store
        .claim_lease(&Holder::named("b"), None, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(old, current);
    let down = integration_alert(IntegrationAlertKind::Down, IntegrationName::CalcomOrg);
    let refused = store
        .save_integration(
            Fence::Term(old),
            IntegrationName::CalcomOrg,
            &calcom_down_state(),
            &[(down.clone(), vec![hook("a")])],
            now(),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Fenced(t)) if t == old),
        "{refused:?}"
    );
    assert!(store.integrations().await.unwrap().is_empty());
    assert_eq!(count(&db, "events").await, 0);
    assert!(store.outbox().await.unwrap().is_empty());
    // The current term writes.
    store
        .save_integration(
            Fence::Term(current),
            IntegrationName::CalcomOrg,
            &calcom_down_state(),
            &[(down, vec![hook("a")])],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(store.integrations().await.unwrap().len(), 1);
    assert_eq!(store.outbox().await.unwrap().len(), 1);
}

async fn an_unreadable_integration_state_is_an_error_naming_it(db: Db) {
    let store = db.open().await;
    store
        .save_integration(
            Fence::Unchecked,
            IntegrationName::Ghl,
            &IntegrationState::default(),
            &[],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        db.raw("UPDATE integrations SET state = 'not json'").await,
        1
    );
    match store.integrations().await {
        Err(StoreError::Corrupt(why)) => assert!(why.contains("integration \"ghl\""), "{why}"),
        other => panic!("{other:?}"),
    }
    // A name no integration has cannot be stored at all.
    let refused = db
        .raw_result("INSERT INTO integrations (name, state) VALUES ('zoom', '{}')")
        .await;
    assert!(
        refused.is_err(),
        "the CHECK constraint refuses it: {refused:?}"
    );
    assert_eq!(count(&db, "integrations").await, 1);
}
