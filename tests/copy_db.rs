//! `ravan-watch copy-db FROM_URL TO_URL`: the binary as operators run it (exit statuses, one
//! line, no password printed), and the data through the store (the copy equals the source and
//! keeps working).

mod common;

use std::process::Output;

use chrono::{DateTime, Duration, Utc};
use ravan_watch::domain::alert::{
    IntegrationAlert, IntegrationAlertKind, IntegrationName, MonitorAlertKind,
};
use ravan_watch::domain::maintenance::WindowRequest;
use ravan_watch::domain::{Alert, HealthEdge, MaintenanceWindow, Observation, Platform, Webhook};
use ravan_watch::store::{
    AgentUpdate, EventQuery, EventsAbout, Fence, NewAgent, OutboxStatus, Polled, Snapshot, Source,
    Store, StoreError,
};
use ravan_watch::tracker::{AgentState, IntegrationState, MonitorState, OpenOutage};

use common::alerts::{agent_down, monitor_alert, noon, webhook};
use common::bin::run_bin;
use common::ids::{agent_id, id};
use common::{AGENT_A as A, AGENT_B as B, AGENT_C as C};

fn default_slack() -> Webhook {
    webhook(
        Platform::Slack,
        "https://hooks.slack.com/services/T/B/default",
    )
}

fn own_slack() -> Webhook {
    webhook(Platform::Slack, "https://hooks.slack.com/services/T/B/own")
}

fn own_discord() -> Webhook {
    webhook(Platform::Discord, "https://discord.com/api/webhooks/1/own")
}

/// A Teams Workflows webhook: its `sig` query is the secret.
fn own_signed() -> Webhook {
    webhook(
        Platform::Webhook,
        "https://hooks.example.com/ravan/SIGNEDPATH",
    )
}

fn own_teams() -> Webhook {
    webhook(
        Platform::Teams,
        "https://prod-12.westus.logic.azure.com/workflows/w1/triggers/manual/paths/invoke?api-version=2016-06-01&sig=TEAMSSIG",
    )
}

/// An agent `cycle` cycles into an alerted outage.
fn errored(cycle: u32, at: DateTime<Utc>) -> AgentState {
    AgentState {
        last: Some(Observation {
            status: "errored".into(),
            connected: false,
            accounts: vec![],
            connection: None,
        }),
        observed_at: Some(at),
        health_streak: cycle + 1,
        health_since: Some(noon()),
        status_streak: cycle + 1,
        outage: Some(OpenOutage {
            alerted_status: "errored".into(),
            since: noon(),
            last_notified_at: at,
        }),
        last_checked_at: Some(at),
        ..AgentState::default()
    }
}

