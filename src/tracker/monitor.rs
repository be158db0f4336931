//! The monitor's own machine: whether poll cycles work, counted in cycles with the agents'
//! thresholds, and cycles that ran into the next tick of the schedule.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Thresholds;
use crate::domain::RavanHealth;
use crate::domain::alert::{MonitorAlert, MonitorAlertKind};

/// What one poll cycle amounted to, for the monitor's own health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleSummary {
    pub polled: usize,
    /// Polls that gave no observation, 404s included.
    pub failed: usize,
    /// Of those, the 404s: Ravan answered, about an agent it does not know. They say the API
    /// works, so they are not polling trouble.
    pub not_found: usize,
    /// The first 401/403 of the cycle, described: credentials are wrong for every agent.
    pub auth_failure: Option<String>,
    /// The first failure of the cycle, described.
    pub first_failure: Option<String>,
    /// What Ravan's `/health` said, asked only when every poll failed ([`Self::all_failed`]):
    /// the reason then says whether Ravan is down or our requests are what fails.
    pub ravan_health: Option<RavanHealth>,
}

impl CycleSummary {
    /// Polling is broken when Ravan refuses the credentials or no poll at all succeeded; the
    /// reason says which side the trouble is on when Ravan's health check was asked.
    pub fn trouble(&self) -> Option<String> {
        let trouble = self
            .auth_failure
            .clone()
            .or_else(|| self.all_failed_reason())?;
        Some(match &self.ravan_health {
            Some(health) => health.explain(&trouble),
            None => trouble,
        })
    }

    /// Every poll that asked about a known agent failed (404s aside: they say the API works).
    /// The monitor then asks Ravan's `/health`, once.
    pub fn all_failed(&self) -> bool {
        self.asked() > 0 && self.failed == self.polled
    }

    /// Polls other than the 404s.
    fn asked(&self) -> usize {
        self.polled - self.not_found.min(self.polled)
    }

    fn all_failed_reason(&self) -> Option<String> {
        if !self.all_failed() {
            return None;
        }
        let first = self.first_failure.as_deref().unwrap_or("unknown error");
        let found_none = match self.not_found {
            0 => String::new(),
            n => format!(" ({n} more answered 404)"),
        };
        Some(format!(
            "all {} polls failed{found_none}; first: {first}",
            self.asked()
        ))
    }
}

/// The monitor's own health: the same thresholds as agents, counted in cycles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorState {
    /// Consecutive cycles in trouble, and when that run began.
    pub trouble_streak: u32,
    pub trouble_since: Option<DateTime<Utc>>,
    /// Consecutive cycles without trouble, and when that run began.
    pub clean_streak: u32,
    pub clean_since: Option<DateTime<Utc>>,
    /// Set while a monitor alert is open: when the trouble began.
    pub alerted_since: Option<DateTime<Utc>>,
    /// When the last cycle with at least one successful poll ended.
    pub last_good_cycle_at: Option<DateTime<Utc>>,
    /// The last poll cycle that ran past the next tick of the schedule.
    pub last_overrun: Option<Overrun>,
    /// How many cycles have overrun in all.
    pub overruns: u64,
}

/// A poll cycle that took longer than the time between two ticks of the schedule: the ticks
/// it ran into were skipped, so agents were polled less often than asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrun {
    pub started_at: DateTime<Utc>,
    /// How long the cycle's polls took, and the time the schedule gave them.
    pub took_ms: u64,
    pub interval_ms: u64,
    /// Whether Ravan throttled (429) the cycle: then more concurrency would not help.
    pub throttled: bool,
    /// The `POLL_CONCURRENCY` that would fit the cycle in its interval, with a margin.
    pub suggested_concurrency: usize,
}

impl Overrun {
    /// The overrun of a cycle that began at `started_at`, took `took` and had `interval` until
    /// the next tick, with `concurrency` polls at a time; `None` if it did not overrun.
    pub fn of(
        started_at: DateTime<Utc>,
        took: Duration,
        interval: Duration,
        concurrency: usize,
        throttled: bool,
    ) -> Option<Self> {
        if took <= interval {
            return None;
        }
        let took_ms = took.num_milliseconds().max(0) as u64;
        let interval_ms = interval.num_milliseconds().max(1) as u64;
        // The work is the same, spread over more requests at once; a quarter more for margin.
        let scaled = (concurrency as u64)
            .saturating_mul(took_ms)
            .saturating_mul(5)
            / (interval_ms * 4);
        Some(Self {
            started_at,
            took_ms,
            interval_ms,
            throttled,
            suggested_concurrency: usize::try_from(scaled + 1).unwrap_or(usize::MAX),
        })
    }

