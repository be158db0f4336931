//! A realistic fleet with a month of history, written through the real store API (the way a
//! poll cycle writes it: `commit_cycle` with each agent's new state, its alerts and its health
//! edge), for the status page's browser test and its benchmark.
//!
//! Of `n` agents (the `i`-th is [`ids::agent_id`]`(i)`): most are healthy all month; one in 20
//! flaps (three to six outages of one to six hours, each a down and a recovered alert); one in
//! 50 is unhealthy now (down since one to 40 hours ago); one in 100 was never polled (unknown)
//! and one in 100 has polls failing since a few hours; one in 25 was added 36 hours ago.
//! Agents 1 and 2 carry hostile names. Every alert goes to a Slack and a Discord webhook; after
//! seeding every delivery is marked delivered, except one Discord delivery in three, marked
//! failed, so nothing is left for a delivery worker to send. The monitor had one outage of its
//! own (polling failed for 12 minutes, three days ago). Every polled agent was last checked
//! 20 s before `now`, in a cycle that went well.
//!
//! The cycles are hourly buckets: all changes of an hour are one commit, as a poll cycle would
//! write them (each agent at most once a commit), oldest first, so events get ids in time
//! order.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use ravan_watch::domain::alert::{
    AgentAlert, AgentAlertKind, AgentRef, Alert, MonitorAlert, MonitorAlertKind,
};
use ravan_watch::domain::{
    Account, AgentId, Connection, HealthEdge, Observation, Platform, Webhook,
};
use ravan_watch::store::{AgentUpdate, Fence, NewAgent, Routed, Store};
use ravan_watch::tracker::{AgentState, MonitorState, OpenOutage};

use super::alerts::webhook;
use super::ids;

/// The hostile names of agents 1 and 2.
pub const SCRIPT_NAME: &str = "<script>alert(1)</script>";
pub const BOLD_NAME: &str = "\"quoted\" & <b>bold</b>";

/// What an agent of the fleet is like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Steady,
    /// Healthy now, with this many outages this month.
    Flapping(usize),
    /// Unhealthy now.
    Down,
    /// Never polled.
    NeverPolled,
    /// Polls failing since a few hours (healthy before, and still shown healthy).
    Failing,
    /// Added 36 h ago, healthy since.
    New,
}

impl Kind {
    /// The health the overview shows: an agent whose polls fail keeps the health of its last
    /// observation (its bar shows no data since).
    pub fn health(self) -> &'static str {
        match self {
            Kind::Down => "unhealthy",
            Kind::NeverPolled => "unknown",
            _ => "healthy",
        }
    }
}

/// One seeded agent.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    /// How many alerts (events) it has.
    pub events: usize,
}

/// The fleet of `n` agents.
pub fn fleet(n: usize) -> Vec<Seeded> {
    (0..n)
        .map(|i| {
            let kind = match i {
                _ if i % 100 == 7 => Kind::NeverPolled,
                _ if i % 100 == 57 => Kind::Failing,
                _ if i % 50 == 3 => Kind::Down,
                _ if i % 20 == 11 => Kind::Flapping(3 + i % 4),
                _ if i % 25 == 5 => Kind::New,
                _ => Kind::Steady,
            };
            let name = match i {
                1 => SCRIPT_NAME.to_owned(),
                2 => BOLD_NAME.to_owned(),
                _ => format!("{} line {i:04}", TEAMS[i % TEAMS.len()]),
            };
            let events = match kind {
                // A down and a recovered alert an outage, one more outage for some.
                Kind::Flapping(k) => 2 * (k + usize::from(i % 40 == 11)),
                Kind::Down => 1,
                _ => 0,
            };
            Seeded {
                id: ids::agent_id(i),
                name,
                kind,
                events,
            }
        })
        .collect()
}

const TEAMS: [&str; 6] = [
    "Sales",
    "Support",
    "Billing",
    "Front desk",
    "Night shift",
    "Bookings",
];

/// One agent's change of health at `at`, with its alert.
struct Step {
    agent: usize,
    at: DateTime<Utc>,
    /// `None`: polls began failing.
    healthy: Option<bool>,
    alert: Option<AgentAlertKind>,
    /// Since when it has had this health (for an unhealthy one: the outage's start).
    since: DateTime<Utc>,
}

