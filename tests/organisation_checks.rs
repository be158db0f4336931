//! The organisation-level checks (`CHECK_INTEGRATIONS`) through real poll cycles against the fake
//! Ravan: each integration down once and recovered once, an integration never connected silent,
//! a failed check no observation, two requests a cycle, and the state kept across a restart.

mod common;

use std::time::Duration;

use ravan_watch::domain::{Platform, PollSchedule};
use ravan_watch::leader::Leadership;
use ravan_watch::monitor::Monitor;
use ravan_watch::organisation::OrgChecks;
use ravan_watch::store::{EventQuery, EventsAbout, Store};
use wiremock::ResponseTemplate;

use common::alerts::webhook;
use common::ravan::{calcom_org_body, ghl_body};
use common::{AGENT_A, AGENT_B, FakeRavan};

const DEFAULT_SLACK: &str = "https://hooks.slack.com/services/T0/B0/org-secret";

/// A monitor of the fake watching agent A (healthy), with the organisation checks on, alerting
/// to one default Slack webhook; thresholds 2 down, 1 up.
fn monitor(ravan: &FakeRavan, store: &Store) -> Monitor {
    monitor_polling(ravan, store, 4)
}

/// [`monitor`], polling `concurrency` agents at a time.
fn monitor_polling(ravan: &FakeRavan, store: &Store, concurrency: usize) -> Monitor {
    let defaults = vec![webhook(Platform::Slack, DEFAULT_SLACK)];
    let checks = OrgChecks::new(
        common::ravan_client(ravan),
        store.clone(),
        defaults.clone(),
        common::thresholds(2),
        std::time::Duration::from_secs(3 * 86_400),
        None,
    );
    let client = common::ravan_client(ravan);
    common::monitor_of(
        client,
        store,
        defaults,
        2,
        concurrency,
        Leadership::for_tests(),
    )
    .org_checks(checks)
}

async fn store_watching_a(ravan: &FakeRavan) -> Store {
    store_at("sqlite::memory:", ravan).await
}

/// The database at `url`, watching agent A, which the fake answers healthy.
async fn store_at(url: &str, ravan: &FakeRavan) -> Store {
    ravan.set_status(AGENT_A, "active", None);
    let store = Store::open(url).await.unwrap();
    store
        .ensure_agents(&[AGENT_A.parse().unwrap()], chrono::Utc::now())
        .await
        .unwrap();
    store
}

/// The events without an agent, oldest first: (kind, integration).
async fn org_events(store: &Store) -> Vec<(String, Option<String>)> {
    let events = events_about(store, EventsAbout::Monitor).await;
    events.into_iter().map(|(k, _, i)| (k, i)).collect()
}

/// The events `about`, oldest first: (kind, agent, integration).
async fn events_about(
    store: &Store,
    about: EventsAbout,
) -> Vec<(String, Option<String>, Option<String>)> {
    let query = EventQuery {
        about,
        before: None,
        limit: 100,
    };
    let mut events = store.events(&query).await.unwrap();
    events.reverse();
    events
        .into_iter()
        .map(|e| (e.kind, e.agent_id.map(|a| a.to_string()), e.integration))
        .collect()
}

async fn cycles(monitor: &Monitor, n: usize) {
    for _ in 0..n {
        monitor.run_cycle().await.unwrap();
    }
}

