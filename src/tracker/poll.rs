//! One poll folded into an agent's state, with what a cycle needs to know of it: its alerts,
//! whether the state changed in substance (so the cycle must write it) and its health edge.
//!
//! Nearly every poll is steady: the same answer as last time. Judging that by copying the
//! state first and comparing after cost allocations on every poll; here the state before is a
//! few plain values, and the text it holds (the observation, the error) is compared with the
//! poll's before it is replaced. [`AgentState::differs_from`] and
//! [`AgentState::health_edge`] stay the definitions: the tests hold this module to them.

use chrono::{DateTime, TimeDelta, Utc};

use super::{AgentState, Hold, Thresholds};
use crate::domain::alert::{AgentAlert, AgentRef};
use crate::domain::{HealthEdge, Observation};

/// What one poll of an agent brought.
#[derive(Debug)]
pub enum Poll<'a> {
    Observed(&'a Observation),
    /// A failed poll other than a 404: why it failed.
    Failed(String),
    /// A `/status` 404. `quiet`: counted, never alerted (see [`AgentState::not_found`]).
    NotFound {
        error: String,
        quiet: bool,
    },
}

/// What a poll did to an agent's state.
#[derive(Debug, PartialEq, Eq)]
pub struct PollEffect {
    pub alerts: Vec<AgentAlert>,
    /// Whether the state [`differs_from`](AgentState::differs_from) what it was before the
    /// poll: what a cycle must write.
    pub changed: bool,
    /// The poll's [`health_edge`](AgentState::health_edge).
    pub edge: Option<HealthEdge>,
}

/// The substance of a state that is plain values. The rest is text, which changes only with a
/// new observation or a new error (both compared in [`AgentState::poll`]), and an open
/// outage's status, which changes only with a `changed` alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plain {
    health_streak: u32,
    health_since: Option<DateTime<Utc>>,
    status_streak: u32,
    missing_since: Option<DateTime<Utc>>,
    missing_streak: u32,
    missing_alerted: bool,
    /// An open outage's start and last message.
    outage: Option<(DateTime<Utc>, DateTime<Utc>)>,
    failing: bool,
}

impl Plain {
    fn of(s: &AgentState) -> Self {
        Self {
            health_streak: s.health_streak,
            health_since: s.health_since,
            status_streak: s.status_streak,
            missing_since: s.missing_since,
            missing_streak: s.missing_streak,
            missing_alerted: s.missing_alerted,
            outage: s.outage.as_ref().map(|o| (o.since, o.last_notified_at)),
            failing: s.last_error.is_some(),
        }
    }
}