/// The steps of agent `i`, oldest first, relative to `now`.
fn steps(i: usize, kind: Kind, now: DateTime<Utc>) -> Vec<Step> {
    let h = |hours: i64| now - TimeDelta::hours(hours);
    let step = |at, healthy, alert, since| Step {
        agent: i,
        at,
        healthy,
        alert,
        since,
    };
    let start = h(30 * 24) + TimeDelta::minutes((i % 60) as i64);
    match kind {
        Kind::NeverPolled => vec![],
        Kind::New => vec![step(h(36), Some(true), None, h(36))],
        Kind::Steady => vec![step(start, Some(true), None, start)],
        Kind::Failing => vec![
            step(start, Some(true), None, start),
            step(h(2 + (i % 5) as i64), None, None, start),
        ],
        Kind::Down => {
            let down = h(1 + (i % 40) as i64) + TimeDelta::minutes(17);
            vec![
                step(start, Some(true), None, start),
                step(down, Some(false), Some(AgentAlertKind::Down), down),
            ]
        }
        Kind::Flapping(k) => {
            let mut out = vec![step(start, Some(true), None, start)];
            // k outages spread over the month, the last one at least a day ago.
            for o in 0..k {
                let down = h((29 * 24 - (o * 27 * 24 / k) - (i % 11)) as i64);
                let up = down + TimeDelta::hours(1 + ((i + o) % 6) as i64);
                out.push(step(down, Some(false), Some(AgentAlertKind::Down), down));
                out.push(step(up, Some(true), Some(AgentAlertKind::Recovered), up));
            }
            // A recent short outage for some, so the 48-hour bar shows one.
            if i % 40 == 11 {
                let down = h(20);
                let up = down + TimeDelta::hours(2);
                out.push(step(down, Some(false), Some(AgentAlertKind::Down), down));
                out.push(step(up, Some(true), Some(AgentAlertKind::Recovered), up));
            }
            out
        }
    }
}

fn observation(healthy: bool) -> Observation {
    let status = if healthy { "active" } else { "errored" };
    Observation {
        status: status.into(),
        connected: healthy,
        accounts: vec![Account {
            id: "acc-1".into(),
            account_name: "Main calendar".into(),
            status: status.into(),
            error: (!healthy).then(|| "Cal.com token revoked".into()),
        }],
        connection: Some(Connection::Private),
    }
}

/// The state an agent has after `s`, polled last at `checked`.
fn state(s: &Step, checked: DateTime<Utc>) -> AgentState {
    let mut state = AgentState {
        last: Some(observation(s.healthy.unwrap_or(true))),
        observed_at: Some(checked),
        health_streak: 2,
        health_since: Some(s.since),
        status_streak: 2,
        last_checked_at: Some(checked),
        ..AgentState::default()
    };
    match s.healthy {
        Some(false) => {
            state.status_before_run = Some("active".into());
            state.outage = Some(OpenOutage {
                alerted_status: "errored".into(),
                since: s.since,
                last_notified_at: s.at,
            })
        }
        None => state.last_error = Some("Ravan answered 502 Bad Gateway".into()),
        Some(true) => {}
    }
    state
}

fn alert(kind: AgentAlertKind, seeded: &Seeded, s: &Step) -> Alert {
    let healthy = s.healthy == Some(true);
    Alert::Agent(AgentAlert {
        kind,
        agent: AgentRef {
            id: seeded.id.parse().unwrap(),
            name: Some(seeded.name.clone()),
        },
        from: Some(if healthy { "errored" } else { "active" }.into()),
        to: if healthy { "active" } else { "errored" }.into(),
        connected: healthy,
        accounts: observation(healthy).accounts,
        connection: Some(Connection::Private),
        at: s.at,
        unhealthy_since: s.since,
    })
}

