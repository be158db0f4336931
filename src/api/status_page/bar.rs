//! The 48-hour history bar and the uptime figures, as the pages show them.
//!
//! A bar is [`health_bar`]'s slots run-length encoded: consecutive equal slots become one
//! segment with a width in slots, so a steady agent's bar is a single element and a page of
//! 1,000 agents stays small. Each bar carries a text alternative for screen readers that says
//! the same as the colours.

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::history::{HealthInterval, Slot, health_bar};

/// How far back the bar looks, and in how many slots (of an hour each).
pub const BAR_SPAN: TimeDelta = TimeDelta::hours(48);
pub const BAR_SLOTS: usize = 48;

/// One run of equal slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The CSS class: `h` healthy, `m` mixed, `u` unhealthy, `n` no data.
    pub class: &'static str,
    /// How many slots (hours) it spans.
    pub slots: usize,
}

/// A bar ready to render: its segments, oldest first, and what it says in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub segments: Vec<Segment>,
    pub label: String,
}

impl Bar {
    /// The last [`BAR_SPAN`] before `now` of an agent whose open interval runs to
    /// `open_until` (its last poll).
    pub fn new(
        intervals: &[HealthInterval],
        open_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        Self::of(&health_bar(
            intervals,
            open_until,
            now - BAR_SPAN,
            now,
            BAR_SLOTS,
        ))
    }

    /// From slots of an hour each.
    pub fn of(slots: &[Slot]) -> Self {
        Self {
            segments: run_lengths(slots),
            label: label(slots),
        }
    }
}

fn class(slot: Slot) -> &'static str {
    match slot {
        Slot::Healthy => "h",
        Slot::Mixed => "m",
        Slot::Unhealthy => "u",
        Slot::NoData => "n",
    }
}

/// Consecutive equal slots as one segment each.
fn run_lengths(slots: &[Slot]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for &slot in slots {
        match out.last_mut() {
            Some(last) if last.class == class(slot) => last.slots += 1,
            _ => out.push(Segment {
                class: class(slot),
                slots: 1,
            }),
        }
    }
    out
}

/// `Last 48 h: 46 h healthy, 2 h unhealthy`: the hours of each kind, in a fixed order, those
/// with none left out.
fn label(slots: &[Slot]) -> String {
    let kinds = [
        (Slot::Healthy, "healthy"),
        (Slot::Mixed, "partly unhealthy"),
        (Slot::Unhealthy, "unhealthy"),
        (Slot::NoData, "no data"),
    ];
    let parts: Vec<String> = kinds
        .iter()
        .filter_map(|(kind, name)| {
            let n = slots.iter().filter(|s| *s == kind).count();
            (n > 0).then(|| format!("{n} h {name}"))
        })
        .collect();
    format!("Last {} h: {}", slots.len(), parts.join(", "))
}

/// An uptime percentage for a table cell: one decimal, never rounded up to 100 (99.96 % is
/// `99.9%`, only a spotless window is `100%`); `—` when nothing was observed.
pub fn percent(p: Option<f64>) -> String {
    match p {
        None => "—".to_owned(),
        Some(p) if p >= 100.0 => "100%".to_owned(),
        Some(p) => format!("{:.1}%", (p * 10.0).floor() / 10.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Slot::*;

    #[test]
    fn a_steady_bar_is_one_segment() {
        let bar = Bar::of(&[Healthy; 48]);
        assert_eq!(
            bar.segments,
            vec![Segment {
                class: "h",
                slots: 48
            }]
        );
        assert_eq!(bar.label, "Last 48 h: 48 h healthy");
    }

    #[test]
    fn runs_of_equal_slots_merge_and_the_label_counts_hours() {
        let bar = Bar::of(&[
            NoData, NoData, Healthy, Mixed, Unhealthy, Unhealthy, Healthy,
        ]);
        let got: Vec<(&str, usize)> = bar.segments.iter().map(|s| (s.class, s.slots)).collect();
        assert_eq!(got, vec![("n", 2), ("h", 1), ("m", 1), ("u", 2), ("h", 1)]);
        assert_eq!(
            bar.label,
            "Last 7 h: 2 h healthy, 1 h partly unhealthy, 2 h unhealthy, 2 h no data"
        );
    }

    #[test]
    fn the_bar_covers_the_last_48_hours_up_to_the_last_poll() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let h = |n: i64| now + TimeDelta::hours(n);
        // Healthy from 3 days ago, unhealthy for the last 2 h, polled until now.
        let ivs = [
            HealthInterval {
                healthy: true,
                start: h(-72),
                end: Some(h(-2)),
            },
            HealthInterval {
                healthy: false,
                start: h(-2),
                end: None,
            },
        ];
        let bar = Bar::new(&ivs, Some(now), now);
        assert_eq!(bar.label, "Last 48 h: 46 h healthy, 2 h unhealthy");
        assert_eq!(bar.segments.len(), 2);
        // Never polled: no data at all.
        assert_eq!(Bar::new(&[], None, now).label, "Last 48 h: 48 h no data");
    }

    #[test]
    fn percentages_never_round_up_to_a_clean_record() {
        assert_eq!(percent(None), "—");
        assert_eq!(percent(Some(100.0)), "100%");
        assert_eq!(percent(Some(99.96)), "99.9%");
        assert_eq!(percent(Some(50.0)), "50.0%");
        assert_eq!(percent(Some(0.0)), "0.0%");
    }
}
