//! Ravan as organisations use it, through the real service (in-process `serve`, its router and
//! scheduler) against fakes of Ravan, Slack and Discord on loopback: org-linked calendars,
//! missing agents, throttling, overruns, and the request cost of a cycle.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::ids::agent_ids;
use common::{
    AGENT_A, AGENT_B, AGENT_C, FakeRavan, TestSettings, bodies, info_body, monitor_watching,
    more_cycles, no_private_body, status_body, wait_until, webhook_sink,
};
use ravan_watch::app::Service;
use ravan_watch::domain::PollSchedule;
use ravan_watch::domain::alert::{AgentAlertKind, Alert, MonitorAlertKind};
use ravan_watch::monitor::Monitor;
use ravan_watch::store::Fence;
use ravan_watch::store::Store;
use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

const LIMIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "adm-org-T0KEN";

/// The service, polling every second, with a Slack sink.
struct App {
    service: Service,
    slack: MockServer,
    http: reqwest::Client,
    _db: tempfile::TempDir,
}

impl App {
    async fn start(ravan: &FakeRavan, agents: &str, extra: &[(&str, &str)]) -> Self {
        let slack = webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await;
        let hook = format!("{}/services/T0/B0/slack-secret", slack.uri());
        let (db, database) = common::temp_database();
        let service = TestSettings::new(&ravan.uri())
            .api(&database, TOKEN)
            .agents(agents)
            .every_second()
            .poll_timeout("5s")
            .failure(2)
            .slack(&hook)
            .with(extra)
            .start()
            .await;
        Self {
            service,
            slack,
            http: reqwest::Client::new(),
            _db: db,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.service.addr())
    }

    async fn agent(&self, id: &str) -> Value {
        common::json_of(
            self.http
                .get(self.url(&format!("/agents/{id}")))
                .bearer_auth(TOKEN),
        )
        .await
    }

    async fn status_page(&self) -> String {
        common::text_of(
            self.http
                .get(self.url("/"))
                .basic_auth("admin", Some(TOKEN)),
        )
        .await
    }