impl AgentState {
    /// Folds one poll into the state by the rules in [`super`]: an observation through
    /// [`AgentState::record_observation`], a 404 through [`AgentState::not_found`], any other
    /// failure through [`AgentState::poll_failed`].
    pub fn poll(
        &mut self,
        agent: &AgentRef,
        poll: Poll<'_>,
        at: DateTime<Utc>,
        th: &Thresholds,
        hold: Hold,
        gap: TimeDelta,
    ) -> PollEffect {
        let plain = Plain::of(self);
        let (was, checked_before) = (self.observed_health(), self.last_checked_at);
        let new_text = match &poll {
            Poll::Observed(obs) => self.last.as_ref() != Some(*obs),
            Poll::Failed(error) | Poll::NotFound { error, .. } => {
                self.last_error.as_deref() != Some(error.as_str())
            }
        };
        let alerts = match poll {
            Poll::Observed(obs) => self.record_observation(agent, obs, at, th, hold),
            Poll::Failed(error) => {
                self.poll_failed(error, at);
                Vec::new()
            }
            Poll::NotFound { error, quiet } => self
                .not_found(agent, error, at, th, quiet)
                .into_iter()
                .collect(),
        };
        PollEffect {
            changed: new_text || !alerts.is_empty() || Plain::of(self) != plain,
            edge: self.health_edge_from(was, checked_before, gap),
            alerts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::test_support::{agent, obs, t, th};

    /// Steps: statuses ("active'" is active through another account), "~" muted, "#" in a
    /// maintenance window, "!" and "!!" failures with different texts, "?" a 404, "?~" a quiet
    /// one; "=" before a step makes it at the previous step's time.
    const STEPS: [&str; 14] = [
        "active",
        "active'",
        "errored",
        "not_connected",
        "errored~",
        "active~",
        "errored#",
        "active#",
        "!",
        "!!",
        "?",
        "?~",
        "=errored",
        "=active",
    ];
    const LEN: usize = 5;

    fn step(s: &mut AgentState, th: &Thresholds, step: &str, m: i64) -> PollEffect {
        let (step, at) = match step.strip_prefix('=') {
            Some(step) => (step, t((m - 1) * 7)),
            None => (step, t(m * 7)),
        };
        let (step, hold) = match (step.strip_suffix('~'), step.strip_suffix('#')) {
            (Some(step), _) => (step, Hold::Muted),
            (None, Some(step)) => (step, Hold::Maintenance),
            (None, None) => (step, Hold::None),
        };
        let mut observed = obs(step.trim_end_matches('\''));
        if step.ends_with('\'') {
            observed.accounts[0].account_name = "Other cal".into();
        }
        let poll = match step {
            "!" => Poll::Failed("HTTP 500".into()),
            "!!" => Poll::Failed("timeout".into()),
            "?" => Poll::NotFound {
                error: "HTTP 404".into(),
                quiet: hold != Hold::None,
            },
            _ => Poll::Observed(&observed),
        };
        s.poll(&agent(), poll, at, th, hold, TimeDelta::minutes(10))
    }

    /// Every sequence of `LEN` steps, for every threshold: a poll's `changed` is exactly
    /// `differs_from` the state before, its edge exactly `health_edge`, and its alerts those
    /// of the rules' own functions.
    #[test]
    fn a_poll_judges_its_change_as_the_definitions_do() {
        fn walk(th: &Thresholds, s: &AgentState, seq: &mut Vec<&str>, counts: &mut [usize; 2]) {
            if seq.len() == LEN {
                return;
            }
            for next in STEPS {
                seq.push(next);
                let mut after = s.clone();
                let effect = step(&mut after, th, next, seq.len() as i64);
                assert_eq!(effect.changed, after.differs_from(s), "{seq:?} {th:?}");
                let edge = after.health_edge(s, TimeDelta::minutes(10));
                assert_eq!(effect.edge, edge, "{seq:?} {th:?}");
                counts[usize::from(effect.changed)] += 1;
                walk(th, &after, seq, counts);
                seq.pop();
            }
        }
        let mut counts = [0; 2];
        for (f, s, r) in [
            (1, 1, None),
            (2, 1, Some(10)),
            (2, 3, Some(5)),
            (3, 2, None),
        ] {
            walk(
                &th(f, s, r),
                &AgentState::default(),
                &mut Vec::new(),
                &mut counts,
            );
        }
        // Both answers were given many times: the check could fail either way.
        assert!(counts[0] > 10_000 && counts[1] > 10_000, "{counts:?}");
    }

    #[test]
    fn a_steady_poll_changes_nothing_and_a_new_error_text_does() {
        let th = th(1, 1, None);
        let mut s = AgentState::default();
        let active = obs("active");
        let mut poll = |poll: Poll<'_>, m: i64| {
            s.poll(
                &agent(),
                poll,
                t(m),
                &th,
                Hold::None,
                TimeDelta::minutes(10),
            )
        };
        poll(Poll::Observed(&active), 0);
        let steady = PollEffect {
            alerts: Vec::new(),
            changed: false,
            edge: None,
        };
        assert_eq!(poll(Poll::Observed(&active), 1), steady);
        assert!(poll(Poll::Failed("HTTP 500".into()), 2).changed);
        assert!(!poll(Poll::Failed("HTTP 500".into()), 3).changed);
        assert!(poll(Poll::Failed("timeout".into()), 4).changed);
    }
}
