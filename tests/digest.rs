//! The digest (`DIGEST_SCHEDULE`): what a destination receives after real poll cycles against
//! the fake Ravan (the unhealthy agents named, the counts, the alerts by kind since the previous
//! digest, times in `TIMEZONE`), the platforms' limits with 1,000 unhealthy agents and hostile
//! names, the ticks it picks, and one digest per tick whatever the processes sharing the
//! database do (SQLite and PostgreSQL). Ticks and times are given explicitly: no sleeps.

mod common;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use ravan_watch::digest::{Digester, Outcome, Period, gather};
use ravan_watch::domain::alert::{AgentRef, IntegrationName};
use ravan_watch::domain::digest::{DeadFact, UnhealthyAgent};
use ravan_watch::domain::{Digest, Message, Platform, PollSchedule, Webhook, Zone};
use ravan_watch::leader::{Leadership, Role};
use ravan_watch::notify::{Outbox, RetryPolicy, discord, slack, teams};
use ravan_watch::store::{
    DigestCounts, EventQuery, EventsAbout, Fence, NewAgent, Store, StoreError,
};
use serde_json::Value;
use wiremock::{MockServer, ResponseTemplate};

use common::alerts::webhook;
use common::limits::{all_text, assert_teams_valid, assert_within_limits, discord_rendered};
use common::{AGENT_A, AGENT_B, AGENT_C, FakeRavan};

const LIMIT: Duration = Duration::from_secs(20);

fn berlin() -> Zone {
    Zone::from(chrono_tz::Europe::Berlin)
}

fn nine() -> PollSchedule {
    PollSchedule::parse("0 0 9 * * MON-FRI").unwrap()
}

async fn sink() -> MockServer {
    common::webhook_sink(ResponseTemplate::new(200).set_body_string("ok")).await
}

fn hook_of(platform: Platform, server: &MockServer) -> Webhook {
    webhook(platform, &format!("{}/{platform}/secret", server.uri()))
}

fn outbox(store: &Store, leadership: &Leadership, defaults: &[Webhook]) -> Outbox {
    Outbox::new(store.clone(), RetryPolicy::default(), leadership.clone())
        .unwrap()
        .with_defaults(defaults.to_vec())
        .with_zone(berlin())
}

fn digester(store: &Store, leadership: &Leadership, defaults: &[Webhook]) -> Digester {
    Digester::new(
        store.clone(),
        outbox(store, leadership, defaults),
        leadership.clone(),
        nine(),
        berlin(),
        defaults.to_vec(),
    )
}

/// The digests queued, as their ticks, oldest first.
async fn queued_ticks(store: &Store) -> Vec<DateTime<Utc>> {
    store
        .outbox()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.message {
            Message::Digest(d) => Some(d.tick),
            Message::Alert(_) => None,
        })
        .collect()
}

async fn add_named(store: &Store, id: &str, name: &str) {
    let new = NewAgent {
        name: Some(name.into()),
        ..NewAgent::default()
    };
    store
        .insert_agent(id.parse().unwrap(), &new, Utc::now())
        .await
        .unwrap();
}

/// The Slack and Discord digests a pair of sinks received last, as their texts.
async fn last_texts(slack_sink: &MockServer, discord_sink: &MockServer) -> (String, String) {
    let s = common::bodies(slack_sink).await;
    let d = common::bodies(discord_sink).await;
    let (s, d) = (s.last().unwrap(), d.last().unwrap());
    assert_within_limits("slack", s);
    assert_within_limits("discord", d);
    (all_text(s), discord_rendered(d))
}