/// A database with a bit of everything: agents from the env, the API (muted, with its own
/// webhooks) and the listing (one missed by the last listing), an unwatched agent, three
/// committed cycles with agent and monitor alerts, entries delivered, failed and pending (one
/// retried), and a dead webhook.
async fn populate(url: &str) -> Store {
    let store = Store::open(url).await.unwrap();
    let t = noon();
    store.ensure_agents(&[id(A)], t).await.unwrap();
    store
        .insert_agent(
            id(B),
            &NewAgent {
                name: Some("Sales".into()),
                slack_webhook_url: Some(own_slack().url.expose().clone()),
                discord_webhook_url: Some(own_discord().url.expose().clone()),
                teams_webhook_url: Some(own_teams().url.expose().clone()),
                webhook_url: Some(own_signed().url.expose().clone()),
                muted: true,
                muted_until: Some(t + Duration::days(1)),
            },
            t + Duration::seconds(1),
        )
        .await
        .unwrap();
    let (support, ops) = (id(&agent_id(1)), id(&agent_id(2)));
    store
        .apply_listing(
            Fence::Unchecked,
            &[(support, Some("Support".into())), (ops, Some("Ops".into()))],
            t + Duration::seconds(2),
        )
        .await
        .unwrap();
    store
        .apply_listing(
            Fence::Unchecked,
            &[(support, Some("Support desk".into()))],
            t + Duration::seconds(3),
        )
        .await
        .unwrap();
    store
        .insert_agent(id(C), &NewAgent::default(), t)
        .await
        .unwrap();
    assert!(
        store
            .delete_agent(id(C), t + Duration::seconds(4))
            .await
            .unwrap()
    );

    for cycle in 0..3u32 {
        let at = t + Duration::minutes(i64::from(cycle) + 1);
        let version = store.settings_version().await.unwrap();
        let updates = [
            AgentUpdate {
                agent_id: id(A),
                state: &errored(cycle, at),
                alerts: vec![(agent_down(A, None), vec![default_slack()])],
                // Unhealthy, a failed poll, healthy again: a closed interval and an open one.
                health: Some(HealthEdge {
                    at,
                    healthy: [Some(false), None, Some(true)][cycle as usize],
                    closes_at: at,
                }),
            },
            AgentUpdate {
                agent_id: id(B),
                state: &errored(cycle, at),
                alerts: vec![(
                    agent_down(B, Some("Sales")),
                    vec![own_slack(), own_discord()],
                )],
                health: (cycle == 0).then_some(HealthEdge {
                    at,
                    healthy: Some(false),
                    closes_at: at,
                }),
            },
        ];
        let monitor = MonitorState {
            trouble_streak: cycle,
            trouble_since: Some(t),
            ..MonitorState::default()
        };
        let monitor_alerts = if cycle == 2 {
            vec![(
                Alert::Monitor(monitor_alert(
                    MonitorAlertKind::Down,
                    "every poll fails",
                    at,
                )),
                vec![default_slack()],
            )]
        } else {
            vec![]
        };
        store
            .commit_cycle(
                Fence::Unchecked,
                Some(Polled {
                    version,
                    started_at: at,
                }),
                &updates,
                &monitor,
                &monitor_alerts,
                at,
            )
            .await
            .unwrap();
    }

    let ids: Vec<i64> = store.outbox().await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 10);
    let later = t + Duration::minutes(10);
    store
        .mark_delivered(Fence::Unchecked, &ids[0..3], later)
        .await
        .unwrap();
    store
        .mark_failed(Fence::Unchecked, &ids[3..4], "HTTP 404: no_service", later)
        .await
        .unwrap();
    store
        .schedule_retry(
            Fence::Unchecked,
            &ids[4..6],
            "HTTP 500",
            later + Duration::minutes(1),
        )
        .await
        .unwrap();
    store
        .mark_webhook_dead(
            Fence::Unchecked,
            &own_discord(),
            "HTTP 404: Unknown Webhook",
            later,
            None,
        )
        .await
        .unwrap();
    // An integration down: its state, and its event (routed nowhere: no outbox entry).
    let down = IntegrationAlert {
        kind: IntegrationAlertKind::Down,
        integration: IntegrationName::Ghl,
        from: Some("connected".into()),
        status: "token_invalid".into(),
        detail: Some("GHL token is invalid".into()),
        at: later,
        since: later,
        token_expires: None,
        affected: vec![],
        affected_count: 0,
        org_linked: None,
    };
    store
        .save_integration(
            Fence::Unchecked,
            IntegrationName::Ghl,
            &integration_down(later),
            &[(Alert::Integration(down), vec![])],
            later,
        )
        .await
        .unwrap();
    for w in maintenance_windows() {
        store.insert_window(&w).await.unwrap();
    }
    store
}

/// A recurring window for agent A and a one-off one for every agent.
fn maintenance_windows() -> Vec<MaintenanceWindow> {
    let recurring = WindowRequest {
        name: Some("Sunday migration".into()),
        schedule: Some("0 2 * * SUN".into()),
        duration: Some("2h".into()),
        timezone: Some("Europe/Berlin".into()),
        agent_ids: Some(vec![A.into()]),
        ..WindowRequest::default()
    };
    let once = WindowRequest {
        name: Some("re-connect".into()),
        start_at: Some("2030-01-01T10:00:00+01:00".into()),
        end_at: Some("2030-01-01T11:30:00+01:00".into()),
        ..WindowRequest::default()
    };
    [recurring, once]
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let created = noon() + Duration::seconds(i as i64);
            r.parse(uuid::Uuid::new_v4(), chrono_tz::UTC, created)
                .unwrap()
        })
        .collect()
}

