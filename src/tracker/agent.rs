//! One agent's machine: observations in, at most one alert out, by the rules in [`super`].

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{Hold, NOT_FOUND, Thresholds};
use crate::domain::alert::{AgentAlert, AgentAlertKind, AgentRef};
use crate::domain::{HealthEdge, Observation};

/// An outage that has been alerted and not yet recovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenOutage {
    /// The unhealthy status the last message announced.
    pub alerted_status: String,
    /// When the first unhealthy observation of this outage was made.
    pub since: DateTime<Utc>,
    /// When the last message about it (down, changed, reminder) was produced.
    pub last_notified_at: DateTime<Utc>,
}

/// Everything the tracker remembers about one agent. Stored as JSON; missing fields take their
/// defaults, so a new agent is `{}` and a field added later reads from old rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentState {
    /// The latest observation; `None` before the first.
    pub last: Option<Observation>,
    /// When it was made. Like `last_checked_at`, as saved it is the time of the last poll that
    /// changed the state in substance (see [`AgentState::differs_from`]).
    pub observed_at: Option<DateTime<Utc>>,
    /// Consecutive observations with the health of `last`, counted up to the larger threshold.
    pub health_streak: u32,
    /// When that run of equal health began.
    pub health_since: Option<DateTime<Utc>>,
    /// Consecutive observations of exactly `last.status`, counted up to the larger threshold.
    pub status_streak: u32,
    /// The status observed just before the current unhealthy run began (`None`: there was none).
    pub status_before_run: Option<String>,
    pub outage: Option<OpenOutage>,
    /// When the agent was last polled, successfully or not. As saved, the last poll that
    /// changed the state; the store adds the start of the last cycle that polled the agent.
    pub last_checked_at: Option<DateTime<Utc>>,
    /// Why the last poll failed; cleared by the next observation.
    pub last_error: Option<String>,
    /// When Ravan began answering 404 for the agent; `None` once it answers again.
    pub missing_since: Option<DateTime<Utc>>,
    /// Consecutive 404s (other failures in between neither count nor break the run), counted
    /// up to the failure threshold.
    pub missing_streak: u32,
    /// Whether the current missing run was alerted (so its end is announced).
    pub missing_alerted: bool,
}

impl AgentState {
    /// `true` once an outage is open and not yet recovered.
    pub fn is_alerting(&self) -> bool {
        self.outage.is_some()
    }

    /// Whether this state differs from `saved` in anything but the times of the last poll
    /// (`observed_at`, `last_checked_at`): what a cycle must write. A steady agent's polls
    /// change only those times, and the store knows them from the cycle instead.
    pub fn differs_from(&self, saved: &AgentState) -> bool {
        // Spelled out so that a new field cannot be forgotten here.
        let AgentState {
            last,
            observed_at: _,
            health_streak,
            health_since,
            status_streak,
            status_before_run,
            outage,
            last_checked_at: _,
            last_error,
            missing_since,
            missing_streak,
            missing_alerted,
        } = self;
        *last != saved.last
            || *missing_since != saved.missing_since
            || *missing_streak != saved.missing_streak
            || *missing_alerted != saved.missing_alerted
            || *health_streak != saved.health_streak
            || *health_since != saved.health_since
            || *status_streak != saved.status_streak
            || *status_before_run != saved.status_before_run
            || *outage != saved.outage
            || *last_error != saved.last_error
    }

    /// The health the last poll observed: `None` when it failed (a 404 too), or before the
    /// first poll.
    pub fn observed_health(&self) -> Option<bool> {
        if self.last_error.is_some() {
            return None;
        }
        self.last.as_ref().map(Observation::is_healthy)
    }

    /// What the poll that led from `before` to this state does to the agent's stored health
    /// intervals (see [`crate::domain::history`]): nothing while the observed health stays
    /// the same, so a steady agent writes none. A change of observed health always comes with
    /// a change [`AgentState::differs_from`] sees, so it costs no write of its own. The one
    /// edge without one: polling resumed more than `gap` after the previous poll (no process
    /// polled in between), which ends the open interval at that previous poll.
    pub fn health_edge(&self, before: &AgentState, gap: TimeDelta) -> Option<HealthEdge> {
        self.health_edge_from(before.observed_health(), before.last_checked_at, gap)
    }

    /// [`AgentState::health_edge`], from what it reads of the state before: its observed
    /// health (`was`) and when it was last polled.
    pub(super) fn health_edge_from(
        &self,
        was: Option<bool>,
        checked_before: Option<DateTime<Utc>>,
        gap: TimeDelta,
    ) -> Option<HealthEdge> {
        let at = self.last_checked_at?;
        let healthy = self.observed_health();
        let resumed = checked_before.filter(|prev| was.is_some() && at - *prev > gap);
        if healthy == was && resumed.is_none() {
            return None;
        }
        Some(HealthEdge {
            at,
            healthy,
            closes_at: resumed.unwrap_or(at),
        })
    }

    /// Whether the last observation disagrees with what was alerted and a threshold has yet
    /// to decide: a first unhealthy answer of a healthy agent, a first healthy answer of an
    /// alerted one, or a new unhealthy status not yet announced. Such an agent is worth a
    /// confirm poll before the next tick (`CONFIRM_INTERVAL`); a steady one is not. A failed
    /// poll since (a 404 too) is no observation: the agent waits for the tick, so a failing
    /// API is not asked more often than the schedule says.
    pub fn awaiting_confirmation(&self, th: &Thresholds) -> bool {
        let Some(last) = self.last.as_ref().filter(|_| self.last_error.is_none()) else {
            return false;
        };
        match (&self.outage, last.is_healthy()) {
            (None, false) => self.health_streak < th.failure.get(),
            (None, true) => false,
            (Some(_), true) => self.health_streak < th.success.get(),
            (Some(outage), false) => {
                last.status != outage.alerted_status && self.status_streak < th.failure.get()
            }
        }
    }