#[tokio::test]
async fn a_digest_names_the_unhealthy_counts_the_fleet_and_the_alerts_since_the_previous_one() {
    let ravan = FakeRavan::start().await;
    let store = Store::open("sqlite::memory:").await.unwrap();
    add_named(&store, AGENT_A, "Sales line").await;
    add_named(&store, AGENT_B, "Support line").await;
    add_named(&store, AGENT_C, "Booking line").await;
    ravan.set_status(AGENT_A, "errored", Some("token revoked"));
    ravan.set_status(AGENT_B, "active", None);
    ravan.set_status(AGENT_C, "active", None);
    let (slack_sink, discord_sink) = (sink().await, sink().await);
    let defaults = vec![
        hook_of(Platform::Slack, &slack_sink),
        hook_of(Platform::Discord, &discord_sink),
    ];
    let leadership = Leadership::for_tests();
    let client = common::ravan_client(&ravan);
    let monitor = common::monitor_of(client, &store, defaults.clone(), 1, 4, leadership.clone());
    let out = outbox(&store, &leadership, &defaults);
    let digests = digester(&store, &leadership, &defaults);

    monitor.run_cycle().await.unwrap();
    let first = Utc::now();
    assert_eq!(
        digests.send_tick(first, Utc::now()).await.unwrap(),
        Outcome::Queued(2)
    );
    out.pass(Utc::now()).await.unwrap();
    let (s, d) = last_texts(&slack_sink, &discord_sink).await;
    let since = store
        .agent(AGENT_A.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let since = berlin().write(since.state.health_since.unwrap());
    for text in [&s, &d] {
        assert!(text.contains("2 of 3 agents healthy"), "{text}");
        assert!(
            text.contains("3 watched · 2 healthy · 1 unhealthy"),
            "{text}"
        );
        assert!(text.contains("Sales line"), "{text}");
        assert!(text.contains(AGENT_A), "{text}");
        assert!(text.contains(&format!("errored since {since}")), "{text}");
        assert!(!text.contains("Support line"), "healthy: not named: {text}");
        assert!(text.contains("1 down"), "{text}");
        assert!(!text.contains("recovered"), "{text}");
        assert!(
            text.contains(&berlin().write(first)),
            "the tick, local: {text}"
        );
        assert!(!text.contains(" UTC"), "times in TIMEZONE: {text}");
        assert!(text.contains("Dead webhooks"), "{text}");
    }
    assert_eq!(
        common::bodies(&slack_sink).await.len(),
        2,
        "the alert, the digest"
    );
    // The alert before it went through the same outbox: its times in TIMEZONE too.
    let down_at = store
        .events(&EventQuery {
            about: EventsAbout::All,
            before: None,
            limit: 1,
        })
        .await
        .unwrap()[0]
        .at;
    let alert = all_text(&common::bodies(&slack_sink).await[0]);
    assert!(alert.contains("lost its Cal.com connection"), "{alert}");
    assert!(alert.contains(&berlin().write(down_at)), "{alert}");
    let alert = discord_rendered(&common::bodies(&discord_sink).await[0]);
    assert!(alert.contains(&berlin().write(down_at)), "{alert}");

    // A recovers and B goes down: the next digest counts only what came since the first.
    ravan.set_status(AGENT_A, "active", None);
    ravan.set_status(AGENT_B, "not_connected", None);
    monitor.run_cycle().await.unwrap();
    let second = Utc::now();
    assert_eq!(
        digests.send_tick(second, Utc::now()).await.unwrap(),
        Outcome::Queued(2)
    );
    out.pass(Utc::now()).await.unwrap();
    let (s, d) = last_texts(&slack_sink, &discord_sink).await;
    for text in [&s, &d] {
        assert!(text.contains("Support line"), "{text}");
        assert!(!text.contains("Sales line"), "{text}");
        assert!(text.contains("1 down · 1 recovered"), "{text}");
        assert!(
            text.contains(&format!(
                "Alerts since the previous digest ({})",
                berlin().write(first)
            )),
            "{text}"
        );
    }
    // A digest is no event, and no alert of the outbox's counts.
    let events = store
        .events(&EventQuery {
            about: EventsAbout::All,
            before: None,
            limit: 100,
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["down", "recovered", "down"]);
    assert_eq!(
        queued_ticks(&store).await.len(),
        4,
        "two digests, two destinations"
    );
}

/// Undelivered alerts (counted from the outbox), the alerts by kind (from the events), dead
/// webhooks (masked) and the integrations are in the digest; a dead default destination gets
/// none.
#[tokio::test]
async fn a_digest_reports_what_did_not_get_through_and_the_integrations() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    let (live, other) = (sink().await, sink().await);
    let gone = webhook(
        Platform::Discord,
        "https://discord.com/api/webhooks/1/very-secret-token",
    );
    let defaults = vec![
        hook_of(Platform::Slack, &live),
        hook_of(Platform::Discord, &other),
        gone.clone(),
    ];
    let leadership = Leadership::for_tests();
    // The dead webhook's announcement goes to the two others: one stays pending, one failed.
    let notice = ravan_watch::notify::dead::notice(
        &gone,
        "HTTP 404: 10015",
        &[],
        &defaults,
        &[],
        Utc::now(),
    );
    store
        .mark_webhook_dead(
            Fence::Unchecked,
            &gone,
            "HTTP 404: 10015",
            Utc::now(),
            Some(&notice),
        )
        .await
        .unwrap();
    let entries = store.outbox().await.unwrap();
    assert_eq!(entries.len(), 2);
    store
        .mark_failed(Fence::Unchecked, &[entries[1].id], "refused", Utc::now())
        .await
        .unwrap();
    let calcom = ravan_watch::tracker::IntegrationState {
        healthy: Some(true),
        status: Some("active".into()),
        since: Some(Utc::now()),
        ..Default::default()
    };
    store
        .save_integration(
            Fence::Unchecked,
            IntegrationName::CalcomOrg,
            &calcom,
            &[],
            Utc::now(),
        )
        .await
        .unwrap();

    let digests = digester(&store, &leadership, &defaults);
    let tick = Utc::now();
    assert_eq!(
        digests.send_tick(tick, Utc::now()).await.unwrap(),
        Outcome::Queued(2),
        "not to the dead one"
    );
    outbox(&store, &leadership, &defaults)
        .pass(Utc::now())
        .await
        .unwrap();
    let bodies = common::bodies(&live).await;
    assert_eq!(bodies.len(), 2, "the announcement, then the digest");
    let text = all_text(&bodies[1]).replace('\u{200B}', "");
    assert!(text.contains("ravan-watch digest"), "{text}");
    assert!(
        text.contains("Discord https://discord.com/api/webhooks/1/***"),
        "{text}"
    );
    assert!(!text.contains("very-secret-token"), "{text}");
    assert!(text.contains("1 webhook_dead"), "{text}");
    let since = berlin().write(tick - TimeDelta::hours(24));
    assert!(
        text.contains(&format!("1 pending · 1 failed since {since}")),
        "{text}"
    );
    assert!(
        text.contains("The organisation's Cal.com connection: healthy (active) since"),
        "{text}"
    );
    let d = common::bodies(&other).await;
    assert_eq!(d.len(), 1, "the digest only: its announcement failed");
    assert!(discord_rendered(&d[0]).contains("1 pending · 1 failed since"));
}

fn unhealthy(n: usize, name: &str, since: DateTime<Utc>) -> AgentRecordLike {
    AgentRecordLike {
        n,
        name: name.to_owned(),
        since,
    }
}

/// What a hostile fleet's agent is made of.
struct AgentRecordLike {
    n: usize,
    name: String,
    since: DateTime<Utc>,
}

fn digest_of(agents: &[AgentRecordLike], dead: usize) -> Digest {
    let tick = Utc::now();
    Digest {
        tick,
        since: tick - TimeDelta::hours(24),
        since_previous: false,
        watched: agents.len() + 5,
        healthy: 5,
        unknown: 0,
        unhealthy: agents
            .iter()
            .take(Digest::NAMED)
            .map(|a| UnhealthyAgent {
                agent: AgentRef {
                    id: common::ids::agent_id(a.n).parse().unwrap(),
                    name: Some(a.name.clone()),
                },
                status: format!("<!channel> @everyone {}", "*".repeat(300)),
                since: Some(a.since),
            })
            .collect(),
        unhealthy_count: agents.len(),
        alerts: vec![],
        integrations: vec![],
        pending: 12,
        failed: 3,
        dead_webhooks: (0..dead.min(Digest::NAMED))
            .map(|i| DeadFact {
                platform: Platform::Slack,
                webhook: format!(
                    "https://hooks.slack.com/services/T{i}/<!here>/{}",
                    "x".repeat(500)
                ),
                since: tick,
            })
            .collect(),
        dead_count: dead,
    }
}

/// The Teams digest of 1,000 hostile unhealthy agents and as many dead webhooks: a valid Adaptive
/// Card 1.4 under 28 KB, ten named, "…and 990 more", its headline coloured like the others' bar.
#[test]
fn a_thousand_hostile_unhealthy_agents_make_a_valid_teams_digest() {
    let since = Utc::now() - TimeDelta::hours(3);
    let hostile = format!(
        "<at>x</at> @everyone [x](http://e) `**{}",
        "é\n".repeat(3000)
    );
    let fleet: Vec<AgentRecordLike> = (0..1000).map(|n| unhealthy(n, &hostile, since)).collect();
    for dead in [0, 1000] {
        let d = digest_of(&fleet, dead);
        for zone in [Zone::UTC, berlin()] {
            let card = teams::digest(&d, zone);
            assert_teams_valid(&format!("{dead} dead"), &card);
            let text = all_text(&card).replace('\u{200B}', "");
            assert!(text.contains("…and 990 more"), "ten named: {text}");
            assert!(text.contains("Undelivered alerts"), "{text}");
            assert_eq!(
                card["attachments"][0]["content"]["body"][0]["color"], "attention",
                "unhealthy agents: red"
            );
        }
    }
}

/// 1,000 unhealthy agents with hostile names: ten named, "…and 990 more", within Slack's and
/// Discord's limits, and nothing that could mention anyone or break the markup.
#[test]
fn a_thousand_hostile_unhealthy_agents_stay_within_both_platforms_limits() {
    let since = Utc::now() - TimeDelta::hours(3);
    let hostile = format!("<!here> @everyone [x](http://e) `**{}", "é\n".repeat(3000));
    let fleet: Vec<AgentRecordLike> = (0..1000).map(|n| unhealthy(n, &hostile, since)).collect();
    for dead in [0, 1000] {
        let d = digest_of(&fleet, dead);
        for zone in [Zone::UTC, berlin()] {
            let s = slack::digest(&d, zone);
            let c = discord::digest(&d, zone);
            assert_within_limits("slack", &s);
            assert_within_limits("discord", &c);
            for text in [all_text(&s), all_text(&c)] {
                assert!(text.contains("…and 990 more"), "ten named: {text}");
                assert!(!text.contains("@everyone"), "{text}");
                assert!(
                    !text.contains("<!here>") && !text.contains("<!channel>"),
                    "{text}"
                );
                let cut = usize::from(dead > 0) + 1;
                assert_eq!(text.matches(" more").count(), cut, "{text}");
            }
            let s_blocks = s["attachments"][0]["blocks"].as_array().unwrap().len();
            assert!(s_blocks <= 50, "{s_blocks} blocks");
        }
    }
}

/// The pure gathering: the unhealthy agents longest unhealthy first, at most ten kept of
/// 1,000, the alert kinds in the events' order, the integrations and the dead webhooks masked.
#[test]
fn gathering_keeps_ten_of_a_thousand_unhealthy_longest_first() {
    use ravan_watch::domain::Observation;
    use ravan_watch::store::{AgentRecord, DeadWebhook};
    let tick = Utc::now().trunc_subsecs(0);
    let observed = |status: &str, since: DateTime<Utc>| ravan_watch::tracker::AgentState {
        last: Some(Observation {
            status: status.into(),
            connected: false,
            accounts: vec![],
            connection: None,
        }),
        health_since: Some(since),
        ..Default::default()
    };
    let record = |n: usize, state| AgentRecord {
        agent_id: common::ids::agent_id(n).parse().unwrap(),
        name: Some(format!("agent {n}")),
        listed_name: None,
        source: ravan_watch::store::Source::Api,
        slack_webhook_url: None,
        discord_webhook_url: None,
        teams_webhook_url: None,
        webhook_url: None,
        muted: false,
        muted_until: None,
        created_at: tick,
        added_version: 1,
        state,
    };
    let mut agents: Vec<AgentRecord> = (0..1000)
        .map(|n| record(n, observed("errored", tick - TimeDelta::minutes(n as i64))))
        .collect();
    agents.push(record(2000, observed("active", tick)));
    agents.push(record(2001, Default::default()));
    let counts = DigestCounts {
        alerts: vec![
            ("recovered".into(), 2),
            ("down".into(), 5),
            ("integration_down".into(), 1),
        ],
        pending: 4,
        failed: 1,
    };
    let calcom = ravan_watch::tracker::IntegrationState {
        healthy: Some(false),
        status: Some("errored".into()),
        ..Default::default()
    };
    let dead = DeadWebhook {
        webhook: webhook(
            Platform::Slack,
            "https://hooks.slack.com/services/T0/B0/SECRET",
        ),
        reason: "HTTP 404: no_service".into(),
        since: tick,
    };
    let period = Period {
        tick,
        since: tick - TimeDelta::hours(24),
        since_previous: false,
    };
    let d = gather(
        period,
        &agents,
        counts,
        &[(IntegrationName::CalcomOrg, calcom)],
        &[dead],
    );
    assert_eq!((d.watched, d.healthy, d.unknown), (1002, 1, 1));
    assert_eq!(d.unhealthy_count, 1000);
    let named: Vec<&str> = d
        .unhealthy
        .iter()
        .map(|u| u.agent.name.as_deref().unwrap())
        .collect();
    assert_eq!(named.len(), 10);
    assert_eq!(named[0], "agent 999", "longest unhealthy first");
    assert_eq!(named[9], "agent 990");
    let kinds: Vec<(&str, u64)> = d
        .alerts
        .iter()
        .map(|k| (k.kind.as_str(), k.count))
        .collect();
    assert_eq!(
        kinds,
        [("down", 5), ("recovered", 2), ("integration_down", 1)]
    );
    assert_eq!((d.pending, d.failed), (4, 1));
    assert_eq!(d.integrations.len(), 1);
    assert_eq!(
        d.dead_webhooks[0].webhook,
        "https://hooks.slack.com/services/T0/B0/***"
    );
    let text = all_text(&slack::digest(&d, Zone::UTC));
    assert!(
        text.contains("5 down · 2 recovered · 1 integration_down"),
        "{text}"
    );
    assert!(
        text.contains("The organisation's Cal.com connection: unhealthy (errored)"),
        "{text}"
    );
    assert!(text.contains("4 pending · 1 failed since"), "{text}");
}

/// The tick due: the latest one not yet sent and at most an hour late; none before the
/// first tick or once the last one was sent.
#[test]
fn the_tick_due_is_the_latest_unsent_one_at_most_an_hour_late() {
    let store_less = |schedule: &str| {
        // The digester's arithmetic needs no store: `due` is pure.
        PollSchedule::parse(schedule).unwrap()
    };
    let schedule = store_less("0 0 9 * * MON-FRI");
    let zone = berlin();
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    // Monday 7 December 2026, 09:00 in Berlin is 08:00 UTC.
    let nine_monday = at("2026-12-07T08:00:00Z");
    let due = |last: Option<DateTime<Utc>>, now: DateTime<Utc>| {
        ravan_watch::digest::due(&schedule, zone, last, now)
    };
    assert_eq!(due(None, at("2026-12-07T07:59:59Z")), None, "not yet");
    assert_eq!(due(None, nine_monday), Some(nine_monday));
    assert_eq!(
        due(None, at("2026-12-07T08:59:00Z")),
        Some(nine_monday),
        "late"
    );
    assert_eq!(due(None, at("2026-12-07T09:00:01Z")), None, "too late");
    assert_eq!(
        due(Some(nine_monday), at("2026-12-07T08:30:00Z")),
        None,
        "sent"
    );
    // Friday's tick, then Monday's: the weekend has none.
    let friday = at("2026-12-04T08:00:00Z");
    assert_eq!(due(Some(friday), at("2026-12-06T12:00:00Z")), None);
    assert_eq!(due(Some(friday), nine_monday), Some(nine_monday));
    // Every second: only the latest due tick, not the hour of them.
    let every = store_less("* * * * * *");
    let now = at("2026-12-07T08:00:00Z");
    assert_eq!(ravan_watch::digest::due(&every, zone, None, now), Some(now));
    assert_eq!(
        ravan_watch::digest::due(&every, zone, Some(now - TimeDelta::seconds(5)), now),
        Some(now)
    );
}

/// Two processes on one database: only the leader sends, a tick is sent once (a takeover
/// after it finds it sent), the old leader's claim of a later tick is refused by its fence, and
/// two digesters racing for one tick queue one digest.
async fn once_per_tick(url_a: &str, url_b: &str) {
    let store_a = Store::open(url_a).await.unwrap();
    let store_b = Store::open(url_b).await.unwrap();
    let slack_sink = sink().await;
    let defaults = vec![hook_of(Platform::Slack, &slack_sink)];
    let (a, b) = (
        Leadership::leased(store_a.clone()),
        Leadership::leased(store_b.clone()),
    );
    assert_eq!(a.claim().await, Role::Leader);
    assert_eq!(b.claim().await, Role::Standby);
    let (da, db) = (
        digester(&store_a, &a, &defaults),
        digester(&store_b, &b, &defaults),
    );
    let tick = Utc::now().trunc_subsecs(3);
    assert_eq!(
        db.send_tick(tick, Utc::now()).await.unwrap(),
        Outcome::Standby
    );
    assert_eq!(
        da.send_tick(tick, Utc::now()).await.unwrap(),
        Outcome::Queued(1)
    );
    assert_eq!(
        da.send_tick(tick, Utc::now()).await.unwrap(),
        Outcome::AlreadyQueued
    );

    // The lease passes to B behind A's back (A still trusts it): B finds the tick sent.
    let Some(Fence::Term(old)) = a.fence() else {
        panic!("a leads in a term")
    };
    store_a.release_lease(a.holder(), old).await.unwrap();
    assert_eq!(b.claim().await, Role::Leader);
    assert_eq!(
        db.send_tick(tick, Utc::now()).await.unwrap(),
        Outcome::AlreadyQueued
    );
    // The old leader's claim of the next tick is refused, and it steps down.
    let next = tick + TimeDelta::days(1);
    let refused = da.send_tick(next, Utc::now()).await;
    assert!(
        matches!(refused, Err(StoreError::Fenced(t)) if t == old),
        "{refused:?}"
    );
    assert_eq!(a.role(), Role::Standby);
    assert_eq!(
        queued_ticks(&store_b).await,
        [tick],
        "nothing of the old leader's"
    );
    assert_eq!(
        db.send_tick(next, Utc::now()).await.unwrap(),
        Outcome::Queued(1)
    );

    // Two digesters racing for one tick (writes unchecked by the lease): one digest.
    let (x, y) = (Leadership::for_tests(), Leadership::for_tests());
    let (dx, dy) = (
        digester(&store_a, &x, &defaults),
        digester(&store_b, &y, &defaults),
    );
    let raced = next + TimeDelta::days(1);
    let (rx, ry) = tokio::join!(
        dx.send_tick(raced, Utc::now()),
        dy.send_tick(raced, Utc::now())
    );
    let mut outcomes = [rx.unwrap(), ry.unwrap()];
    outcomes.sort_by_key(|o| matches!(o, Outcome::AlreadyQueued));
    assert_eq!(outcomes, [Outcome::Queued(1), Outcome::AlreadyQueued]);
    assert_eq!(queued_ticks(&store_a).await, [tick, next, raced]);

    // Delivered by the leader: one message per tick.
    outbox(&store_b, &b, &defaults)
        .pass(Utc::now())
        .await
        .unwrap();
    let got = common::bodies(&slack_sink).await;
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got.iter()
            .all(|m: &Value| all_text(m).contains("ravan-watch digest"))
    );
    assert_eq!(store_b.outbox_pending().await.unwrap(), 0);
}