/// GoHighLevel, alerted down since `at`.
fn integration_down(at: DateTime<Utc>) -> IntegrationState {
    IntegrationState {
        status: Some("token_invalid".into()),
        healthy: Some(false),
        detail: Some("GHL token is invalid".into()),
        since: Some(at),
        health_streak: 2,
        status_before_run: Some("connected".into()),
        seen_healthy: true,
        outage: Some(ravan_watch::tracker::IntegrationOutage {
            since: at,
            alerted_status: "token_invalid".into(),
        }),
        last_checked_at: Some(at),
        ..IntegrationState::default()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn copy_db(from: &str, to: &str) -> Output {
    run_bin(&["copy-db", from, to], &[]).await
}

/// Exit 2 and one line on stderr that contains `what`; nothing on stdout.
fn assert_refused(out: &Output, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(what), "{what}: {err}");
    assert!(stdout(out).is_empty(), "{}", stdout(out));
}

async fn exported(url: &str) -> Snapshot {
    let store = Store::open(url).await.unwrap();
    let snapshot = store.export().await.unwrap();
    store.close().await;
    snapshot
}

#[tokio::test]
async fn a_copy_equals_its_source_and_keeps_working() {
    let (_dst_dir, to) = common::temp_database();
    copies_and_keeps_working(&to).await;
}

/// The case users meet: from SQLite to PostgreSQL, with the real binary.
#[tokio::test]
async fn a_copy_from_sqlite_to_postgres_equals_its_source_and_keeps_working() {
    let Some(to) = common::postgres::fresh_database().await else {
        return;
    };
    copies_and_keeps_working(&to).await;
}

/// Copies a database holding every kind of row (SQLite) to the empty database at `to`, and
/// checks the copy equals it and goes on from it.
async fn copies_and_keeps_working(to: &str) {
    let (_src_dir, from) = common::temp_database();
    let source = populate(&from).await;
    let before = source.export().await.unwrap();
    let agents = source.agents().await.unwrap();
    assert!(
        agents
            .iter()
            .any(|a| a.teams_webhook_url.as_ref() == Some(&own_teams().url)),
        "the source has an agent's own Teams webhook, so the copy is checked to keep it"
    );
    assert!(
        (agents.iter()).any(|a| a.webhook_url.as_ref() == Some(&own_signed().url)),
        "the source has an agent's own signed webhook, so the copy is checked to keep it"
    );
    let watched = source.watched().await.unwrap();
    let outbox = source.outbox().await.unwrap();
    let dead = source.dead_webhooks().await.unwrap();
    let monitor = source.monitor_state().await.unwrap();
    let every_event = EventQuery {
        about: EventsAbout::All,
        before: None,
        limit: 1_000,
    };
    let events = source.events(&every_event).await.unwrap();
    let intervals = source.health_intervals(noon()).await.unwrap();
    let windows = source.maintenance_windows().await.unwrap();
    source.close().await;

    // What the snapshot holds: every kind of row the source has.
    let sources: Vec<Source> = before.agents.iter().map(|(a, _)| a.source).collect();
    for s in [Source::Env, Source::Api, Source::Discovered] {
        assert!(sources.contains(&s), "{s:?} in {sources:?}");
    }
    assert!(before.agents.iter().any(|(_, absent)| *absent == 1));
    assert_eq!(before.unwatched.len(), 1);
    assert!(
        before
            .monitor
            .as_ref()
            .is_some_and(|m| m.polled_at.is_some())
    );
    let statuses: Vec<OutboxStatus> = before.outbox.iter().map(|(e, _)| e.status).collect();
    for s in [
        OutboxStatus::Pending,
        OutboxStatus::Delivered,
        OutboxStatus::Failed,
    ] {
        assert!(statuses.contains(&s), "{s:?}");
    }
    assert!(
        before
            .outbox
            .iter()
            .any(|(e, f)| e.status == OutboxStatus::Pending && e.attempts == 1 && f.is_none())
    );
    assert_eq!(before.last_batch, 4);
    // The history: an event per alert (also the monitor's), a delivery per entry in every
    // outcome, each entry naming its event; closed and open intervals.
    assert_eq!(before.events.len(), 8);
    let integration_events: Vec<_> = before
        .events
        .iter()
        .filter_map(|(e, _)| e.integration.as_deref())
        .collect();
    assert_eq!(integration_events, ["ghl"]);
    assert_eq!(before.integrations.len(), 1);
    assert_eq!(before.maintenance_windows.len(), 2);
    assert_eq!(windows, before.maintenance_windows);
    let integrations = source_integrations(&before);
    assert!(before.events.iter().any(|(e, _)| e.agent_id.is_none()));
    assert!(before.events.iter().any(|(_, version)| version.is_some()));
    assert_eq!(before.event_deliveries.len(), 10);
    let outcomes: Vec<OutboxStatus> = before
        .event_deliveries
        .iter()
        .map(|d| d.2.outcome)
        .collect();
    assert_eq!(outcomes, statuses, "each delivery as its entry");
    assert!(before.outbox.iter().all(|(e, _)| e.event_id.is_some()));
    assert_eq!(events.len(), 8);
    assert_eq!(intervals.len(), 3);
    assert!(
        before
            .health_intervals
            .iter()
            .any(|(_, _, i)| i.end.is_some())
    );
    assert!(
        before
            .health_intervals
            .iter()
            .any(|(_, _, i)| i.end.is_none())
    );
    // As saved: the last poll's time is not merged into the state.
    let env = before
        .agents
        .iter()
        .find(|(a, _)| a.agent_id == id(A))
        .unwrap();
    assert_eq!(env.0.state, errored(2, noon() + Duration::minutes(3)));

    let out = copy_db(&from, to).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim_end(),
        format!(
            "copied 4 agents, 1 unwatched, 10 outbox entries (6 pending), 1 dead webhook, 8 events, 3 health intervals from {from} to {}",
            ravan_watch::domain::secret::masked_database_url(to)
        )
    );

    assert_eq!(exported(&from).await, before, "the source is only read");
    let target = Store::open(to).await.unwrap();
    assert_eq!(target.export().await.unwrap(), before);
    assert_eq!(target.agents().await.unwrap(), agents);
    assert_eq!(target.watched().await.unwrap(), watched);
    assert_eq!(target.outbox().await.unwrap(), outbox);
    assert_eq!(target.dead_webhooks().await.unwrap(), dead);
    assert_eq!(target.monitor_state().await.unwrap(), monitor);
    assert_eq!(target.events(&every_event).await.unwrap(), events);
    assert_eq!(target.health_intervals(noon()).await.unwrap(), intervals);
    assert_eq!(target.integrations().await.unwrap(), integrations);
    assert_eq!(target.maintenance_windows().await.unwrap(), windows);
    assert!(target.lease().await.unwrap().is_none(), "no leader copied");

    // The copy keeps working: batches, outbox ids and settings versions go on from the copied.
    let max_id = outbox.iter().map(|e| e.id).max().unwrap();
    let max_batch = outbox.iter().map(|e| e.batch).max().unwrap();
    let max_added = agents.iter().map(|a| a.added_version).max().unwrap();
    let version = target.settings_version().await.unwrap();
    let at = noon() + Duration::hours(1);
    target
        .commit_cycle(
            Fence::Unchecked,
            Some(Polled {
                version,
                started_at: at,
            }),
            &[AgentUpdate {
                agent_id: id(A),
                state: &errored(3, at),
                alerts: vec![(agent_down(A, None), vec![default_slack()])],
                health: Some(HealthEdge {
                    at,
                    healthy: Some(false),
                    closes_at: at,
                }),
            }],
            &MonitorState::default(),
            &[],
            at,
        )
        .await
        .unwrap();
    // Event, delivery and interval ids go on from the copied too.
    let after = target.export().await.unwrap();
    let max_event = before.events.iter().map(|(e, _)| e.id).max().unwrap();
    let new_event = after.events.last().unwrap();
    assert!(
        new_event.0.id > max_event,
        "event {} after {max_event}",
        new_event.0.id
    );
    assert_eq!(after.event_deliveries.last().unwrap().1, new_event.0.id);
    let max_interval = before.health_intervals.iter().map(|i| i.0).max().unwrap();
    let new_interval = after.health_intervals.last().unwrap().0;
    assert!(
        new_interval > max_interval,
        "interval {new_interval} after {max_interval}"
    );
    let new: Vec<_> = target
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| !outbox.iter().any(|o| o.id == e.id))
        .collect();
    assert_eq!(new.len(), 1);
    assert!(new[0].id > max_id, "id {} after {max_id}", new[0].id);
    assert!(
        new[0].batch > max_batch,
        "batch {} after {max_batch}",
        new[0].batch
    );
    let added = target
        .insert_agent(id(&agent_id(3)), &NewAgent::default(), at)
        .await
        .unwrap();
    assert!(
        added.added_version > max_added && added.added_version > version,
        "added_version {} after {max_added} (settings version {version})",
        added.added_version
    );
}