fn json(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn the_organisations_calcom_goes_down_once_and_recovers_once() {
    let ravan = FakeRavan::start().await;
    let store = store_watching_a(&ravan).await;
    let m = monitor(&ravan, &store);
    cycles(&m, 1).await;
    ravan.set_calcom_org(json(calcom_org_body("errored")));
    cycles(&m, 1).await;
    assert!(
        org_events(&store).await.is_empty(),
        "one unhealthy check is below the threshold"
    );
    cycles(&m, 3).await;
    let down = ("integration_down".to_owned(), Some("calcom_org".to_owned()));
    assert_eq!(org_events(&store).await, vec![down.clone()]);
    let entries = store.outbox().await.unwrap();
    assert_eq!(entries.len(), 1, "to the default destination");
    assert_eq!(entries[0].webhook.url.expose().as_str(), DEFAULT_SLACK);
    let text = ravan_watch::notify::text::headline(entries[0].alert().expect("an alert"));
    assert!(text.contains("Cal.com"), "{text}");

    ravan.set_calcom_org(json(calcom_org_body("active")));
    cycles(&m, 2).await;
    let up = (
        "integration_recovered".to_owned(),
        Some("calcom_org".to_owned()),
    );
    assert_eq!(org_events(&store).await, vec![down, up]);
}

#[tokio::test]
async fn gohighlevel_goes_down_once_and_one_never_connected_is_silent() {
    let ravan = FakeRavan::start().await;
    let store = store_watching_a(&ravan).await;
    ravan.set_ghl(json(ghl_body(false, false)));
    let m = monitor(&ravan, &store);
    cycles(&m, 4).await;
    assert!(
        org_events(&store).await.is_empty(),
        "never connected: no outage"
    );

    ravan.set_ghl(json(ghl_body(true, true)));
    cycles(&m, 1).await;
    ravan.set_ghl(json(ghl_body(true, false)));
    cycles(&m, 3).await;
    let down = ("integration_down".to_owned(), Some("ghl".to_owned()));
    assert_eq!(org_events(&store).await, vec![down.clone()]);
    let states = store.integrations().await.unwrap();
    let ghl = &states.iter().find(|(n, _)| n.as_str() == "ghl").unwrap().1;
    assert_eq!(ghl.status.as_deref(), Some("token_invalid"));

    ravan.set_ghl(json(ghl_body(true, true)));
    cycles(&m, 2).await;
    let up = ("integration_recovered".to_owned(), Some("ghl".to_owned()));
    assert_eq!(org_events(&store).await, vec![down, up]);
}

/// The organisation's Cal.com answer with its token expiring at `expires`.
fn calcom_token(expires: chrono::DateTime<chrono::Utc>) -> ResponseTemplate {
    let mut body = calcom_org_body("active");
    body["data"]["token_expires"] = serde_json::json!(expires.to_rfc3339());
    json(body)
}

/// Now, to the second (the expiry Ravan sends has no fraction).
fn now_s() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(0)
}

/// The organisation's Cal.com as a healthy account whose token has read `expires` since
/// `seen_since` (and, when `expired_seen_at`, has been seen past it since then).
async fn seed_token(
    store: &Store,
    expires: chrono::DateTime<chrono::Utc>,
    seen_since: chrono::DateTime<chrono::Utc>,
    expired_seen_at: Option<chrono::DateTime<chrono::Utc>>,
) {
    use ravan_watch::domain::alert::IntegrationName;
    use ravan_watch::tracker::IntegrationState;
    let now = chrono::Utc::now();
    let state = IntegrationState {
        status: Some("active".into()),
        healthy: Some(true),
        since: Some(now - chrono::Duration::days(7)),
        health_streak: 1,
        seen_healthy: true,
        last_checked_at: Some(now - chrono::Duration::seconds(30)),
        token_expires: Some(expires),
        token_seen_since: Some(seen_since),
        token_expired_seen_at: expired_seen_at,
        ..IntegrationState::default()
    };
    let fence = ravan_watch::store::Fence::Unchecked;
    store
        .save_integration(fence, IntegrationName::CalcomOrg, &state, &[], now)
        .await
        .unwrap();
}

/// A token whose expiry has stood still for a day and comes within `TOKEN_EXPIRY_WARNING`
/// warns once; one whose expiry moves at every check (Ravan refreshing it) never does; one
/// past its expiry and not renewed on two checks 10 minutes apart is down, "token expired".
#[tokio::test]
async fn a_stuck_token_warns_once_a_moving_one_never_and_an_expired_one_is_down() {
    use chrono::Duration;
    let ravan = FakeRavan::start().await;
    let store = store_watching_a(&ravan).await;
    let now = now_s();
    let soon = now + Duration::days(2);
    seed_token(&store, soon, now - Duration::hours(25), None).await;
    ravan.set_calcom_org(calcom_token(soon));
    let m = monitor(&ravan, &store);
    cycles(&m, 3).await;
    let warned = ("token_expiring".to_owned(), Some("calcom_org".to_owned()));
    assert_eq!(org_events(&store).await, vec![warned.clone()], "once");

    // Refreshed at every check: a moving expiry, however near, is no deadline.
    let other = store_watching_a(&ravan).await;
    seed_token(&other, soon, now - Duration::hours(25), None).await;
    let moving = monitor(&ravan, &other);
    for hours in 1..=4 {
        ravan.set_calcom_org(calcom_token(soon + Duration::hours(hours)));
        cycles(&moving, 1).await;
    }
    assert!(org_events(&other).await.is_empty(), "never");
    let states = other.integrations().await.unwrap();
    let calcom = &states
        .iter()
        .find(|(n, _)| n.as_str() == "calcom_org")
        .unwrap()
        .1;
    assert_eq!(
        calcom.token_expires,
        Some(soon + Duration::hours(4)),
        "every check answered"
    );

    // Past its expiry, seen so 11 minutes ago already and not renewed: down.
    let past = now - Duration::hours(1);
    seed_token(
        &store,
        past,
        now - Duration::hours(3),
        Some(now - Duration::minutes(11)),
    )
    .await;
    ravan.set_calcom_org(calcom_token(past));
    cycles(&m, 1).await;
    let down = ("integration_down".to_owned(), Some("calcom_org".to_owned()));
    assert_eq!(org_events(&store).await, vec![warned, down]);
    let states = store.integrations().await.unwrap();
    let calcom = &states
        .iter()
        .find(|(n, _)| n.as_str() == "calcom_org")
        .unwrap()
        .1;
    assert_eq!(calcom.detail.as_deref(), Some("token expired"));
}