#[tokio::test]
async fn one_digest_per_tick_with_two_processes_on_sqlite() {
    let (_dir, url) = common::temp_database();
    once_per_tick(&url, &url).await;
}

#[tokio::test]
async fn one_digest_per_tick_with_two_processes_on_postgres() {
    let Some(url) = common::postgres::fresh_database().await else {
        return;
    };
    once_per_tick(&url, &url).await;
}

/// The running task: on an every-second schedule, two processes' digesters (both unchecked:
/// the store's claim of the tick alone keeps them apart) queue each tick once, and one delivery
/// worker (as in production, where only the leader delivers) sends each once.
#[tokio::test]
async fn running_digesters_send_each_tick_once() {
    let (_dir, url) = common::temp_database();
    let slack_sink = sink().await;
    let defaults = vec![hook_of(Platform::Slack, &slack_sink)];
    let stop = tokio_util::sync::CancellationToken::new();
    let mut digesters = Vec::new();
    let mut outboxes = Vec::new();
    let store = Store::open(&url).await.unwrap();
    for _ in 0..2 {
        let store = Store::open(&url).await.unwrap();
        let leadership = Leadership::for_tests();
        let every = PollSchedule::parse("* * * * * *").unwrap();
        let out = outbox(&store, &leadership, &defaults);
        outboxes.push(out.clone());
        let d = Digester::new(store, out, leadership, every, berlin(), defaults.clone());
        digesters.push(tokio::spawn(d.run(stop.clone())));
    }
    let worker = outboxes[0].spawn();
    common::wait_until(LIMIT, "three digests queued", || async {
        queued_ticks(&store).await.len() >= 3
    })
    .await;
    stop.cancel();
    for task in digesters {
        task.await.unwrap();
    }
    // The other process's last digests wake no worker of this one: wake it.
    outboxes[0].wake();
    common::wait_until(LIMIT, "every digest delivered", || async {
        store.outbox_pending().await.unwrap() == 0
    })
    .await;
    assert!(
        worker.stop(Duration::from_secs(5)).await,
        "the worker stops"
    );
    let ticks = queued_ticks(&store).await;
    let mut unique = ticks.clone();
    unique.dedup();
    assert_eq!(ticks, unique, "each tick queued once");
    assert!(ticks.len() >= 3, "{ticks:?}");
    let sent = common::bodies(&slack_sink).await.len();
    assert_eq!(sent, ticks.len(), "each digest sent once");
}