#[tokio::test]
async fn a_non_empty_target_is_refused_and_left_unchanged() {
    let (_src_dir, from) = common::temp_database();
    populate(&from).await.close().await;
    let (_dst_dir, to) = common::temp_database();
    let target = Store::open(&to).await.unwrap();
    target.ensure_agents(&[id(C)], noon()).await.unwrap();
    let before = target.export().await.unwrap();
    target.close().await;

    let out = copy_db(&from, &to).await;
    assert_refused(&out, "TO_URL");
    assert!(
        stderr(&out).contains("not empty (1 agent)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(exported(&to).await, before);
}

#[tokio::test]
async fn a_source_that_does_not_open_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_dst_dir, to) = common::temp_database();

    let missing = format!("sqlite://{}/missing.db", dir.path().display());
    assert_refused(&copy_db(&missing, &to).await, "FROM_URL");
    assert!(!dir.path().join("missing.db").exists(), "not created");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, "not a database, not at all, ".repeat(200)).unwrap();
    let out = copy_db(&format!("sqlite://{}", garbage.display()), &to).await;
    assert_refused(&out, "FROM_URL");

    assert_refused(&copy_db("ravan-watch.db", &to).await, "FROM_URL");
}

#[tokio::test]
async fn the_same_database_twice_is_refused() {
    let (_dir, url) = common::temp_database();
    populate(&url).await.close().await;
    let before = exported(&url).await;
    assert_refused(&copy_db(&url, &url).await, "same database");
    assert_eq!(exported(&url).await, before);
}