/// Seeds the fleet of `n` agents into `store` as of `now`; returns it.
pub async fn seed(store: &Store, n: usize, now: DateTime<Utc>) -> Vec<Seeded> {
    let fleet = fleet(n);
    let hooks = vec![
        webhook(
            Platform::Slack,
            "https://hooks.slack.com/services/T0/B0/seed-secret",
        ),
        webhook(
            Platform::Discord,
            "https://discord.com/api/webhooks/1/seed-secret",
        ),
    ];
    for (i, a) in fleet.iter().enumerate() {
        let added = match a.kind {
            Kind::New => now - TimeDelta::hours(37),
            _ => now - TimeDelta::days(31) + TimeDelta::seconds(i as i64),
        };
        let new = NewAgent {
            name: Some(a.name.clone()),
            slack_webhook_url: None,
            discord_webhook_url: None,
            teams_webhook_url: None,
            webhook_url: None,
            muted: i % 100 == 13,
            muted_until: None,
        };
        store.insert_agent(id(&a.id), &new, added).await.unwrap();
    }
    // Every step, in hourly cycles, oldest first (an agent changes at most once an hour).
    let mut cycles: BTreeMap<i64, (Vec<Update>, Vec<Routed>)> = BTreeMap::new();
    let mut checks: Vec<Update> = Vec::new();
    let checked = now - TimeDelta::seconds(20);
    for (i, a) in fleet.iter().enumerate() {
        let all = steps(i, a.kind, now);
        for s in &all {
            let cycle = cycles.entry(s.at.timestamp() / 3600).or_default();
            cycle.0.push(update(a, s, &hooks));
        }
        // Then every polled agent checked 20 s ago.
        if let Some(s) = all.last() {
            checks.push(Update {
                agent_id: id(&a.id),
                state: state(s, checked),
                alerts: vec![],
                health: None,
            });
        }
    }
    // The monitor's own outage, three days ago.
    let down_at = now - TimeDelta::days(3);
    let up_at = down_at + TimeDelta::minutes(12);
    for (kind, reason, at) in [
        (
            MonitorAlertKind::Down,
            "Ravan API unreachable: connection refused",
            down_at,
        ),
        (MonitorAlertKind::Recovered, "", up_at),
    ] {
        let alert = Alert::Monitor(MonitorAlert {
            kind,
            reason: reason.into(),
            at,
            since: down_at,
        });
        let cycle = cycles.entry(at.timestamp() / 3600).or_default();
        cycle.1.push((alert, hooks.clone()));
    }
    for (hour, (agents, monitor)) in cycles {
        let at = DateTime::from_timestamp((hour + 1) * 3600 - 1, 0).unwrap();
        commit(
            store,
            &agents,
            &monitor,
            at.min(checked),
            &MonitorState::default(),
        )
        .await;
    }
    // The last cycle went well.
    let good = MonitorState {
        last_good_cycle_at: Some(checked),
        ..MonitorState::default()
    };
    commit(store, &checks, &[], checked, &good).await;
    settle_outbox(store).await;
    fleet
}

fn update(a: &Seeded, s: &Step, hooks: &[Webhook]) -> Update {
    Update {
        agent_id: id(&a.id),
        state: state(s, s.at),
        alerts: s
            .alert
            .map(|kind| (alert(kind, a, s), hooks.to_vec()))
            .into_iter()
            .collect(),
        health: Some(HealthEdge {
            at: s.at,
            healthy: s.healthy,
            closes_at: s.at,
        }),
    }
}

/// An [`AgentUpdate`] that owns its state, as the seeding builds them ahead of their commits.
struct Update {
    agent_id: AgentId,
    state: AgentState,
    alerts: Vec<Routed>,
    health: Option<HealthEdge>,
}

async fn commit(
    store: &Store,
    agents: &[Update],
    alerts: &[Routed],
    at: DateTime<Utc>,
    monitor: &MonitorState,
) {
    store
        .commit_cycle(
            Fence::Unchecked,
            None,
            &agents
                .iter()
                .map(|u| AgentUpdate {
                    agent_id: u.agent_id,
                    state: &u.state,
                    alerts: u.alerts.clone(),
                    health: u.health,
                })
                .collect::<Vec<_>>(),
            monitor,
            alerts,
            at,
        )
        .await
        .unwrap();
}

/// Every outbox entry delivered five seconds after it was queued, but one Discord entry in
/// three failed then.
async fn settle_outbox(store: &Store) {
    let mut groups: BTreeMap<DateTime<Utc>, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for e in store.outbox().await.unwrap() {
        let (ok, failed) = groups.entry(e.created_at).or_default();
        if e.webhook.platform == Platform::Discord && e.id % 3 == 0 {
            failed.push(e.id);
        } else {
            ok.push(e.id);
        }
    }
    for (at, (ok, failed)) in groups {
        let done = at + TimeDelta::seconds(5);
        if !ok.is_empty() {
            store
                .mark_delivered(Fence::Unchecked, &ok, done)
                .await
                .unwrap();
        }
        if !failed.is_empty() {
            store
                .mark_failed(
                    Fence::Unchecked,
                    &failed,
                    "Discord answered 404: Unknown Webhook",
                    done,
                )
                .await
                .unwrap();
        }
    }
}

fn id(s: &str) -> AgentId {
    s.parse().unwrap()
}