/// `copy-db` copies the last digest's tick and the queued digest: the copy sends neither again.
#[tokio::test]
async fn a_copy_keeps_the_last_digests_tick_and_the_queued_digest() {
    let (_dir, url) = common::temp_database();
    copy_keeps_the_digest(&url).await;
}

#[tokio::test]
async fn a_copy_to_postgres_keeps_the_last_digests_tick_and_the_queued_digest() {
    let Some(url) = common::postgres::fresh_database().await else {
        return;
    };
    copy_keeps_the_digest(&url).await;
}

async fn copy_keeps_the_digest(url: &str) {
    let source = Store::open("sqlite::memory:").await.unwrap();
    let slack_sink = sink().await;
    let defaults = vec![hook_of(Platform::Slack, &slack_sink)];
    let leadership = Leadership::for_tests();
    let tick = Utc::now().trunc_subsecs(3);
    let queued = digester(&source, &leadership, &defaults)
        .send_tick(tick, Utc::now())
        .await
        .unwrap();
    assert_eq!(queued, Outcome::Queued(1));
    let snapshot = source.export().await.unwrap();
    assert_eq!(snapshot.last_digest, Some(tick));
    let target = Store::open(url).await.unwrap();
    target.import(&snapshot).await.unwrap();
    assert_eq!(target.last_digest().await.unwrap(), Some(tick));
    assert_eq!(queued_ticks(&target).await, [tick]);
    let again = digester(&target, &leadership, &defaults)
        .send_tick(tick, Utc::now())
        .await
        .unwrap();
    assert_eq!(again, Outcome::AlreadyQueued);
    assert_eq!(target.export().await.unwrap(), snapshot);
}

