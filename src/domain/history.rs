//! An agent's past, as the store keeps it and the pages show it: runs of observed health
//! ([`HealthInterval`]), and what they come to (uptime over a window, a bar of coloured slots).
//!
//! Only *observed* time counts. An interval begins at an observation and ends at the poll that
//! ended it: an observation of the other health (which begins the next interval), a failed poll
//! (a 404 included), or the agent's removal. The open interval of an agent runs to its last
//! poll, so time after a process stopped polling is not counted either; and when polling
//! resumes after such a gap, the interval is closed at the poll before it and a new one opened
//! (one write per agent and gap). A steady agent's interval stays open and is never rewritten:
//! uptime costs no per-poll write.
//!
//! Muted time counts: a muted agent is still polled, and its health is known; a mute silences
//! alerts, not observations.

use chrono::{DateTime, TimeDelta, Utc};

/// A run of observations of one health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthInterval {
    pub healthy: bool,
    pub start: DateTime<Utc>,
    /// `None` while the run goes on.
    pub end: Option<DateTime<Utc>>,
}

/// What a poll did to an agent's intervals: close the open one at `closes_at`, and open one
/// of `healthy` at `at` when the poll was an observation (`None`: a failed poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthEdge {
    /// The poll's time.
    pub at: DateTime<Utc>,
    pub healthy: Option<bool>,
    /// Where the open interval ends: `at`, or after a gap in polling (no process polled, e.g.
    /// the service was down) the poll before the gap, so the gap is not observed time.
    pub closes_at: DateTime<Utc>,
}

/// Percent of observed time healthy over the last day, week and 30 days; `None` where nothing
/// was observed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Uptime {
    pub day: Option<f64>,
    pub week: Option<f64>,
    pub month: Option<f64>,
}

/// The windows of [`Uptime`].
pub const DAY: TimeDelta = TimeDelta::days(1);
pub const WEEK: TimeDelta = TimeDelta::days(7);
pub const MONTH: TimeDelta = TimeDelta::days(30);

impl Uptime {
    /// From an agent's intervals (any order); the open one runs to `open_until` (the agent's
    /// last poll), and the windows end at `now`.
    pub fn new(
        intervals: &[HealthInterval],
        open_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        let share = |window| healthy_share(intervals, open_until, now - window, now);
        Self {
            day: share(DAY),
            week: share(WEEK),
            month: share(MONTH),
        }
    }
}