#[tokio::test]
async fn a_failed_check_is_no_observation_and_each_cycle_costs_two_requests() {
    let ravan = FakeRavan::start().await;
    let store = store_watching_a(&ravan).await;
    let m = monitor(&ravan, &store);
    cycles(&m, 1).await;
    for answer in [
        ResponseTemplate::new(502),
        ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"code": 16, "message": "API key is missing or invalid", "details": []}),
        ),
    ] {
        ravan.set_calcom_org(answer.clone());
        ravan.set_ghl(answer);
        cycles(&m, 3).await;
    }
    assert!(
        org_events(&store).await.is_empty(),
        "failures alert nothing"
    );
    let states = store.integrations().await.unwrap();
    for (name, state) in &states {
        assert_eq!(state.healthy, Some(true), "{name:?}: still as last seen");
        assert!(state.last_error.is_some(), "{name:?}: why it failed");
    }
    assert_eq!(ravan.requests("calcom_org").await, 7);
    assert_eq!(ravan.requests("ghl").await, 7);
    assert_eq!(
        ravan.requests("agent").await,
        1,
        "the organisation is read once"
    );
}

#[tokio::test]
async fn without_the_checks_a_cycle_asks_nothing_of_the_organisation() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "active", None);
    let (m, _store) = common::monitor_watching(&ravan, &[AGENT_A.to_owned()], 4, 2).await;
    cycles(&m, 3).await;
    assert_eq!(
        ravan.requests("calcom_org").await + ravan.requests("ghl").await,
        0
    );
}

#[tokio::test]
async fn the_state_survives_a_restart_without_a_repeated_alert_on_sqlite() {
    let (_dir, url) = common::temp_database();
    state_survives_a_restart(&url).await;
}

#[tokio::test]
async fn the_state_survives_a_restart_without_a_repeated_alert_on_postgres() {
    let Some(url) = common::postgres::fresh_database().await else {
        return;
    };
    state_survives_a_restart(&url).await;
}

/// Down is decided across a restart (one unhealthy check before, the threshold's second
/// after), once; the recovery after another restart, once.
async fn state_survives_a_restart(url: &str) {
    let ravan = FakeRavan::start().await;
    let store = store_at(url, &ravan).await;
    cycles(&monitor(&ravan, &store), 1).await;
    ravan.set_calcom_org(json(calcom_org_body("errored")));
    cycles(&monitor(&ravan, &store), 1).await;
    store.close().await;

    // Restarted: the second unhealthy check completes the threshold, once.
    let store = Store::open(url).await.unwrap();
    let m = monitor(&ravan, &store);
    cycles(&m, 3).await;
    let down = ("integration_down".to_owned(), Some("calcom_org".to_owned()));
    assert_eq!(org_events(&store).await, vec![down.clone()]);
    drop(m);
    store.close().await;
    let store = Store::open(url).await.unwrap();
    ravan.set_calcom_org(json(calcom_org_body("active")));
    cycles(&monitor(&ravan, &store), 1).await;
    let up = (
        "integration_recovered".to_owned(),
        Some("calcom_org".to_owned()),
    );
    assert_eq!(org_events(&store).await, vec![down, up]);
}

/// Every event, oldest first: (kind, agent, integration).
async fn all_events(store: &Store) -> Vec<(String, Option<String>, Option<String>)> {
    events_about(store, EventsAbout::All).await
}