/// The service wires both settings: built from `TIMEZONE` and `DIGEST_SCHEDULE`, its digester
/// queues the digest to the default webhook, and its outbox writes the digest's and the
/// alerts' times in that zone.
#[tokio::test]
async fn the_service_built_from_its_settings_sends_its_digest_in_its_zone() {
    let ravan = FakeRavan::start().await;
    ravan.set_status(AGENT_A, "errored", None);
    let slack_sink = sink().await;
    let (_dir, url) = common::temp_database();
    let hook = format!("{}/slack/secret", slack_sink.uri());
    let app = common::TestSettings::new(&ravan.uri())
        .database(&url)
        .agents(AGENT_A)
        .never_polling()
        .failure(1)
        .slack(&hook)
        .set("TIMEZONE", "America/New_York")
        .set("DIGEST_SCHEDULE", "0 0 9 * * MON-FRI")
        .build()
        .await;
    app.monitor().run_cycle().await.unwrap();
    let tick = Utc::now();
    let digester = app.digester().expect("DIGEST_SCHEDULE is set");
    assert_eq!(
        digester.send_tick(tick, Utc::now()).await.unwrap(),
        Outcome::Queued(1)
    );
    app.outbox().pass(Utc::now()).await.unwrap();
    let got = common::bodies(&slack_sink).await;
    assert_eq!(got.len(), 2, "the alert, then the digest");
    let new_york = Zone::from(chrono_tz::America::New_York);
    let digest = all_text(&got[1]);
    assert!(digest.contains("0 of 1 agent healthy"), "{digest}");
    assert!(digest.contains(&new_york.write(tick)), "{digest}");
    let alert = all_text(&got[0]);
    assert!(alert.contains("lost its Cal.com connection"), "{alert}");
    assert!(!alert.contains(" UTC"), "{alert}");
}