#[tokio::test]
async fn a_password_in_a_url_is_never_printed() {
    let (_src_dir, from) = common::temp_database();
    Store::open(&from).await.unwrap().close().await;
    let secret_url = "postgres://user:hunter2@127.0.0.1:1/db";

    let out = copy_db(&from, secret_url).await;
    assert_refused(&out, "TO_URL");
    assert!(
        stderr(&out).contains("postgres://user:***@127.0.0.1:1/db"),
        "{}",
        stderr(&out)
    );
    let out2 = copy_db(secret_url, &from).await;
    assert_refused(&out2, "FROM_URL");
    let out3 = copy_db("postgres://127.0.0.1:1/db?user=u&password=hunter2", &from).await;
    assert_refused(&out3, "FROM_URL");
    for out in [out, out2, out3] {
        assert!(!stdout(&out).contains("hunter2"), "{}", stdout(&out));
        assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    }
}

#[tokio::test]
async fn help_says_what_it_copies_and_to_stop_the_service() {
    let out = run_bin(&["copy-db", "--help"], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for said in [
        "FROM_URL",
        "TO_URL",
        "empty",
        "one transaction",
        "Stop the service",
    ] {
        assert!(help.contains(said), "{said}: {help}");
    }
}

/// Through the store: a non-empty database is refused with what it holds, and a failed import
/// leaves nothing behind.
#[tokio::test]
async fn import_is_all_or_nothing() {
    let (_src_dir, from) = common::temp_database();
    let snapshot = populate(&from).await.export().await.unwrap();

    let target = Store::open("sqlite::memory:").await.unwrap();
    let empty = target.export().await.unwrap();
    let mut broken = snapshot.clone();
    broken.agents.push(broken.agents[0].clone());
    assert!(matches!(
        target.import(&broken).await,
        Err(StoreError::Database { .. })
    ));
    assert_eq!(target.export().await.unwrap(), empty, "nothing written");

    target.import(&snapshot).await.unwrap();
    match target.import(&snapshot).await {
        Err(StoreError::NotEmpty(held)) => assert_eq!(
            held,
            "4 agents, 1 unwatched agent, 10 outbox entries, 1 dead webhook, 8 events, 1 integration state, 2 maintenance windows"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(target.export().await.unwrap(), snapshot);
}

/// The integrations a snapshot holds, as the store reads them back.
fn source_integrations(s: &Snapshot) -> Vec<(IntegrationName, IntegrationState)> {
    assert!(
        s.integrations
            .iter()
            .any(|(n, st)| *n == IntegrationName::Ghl && st.is_alerting()),
        "{:?}",
        s.integrations
    );
    s.integrations.clone()
}