/// The affected count of the queued integration alert of `kind`.
async fn affected(store: &Store, kind: ravan_watch::domain::alert::IntegrationAlertKind) -> usize {
    store
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .find_map(|e| match e.alert() {
            Some(ravan_watch::domain::alert::Alert::Integration(a)) if a.kind == kind => {
                Some(a.affected_count)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {kind:?} queued"))
}

/// One broken shared account is one message: while the organisation's Cal.com is unhealthy,
/// the org-linked agents' downs are held and counted in its down and recovery; an agent still
/// down when the account is healthy again alerts on its own; a private agent, and an org-linked
/// one breaking while the account is healthy, alert as always.
#[tokio::test]
async fn org_linked_agents_fold_into_the_organisations_cal_com_alerts() {
    use ravan_watch::domain::alert::IntegrationAlertKind as Kind;
    let ravan = FakeRavan::start().await;
    let ids = common::ids::agent_ids(5);
    let [a, b, c, private, late] = [0, 1, 2, 3, 4].map(|i| ids[i].clone());
    for id in [&a, &b, &c, &late] {
        ravan.set_org_linked(id, "active", "Acme team calendar");
    }
    ravan.set_status(&private, "active", None);
    let store = Store::open("sqlite::memory:").await.unwrap();
    let parsed: Vec<_> = ids.iter().map(|i| i.parse().unwrap()).collect();
    store
        .ensure_agents(&parsed, chrono::Utc::now())
        .await
        .unwrap();
    let m = monitor(&ravan, &store);
    cycles(&m, 1).await;

    // The shared account breaks: the org check and its three agents, and a private agent too.
    ravan.set_calcom_org(json(calcom_org_body("errored")));
    for id in [&a, &b, &c] {
        ravan.set_org_linked(id, "errored", "Acme team calendar");
    }
    ravan.set_status(&private, "errored", Some("Invalid API key"));
    cycles(&m, 3).await;
    let events = all_events(&store).await;
    let kinds: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|(k, agent, _)| (k.as_str(), agent.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [("down", Some(private.as_str())), ("integration_down", None)],
        "one message for the shared account, the private agent on its own"
    );
    assert_eq!(affected(&store, Kind::Down).await, 3);
    let org_linked = store
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .find_map(|e| match e.alert() {
            Some(ravan_watch::domain::alert::Alert::Integration(a)) => a.org_linked,
            _ => None,
        });
    assert_eq!(
        org_linked,
        Some(4),
        "the watched agents that book through it"
    );

    // The account recovers; a and b with it, c stays down and now alerts on its own.
    ravan.set_calcom_org(json(calcom_org_body("active")));
    for id in [&a, &b] {
        ravan.set_org_linked(id, "active", "Acme team calendar");
    }
    cycles(&m, 1).await;
    let events = all_events(&store).await;
    let tail: Vec<(&str, Option<&str>)> = events[2..]
        .iter()
        .map(|(k, agent, _)| (k.as_str(), agent.as_deref()))
        .collect();
    assert_eq!(
        tail,
        [("down", Some(c.as_str())), ("integration_recovered", None)]
    );
    assert_eq!(affected(&store, Kind::Recovered).await, 3);

    // With the account healthy, an org-linked agent that breaks alerts as always.
    ravan.set_org_linked(&late, "errored", "Acme team calendar");
    cycles(&m, 2).await;
    let last = all_events(&store).await.pop().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.as_deref()),
        ("down", Some(late.as_str()))
    );
}

/// The checks run before the polls; when they outlast the next tick, a 429 answered to a poll
/// must still end the cycle at once, not make the other polls wait out its `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_that_outlast_the_tick_leave_a_throttled_cycle_bounded() {
    let ravan = FakeRavan::start().await;
    let store = store_watching_a(&ravan).await;
    store
        .ensure_agents(&[AGENT_B.parse().unwrap()], chrono::Utc::now())
        .await
        .unwrap();
    // Longer than the second to the next tick of an every-second schedule.
    let slow = Duration::from_millis(1_200);
    ravan.set_calcom_org(json(calcom_org_body("active")).set_delay(slow));
    ravan.set_ghl(json(ghl_body(true, true)).set_delay(slow));
    ravan.answer_all(Some(
        ResponseTemplate::new(429).insert_header("retry-after", "300"),
    ));
    let m =
        monitor_polling(&ravan, &store, 1).schedule(PollSchedule::parse("* * * * * *").unwrap());
    let cycle = tokio::time::timeout(Duration::from_secs(30), m.run_cycle())
        .await
        .expect("the cycle ends without waiting out the 300 s Retry-After")
        .unwrap();
    assert_eq!((cycle.polled, cycle.failed), (2, 2));
    assert_eq!(ravan.requests("status").await, 1, "one request, then none");
}
