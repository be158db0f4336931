//! One poll cycle and the scheduler, against a fake Ravan: bounded concurrency, no overlapping
//! cycles, and the monitor's own alert on bad credentials.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use common::ids::agent_ids;
use common::{AGENT_A, FakeRavan, monitor_watching, status_body, test_monitor, wait_until};
use ravan_watch::domain::AgentId;
use ravan_watch::domain::PollSchedule;
use ravan_watch::domain::alert::{AgentAlertKind, Alert, MonitorAlertKind};
use ravan_watch::scheduler::Scheduler;
use ravan_watch::store::{AgentPatch, Store};
use serde_json::json;
use wiremock::ResponseTemplate;

/// `n` agents whose status answer takes `delay`.
fn slow_agents(ravan: &FakeRavan, n: usize, delay: Duration) -> Vec<String> {
    let ids = agent_ids(n);
    for id in &ids {
        let answer = ResponseTemplate::new(200).set_body_json(status_body("active", None));
        ravan.set_answer(id, answer.set_delay(delay));
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_keeps_at_most_poll_concurrency_requests_in_flight() {
    let ravan = FakeRavan::start().await;
    let delay = Duration::from_millis(300);
    let ids = slow_agents(&ravan, 8, delay);
    let report = monitor_watching(&ravan, &ids, 2, 2)
        .await
        .0
        .run_cycle()
        .await
        .unwrap();
    assert_eq!((report.polled, report.failed), (8, 0));
    let arrivals = ravan.arrivals();
    assert_eq!(arrivals.len(), 8);
    // With at most 2 in flight, request i+2 cannot start before request i has been answered.
    for i in 0..arrivals.len() - 2 {
        let gap = arrivals[i + 2] - arrivals[i];
        assert!(
            gap >= delay - Duration::from_millis(30),
            "requests {i} and {} overlapped: {gap:?}",
            i + 2
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_within_the_limit_run_concurrently() {
    let ravan = FakeRavan::start().await;
    let delay = Duration::from_secs(2);
    let ids = slow_agents(&ravan, 4, delay);
    monitor_watching(&ravan, &ids, 4, 2)
        .await
        .0
        .run_cycle()
        .await
        .unwrap();
    let arrivals = ravan.arrivals();
    assert_eq!(arrivals.len(), 4);
    // All four were sent before the first was answered.
    assert!(
        arrivals[3] - arrivals[0] < delay,
        "polls were not concurrent: {:?}",
        arrivals[3] - arrivals[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_raise_one_monitor_alert_naming_no_agent() {
    let ravan = FakeRavan::start().await;
    ravan
        .answer_all(Some(ResponseTemplate::new(401).set_body_json(
            json!({"success": false, "message": "Invalid token"}),
        )));
    let ids = agent_ids(3);
    let (m, store) = monitor_watching(&ravan, &ids, 4, 1).await;
    let report = m.run_cycle().await.unwrap();
    assert_eq!(report.failed, 3);
    assert_eq!(report.alerts.len(), 1);
    match &report.alerts[0] {
        Alert::Monitor(a) => {
            assert_eq!(a.kind, MonitorAlertKind::Down);
            assert!(
                a.reason.contains("401") && a.reason.contains("Invalid token"),
                "{}",
                a.reason
            );
        }
        other => panic!("expected a monitor alert, got {other:?}"),
    }
    assert!(
        m.run_cycle().await.unwrap().alerts.is_empty(),
        "not repeated"
    );
    let state = store
        .agent(ids[0].parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .state;
    assert!(state.last.is_none(), "a failed poll sets no status");
    assert!(state.last_error.unwrap().contains("401"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_still_running_at_the_next_tick_is_not_started_twice() {
    let ravan = FakeRavan::start().await;
    let slow = Duration::from_millis(2500);
    ravan.set_answer(
        AGENT_A,
        ResponseTemplate::new(200)
            .set_body_json(status_body("active", None))
            .set_delay(slow),
    );
    let m = Arc::new(
        monitor_watching(&ravan, &[AGENT_A.to_owned()], 4, 2)
            .await
            .0,
    );
    let scheduler = Scheduler::start(&PollSchedule::parse("* * * * * *").unwrap(), m);
    wait_until(Duration::from_secs(20), "three polls", || async {
        ravan.polls().await >= 3
    })
    .await;
    scheduler.stop(Duration::from_secs(5)).await;
    let arrivals = ravan.arrivals();
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        // Ticks come every second; a new cycle may start only once the 2.5 s poll is answered.
        assert!(
            gap >= slow - Duration::from_millis(100),
            "cycles overlapped: polls {gap:?} apart"
        );
    }
}

async fn mute(store: &Store, agent: &str, muted: bool, until: Option<chrono::DateTime<Utc>>) {
    let patch = AgentPatch {
        muted: Some(muted),
        muted_until: Some(until),
        ..AgentPatch::default()
    };
    store
        .update_agent(agent.parse().unwrap(), &patch)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_agent_is_polled_but_alerts_nothing_and_unmuting_it_while_unhealthy_alerts_once() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "errored", Some("revoked"));
    let (m, store) = monitor_watching(&ravan, &[AGENT_A.to_owned()], 4, 1).await;
    mute(&store, AGENT_A, true, None).await;
    for _ in 0..3 {
        let report = m.run_cycle().await.unwrap();
        assert_eq!(report.polled, 1, "still polled");
        assert!(report.alerts.is_empty(), "muted: {:?}", report.alerts);
    }
    let state = store
        .agent(AGENT_A.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .state;
    assert_eq!(state.last.unwrap().status, "errored", "still tracked");

    mute(&store, AGENT_A, false, None).await;
    let report = m.run_cycle().await.unwrap();
    assert_eq!(report.alerts.len(), 1, "the alert comes on the next cycle");
    assert!(matches!(&report.alerts[0], Alert::Agent(a) if a.kind == AgentAlertKind::Down));
    assert!(m.run_cycle().await.unwrap().alerts.is_empty(), "once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_with_an_end_time_lifts_by_itself() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "errored", Some("revoked"));
    let (m, store) = monitor_watching(&ravan, &[AGENT_A.to_owned()], 4, 1).await;
    let id: AgentId = AGENT_A.parse().unwrap();

    mute(
        &store,
        AGENT_A,
        true,
        Some(Utc::now() + chrono::Duration::hours(1)),
    )
    .await;
    assert!(
        m.run_cycle().await.unwrap().alerts.is_empty(),
        "muted until later"
    );
    assert!(store.agent(id).await.unwrap().unwrap().muted);

    mute(
        &store,
        AGENT_A,
        true,
        Some(Utc::now() - chrono::Duration::seconds(1)),
    )
    .await;
    let report = m.run_cycle().await.unwrap();
    assert_eq!(
        report.alerts.len(),
        1,
        "the mute ended: {:?}",
        report.alerts
    );
    let agent = store.agent(id).await.unwrap().unwrap();
    assert!(
        !agent.muted && agent.muted_until.is_none(),
        "the lifted mute is cleared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_go_to_the_agents_own_webhooks_else_to_the_defaults() {
    use ravan_watch::store::NewAgent;

    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "errored", Some("revoked"));
    ravan.set_status(common::AGENT_B, "errored", Some("revoked"));
    let default_slack = "https://hooks.slack.com/services/T0/B0/default";
    let default_discord = "https://discord.com/api/webhooks/1/default";
    let app = common::TestSettings::new(&ravan.uri())
        .database("sqlite::memory:")
        .agents(common::AGENT_B)
        .slack(default_slack)
        .discord(default_discord)
        .failure(1)
        .concurrency(4)
        .build()
        .await;
    let (m, store) = (app.monitor(), app.store());
    let own: url::Url = "https://hooks.slack.com/services/T1/B1/own"
        .parse()
        .unwrap();
    let new = NewAgent {
        slack_webhook_url: Some(own.clone()),
        ..NewAgent::default()
    };
    store
        .insert_agent(AGENT_A.parse().unwrap(), &new, Utc::now())
        .await
        .unwrap();

    assert_eq!(m.run_cycle().await.unwrap().alerts.len(), 2);
    let mut routes: Vec<(String, String)> = store
        .outbox()
        .await
        .unwrap()
        .iter()
        .map(|e| match e.alert() {
            Some(Alert::Agent(a)) => (a.agent.id.to_string(), e.webhook.url.expose().to_string()),
            other => panic!("only agent alerts expected: {other:?}"),
        })
        .collect();
    routes.sort();
    let mut expected = vec![
        (AGENT_A.to_owned(), own.to_string()),
        (common::AGENT_B.to_owned(), default_slack.to_owned()),
        (common::AGENT_B.to_owned(), default_discord.to_owned()),
    ];
    expected.sort();
    assert_eq!(
        routes, expected,
        "A only to its own webhook; B to both defaults"
    );
}

fn down_alerts(report: &ravan_watch::monitor::CycleReport) -> usize {
    report
        .alerts
        .iter()
        .filter(|a| matches!(a, Alert::Agent(a) if a.kind == AgentAlertKind::Down))
        .count()
}

/// A cycle keeps the states it committed for the next one; an agent removed and added again in
/// between is a new agent (fresh state, so its outage is announced again), and one that stays
/// keeps its state (no second alert).
#[tokio::test]
async fn an_agent_removed_and_added_again_starts_afresh() {
    let ravan = FakeRavan::start().await;
    let b = "00000000-0000-4000-8000-00000000000b";
    ravan.set_status(AGENT_A, "errored", Some("Invalid API key"));
    ravan.set_status(b, "errored", Some("Invalid API key"));
    let (monitor, store) =
        monitor_watching(&ravan, &[AGENT_A.to_owned(), b.to_owned()], 4, 1).await;
    assert_eq!(down_alerts(&monitor.run_cycle().await.unwrap()), 2);
    assert_eq!(down_alerts(&monitor.run_cycle().await.unwrap()), 0);

    let a: AgentId = AGENT_A.parse().unwrap();
    let first = store.agent(a).await.unwrap().unwrap();
    assert!(store.delete_agent(a, Utc::now()).await.unwrap());
    // Added again within the same millisecond: only the settings version tells them apart.
    store
        .insert_agent(a, &Default::default(), first.created_at)
        .await
        .unwrap();
    let report = monitor.run_cycle().await.unwrap();
    assert_eq!(down_alerts(&report), 1, "{:?}", report.alerts);
    assert!(
        matches!(&report.alerts[0], Alert::Agent(alert) if alert.agent.id == a),
        "the re-added agent, not the one that stayed"
    );
    assert_eq!(down_alerts(&monitor.run_cycle().await.unwrap()), 0);
}

/// Steady agents cost a cycle no writes: only changed states are saved, yet every agent shows
/// as checked by the last cycle, a settings change made between cycles is used by the next one,
/// and a monitor started afresh on the same database decides as the running one would have.
#[tokio::test]
async fn steady_agents_are_not_rewritten_and_changes_between_cycles_are_seen() {
    let ravan = FakeRavan::start().await;
    let ids = agent_ids(3);
    for id in &ids {
        ravan.set_status(id, "active", None);
    }
    let (monitor, store) = monitor_watching(&ravan, &ids, 4, 2).await;
    // First observations, then the streaks count up to the threshold (2): saved both times.
    assert_eq!(monitor.run_cycle().await.unwrap().saved, 3);
    assert_eq!(monitor.run_cycle().await.unwrap().saved, 3);
    let before = Utc::now();
    let report = monitor.run_cycle().await.unwrap();
    assert_eq!(
        (report.polled, report.saved),
        (3, 0),
        "nothing changed in substance"
    );
    for agent in store.agents().await.unwrap() {
        let checked = agent.state.last_checked_at.unwrap();
        assert!(
            checked >= before - chrono::TimeDelta::milliseconds(1),
            "{checked} < {before}"
        );
        assert_eq!(agent.state.last.unwrap().status, "active");
    }

    // A name given between cycles is in the next cycle's alert.
    let a: AgentId = ids[0].parse().unwrap();
    ravan.set_status(&ids[0], "errored", Some("Invalid API key"));
    let report = monitor.run_cycle().await.unwrap();
    assert_eq!((report.alerts.len(), report.saved), (0, 1), "one of two");
    let patch = AgentPatch {
        name: Some(Some("Front desk".into())),
        ..Default::default()
    };
    store.update_agent(a, &patch).await.unwrap().unwrap();
    let report = monitor.run_cycle().await.unwrap();
    assert_eq!(down_alerts(&report), 1, "{:?}", report.alerts);
    assert!(
        matches!(&report.alerts[0], Alert::Agent(alert)
            if alert.agent.id == a && alert.agent.name.as_deref() == Some("Front desk")),
        "{:?}",
        report.alerts
    );

    // One observation of two before a restart; the restarted monitor completes the threshold.
    let b: AgentId = ids[1].parse().unwrap();
    ravan.set_status(&ids[1], "errored", Some("Invalid API key"));
    let report = monitor.run_cycle().await.unwrap();
    assert_eq!((report.alerts.len(), report.saved), (0, 1));
    drop(monitor);
    // A monitor on the existing store, as after a restart.
    let restarted = test_monitor(&ravan, &store, 4, 2);
    let report = restarted.run_cycle().await.unwrap();
    assert_eq!(report.alerts.len(), 1, "{:?}", report.alerts);
    assert!(
        matches!(&report.alerts[0], Alert::Agent(alert)
            if alert.agent.id == b && alert.kind == AgentAlertKind::Down),
        "{:?}",
        report.alerts
    );
}

/// Two cycles of one monitor never run at once, whoever calls them: the second starts polling
/// only after the first has committed (issue 12, item 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cycles_called_at_once_run_one_after_the_other() {
    let ravan = FakeRavan::start().await;
    let delay = Duration::from_millis(300);
    let ids = slow_agents(&ravan, 2, delay);
    let (monitor, _store) = monitor_watching(&ravan, &ids, 2, 2).await;
    let (a, b) = tokio::join!(monitor.run_cycle(), monitor.run_cycle());
    assert_eq!(a.unwrap().polled, 2);
    assert_eq!(b.unwrap().polled, 2);
    let arrivals = ravan.arrivals();
    assert_eq!(arrivals.len(), 4);
    assert!(
        arrivals[2] - arrivals[1] >= delay - Duration::from_millis(30),
        "the second cycle polled while the first was still waiting: {:?}",
        arrivals.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
    );
}

/// History through real cycles: a steady agent's cycles write no interval after its first, a
/// change of health ends one run and begins the next, and polling that resumes after a gap (no
/// process polled for hours) ends the open run at the poll before the gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_intervals_follow_changes_not_polls_and_leave_out_a_gap_in_polling() {
    use ravan_watch::domain::{HealthEdge, HealthInterval, Observation};
    use ravan_watch::store::{AgentUpdate, Fence, Polled};
    use ravan_watch::tracker::{AgentState, MonitorState};

    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let id: AgentId = AGENT_A.parse().unwrap();
    let (monitor, store) = monitor_watching(&ravan, &[AGENT_A.to_owned()], 4, 1).await;
    let since = Utc::now() - chrono::TimeDelta::days(1);
    let intervals = || async { store.agent_health_intervals(&id, since).await.unwrap() };
    for _ in 0..3 {
        monitor.run_cycle().await.unwrap();
    }
    let first = intervals().await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].healthy && first[0].end.is_none());
    ravan.set_status(AGENT_A, "errored", Some("token revoked"));
    monitor.run_cycle().await.unwrap();
    monitor.run_cycle().await.unwrap();
    let two = intervals().await;
    assert_eq!(two.len(), 2, "{two:?}");
    assert_eq!(two[0].start, first[0].start);
    assert_eq!(
        two[0].end,
        Some(two[1].start),
        "one run ends where the next begins"
    );
    assert!(!two[1].healthy && two[1].end.is_none());

    // Another agent, last polled 3 h ago by a process since gone.
    let b: AgentId = "9b2c7a10-1d2e-4f3a-8b4c-5d6e7f809102".parse().unwrap();
    ravan.set_status(&b.to_string(), "active", None);
    store.ensure_agents(&[b], Utc::now()).await.unwrap();
    // Whole milliseconds: what the store keeps.
    let ago = |h| {
        let t = Utc::now() - chrono::TimeDelta::hours(h);
        chrono::DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
    };
    let (h5, h3) = (ago(5), ago(3));
    let version = store.settings_version().await.unwrap();
    let state = AgentState {
        last: Some(Observation {
            connection: Some(ravan_watch::domain::Connection::Private),
            status: "active".into(),
            connected: true,
            accounts: vec![],
        }),
        observed_at: Some(h5),
        last_checked_at: Some(h5),
        health_streak: 1,
        health_since: Some(h5),
        status_streak: 1,
        ..AgentState::default()
    };
    let polled = |at| {
        Some(Polled {
            version,
            started_at: at,
        })
    };
    let opened = AgentUpdate {
        agent_id: b,
        state: &state,
        alerts: vec![],
        health: Some(HealthEdge {
            at: h5,
            healthy: Some(true),
            closes_at: h5,
        }),
    };
    let quiet = MonitorState::default();
    store
        .commit_cycle(Fence::Unchecked, polled(h5), &[opened], &quiet, &[], h5)
        .await
        .unwrap();
    // Its steady cycles went on until 3 h ago, writing only when they began.
    store
        .commit_cycle(Fence::Unchecked, polled(h3), &[], &quiet, &[], h3)
        .await
        .unwrap();
    // A new process (nothing cached) polls again now.
    let fresh = test_monitor(&ravan, &store, 4, 1);
    fresh.run_cycle().await.unwrap();
    let b_runs = store.agent_health_intervals(&b, since).await.unwrap();
    assert_eq!(b_runs.len(), 2, "{b_runs:?}");
    assert_eq!(
        b_runs[0],
        HealthInterval {
            healthy: true,
            start: h5,
            end: Some(h3)
        },
        "the open run ends at the last poll before the gap"
    );
    assert!(b_runs[1].healthy && b_runs[1].end.is_none());
    assert!(b_runs[1].start > h3 + chrono::TimeDelta::minutes(170));
    // A's run was not cut: its last poll was a moment ago.
    assert_eq!(intervals().await, two);
}

/// An alert the store drops because its agent was removed while the cycle polled it is logged
/// as that, not as "no webhook is configured"; an alert with nowhere to go still says so.
#[tokio::test]
async fn the_log_says_why_an_alert_was_not_queued() {
    let (logs, _guard) = common::logs::capture_here();
    let ravan = FakeRavan::start().await;
    let sink = common::webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
    let answer = ResponseTemplate::new(200).set_body_json(status_body("errored", Some("Invalid")));
    ravan.set_answer(AGENT_A, answer.set_delay(Duration::from_millis(300)));
    let store = Store::open("sqlite::memory:").await.unwrap();
    let a: AgentId = AGENT_A.parse().unwrap();
    store.ensure_agents(&[a], Utc::now()).await.unwrap();
    let hook = common::alerts::webhook(
        ravan_watch::domain::Platform::Slack,
        &format!("{}/hook", sink.uri()),
    );
    let leadership = ravan_watch::leader::Leadership::for_tests();
    let monitor = common::monitor_of(
        common::ravan_client(&ravan),
        &store,
        vec![hook],
        1,
        4,
        leadership,
    );
    let remove = async {
        wait_until(Duration::from_secs(5), "the poll to arrive", || async {
            !ravan.arrivals().is_empty()
        })
        .await;
        assert!(store.delete_agent(a, Utc::now()).await.unwrap());
    };
    let (report, ()) = tokio::join!(monitor.run_cycle(), remove);
    assert_eq!(down_alerts(&report.unwrap()), 1, "the poll alerted");
    assert!(
        store.outbox().await.unwrap().is_empty(),
        "the store dropped it"
    );
    let logged = logs.text();
    assert!(!logged.contains("no webhook is configured"), "{logged}");
    assert!(logged.contains("removed while the cycle ran"), "{logged}");

    // Nowhere to go: the same agent again, with no default webhook.
    ravan.set_status(AGENT_A, "errored", Some("Invalid"));
    let (monitor, _store) = monitor_watching(&ravan, &[AGENT_A.to_owned()], 4, 1).await;
    assert_eq!(down_alerts(&monitor.run_cycle().await.unwrap()), 1);
    assert_eq!(logs.count("no webhook is configured"), 1, "{}", logs.text());
}

fn monitor_reason(report: &ravan_watch::monitor::CycleReport) -> String {
    match report.alerts.as_slice() {
        [Alert::Monitor(a)] if a.kind == MonitorAlertKind::Down => a.reason.clone(),
        other => panic!("expected one monitor alert, got {other:?}"),
    }
}

/// Issue 26 item 4: a cycle whose polls work asks Ravan's `/health` nothing; one in which every
/// poll fails asks it once (not once per agent), and the monitor alert says Ravan runs but our
/// requests fail, before the first failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_poll_failing_asks_ravans_health_once_and_says_it_runs() {
    let ravan = FakeRavan::start().await;
    let ids = agent_ids(3);
    for id in &ids {
        ravan.set_status(id, "active", None);
    }
    let (m, _store) = monitor_watching(&ravan, &ids, 4, 1).await;
    let report = m.run_cycle().await.unwrap();
    assert_eq!((report.polled, report.failed), (3, 0));
    assert_eq!(ravan.requests("health").await, 0, "polls work: no /health");

    ravan.answer_all(Some(ResponseTemplate::new(500).set_body_json(
        json!({"success": false, "message": "boom", "code": "INTERNAL_ERROR"}),
    )));
    let report = m.run_cycle().await.unwrap();
    assert_eq!(report.failed, 3);
    assert_eq!(
        ravan.requests("health").await,
        1,
        "one /health for the cycle"
    );
    let reason = monitor_reason(&report);
    assert!(
        reason.starts_with("Ravan reports healthy, but our requests fail"),
        "{reason}"
    );
    assert!(
        reason.contains("all 3 polls failed; first: Ravan API server error (HTTP 500): boom"),
        "{reason}"
    );

    // Still failing: one more /health per cycle, and the alert is not repeated.
    assert!(m.run_cycle().await.unwrap().alerts.is_empty());
    assert_eq!(ravan.requests("health").await, 2);
    // One poll works again: no /health.
    ravan.answer_all(None);
    m.run_cycle().await.unwrap();
    assert_eq!(ravan.requests("health").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_poll_failing_with_ravans_health_failing_says_ravan_looks_down() {
    let ravan = FakeRavan::start().await;
    let ids = agent_ids(2);
    ravan.answer_all(Some(
        ResponseTemplate::new(502).set_body_string("Bad Gateway"),
    ));
    ravan.set_health(ResponseTemplate::new(502).set_body_string("Bad Gateway"));
    let (m, _store) = monitor_watching(&ravan, &ids, 4, 1).await;
    let report = m.run_cycle().await.unwrap();
    let reason = monitor_reason(&report);
    assert!(
        reason.starts_with("Ravan's health check does not answer: Ravan looks down; all 2 polls failed; first: Ravan API server error (HTTP 502)"),
        "{reason}"
    );
    assert_eq!(ravan.requests("health").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ravan_unreachable_says_ravan_looks_down() {
    // Bind then drop a listener: nothing listens there, for the polls nor for /health.
    let port = common::free_port();
    let store = Store::open("sqlite::memory:").await.unwrap();
    let ids: Vec<AgentId> = agent_ids(2).iter().map(|i| i.parse().unwrap()).collect();
    store.ensure_agents(&ids, Utc::now()).await.unwrap();
    let client = ravan_watch::ravan::RavanClient::new(
        format!("http://127.0.0.1:{port}").parse().unwrap(),
        &ravan_watch::ravan::RavanAuth::Bearer(ravan_watch::domain::secret::Secret::new("t")),
        Duration::from_secs(2),
    )
    .unwrap();
    let leadership = ravan_watch::leader::Leadership::for_tests();
    let m = common::monitor_of(client, &store, vec![], 1, 4, leadership);
    let reason = monitor_reason(&m.run_cycle().await.unwrap());
    assert!(
        reason.starts_with("Ravan's health check does not answer: Ravan looks down")
            && reason.contains("first: cannot reach the Ravan API"),
        "{reason}"
    );
}

/// The message the default destinations get names which side the trouble is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_alert_sent_says_ravan_reports_healthy() {
    let ravan = FakeRavan::start().await;
    ravan
        .answer_all(Some(ResponseTemplate::new(401).set_body_json(
            json!({"success": false, "message": "Invalid token"}),
        )));
    let slack = common::webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
    let app = common::TestSettings::new(&ravan.uri())
        .database("sqlite::memory:")
        .agents(AGENT_A)
        .slack(&format!("{}/services/T0/B0/x", slack.uri()))
        .failure(1)
        .build()
        .await;
    let report = app.monitor().run_cycle().await.unwrap();
    assert!(monitor_reason(&report).starts_with("Ravan reports healthy"));
    let pass = app.outbox().pass(Utc::now()).await.unwrap();
    assert_eq!(pass.delivered, 1);
    let sent: String = common::bodies(&slack)
        .await
        .iter()
        .map(serde_json::Value::to_string)
        .collect();
    assert!(
        sent.contains("Ravan reports healthy, but our requests fail"),
        "{sent}"
    );
    assert!(sent.contains("Invalid token"), "{sent}");
}