    async fn alerts(&self) -> Vec<String> {
        bodies(&self.slack)
            .await
            .iter()
            .map(|b| b["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until `check` holds for the agent's JSON.
    async fn wait_agent(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) {
        wait_until(LIMIT, what, || async { check(&self.agent(id).await) }).await;
    }

    async fn stop(self) {
        self.service.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_linked_agent_is_healthy_and_only_it_costs_a_second_request() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    ravan.set_org_linked(AGENT_B, "active", "Acme team calendar");
    let app = App::start(&ravan, &format!("{AGENT_A},{AGENT_B}"), &[]).await;
    more_cycles(&ravan, 2, 3).await;

    let b = app.agent(AGENT_B).await;
    assert_eq!(b["state"]["status"], "active", "{b}");
    assert_eq!(b["state"]["healthy"], true);
    assert_eq!(b["state"]["connection"], "org_linked");
    assert_eq!(
        b["state"]["accounts"][0]["account_name"],
        "Acme team calendar"
    );
    let a = app.agent(AGENT_A).await;
    assert_eq!(a["state"]["connection"], "private");
    assert!(app.alerts().await.is_empty(), "no false alarm on day one");
    let page = app.status_page().await;
    assert!(page.contains("org-linked (Acme team calendar)"), "{page}");
    // Stopped (a running cycle finishes first), the counts are final: only B's polls asked
    // /info, one each.
    app.stop().await;
    let (status, info) = (ravan.requests("status").await, ravan.requests("info").await);
    let b_polls = ravan.polls_of(AGENT_B).await;
    assert_eq!(info, b_polls, "one /info per poll of B, none for A");
    assert!(status >= 6 && info >= 3, "{status} {info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_linked_outage_alerts_once_naming_the_account_and_recovers() {
    let ravan = FakeRavan::start().await;
    ravan.set_org_linked(AGENT_A, "active", "Acme team calendar");
    let app = App::start(&ravan, AGENT_A, &[]).await;
    more_cycles(&ravan, 1, 2).await;
    ravan.set_org_linked(AGENT_A, "errored", "Acme team calendar");
    wait_until(LIMIT, "the down alert", || async {
        !app.alerts().await.is_empty()
    })
    .await;
    let body = bodies(&app.slack).await[0].to_string();
    assert!(
        body.contains("lost its (org-linked) Cal.com connection: active → errored"),
        "{body}"
    );
    assert!(body.contains("org-linked (Acme team calendar)"), "{body}");

    ravan.set_org_linked(AGENT_A, "active", "Acme team calendar");
    wait_until(LIMIT, "the recovery", || async {
        app.alerts().await.len() == 2
    })
    .await;
    assert!(app.alerts().await[1].contains("recovered"));
    more_cycles(&ravan, 1, 2).await;
    assert_eq!(app.alerts().await.len(), 2, "one message each");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_connection_at_all_is_not_connected_and_a_failed_info_is_no_observation() {
    let ravan = FakeRavan::start().await;
    // A: no private connection and /info says none: really not connected.
    ravan.set_answer(
        AGENT_A,
        ResponseTemplate::new(200).set_body_json(no_private_body()),
    );
    ravan.set_info(
        AGENT_A,
        ResponseTemplate::new(200).set_body_json(info_body("none", "", "")),
    );
    // B: /info fails. C: /info says a type nobody documented.
    ravan.set_answer(
        AGENT_B,
        ResponseTemplate::new(200).set_body_json(no_private_body()),
    );
    ravan.set_info(AGENT_B, ResponseTemplate::new(500));
    ravan.set_answer(
        AGENT_C,
        ResponseTemplate::new(200).set_body_json(no_private_body()),
    );
    let mut odd = info_body("org_linked", "active", "Pool");
    odd["data"]["type"] = json!("team_pool");
    ravan.set_info(AGENT_C, ResponseTemplate::new(200).set_body_json(odd));
    let app = App::start(&ravan, &format!("{AGENT_A},{AGENT_B},{AGENT_C}"), &[]).await;

    wait_until(LIMIT, "A's down alert", || async {
        !app.alerts().await.is_empty()
    })
    .await;
    more_cycles(&ravan, 3, 2).await;
    let alerts = app.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0].contains(AGENT_A) && alerts[0].contains("not_connected"),
        "{alerts:?}"
    );
    let a = app.agent(AGENT_A).await;
    assert_eq!(a["state"]["connection"], "none");
    assert_eq!(a["state"]["status"], "not_connected");

    for (id, want) in [
        (AGENT_B, "/info (the org-linked connection) failed"),
        (AGENT_C, "unknown connection type \\\"team_pool\\\""),
    ] {
        let v = app.agent(id).await;
        assert_eq!(v["state"]["status"], Value::Null, "{v}");
        let error = v["state"]["last_error"].to_string();
        assert!(error.contains(want), "{id}: {error}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_check_org_linked_off_info_is_never_asked() {
    let ravan = FakeRavan::start().await;
    ravan.set_org_linked(AGENT_A, "active", "Acme team calendar");
    let app = App::start(&ravan, AGENT_A, &[("CHECK_ORG_LINKED", "false")]).await;
    wait_until(LIMIT, "the down alert", || async {
        !app.alerts().await.is_empty()
    })
    .await;
    let a = app.agent(AGENT_A).await;
    assert_eq!(a["state"]["connection"], "none");
    assert_eq!(ravan.requests("info").await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_agent_alerts_once_then_found_and_shows_since_when() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    // B is never set: the fake answers 404 NOT_FOUND, as Ravan does for a deleted agent.
    let app = App::start(&ravan, &format!("{AGENT_A},{AGENT_B}"), &[]).await;
    wait_until(LIMIT, "the missing alert", || async {
        !app.alerts().await.is_empty()
    })
    .await;
    more_cycles(&ravan, 2, 3).await;
    let alerts = app.alerts().await;
    assert_eq!(
        alerts.len(),
        1,
        "one missing alert, not one per cycle: {alerts:?}"
    );
    assert!(
        alerts[0].contains("not found at Ravan: deleted, or a wrong id?"),
        "{alerts:?}"
    );
    assert!(!alerts[0].contains("lost its"), "not a down alert");
    let b = app.agent(AGENT_B).await;
    assert!(b["state"]["missing_since"].is_string(), "{b}");
    assert_eq!(
        app.agent(AGENT_A).await["state"]["missing_since"],
        Value::Null
    );
    let page = app.status_page().await;
    assert!(page.contains("not found at Ravan"), "{page}");
    // The API answering 404s for one agent is not the monitor failing.
    assert!(!app.alerts().await.iter().any(|a| a.contains("cannot poll")));

    ravan.set_status(AGENT_B, "active", None);
    wait_until(LIMIT, "the found alert", || async {
        app.alerts().await.len() == 2
    })
    .await;
    assert!(
        app.alerts().await[1].contains("is found at Ravan again"),
        "{:?}",
        app.alerts().await
    );
    app.wait_agent(AGENT_B, "missing_since cleared", |b| {
        b["state"]["missing_since"].is_null()
    })
    .await;
    app.stop().await;
}

// ------------------------------------------------------------------ the monitor directly

/// The request cost README documents: private agents 1 request, the others 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_agents_half_org_linked_cost_exactly_1500_requests_a_cycle() {
    let ravan = FakeRavan::start().await;
    let ids = agent_ids(1000);
    for (i, id) in ids.iter().enumerate() {
        if i % 2 == 0 {
            ravan.set_status(id, "active", None);
        } else {
            ravan.set_org_linked(id, "active", "Org calendar");
        }
    }
    let (monitor, store) = monitor_watching(&ravan, &ids, 16, 2).await;
    for cycle in 1..=2 {
        let report = monitor.run_cycle().await.unwrap();
        assert_eq!((report.polled, report.failed), (1000, 0));
        assert!(report.alerts.is_empty());
        assert_eq!(ravan.requests("status").await, 1000 * cycle);
        assert_eq!(ravan.requests("info").await, 500 * cycle);
        assert_eq!(ravan.requests("listing").await, 0);
    }
    let healthy = store
        .agents()
        .await
        .unwrap()
        .iter()
        .filter(|a| a.state.last.as_ref().is_some_and(|o| o.is_healthy()))
        .count();
    assert_eq!(healthy, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_the_rest_of_the_cycle_for_as_long_as_retry_after_asks() {
    let ravan = FakeRavan::start().await;
    let ids = agent_ids(3);
    ravan.set_answer(
        &ids[0],
        ResponseTemplate::new(429).insert_header("retry-after", "1"),
    );
    ravan.set_status(&ids[1], "active", None);
    ravan.set_status(&ids[2], "active", None);
    let (monitor, _store) = monitor_watching(&ravan, &ids, 1, 2).await;
    let report = monitor.run_cycle().await.unwrap();
    assert_eq!((report.polled, report.failed), (3, 1));
    let arrivals = ravan.arrivals();
    assert_eq!(arrivals.len(), 3);
    let gap = arrivals[1] - arrivals[0];
    assert!(
        gap >= Duration::from_millis(990),
        "the next request waited only {gap:?}"
    );
    // The pause is over: the rest of the cycle went at full speed again.
    assert!(arrivals[2] - arrivals[1] < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_throttling_raises_the_monitor_alert_and_no_agent_alert() {
    let ravan = FakeRavan::start().await;
    let ids = agent_ids(2);
    ravan.answer_all(Some(
        ResponseTemplate::new(429).insert_header("retry-after", "0"),
    ));
    let (monitor, store) = monitor_watching(&ravan, &ids, 2, 2).await;
    let first = monitor.run_cycle().await.unwrap();
    assert!(first.alerts.is_empty());
    let second = monitor.run_cycle().await.unwrap();
    let kinds: Vec<_> = second.alerts.iter().map(|a| a.kind_name()).collect();
    assert_eq!(kinds, vec!["monitor_down"]);
    if let Alert::Monitor(m) = &second.alerts[0] {
        assert!(m.reason.contains("429"), "{}", m.reason);
    }
    for agent in store.agents().await.unwrap() {
        assert!(agent.state.last.is_none(), "a 429 is no observation");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_longer_than_its_interval_is_recorded_as_an_overrun() {
    // The recorder is process-wide: installed before anything counts.
    ravan_watch::metrics::handle();
    let ravan = FakeRavan::start().await;
    let ids = agent_ids(2);
    for id in &ids {
        ravan.set_answer(
            id,
            ResponseTemplate::new(200)
                .set_body_json(status_body("active", None))
                .set_delay(Duration::from_millis(1100)),
        );
    }
    let (monitor, store) = monitor_watching(&ravan, &ids, 1, 2).await;
    let monitor = monitor.schedule(PollSchedule::parse("* * * * * *").unwrap());
    monitor.run_cycle().await.unwrap();
    let state = store.monitor_state().await.unwrap();
    let overrun = state.last_overrun.expect("an overrun is recorded");
    assert_eq!(state.overruns, 1);
    assert!(overrun.took_ms >= 2200, "{overrun:?}");
    assert!(overrun.interval_ms <= 1000, "{overrun:?}");
    assert!(!overrun.throttled);
    assert!(overrun.suggested_concurrency >= 3, "{overrun:?}");
    assert!(overrun.advice().contains("POLL_CONCURRENCY"));
    let metrics = ravan_watch::metrics::render();
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("ravan_watch_cycle_overruns_total"))
        .unwrap_or_else(|| panic!("no overrun counter in {metrics}"));
    assert!(!counted.ends_with(" 0"), "{counted}");

    // A cycle that fits leaves the count alone.
    for id in &ids {
        ravan.set_status(id, "active", None);
    }
    let fast = monitor_with_hourly_schedule(&ravan, &store);
    fast.run_cycle().await.unwrap();
    assert_eq!(store.monitor_state().await.unwrap().overruns, 1);
}

fn monitor_with_hourly_schedule(ravan: &FakeRavan, store: &Store) -> Monitor {
    common::test_monitor(ravan, store, 4, 2).schedule(PollSchedule::parse("0 0 * * * *").unwrap())
}

/// Agent alerts of `cycles` more cycles, as (agent id, kind).
async fn agent_alerts(monitor: &Monitor, cycles: usize) -> Vec<(String, AgentAlertKind)> {
    let mut kinds = Vec::new();
    for _ in 0..cycles {
        for alert in monitor.run_cycle().await.unwrap().alerts {
            if let Alert::Agent(a) = alert {
                kinds.push((a.agent.id.to_string(), a.kind));
            }
        }
    }
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovered_agents_404s_are_left_to_the_listing_only_while_listings_work() {
    let ravan = FakeRavan::start().await;
    let ids = agent_ids(3);
    // ids[0] is from the env; ids[2] is listed (so discovered) but Ravan answers 404 for its
    // status, as for an agent deleted between a listing and the polls.
    ravan.set_listing(
        common::Shape::Snake,
        vec![common::listed_agent(
            common::Shape::Snake,
            &ids[2],
            "Gone soon",
            true,
        )],
    );
    let (monitor, store) = monitor_watching(&ravan, &ids[..1], 2, 2).await;
    let discovery = ravan_watch::discovery::Discovery::new(
        common::ravan_client(&ravan),
        store.clone(),
        ravan_watch::leader::Leadership::for_tests(),
    );
    let monitor = monitor.watch_all(discovery.health());
    discovery.run_once().await.unwrap();
    assert!(discovery.health().is_complete());

    assert_eq!(
        agent_alerts(&monitor, 4).await,
        vec![(ids[0].clone(), AgentAlertKind::Missing)],
        "the env agent alerts; the discovered one is left to the listing"
    );
    let discovered = store.agent(ids[2].parse().unwrap()).await.unwrap().unwrap();
    assert!(discovered.state.missing_since.is_some());

    // Listings fail from now on: nothing would ever unwatch it, so its 404s alert after all.
    ravan.set_listing_all(Some(ResponseTemplate::new(403)));
    assert!(discovery.run_once().await.is_err());
    assert!(!discovery.health().is_complete());
    assert_eq!(
        agent_alerts(&monitor, 2).await,
        vec![(ids[2].clone(), AgentAlertKind::Missing)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_watch_all_a_discovered_agent_alerts_missing_like_any_other() {
    let ravan = FakeRavan::start().await;
    let ids = agent_ids(2);
    let (monitor, store) = monitor_watching(&ravan, &ids[..1], 2, 2).await;
    // Found by an earlier watch-all; WATCH_ALL_AGENTS is off now.
    store
        .apply_listing(
            Fence::Unchecked,
            &[(ids[1].parse().unwrap(), None)],
            Utc::now(),
        )
        .await
        .unwrap();
    let mut kinds = agent_alerts(&monitor, 3).await;
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        kinds,
        vec![
            (ids[0].clone(), AgentAlertKind::Missing),
            (ids[1].clone(), AgentAlertKind::Missing),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_beyond_the_next_tick_ends_the_cycle_without_more_requests() {
    let ravan = FakeRavan::start().await;
    let ids = agent_ids(3);
    ravan.answer_all(Some(
        ResponseTemplate::new(429).insert_header("retry-after", "300"),
    ));
    let (monitor, store) = monitor_watching(&ravan, &ids, 1, 2).await;
    let monitor = monitor.schedule(PollSchedule::parse("* * * * * *").unwrap());
    let started = std::time::Instant::now();
    let first = monitor.run_cycle().await.unwrap();
    assert_eq!((first.polled, first.failed), (3, 3));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the cycle did not wait out the 300 s: {:?}",
        started.elapsed()
    );
    assert_eq!(ravan.requests("status").await, 1, "one request, then none");
    let second = monitor.run_cycle().await.unwrap();
    assert_eq!(
        ravan.requests("status").await,
        1,
        "still none while the gate is shut"
    );
    let monitor_alerts: Vec<_> = second
        .alerts
        .iter()
        .filter_map(|a| match a {
            Alert::Monitor(m) => Some(m.kind),
            _ => None,
        })
        .collect();
    assert_eq!(monitor_alerts, vec![MonitorAlertKind::Down]);
    assert!(
        store
            .agents()
            .await
            .unwrap()
            .iter()
            .all(|a| a.state.last.is_none())
    );
}