/// Healthy and observed time of `intervals` within `[from, to)`, the open one ending at
/// `open_until` (nothing of it counts without one).
fn observed(
    intervals: &[HealthInterval],
    open_until: Option<DateTime<Utc>>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (TimeDelta, TimeDelta) {
    let mut healthy = TimeDelta::zero();
    let mut all = TimeDelta::zero();
    for i in intervals {
        let Some(end) = i.end.or(open_until) else {
            continue;
        };
        let (s, e) = (i.start.max(from), end.min(to));
        if e > s {
            all += e - s;
            if i.healthy {
                healthy += e - s;
            }
        }
    }
    (healthy, all)
}

/// Percent of the observed time within `[from, to)` that was healthy; `None` if none was
/// observed.
pub fn healthy_share(
    intervals: &[HealthInterval],
    open_until: Option<DateTime<Utc>>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<f64> {
    let (healthy, all) = observed(intervals, open_until, from, to);
    let all = all.num_milliseconds();
    (all > 0).then(|| healthy.num_milliseconds() as f64 * 100.0 / all as f64)
}

/// One slot of a history bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Observed, and healthy whenever observed.
    Healthy,
    /// Observed unhealthy for part of the slot, healthy for the rest.
    Mixed,
    /// Observed, and unhealthy whenever observed.
    Unhealthy,
    /// Not observed at all.
    NoData,
}

/// `slots` equal slots from `from` to `to`, oldest first, each coloured by what was observed
/// in it.
pub fn health_bar(
    intervals: &[HealthInterval],
    open_until: Option<DateTime<Utc>>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    slots: usize,
) -> Vec<Slot> {
    let Ok(n) = i32::try_from(slots.max(1)) else {
        return Vec::new();
    };
    let width = (to - from) / n;
    (0..n)
        .map(|k| {
            let s = from + width * k;
            let e = if k + 1 == n { to } else { s + width };
            let (healthy, all) = observed(intervals, open_until, s, e);
            if all.is_zero() {
                Slot::NoData
            } else if healthy == all {
                Slot::Healthy
            } else if healthy.is_zero() {
                Slot::Unhealthy
            } else {
                Slot::Mixed
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + TimeDelta::hours(h)
    }

    fn iv(healthy: bool, start: i64, end: Option<i64>) -> HealthInterval {
        HealthInterval {
            healthy,
            start: t(start),
            end: end.map(t),
        }
    }

    #[test]
    fn nothing_observed_is_no_figure() {
        assert_eq!(Uptime::new(&[], Some(t(0)), t(0)), Uptime::default());
        // An open interval with no last poll counts nothing.
        let u = Uptime::new(&[iv(true, -5, None)], None, t(0));
        assert_eq!(u, Uptime::default());
    }

    #[test]
    fn always_healthy_is_one_hundred_percent_in_every_window() {
        let u = Uptime::new(&[iv(true, -24 * 40, None)], Some(t(0)), t(0));
        assert_eq!(u.day, Some(100.0));
        assert_eq!(u.week, Some(100.0));
        assert_eq!(u.month, Some(100.0));
    }

    #[test]
    fn only_observed_time_counts_and_windows_clip_intervals() {
        // Healthy -30h..-6h, a gap (failed polls) -6h..-3h, unhealthy -3h..now.
        let ivs = [iv(true, -30, Some(-6)), iv(false, -3, None)];
        let u = Uptime::new(&ivs, Some(t(0)), t(0));
        // Last day: 18 h healthy of 21 h observed.
        assert_eq!(u.day, Some(18.0 * 100.0 / 21.0));
        // Last week: 24 h healthy of 27 h.
        assert_eq!(u.week, Some(24.0 * 100.0 / 27.0));
    }

    #[test]
    fn the_open_interval_ends_at_the_last_poll() {
        // Last polled 10 h ago (the process stopped): those 10 h are not observed.
        let ivs = [iv(false, -12, None)];
        let u = Uptime::new(&ivs, Some(t(-10)), t(0));
        assert_eq!(u.day, Some(0.0));
        let ivs = [iv(true, -12, Some(-11)), iv(false, -11, None)];
        let u = Uptime::new(&ivs, Some(t(-10)), t(0));
        assert_eq!(u.day, Some(50.0));
    }

    #[test]
    fn intervals_older_than_a_window_do_not_count_in_it() {
        let ivs = [iv(false, -24 * 10, Some(-24 * 8)), iv(true, -24 * 8, None)];
        let u = Uptime::new(&ivs, Some(t(0)), t(0));
        assert_eq!(u.day, Some(100.0));
        assert_eq!(u.week, Some(100.0));
        assert_eq!(u.month, Some(8.0 * 100.0 / 10.0));
    }

    #[test]
    fn the_bar_colours_each_slot_by_what_was_observed_in_it() {
        // 4 slots of an hour from -4h: healthy, mixed, unhealthy, nothing.
        let ivs = [
            iv(true, -5, None).with_end(t(-3) + TimeDelta::minutes(30)),
            iv(false, -5, None)
                .with_start(t(-3) + TimeDelta::minutes(30))
                .with_end(t(-1)),
        ];
        let bar = health_bar(&ivs, Some(t(0)), t(-4), t(0), 4);
        assert_eq!(
            bar,
            vec![Slot::Healthy, Slot::Mixed, Slot::Unhealthy, Slot::NoData]
        );
    }

    #[test]
    fn the_bar_has_the_asked_number_of_slots_even_for_odd_widths() {
        let bar = health_bar(&[iv(true, -100, None)], Some(t(0)), t(-48), t(0), 7);
        assert_eq!(bar, vec![Slot::Healthy; 7]);
        assert_eq!(health_bar(&[], None, t(-1), t(0), 3), vec![Slot::NoData; 3]);
    }

    impl HealthInterval {
        fn with_end(self, end: DateTime<Utc>) -> Self {
            Self {
                end: Some(end),
                ..self
            }
        }
        fn with_start(self, start: DateTime<Utc>) -> Self {
            Self { start, ..self }
        }
    }
}