    /// What the operator can do, in one sentence.
    pub fn advice(&self) -> String {
        let secs = self.took_ms.div_ceil(1000) + 1;
        if self.throttled {
            format!(
                "Ravan throttled this cycle, so more concurrency would not help: poll less often (POLL_SCHEDULE ticks at least {secs}s apart)"
            )
        } else {
            format!(
                "raise POLL_CONCURRENCY to about {} or space POLL_SCHEDULE ticks at least {secs}s apart",
                self.suggested_concurrency
            )
        }
    }
}

impl MonitorState {
    /// Records a finished cycle and returns the monitor alert it completes, if any. A cycle that
    /// polled nothing tells nothing and changes nothing.
    pub fn cycle(
        &mut self,
        summary: &CycleSummary,
        at: DateTime<Utc>,
        th: &Thresholds,
    ) -> Option<MonitorAlert> {
        if summary.polled == 0 {
            return None;
        }
        if summary.failed < summary.polled {
            self.last_good_cycle_at = Some(at);
        }
        match summary.trouble() {
            Some(reason) => {
                self.clean_streak = 0;
                self.trouble_streak += 1;
                let since = *self.trouble_since.get_or_insert(at);
                if self.alerted_since.is_none() && self.trouble_streak >= th.failure.get() {
                    self.alerted_since = Some(since);
                    return Some(MonitorAlert {
                        kind: MonitorAlertKind::Down,
                        reason,
                        at,
                        since,
                    });
                }
                None
            }
            None => {
                self.trouble_streak = 0;
                self.trouble_since = None;
                self.clean_streak += 1;
                if self.clean_streak == 1 {
                    self.clean_since = Some(at);
                }
                let since = self.alerted_since?;
                if self.clean_streak < th.success.get() {
                    return None;
                }
                self.alerted_since = None;
                Some(MonitorAlert {
                    kind: MonitorAlertKind::Recovered,
                    reason: "polls succeed again".to_owned(),
                    at: self.clean_since.unwrap_or(at),
                    since,
                })
            }
        }
    }
}
impl MonitorState {
    /// Whether `self` differs from `saved` in more than a steady cycle's progress: the clean
    /// streak counting on while no monitor alert is open (only whether it started matters
    /// then) and the time of the last good cycle. Progress alone is not worth a write of the
    /// cycle's own (see [`crate::store::Progress`]).
    pub fn differs_from(&self, saved: &Self) -> bool {
        self.substance() != saved.substance()
    }