    /// Records a failed poll. It says nothing about the agent, so no streak moves.
    pub fn poll_failed(&mut self, error: String, at: DateTime<Utc>) {
        self.last_checked_at = Some(at);
        self.last_error = Some(error);
    }

    /// Records a `/status` 404 and returns the missing alert it completes, if any. `quiet`:
    /// count, but alert nothing (a muted agent, or one that watch-all found, which is unwatched
    /// when the listing drops it instead).
    pub fn not_found(
        &mut self,
        agent: &AgentRef,
        error: String,
        at: DateTime<Utc>,
        th: &Thresholds,
        quiet: bool,
    ) -> Option<AgentAlert> {
        self.poll_failed(error, at);
        let since = *self.missing_since.get_or_insert(at);
        self.missing_streak = (self.missing_streak + 1).min(th.failure.get());
        if self.missing_alerted || quiet || self.missing_streak < th.failure.get() {
            return None;
        }
        self.missing_alerted = true;
        Some(AgentAlert {
            kind: AgentAlertKind::Missing,
            agent: agent.clone(),
            from: self.last.as_ref().map(|o| o.status.to_string()),
            to: NOT_FOUND.to_owned(),
            connected: false,
            accounts: Vec::new(),
            connection: None,
            at,
            unhealthy_since: since,
        })
    }

    /// Records an observation: ends a missing run (its found alert first, when it was
    /// alerted), then applies the connection rules ([`AgentState::observe`]).
    pub fn record_observation(
        &mut self,
        agent: &AgentRef,
        obs: &Observation,
        at: DateTime<Utc>,
        th: &Thresholds,
        hold: Hold,
    ) -> Vec<AgentAlert> {
        let found = self.found(agent, obs, at, hold);
        found
            .into_iter()
            .chain(self.observe(agent, obs, at, th, hold))
            .collect()
    }

    /// Ends a missing run, if any: the found alert when the run was alerted and the agent is
    /// not held (held, muted or in maintenance, it ends silently).
    fn found(
        &mut self,
        agent: &AgentRef,
        obs: &Observation,
        at: DateTime<Utc>,
        hold: Hold,
    ) -> Option<AgentAlert> {
        let since = self.missing_since.take()?;
        self.missing_streak = 0;
        let alerted = std::mem::take(&mut self.missing_alerted);
        (alerted && hold == Hold::None).then(|| AgentAlert {
            kind: AgentAlertKind::Found,
            agent: agent.clone(),
            from: Some(NOT_FOUND.to_owned()),
            to: obs.status.to_string(),
            connected: obs.connected,
            accounts: obs.accounts.clone(),
            connection: Some(obs.connection()),
            at,
            unhealthy_since: since,
        })
    }