    fn substance(&self) -> Self {
        Self {
            clean_streak: match self.alerted_since {
                Some(_) => self.clean_streak,
                None => self.clean_streak.min(1),
            },
            last_good_cycle_at: None,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::test_support::{t, th};

    fn summary(polled: usize, failed: usize, auth: bool) -> CycleSummary {
        CycleSummary {
            polled,
            failed,
            not_found: 0,
            auth_failure: auth.then(|| "Ravan API refused the credentials (HTTP 401)".into()),
            first_failure: (failed > 0).then(|| "server error (HTTP 500)".into()),
            ravan_health: None,
        }
    }

    /// Every poll failed: the reason says what Ravan's health check said, before the first
    /// failure; a cycle in which some polls work never asked it.
    #[test]
    fn the_down_reason_says_what_ravans_health_check_said() {
        let th = th(1, 1, None);
        let reason = |health: Option<RavanHealth>, failed: usize, auth: bool| {
            let s = CycleSummary {
                ravan_health: health,
                ..summary(3, failed, auth)
            };
            MonitorState::default()
                .cycle(&s, t(0), &th)
                .map(|a| a.reason)
        };
        let healthy = reason(Some(RavanHealth::Healthy), 3, false).unwrap();
        assert!(
            healthy.starts_with("Ravan reports healthy, but our requests fail")
                && healthy.ends_with("all 3 polls failed; first: server error (HTTP 500)"),
            "{healthy}"
        );
        let down = reason(Some(RavanHealth::Down("HTTP 502".into())), 3, false).unwrap();
        assert!(
            down.starts_with("Ravan's health check does not answer: Ravan looks down; all 3 polls failed; first: server error (HTTP 500)"),
            "{down}"
        );
        let refused = reason(Some(RavanHealth::Healthy), 3, true).unwrap();
        assert!(
            refused.starts_with("Ravan reports healthy") && refused.contains("HTTP 401"),
            "{refused}"
        );
        let unasked = reason(Some(RavanHealth::NotAsked), 3, false).unwrap();
        assert!(unasked.starts_with("all 3 polls failed"), "{unasked}");
        assert_eq!(reason(None, 3, false).unwrap(), unasked);

        assert!(summary(3, 3, false).all_failed());
        assert!(!summary(3, 2, false).all_failed());
        assert!(!summary(0, 0, false).all_failed());
        let only_404s = CycleSummary {
            not_found: 3,
            ..summary(3, 3, false)
        };
        assert!(!only_404s.all_failed());
    }

    /// Over a run of cycles, each state is compared with the one before: only steady clean
    /// cycles without an open alert are progress alone; every other change is substance,
    /// and so is every cycle that counts towards a recovery (SUCCESS_THRESHOLD 3).
    #[test]
    fn only_a_steady_clean_cycle_is_progress_alone() {
        let th = th(2, 3, None);
        let mut m = MonitorState::default();
        let mut seen = Vec::new();
        for (i, s) in [
            summary(3, 0, false), // 0: the first clean cycle starts the streak
            summary(3, 0, false), // 1: steady
            summary(3, 1, false), // 2: a poll failed, not trouble: steady
            summary(3, 0, false), // 3: steady
            summary(3, 3, false), // 4: trouble begins
            summary(3, 3, false), // 5: the monitor alert
            summary(3, 3, false), // 6: the streak of trouble grows
            summary(3, 0, false), // 7: clean again, alert open
            summary(3, 0, false), // 8: counting towards recovery
            summary(3, 0, false), // 9: recovered
            summary(3, 0, false), // 10: steady
            summary(0, 0, false), // 11: nothing polled
            summary(3, 0, true),  // 12: credentials refused
        ]
        .iter()
        .enumerate()
        {
            let before = m.clone();
            m.cycle(s, t(i as i64), &th);
            seen.push(m.differs_from(&before));
        }
        let substance: Vec<usize> = (0..seen.len()).filter(|&i| seen[i]).collect();
        assert_eq!(substance, [0, 4, 5, 6, 7, 8, 9, 12]);

        let mut overrun = m.clone();
        overrun.overruns += 1;
        assert!(overrun.differs_from(&m), "an overrun is substance");
        let mut steady = MonitorState::default();
        steady.cycle(&summary(3, 0, false), t(0), &th);
        let mut later = steady.clone();
        later.last_good_cycle_at = Some(t(99));
        later.clean_streak += 40;
        assert!(!later.differs_from(&steady) && !steady.differs_from(&later));
    }

    #[test]
    fn monitor_alerts_once_when_every_poll_fails_and_once_when_it_works_again() {
        let mut m = MonitorState::default();
        let th = th(2, 1, None);
        let mut got = Vec::new();
        for (i, s) in [
            summary(3, 1, false),
            summary(3, 3, false),
            summary(3, 3, false),
            summary(3, 3, false),
            summary(3, 0, false),
            summary(3, 0, false),
        ]
        .iter()
        .enumerate()
        {
            if let Some(a) = m.cycle(s, t(i as i64), &th) {
                got.push((i, a));
            }
        }
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!((got[0].0, got[0].1.kind), (2, MonitorAlertKind::Down));
        assert_eq!(got[0].1.since, t(1));
        assert!(
            got[0].1.reason.contains("all 3 polls failed"),
            "{}",
            got[0].1.reason
        );
        assert_eq!((got[1].0, got[1].1.kind), (4, MonitorAlertKind::Recovered));
        assert_eq!(got[1].1.since, t(1));
        assert_eq!(got[1].1.at, t(4));
    }

    #[test]
    fn monitor_alerts_on_auth_failure_even_when_some_polls_succeed() {
        let mut m = MonitorState::default();
        let th = th(1, 1, None);
        let a = m.cycle(&summary(5, 1, true), t(0), &th).unwrap();
        assert_eq!(a.kind, MonitorAlertKind::Down);
        assert!(a.reason.contains("401"));
        assert!(
            m.cycle(&summary(5, 1, true), t(1), &th).is_none(),
            "no repeat"
        );
        let r = m.cycle(&summary(5, 0, false), t(2), &th).unwrap();
        assert_eq!(r.kind, MonitorAlertKind::Recovered);
    }

    #[test]
    fn monitor_ignores_partial_failures_blips_and_empty_cycles() {
        let mut m = MonitorState::default();
        let th = th(2, 1, None);
        let cycles = [
            summary(4, 3, false),
            summary(4, 4, false),
            summary(4, 0, false),
            summary(4, 4, false),
            summary(0, 0, false),
            summary(4, 2, false),
        ];
        for (i, s) in cycles.iter().enumerate() {
            assert!(m.cycle(s, t(i as i64), &th).is_none(), "cycle {i}");
        }
        assert_eq!(m.last_good_cycle_at, Some(t(5)));
    }

    #[test]
    fn monitor_recovery_needs_success_threshold() {
        let mut m = MonitorState::default();
        let th = th(1, 2, None);
        assert!(m.cycle(&summary(1, 1, false), t(0), &th).is_some());
        assert!(m.cycle(&summary(1, 0, false), t(1), &th).is_none());
        assert!(
            m.cycle(&summary(1, 1, false), t(2), &th).is_none(),
            "still open, no second down"
        );
        assert!(m.cycle(&summary(1, 0, false), t(3), &th).is_none());
        let r = m.cycle(&summary(1, 0, false), t(4), &th).unwrap();
        assert_eq!(
            (r.kind, r.since, r.at),
            (MonitorAlertKind::Recovered, t(0), t(3))
        );
    }
}