    /// Records an observation and returns the alert it completes, if any, by the connection
    /// rules alone (see [`AgentState::record_observation`] for what else an observation ends).
    pub fn observe(
        &mut self,
        agent: &AgentRef,
        obs: &Observation,
        at: DateTime<Utc>,
        th: &Thresholds,
        hold: Hold,
    ) -> Option<AgentAlert> {
        let healthy = obs.is_healthy();
        let prev = self.last.as_ref();
        // Streaks count only as far as a threshold looks: beyond it a steady agent's state
        // stops changing, and a cycle has nothing of it to save. The one decision this can
        // change: a threshold raised across a restart, for an agent unhealthy through a mute
        // (its streak stopped at the old threshold, so the new one counts on from there).
        let cap = th.failure.max(th.success).get();
        if prev.map(Observation::is_healthy) == Some(healthy) {
            self.health_streak = (self.health_streak + 1).min(cap);
        } else {
            if !healthy {
                self.status_before_run = prev.map(|p| p.status.to_string());
            }
            self.health_streak = 1;
            self.health_since = Some(at);
        }
        if prev.map(|p| p.status == obs.status) == Some(true) {
            self.status_streak = (self.status_streak + 1).min(cap);
        } else {
            self.status_streak = 1;
        }
        if prev != Some(obs) {
            self.last = Some(obs.clone());
        }
        self.observed_at = Some(at);
        self.last_checked_at = Some(at);
        self.last_error = None;

        let run_since = self.health_since.unwrap_or(at);
        let alert = |kind, from: Option<String>, when, since| AgentAlert {
            kind,
            agent: agent.clone(),
            from,
            to: obs.status.to_string(),
            connected: obs.connected,
            accounts: obs.accounts.clone(),
            connection: Some(obs.connection()),
            at: when,
            unhealthy_since: since,
        };

        let held = hold != Hold::None;
        match (&mut self.outage, healthy) {
            // Held: no outage is opened, so the alert comes on the first cycle after the mute
            // lifts (or the window ends) if the agent is still unhealthy.
            (None, false) if held => None,
            (None, false) if self.health_streak >= th.failure.get() => {
                self.outage = Some(OpenOutage {
                    alerted_status: obs.status.to_string(),
                    since: run_since,
                    last_notified_at: at,
                });
                Some(alert(
                    AgentAlertKind::Down,
                    self.status_before_run.clone(),
                    at,
                    run_since,
                ))
            }
            (None, _) => None,
            // In maintenance: an outage announced before the window stays open, so its
            // recovery is announced after the window (the first healthy poll past its end).
            (Some(_), true) if hold == Hold::Maintenance => None,
            (Some(outage), true) => {
                if self.health_streak < th.success.get() {
                    return None;
                }
                let from = outage.alerted_status.clone();
                let since = outage.since;
                self.outage = None;
                // Muted: the outage closes silently.
                if hold == Hold::Muted {
                    return None;
                }
                Some(alert(
                    AgentAlertKind::Recovered,
                    Some(from),
                    run_since,
                    since,
                ))
            }
            // Held: no change or reminder, and none is recorded as sent.
            (Some(_), false) if held => None,
            (Some(outage), false) => {
                if obs.status != outage.alerted_status && self.status_streak >= th.failure.get() {
                    let from =
                        std::mem::replace(&mut outage.alerted_status, obs.status.to_string());
                    outage.last_notified_at = at;
                    return Some(alert(AgentAlertKind::Changed, Some(from), at, outage.since));
                }
                let due = th
                    .reminder
                    .is_some_and(|every| at - outage.last_notified_at >= every);
                if due {
                    outage.last_notified_at = at;
                    let from = Some(outage.alerted_status.clone());
                    return Some(alert(AgentAlertKind::Reminder, from, at, outage.since));
                }
                None
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::test_support::{agent, obs, t, th};
    use chrono::Duration;

    /// Feeds statuses one minute apart ("!" is a failed poll, a trailing "~" a muted
    /// observation, a trailing "#" one in a maintenance window); returns (minute, alert) pairs.
    fn run(
        state: &mut AgentState,
        th: &Thresholds,
        statuses: &[&str],
    ) -> Vec<(i64, AgentAlertKind, Option<String>, String)> {
        let mut out = Vec::new();
        for (m, s) in statuses.iter().enumerate() {
            let m = m as i64;
            if *s == "!" {
                state.poll_failed("HTTP 500".into(), t(m));
                continue;
            }
            // A trailing "~" marks an observation made while the agent is muted, "#" one made
            // in a maintenance window.
            let (s, hold) = match (s.strip_suffix('~'), s.strip_suffix('#')) {
                (Some(s), _) => (s, Hold::Muted),
                (None, Some(s)) => (s, Hold::Maintenance),
                (None, None) => (*s, Hold::None),
            };
            if let Some(a) = state.observe(&agent(), &obs(s), t(m), th, hold) {
                out.push((m, a.kind, a.from, a.to));
            }
        }
        out
    }

    #[test]
    fn health_edges_open_and_close_intervals_only_when_observed_health_changes() {
        let th = th(2, 1, None);
        let mut s = AgentState::default();
        let mut edges = Vec::new();
        // (minute, poll): "!" a failed poll, "404" a not-found.
        let polls = [
            "!", "active", "active", "errored", "errored", "!", "!", "404", "errored", "active",
        ];
        for (m, p) in polls.iter().enumerate() {
            let before = s.clone();
            let at = t(m as i64);
            match *p {
                "!" => s.poll_failed("HTTP 500".into(), at),
                "404" => {
                    s.not_found(&agent(), "HTTP 404".into(), at, &th, false);
                }
                st => {
                    s.record_observation(&agent(), &obs(st), at, &th, Hold::None);
                }
            }
            let edge = s.health_edge(&before, TimeDelta::minutes(5));
            if edge.is_some() {
                assert!(
                    s.differs_from(&before),
                    "an edge at minute {m} without a write"
                );
            }
            if let Some(e) = edge {
                assert_eq!(e.closes_at, e.at, "no gap: closes where it opens");
            }
            edges.extend(edge.map(|e| (m, e.healthy)));
        }
        assert_eq!(
            edges,
            vec![
                (1, Some(true)),
                (3, Some(false)),
                (5, None),
                (8, Some(false)),
                (9, Some(true)),
            ]
        );
        assert_eq!(
            s.health_edge(&s, TimeDelta::minutes(5)),
            None,
            "a steady agent has no edge"
        );
        // Steady, polled 3 min after the last poll (no gap), then 4 h later: the gap is cut
        // out.
        let before = s.clone();
        s.record_observation(&agent(), &obs("active"), t(12), &th, Hold::None);
        assert_eq!(
            s.health_edge(&before, TimeDelta::minutes(5)),
            None,
            "within the gap"
        );
        let before = s.clone();
        s.record_observation(&agent(), &obs("active"), t(250), &th, Hold::None);
        assert_eq!(
            s.health_edge(&before, TimeDelta::minutes(5)),
            Some(HealthEdge {
                at: t(250),
                healthy: Some(true),
                closes_at: t(12),
            })
        );
        // A change after a gap: closes at the poll before the gap too.
        let before = s.clone();
        s.record_observation(&agent(), &obs("errored"), t(400), &th, Hold::None);
        let e = s.health_edge(&before, TimeDelta::minutes(5)).unwrap();
        assert_eq!((e.healthy, e.closes_at), (Some(false), t(250)));
        // After failed polls there is nothing open: a gap changes nothing.
        s.poll_failed("HTTP 500".into(), t(401));
        let before = s.clone();
        s.poll_failed("HTTP 500".into(), t(900));
        assert_eq!(s.health_edge(&before, TimeDelta::minutes(5)), None);
    }

    use AgentAlertKind::*;

    #[test]
    fn healthy_agent_says_nothing() {
        let mut s = AgentState::default();
        assert!(run(&mut s, &th(2, 1, None), &["active"; 10]).is_empty());
        // Counted only as far as the larger threshold looks.
        assert_eq!(s.health_streak, 2);
        assert_eq!(s.status_streak, 2);
        assert!(!s.is_alerting());
    }

    #[test]
    fn down_after_failure_threshold_then_recovered() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(2, 1, None),
            &["active", "errored", "errored", "errored", "active"],
        );
        assert_eq!(
            got,
            vec![
                (2, Down, Some("active".into()), "errored".into()),
                (4, Recovered, Some("errored".into()), "active".into()),
            ]
        );
    }

    #[test]
    fn down_alert_carries_the_outage_start_and_details() {
        let mut s = AgentState::default();
        let th = th(3, 1, None);
        for m in 0..3 {
            let a = s.observe(&agent(), &obs("errored"), t(m), &th, Hold::None);
            assert_eq!(a.is_some(), m == 2, "minute {m}");
            if let Some(a) = a {
                assert_eq!(a.unhealthy_since, t(0));
                assert_eq!(a.at, t(2));
                assert_eq!(a.agent, agent());
                assert!(!a.connected);
                assert_eq!(a.accounts[0].error.as_deref(), Some("token expired"));
            }
        }
    }

    #[test]
    fn threshold_of_one_alerts_on_the_first_unhealthy_observation() {
        let mut s = AgentState::default();
        let got = run(&mut s, &th(1, 1, None), &["active", "not_connected"]);
        assert_eq!(
            got,
            vec![(1, Down, Some("active".into()), "not_connected".into())]
        );
    }

    #[test]
    fn flap_shorter_than_the_failure_threshold_is_silent() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(3, 1, None),
            &[
                "active", "errored", "errored", "active", "errored", "active", "errored", "errored",
            ],
        );
        assert!(got.is_empty(), "{got:?}");
        assert!(!s.is_alerting());
    }

    #[test]
    fn recovery_needs_success_threshold_and_a_short_recovery_keeps_the_outage_open() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(1, 3, None),
            &[
                "errored", "active", "active", "errored", "active", "active", "active",
            ],
        );
        assert_eq!(
            got,
            vec![
                (0, Down, None, "errored".into()),
                (6, Recovered, Some("errored".into()), "active".into()),
            ]
        );
    }

    #[test]
    fn recovery_reports_downtime_from_first_unhealthy_to_first_healthy() {
        let mut s = AgentState::default();
        let th = th(2, 2, None);
        let statuses = [
            "active", "errored", "errored", "errored", "active", "active",
        ];
        let mut recovered = None;
        for (m, st) in statuses.iter().enumerate() {
            if let Some(a) = s.observe(&agent(), &obs(st), t(m as i64), &th, Hold::None) {
                recovered = Some(a);
            }
        }
        let a = recovered.unwrap();
        assert_eq!(a.kind, Recovered);
        assert_eq!(a.unhealthy_since, t(1));
        assert_eq!(a.at, t(4), "the first healthy observation");
        assert_eq!(a.at - a.unhealthy_since, Duration::minutes(3));
        assert!(a.connected);
    }

    #[test]
    fn unhealthy_first_observation_alerts_once_threshold_is_met_with_no_from() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(2, 1, None),
            &["not_connected", "not_connected", "not_connected"],
        );
        assert_eq!(got, vec![(1, Down, None, "not_connected".into())]);
    }

    #[test]
    fn unknown_status_is_unhealthy_and_kept_raw() {
        let mut s = AgentState::default();
        let got = run(&mut s, &th(1, 1, None), &["active", "Suspended-By-Vendor"]);
        assert_eq!(
            got,
            vec![(1, Down, Some("active".into()), "Suspended-By-Vendor".into())]
        );
    }

    #[test]
    fn move_between_unhealthy_statuses_is_one_changed_alert() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(2, 1, None),
            &[
                "active",
                "errored",
                "errored",
                "not_connected",
                "not_connected",
                "not_connected",
            ],
        );
        assert_eq!(
            got,
            vec![
                (2, Down, Some("active".into()), "errored".into()),
                (4, Changed, Some("errored".into()), "not_connected".into()),
            ]
        );
    }

    #[test]
    fn flapping_between_unhealthy_statuses_is_not_a_change() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(2, 1, None),
            &[
                "errored", "errored", "inactive", "errored", "inactive", "errored",
            ],
        );
        assert_eq!(got, vec![(1, Down, None, "errored".into())]);
    }

    #[test]
    fn down_counts_unhealthy_observations_even_when_statuses_differ() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(2, 1, None),
            &["active", "errored", "not_connected"],
        );
        assert_eq!(
            got,
            vec![(2, Down, Some("active".into()), "not_connected".into())]
        );
    }

    #[test]
    fn reminders_repeat_while_unhealthy_and_stop_on_recovery() {
        let mut s = AgentState::default();
        // Down at minute 1; reminders every 3 minutes after the last message.
        let statuses = ["errored"; 9]
            .iter()
            .chain(["active", "errored"].iter())
            .copied()
            .collect::<Vec<_>>();
        let got = run(&mut s, &th(2, 1, Some(3)), &statuses);
        let kinds: Vec<_> = got.iter().map(|(m, k, ..)| (*m, *k)).collect();
        assert_eq!(
            kinds,
            vec![(1, Down), (4, Reminder), (7, Reminder), (9, Recovered)]
        );
    }

    #[test]
    fn reminder_says_how_long_and_a_change_restarts_its_clock() {
        let mut s = AgentState::default();
        let th = th(1, 1, Some(3));
        let mut alerts = Vec::new();
        for (m, st) in [
            "errored",
            "errored",
            "not_connected",
            "not_connected",
            "not_connected",
            "not_connected",
            "not_connected",
        ]
        .iter()
        .enumerate()
        {
            alerts.extend(s.observe(&agent(), &obs(st), t(m as i64), &th, Hold::None));
        }
        let kinds: Vec<_> = alerts.iter().map(|a| (a.kind, a.at)).collect();
        assert_eq!(kinds, vec![(Down, t(0)), (Changed, t(2)), (Reminder, t(5))]);
        assert_eq!(alerts[2].unhealthy_since, t(0));
        assert_eq!(alerts[2].from.as_deref(), Some("not_connected"));
    }

    #[test]
    fn no_reminders_when_off() {
        let mut s = AgentState::default();
        let got = run(&mut s, &th(1, 1, None), &["errored"; 50]);
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn poll_failures_change_nothing_and_do_not_break_streaks() {
        let mut s = AgentState::default();
        let got = run(&mut s, &th(2, 1, None), &["active", "!", "!", "active"]);
        assert!(got.is_empty());
        // Failures between two unhealthy observations: still two consecutive observations.
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(2, 1, None),
            &["active", "errored", "!", "!", "errored"],
        );
        assert_eq!(
            got,
            vec![(4, Down, Some("active".into()), "errored".into())]
        );
        // Failures during an outage neither recover it nor remind.
        let mut s = AgentState::default();
        let got = run(&mut s, &th(1, 1, Some(1)), &["errored", "!", "!", "!"]);
        assert_eq!(got.len(), 1);
        assert!(s.is_alerting());
    }

    #[test]
    fn a_steady_agent_stops_changing_but_for_its_poll_times() {
        let th = th(3, 2, None);
        let mut s = AgentState::default();
        let mut changed = Vec::new();
        for m in 0..6 {
            let before = s.clone();
            s.observe(&agent(), &obs("active"), t(m), &th, Hold::None);
            changed.push(s.differs_from(&before));
        }
        // First observation, then the streak counting up to 3: after that only times move.
        assert_eq!(changed, [true, true, true, false, false, false]);
        assert_eq!(s.last_checked_at, Some(t(5)));

        // The same failure again changes nothing to save; a different one, or an
        // observation after it, does.
        let before = s.clone();
        s.poll_failed("HTTP 500".into(), t(6));
        assert!(s.differs_from(&before));
        let before = s.clone();
        s.poll_failed("HTTP 500".into(), t(7));
        assert!(!s.differs_from(&before));
        s.poll_failed("HTTP 502".into(), t(8));
        assert!(s.differs_from(&before));
        let before = s.clone();
        s.observe(&agent(), &obs("active"), t(9), &th, Hold::None);
        assert!(s.differs_from(&before), "the error is cleared");

        // A new status, or the same status with other account details, is a change.
        let before = s.clone();
        let mut other = obs("active");
        other.accounts[0].account_name = "Renamed".into();
        s.observe(&agent(), &other, t(10), &th, Hold::None);
        assert!(s.differs_from(&before));
        let before = s.clone();
        s.observe(&agent(), &obs("errored"), t(11), &th, Hold::None);
        assert!(s.differs_from(&before));
    }

    /// The store saves a state only when [`AgentState::differs_from`] the saved one. Whatever
    /// the sequence, a tracker restarted from the saved state decides exactly what the one that
    /// kept running decides: the skipped writes held nothing a decision reads.
    ///
    /// Every sequence of `LEN` steps, walked as a tree so that sequences sharing a prefix share
    /// its work (the same checks as replaying each sequence from the start, in a fraction of
    /// the time).
    #[test]
    fn a_state_restored_from_its_last_save_decides_the_same() {
        const STEPS: [&str; 8] = [
            "active",
            "errored",
            "not_connected",
            "!",
            "errored~",
            "active~",
            "?",
            "?~",
        ];
        const LEN: usize = 5;

        #[derive(Default)]
        struct Tally {
            runs: usize,
            missing: usize,
            found: usize,
        }

        fn walk(
            th: &Thresholds,
            live: &AgentState,
            saved: &AgentState,
            seq: &mut Vec<&'static str>,
            tally: &mut Tally,
        ) {
            if seq.len() == LEN {
                tally.runs += 1;
                return;
            }
            let m = seq.len();
            for step in STEPS {
                seq.push(step);
                let mut live = live.clone();
                let mut restored = saved.clone();
                let live_alerts = run_step(&mut live, th, step, m as i64);
                let restored_alerts = run_step(&mut restored, th, step, m as i64);
                assert_eq!(live_alerts, restored_alerts, "{seq:?} at step {m}, {th:?}");
                assert!(!live.differs_from(&restored), "{seq:?} at step {m}, {th:?}");
                for a in &live_alerts {
                    match a.kind {
                        Missing => tally.missing += 1,
                        Found => tally.found += 1,
                        _ => {}
                    }
                }
                let saved = if live.differs_from(saved) {
                    live.clone()
                } else {
                    saved.clone()
                };
                walk(th, &live, &saved, seq, tally);
                seq.pop();
            }
        }

        let mut tally = Tally::default();
        for (failure, success, reminder) in (1..=3)
            .flat_map(|f| (1..=3).map(move |s| (f, s)))
            .flat_map(|(f, s)| [None, Some(2)].map(move |r| (f, s, r)))
        {
            let th = th(failure, success, reminder);
            walk(
                &th,
                &AgentState::default(),
                &AgentState::default(),
                &mut Vec::new(),
                &mut tally,
            );
        }
        assert_eq!(tally.runs, 18 * STEPS.len().pow(LEN as u32));
        // The 404 steps were exercised, not just present.
        assert!(tally.missing > 0 && tally.found > 0);
    }

    /// One step of [`run`]'s notation, plus "?" for a 404 and "?~" for a quiet one: the alerts
    /// it produced. Observations go through [`AgentState::record_observation`].
    fn run_step(s: &mut AgentState, th: &Thresholds, step: &str, m: i64) -> Vec<AgentAlert> {
        match step {
            "!" => {
                s.poll_failed("HTTP 500".into(), t(m));
                return Vec::new();
            }
            "?" | "?~" => {
                let quiet = step == "?~";
                return s
                    .not_found(&agent(), "HTTP 404".into(), t(m), th, quiet)
                    .into_iter()
                    .collect();
            }
            _ => {}
        }
        let (status, muted) = match step.strip_suffix('~') {
            Some(status) => (status, true),
            None => (step, false),
        };
        let hold = if muted { Hold::Muted } else { Hold::None };
        s.record_observation(&agent(), &obs(status), t(m), th, hold)
    }

    /// [`run`] in [`run_step`]'s notation: (minute, kind, from, to) of every alert.
    fn run_steps(
        s: &mut AgentState,
        th: &Thresholds,
        steps: &[&str],
    ) -> Vec<(i64, AgentAlertKind, Option<String>, String)> {
        let mut out = Vec::new();
        for (m, step) in steps.iter().enumerate() {
            for a in run_step(s, th, step, m as i64) {
                out.push((m as i64, a.kind, a.from, a.to));
            }
        }
        out
    }

    /// `n` copies of `step`, for building sequences.
    fn times(n: u32, step: &'static str) -> Vec<&'static str> {
        vec![step; n as usize]
    }

    #[test]
    fn failure_threshold_404s_in_a_row_are_one_missing_alert_then_found() {
        for f in 1..=3u32 {
            let th = th(f, 1, Some(1));
            let mut s = AgentState::default();
            s.record_observation(&agent(), &obs("active"), t(0), &th, Hold::None);
            let mut alerts = Vec::new();
            // 404s from minute 1: the f-th is the alert, the next ones say nothing.
            for m in 1..=(f as i64 + 4) {
                let a = s.not_found(&agent(), "HTTP 404".into(), t(m), &th, false);
                assert_eq!(a.is_some(), m == f as i64, "f={f}, minute {m}");
                alerts.extend(a);
                assert_eq!(s.missing_since, Some(t(1)), "f={f}");
                assert_eq!(s.last_error.as_deref(), Some("HTTP 404"));
            }
            assert_eq!(alerts.len(), 1);
            let missing = &alerts[0];
            assert_eq!(missing.kind, Missing);
            assert_eq!(missing.agent, agent());
            assert_eq!(missing.from.as_deref(), Some("active"));
            assert_eq!(missing.to, NOT_FOUND);
            assert_eq!(missing.to, "not_found");
            assert_eq!(missing.at, t(f as i64));
            assert_eq!(missing.unhealthy_since, t(1), "the first 404");
            assert!(!missing.connected);
            assert!(missing.accounts.is_empty());
            assert_eq!(missing.connection, None);
            assert!(s.missing_alerted);
            assert_eq!(s.missing_streak, f, "counted up to the threshold");
            // A 404 is no observation: the last one stands, no outage, no reminder.
            assert_eq!(s.last.as_ref().unwrap().status, "active");
            assert!(!s.is_alerting());

            let at = t(f as i64 + 5);
            let found = s.record_observation(&agent(), &obs("active"), at, &th, Hold::None);
            assert_eq!(found.len(), 1, "f={f}: {found:?}");
            let found = &found[0];
            assert_eq!(found.kind, Found);
            assert_eq!(found.from.as_deref(), Some(NOT_FOUND));
            assert_eq!(found.to, "active");
            assert!(found.connected);
            assert_eq!(found.connection, Some(crate::domain::Connection::Private));
            assert_eq!(found.accounts, obs("active").accounts);
            assert_eq!((found.at, found.unhealthy_since), (at, t(1)));
            assert_eq!(
                (s.missing_since, s.missing_streak, s.missing_alerted),
                (None, 0, false),
                "f={f}: the run is over"
            );
            assert_eq!(s.last_error, None);
            // And it is over for good: the next observation says nothing.
            let next = s.record_observation(&agent(), &obs("active"), at, &th, Hold::None);
            assert!(next.is_empty(), "{next:?}");
        }
    }

    #[test]
    fn a_missing_agent_from_its_first_poll_has_no_from() {
        for f in 1..=3u32 {
            let mut s = AgentState::default();
            let got = run_steps(&mut s, &th(f, 1, None), &times(f, "?"));
            assert_eq!(
                got,
                vec![(f as i64 - 1, Missing, None, NOT_FOUND.into())],
                "f={f}"
            );
        }
    }

    #[test]
    fn the_observation_ending_a_missing_run_gives_found_then_its_connection_alert() {
        for f in 1..=3u32 {
            let th = th(f, 1, None);
            let fi = f as i64;
            // Unhealthy before and after: Down, Missing, Found, and the outage goes on.
            let mut s = AgentState::default();
            let steps = [times(f, "errored"), times(f, "?"), times(2, "errored")].concat();
            let got = run_steps(&mut s, &th, &steps);
            assert_eq!(
                got,
                vec![
                    (fi - 1, Down, None, "errored".into()),
                    (
                        2 * fi - 1,
                        Missing,
                        Some("errored".into()),
                        NOT_FOUND.into()
                    ),
                    (2 * fi, Found, Some(NOT_FOUND.into()), "errored".into()),
                ],
                "f={f}"
            );
            assert!(s.is_alerting());

            // Down, Missing, then back healthy: Found, then Recovered, in that order.
            let mut s = AgentState::default();
            let steps = [times(f, "errored"), times(f, "?"), vec!["active"]].concat();
            let got = run_steps(&mut s, &th, &steps);
            assert_eq!(
                got,
                vec![
                    (fi - 1, Down, None, "errored".into()),
                    (
                        2 * fi - 1,
                        Missing,
                        Some("errored".into()),
                        NOT_FOUND.into()
                    ),
                    (2 * fi, Found, Some(NOT_FOUND.into()), "active".into()),
                    (2 * fi, Recovered, Some("errored".into()), "active".into()),
                ],
                "f={f}"
            );
            assert!(!s.is_alerting());

            // Healthy, Missing, then back broken: Found first, Down once the failure
            // threshold of observations is met (on the same step when it is 1).
            let mut s = AgentState::default();
            let steps = [vec!["active"], times(f, "?"), times(f, "errored")].concat();
            let got = run_steps(&mut s, &th, &steps);
            assert_eq!(
                got,
                vec![
                    (fi, Missing, Some("active".into()), NOT_FOUND.into()),
                    (fi + 1, Found, Some(NOT_FOUND.into()), "errored".into()),
                    (2 * fi, Down, Some("active".into()), "errored".into()),
                ],
                "f={f}"
            );
            assert_eq!(s.missing_since, None);
        }
    }

    #[test]
    fn other_poll_failures_between_404s_neither_count_nor_break_the_run() {
        let th = th(3, 1, None);
        let mut s = AgentState::default();
        let got = run_steps(&mut s, &th, &["active", "?", "!", "!", "?", "!"]);
        assert!(got.is_empty(), "two 404s: {got:?}");
        assert_eq!(s.missing_streak, 2, "the failures did not count");
        assert_eq!(s.missing_since, Some(t(1)), "nor break the run");
        assert_eq!(s.last_error.as_deref(), Some("HTTP 500"));
        let missing = s.not_found(&agent(), "HTTP 404".into(), t(6), &th, false);
        let missing = missing.expect("the third 404");
        assert_eq!((missing.kind, missing.unhealthy_since), (Missing, t(1)));
        // Failures after the alert change nothing either; the observation is found.
        let got = run_steps(&mut s, &th, &["!", "!", "!", "!", "!", "!", "!", "active"]);
        assert_eq!(
            got,
            vec![(7, Found, Some(NOT_FOUND.into()), "active".into())]
        );

        // An observation does break the run, unalerted: no found, and counting restarts.
        let mut s = AgentState::default();
        let got = run_steps(&mut s, &th, &["?", "?", "active", "?", "?", "!", "?"]);
        assert_eq!(
            got,
            vec![(6, Missing, Some("active".into()), NOT_FOUND.into())]
        );
        assert_eq!(s.missing_since, Some(t(3)));
    }

    #[test]
    fn quiet_404s_never_alert_and_end_without_found() {
        for f in 1..=3u32 {
            let th = th(f, 1, None);
            let mut s = AgentState::default();
            let steps = [vec!["active"], times(f + 3, "?~"), vec!["active"]].concat();
            let got = run_steps(&mut s, &th, &steps);
            assert!(got.is_empty(), "f={f}: {got:?}");
            assert_eq!(
                (s.missing_since, s.missing_streak, s.missing_alerted),
                (None, 0, false)
            );

            // Quiet, then a missing alert once the mute lifts while still 404, on the first
            // loud 404, dated from the first quiet one.
            let mut s = AgentState::default();
            let steps = [vec!["active"], times(f + 1, "?~"), times(3, "?")].concat();
            let got = run_steps(&mut s, &th, &steps);
            assert_eq!(
                got,
                vec![(
                    f as i64 + 2,
                    Missing,
                    Some("active".into()),
                    NOT_FOUND.into()
                )],
                "f={f}"
            );
            assert_eq!(s.missing_since, Some(t(1)));

            // Alerted, then muted: the run ends silently, and for good.
            let mut s = AgentState::default();
            let steps = [times(f, "?"), vec!["active~", "active", "active"]].concat();
            let got = run_steps(&mut s, &th, &steps);
            assert_eq!(
                got,
                vec![(f as i64 - 1, Missing, None, NOT_FOUND.into())],
                "f={f}"
            );
            assert_eq!(s.missing_since, None);

            // A quiet 404 after an alerted one does not take the found back.
            let mut s = AgentState::default();
            let steps = [times(f, "?"), vec!["?~", "?~", "active"]].concat();
            let got = run_steps(&mut s, &th, &steps);
            assert_eq!(
                got.iter().map(|g| g.1).collect::<Vec<_>>(),
                [Missing, Found],
                "f={f}"
            );
        }
    }

    #[test]
    fn quiet_404s_below_the_threshold_then_loud_ones_count_together() {
        let th = th(3, 1, None);
        let mut s = AgentState::default();
        let got = run_steps(&mut s, &th, &["?~", "?", "?"]);
        assert_eq!(got, vec![(2, Missing, None, NOT_FOUND.into())]);
    }

    #[test]
    fn poll_failure_is_recorded_and_cleared() {
        let mut s = AgentState::default();
        s.observe(&agent(), &obs("active"), t(0), &th(2, 1, None), Hold::None);
        s.poll_failed("timeout".into(), t(1));
        assert_eq!(s.last_error.as_deref(), Some("timeout"));
        assert_eq!(s.last_checked_at, Some(t(1)));
        assert_eq!(s.observed_at, Some(t(0)));
        assert_eq!(
            s.last.as_ref().unwrap().status,
            "active",
            "status unchanged"
        );
        s.observe(&agent(), &obs("active"), t(2), &th(2, 1, None), Hold::None);
        assert_eq!(s.last_error, None);
    }

    #[test]
    fn only_failures_leave_a_new_agent_without_status() {
        let mut s = AgentState::default();
        let got = run(&mut s, &th(1, 1, None), &["!", "!", "!"]);
        assert!(got.is_empty());
        assert!(s.last.is_none());
    }

    #[test]
    fn second_outage_alerts_again() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(1, 1, None),
            &["errored", "active", "errored", "active"],
        );
        let kinds: Vec<_> = got.iter().map(|g| g.1).collect();
        assert_eq!(kinds, vec![Down, Recovered, Down, Recovered]);
    }

    #[test]
    fn a_muted_agent_alerts_nothing_and_alerts_once_unmuted_if_still_unhealthy() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(2, 1, Some(2)),
            &[
                "active~", "errored~", "errored~", "errored~", "errored", "errored", "errored",
            ],
        );
        let kinds: Vec<_> = got.iter().map(|(m, k, ..)| (*m, *k)).collect();
        assert_eq!(kinds, vec![(4, Down), (6, Reminder)], "{got:?}");
        assert_eq!(
            got[0].2.as_deref(),
            Some("active"),
            "the change the team did not hear about"
        );
    }

    #[test]
    fn a_recovery_while_muted_closes_the_outage_silently() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(1, 1, Some(1)),
            &["errored", "errored~", "active~", "active", "active"],
        );
        assert_eq!(got, vec![(0, Down, None, "errored".into())]);
        assert!(!s.is_alerting());
    }

    #[test]
    fn muted_changes_and_reminders_are_not_sent_nor_counted_as_sent() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(1, 1, Some(2)),
            &[
                "errored",
                "not_connected~",
                "not_connected~",
                "not_connected~",
                "not_connected",
            ],
        );
        let kinds: Vec<_> = got.iter().map(|(m, k, ..)| (*m, *k)).collect();
        assert_eq!(kinds, vec![(0, Down), (4, Changed)], "{got:?}");
    }

    #[test]
    fn an_agent_muted_from_the_start_and_healthy_when_unmuted_says_nothing() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(1, 1, None),
            &["errored~", "errored~", "active", "active"],
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn only_an_answer_a_threshold_has_yet_to_decide_awaits_confirmation() {
        let th = th(2, 2, None);
        let mut s = AgentState::default();
        assert!(!s.awaiting_confirmation(&th), "never observed");
        let feed = |s: &mut AgentState, status: &str, m: i64| {
            s.observe(&agent(), &obs(status), t(m), &th, Hold::None);
            s.awaiting_confirmation(&th)
        };
        assert!(!feed(&mut s, "active", 0), "healthy and nothing alerted");
        assert!(feed(&mut s, "errored", 1), "first unhealthy answer");
        assert!(!feed(&mut s, "errored", 2), "down alerted: decided");
        assert!(!feed(&mut s, "errored", 3), "steadily down");
        assert!(
            feed(&mut s, "not_connected", 4),
            "a new status, not yet announced"
        );
        assert!(
            !feed(&mut s, "not_connected", 5),
            "changed alerted: decided"
        );
        assert!(
            feed(&mut s, "active", 6),
            "first healthy answer of an alerted agent"
        );
        assert!(!feed(&mut s, "active", 7), "recovered: decided");
        assert!(feed(&mut s, "errored", 8));
        assert!(
            !feed(&mut s, "active", 9),
            "a blip that healed: nothing to decide"
        );
        // After a failed poll the agent waits for the tick; the next answer decides again.
        assert!(feed(&mut s, "errored", 10));
        s.poll_failed("timeout".into(), t(11));
        assert!(!s.awaiting_confirmation(&th));
        assert!(!feed(&mut s, "errored", 12), "two unhealthy answers: down");
    }

    #[test]
    fn with_thresholds_of_one_nothing_awaits_confirmation() {
        let th = th(1, 1, None);
        let mut s = AgentState::default();
        for (m, status) in ["active", "errored", "not_connected", "active"]
            .iter()
            .enumerate()
        {
            s.observe(&agent(), &obs(status), t(m as i64), &th, Hold::None);
            assert!(!s.awaiting_confirmation(&th), "{status}");
        }
    }

    #[test]
    fn a_break_still_unhealthy_when_the_window_ends_alerts_once_after_it() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(2, 1, Some(2)),
            &[
                "active#", "errored#", "errored#", "errored#", "errored#", "errored", "errored",
                "errored",
            ],
        );
        let kinds: Vec<_> = got.iter().map(|(m, k, ..)| (*m, *k)).collect();
        assert_eq!(kinds, vec![(5, Down), (7, Reminder)], "{got:?}");
        assert_eq!(
            got[0].2.as_deref(),
            Some("active"),
            "from what it was before"
        );
        let outage = s.outage.as_ref().unwrap();
        assert_eq!(outage.since, t(1), "the outage began inside the window");
    }

    #[test]
    fn a_break_that_recovers_inside_the_window_says_nothing() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(1, 1, Some(1)),
            &[
                "active", "errored#", "errored#", "active#", "active", "active",
            ],
        );
        assert!(got.is_empty(), "{got:?}");
        assert!(!s.is_alerting());
    }

    #[test]
    fn an_outage_announced_before_the_window_that_recovers_inside_it_recovers_after_it() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(1, 2, None),
            &[
                "errored", "errored#", "active#", "active#", "active#", "active",
            ],
        );
        let kinds: Vec<_> = got.iter().map(|(m, k, ..)| (*m, *k)).collect();
        assert_eq!(kinds, vec![(0, Down), (5, Recovered)], "{got:?}");
        assert!(!s.is_alerting());
        // Muted instead, the same polls close it silently.
        let mut muted = AgentState::default();
        let got = run(
            &mut muted,
            &th(1, 2, None),
            &[
                "errored", "errored~", "active~", "active~", "active~", "active",
            ],
        );
        assert_eq!(got.len(), 1, "{got:?}");
    }

    #[test]
    fn no_change_or_reminder_inside_a_window_and_none_counted_as_sent() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(1, 1, Some(2)),
            &[
                "errored",
                "not_connected#",
                "not_connected#",
                "not_connected#",
                "not_connected",
                "not_connected",
            ],
        );
        let kinds: Vec<_> = got.iter().map(|(m, k, ..)| (*m, *k)).collect();
        assert_eq!(kinds, vec![(0, Down), (4, Changed)], "{got:?}");
    }

    #[test]
    fn an_outage_announced_before_the_window_and_still_down_after_it_is_not_announced_again() {
        let mut s = AgentState::default();
        let got = run(
            &mut s,
            &th(1, 1, None),
            &["errored", "errored#", "errored#", "errored", "errored"],
        );
        let kinds: Vec<_> = got.iter().map(|(m, k, ..)| (*m, *k)).collect();
        assert_eq!(kinds, vec![(0, Down)], "{got:?}");
    }

    #[test]
    fn a_missing_run_found_inside_a_window_ends_silently() {
        let th = th(1, 1, None);
        let mut s = AgentState::default();
        assert!(
            s.not_found(&agent(), "HTTP 404".into(), t(0), &th, false)
                .is_some()
        );
        let found = s.record_observation(&agent(), &obs("active"), t(1), &th, Hold::Maintenance);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(s.missing_since, None);
    }
}
