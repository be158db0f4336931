//! Maintenance windows: planned work during which an agent's alerts are held back (the tracker
//! still tracks it; see [`crate::tracker::Hold::Maintenance`]). A window recurs (a 5-field cron
//! pattern read in an IANA zone, and a duration) or happens once (`start_at` to `end_at`), for
//! every agent or a list of them.
//!
//! Zones are chrono-tz's and occurrences croner's, so daylight saving is theirs, not ours: a
//! start that falls in the spring-forward gap moves to the first time after it (02:00 on the
//! night Berlin skips to 03:00 is 03:00), and one that happens twice in the autumn overlap
//! starts at its first. A duration is elapsed time, so `2h` is two hours on those nights too.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use chrono_tz::Tz;

use super::AgentId;

/// The longest name a window may have, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The most agents one window may list.
pub const MAX_AGENT_IDS: usize = 1_000;
/// The longest a recurring window may last: longer is a mute, not maintenance.
pub const MAX_DURATION: TimeDelta = TimeDelta::days(7);
/// The longest a one-off window may last.
pub const MAX_ONE_OFF: TimeDelta = TimeDelta::days(31);

/// A window's id: a random UUID, so both backends and `copy-db` agree on it without a sequence.
pub type WindowId = uuid::Uuid;

/// A broken rule of a window, naming the request field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidWindow {
    pub field: &'static str,
    pub rule: String,
}

impl InvalidWindow {
    fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self {
            field,
            rule: rule.into(),
        }
    }
}

impl fmt::Display for InvalidWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

impl std::error::Error for InvalidWindow {}

/// A 5-field cron pattern (minute hour day-of-month month day-of-week), parsed once.
#[derive(Clone)]
pub struct WindowSchedule {
    pattern: String,
    /// Boxed: a parsed pattern is some 350 bytes, and every window carries one or none.
    cron: Box<croner::Cron>,
}

/// The pattern only: croner's own is thousands of bits.
impl fmt::Debug for WindowSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WindowSchedule")
            .field(&self.pattern)
            .finish()
    }
}

impl PartialEq for WindowSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for WindowSchedule {}

impl WindowSchedule {
    /// Exactly five fields; day-of-month and day-of-week both given must both match (as
    /// `POLL_SCHEDULE` reads them), so `0 2 1-7 * SUN` is the first Sunday of the month.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let pattern = pattern.trim();
        let fields = pattern.split_whitespace().count();
        if fields != 5 || pattern.contains('@') {
            return Err(format!(
                "must be a cron pattern of 5 fields (minute hour day-of-month month \
                 day-of-week) such as \"0 2 * * SUN\", got {fields} field(s)"
            ));
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .year(croner::parser::Year::Disallowed)
            .dom_and_dow(true)
            .build()
            .parse(pattern)
            .map_err(|e| format!("not a cron pattern ({e})"))?;
        Ok(Self {
            pattern: pattern.to_owned(),
            cron: Box::new(cron),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The first start strictly after `t`, the pattern read in `zone`.
    pub fn next_after(&self, t: DateTime<Utc>, zone: &Tz) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.trunc_subsecs(0).with_timezone(zone), false)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    }
}

/// When a window is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// From each start of `schedule` (read in the window's zone), for `duration`.
    Recurring {
        schedule: WindowSchedule,
        duration: TimeDelta,
    },
    /// Once, from `start_at` (included) to `end_at` (excluded).
    OneOff {
        start_at: DateTime<Utc>,
        end_at: DateTime<Utc>,
    },
}

/// A maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub id: WindowId,
    pub name: String,
    pub timing: Timing,
    /// The zone the schedule is read in (kept for a one-off too, whose times carry their offset).
    pub timezone: Tz,
    /// `None`: every agent.
    pub agent_ids: Option<Vec<AgentId>>,
    pub created_at: DateTime<Utc>,
}

impl MaintenanceWindow {
    /// The occurrence open at `now`, as (start, end), if any.
    pub fn open_at(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match &self.timing {
            Timing::OneOff { start_at, end_at } => {
                (*start_at <= now && now < *end_at).then_some((*start_at, *end_at))
            }
            Timing::Recurring { schedule, duration } => {
                // The only start that can still be open is the first after `now - duration`.
                let start =
                    schedule.next_after(now.checked_sub_signed(*duration)?, &self.timezone)?;
                (start <= now).then(|| (start, start + *duration))
            }
        }
    }

    /// Whether the window is open at `now` (for any agent).
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.open_at(now).is_some()
    }

    /// The next start strictly after `now`; `None` for a one-off that has started.
    pub fn next_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.timing {
            Timing::OneOff { start_at, .. } => (*start_at > now).then_some(*start_at),
            Timing::Recurring { schedule, .. } => schedule.next_after(now, &self.timezone),
        }
    }

    /// Whether the window is about `agent` (open or not).
    pub fn applies_to(&self, agent: &AgentId) -> bool {
        self.agent_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(agent))
    }

    /// Whether the window holds back `agent`'s alerts at `now`.
    pub fn covers(&self, agent: &AgentId, now: DateTime<Utc>) -> bool {
        self.applies_to(agent) && self.active(now)
    }
}

/// Which agents the windows open at one time cover: worked out once per poll cycle, so each
/// agent's check is a set lookup, not a cron search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    all: bool,
    agents: HashSet<AgentId>,
}

impl Coverage {
    pub fn at(windows: &[MaintenanceWindow], now: DateTime<Utc>) -> Self {
        let mut coverage = Self::default();
        for w in windows.iter().filter(|w| w.active(now)) {
            match &w.agent_ids {
                None => coverage.all = true,
                Some(ids) => coverage.agents.extend(ids.iter().copied()),
            }
        }
        coverage
    }

    pub fn covers(&self, agent: &AgentId) -> bool {
        self.all || self.agents.contains(agent)
    }
}

/// A window as a request gives it, every field still text (JSON types are the API's to check).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowRequest {
    pub name: Option<String>,
    pub schedule: Option<String>,
    pub duration: Option<String>,
    pub start_at: Option<String>,
    pub end_at: Option<String>,
    pub timezone: Option<String>,
    pub agent_ids: Option<Vec<String>>,
}

impl WindowRequest {
    /// The window, or the first rule broken, naming its field. `zone`: `TIMEZONE`, for a
    /// window without one of its own.
    pub fn parse(
        self,
        id: WindowId,
        zone: Tz,
        now: DateTime<Utc>,
    ) -> Result<MaintenanceWindow, InvalidWindow> {
        let name = window_name(self.name)?;
        let timezone = match self.timezone {
            None => zone,
            Some(raw) => Tz::from_str(raw.trim()).map_err(|_| {
                InvalidWindow::new(
                    "timezone",
                    format!(
                        "must be an IANA time zone such as Europe/Berlin, got {:?}",
                        clip(&raw)
                    ),
                )
            })?,
        };
        let timing = match (
            self.schedule,
            self.start_at.is_some() || self.end_at.is_some(),
        ) {
            (Some(_), true) => {
                return Err(InvalidWindow::new(
                    "schedule",
                    "give either schedule with duration (recurring) or start_at and end_at \
                     (one-off), not both",
                ));
            }
            (Some(raw), false) => recurring(&raw, self.duration, &timezone, now)?,
            (None, _) => {
                if self.duration.is_some() {
                    return Err(InvalidWindow::new(
                        "duration",
                        "goes with schedule; a one-off window has start_at and end_at",
                    ));
                }
                one_off(self.start_at, self.end_at)?
            }
        };
        Ok(MaintenanceWindow {
            id,
            name,
            timing,
            timezone,
            agent_ids: self.agent_ids.map(agent_ids).transpose()?,
            created_at: now.trunc_subsecs(3),
        })
    }
}

/// At most this much of a bad value is echoed back.
fn clip(raw: &str) -> String {
    raw.chars().take(64).collect()
}

fn window_name(raw: Option<String>) -> Result<String, InvalidWindow> {
    let raw = raw.ok_or_else(|| InvalidWindow::new("name", "required"))?;
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(InvalidWindow::new(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(InvalidWindow::new(
            "name",
            "must not hold control characters",
        ));
    }
    Ok(name.to_owned())
}

fn recurring(
    schedule: &str,
    duration: Option<String>,
    zone: &Tz,
    now: DateTime<Utc>,
) -> Result<Timing, InvalidWindow> {
    let schedule =
        WindowSchedule::parse(schedule).map_err(|e| InvalidWindow::new("schedule", e))?;
    if schedule.next_after(now, zone).is_none() {
        return Err(InvalidWindow::new(
            "schedule",
            "never matches a time to come",
        ));
    }
    let raw = duration.ok_or_else(|| InvalidWindow::new("duration", "required with schedule"))?;
    let bad = || {
        InvalidWindow::new(
            "duration",
            format!(
                "must be whole seconds, more than 0 and at most 7d, such as 2h or 90m, got {:?}",
                clip(&raw)
            ),
        )
    };
    let parsed = humantime::parse_duration(raw.trim()).map_err(|_| bad())?;
    let duration = TimeDelta::from_std(parsed).map_err(|_| bad())?;
    if duration <= TimeDelta::zero() || duration > MAX_DURATION || parsed.subsec_nanos() != 0 {
        return Err(bad());
    }
    Ok(Timing::Recurring { schedule, duration })
}

fn time(field: &'static str, raw: Option<String>) -> Result<DateTime<Utc>, InvalidWindow> {
    let raw = raw.ok_or_else(|| {
        InvalidWindow::new(
            field,
            "required for a one-off window (or give schedule and duration)",
        )
    })?;
    // Milliseconds, as stored: the window answered is the window kept.
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(3))
        .map_err(|_| {
            InvalidWindow::new(
                field,
                format!(
                    "must be an RFC 3339 time such as 2026-03-29T02:00:00+02:00, got {:?}",
                    clip(&raw)
                ),
            )
        })
}

fn one_off(start_at: Option<String>, end_at: Option<String>) -> Result<Timing, InvalidWindow> {
    let start_at = time("start_at", start_at)?;
    let end_at = time("end_at", end_at)?;
    if end_at <= start_at {
        return Err(InvalidWindow::new("end_at", "must be after start_at"));
    }
    if end_at - start_at > MAX_ONE_OFF {
        return Err(InvalidWindow::new(
            "end_at",
            "must be at most 31 days after start_at (mute an agent for longer)",
        ));
    }
    Ok(Timing::OneOff { start_at, end_at })
}

fn agent_ids(raw: Vec<String>) -> Result<Vec<AgentId>, InvalidWindow> {
    if raw.is_empty() {
        return Err(InvalidWindow::new(
            "agent_ids",
            "must list at least one agent (null or absent: every agent)",
        ));
    }
    if raw.len() > MAX_AGENT_IDS {
        return Err(InvalidWindow::new(
            "agent_ids",
            format!("must list at most {MAX_AGENT_IDS} agents"),
        ));
    }
    let mut ids: Vec<AgentId> = Vec::with_capacity(raw.len());
    for (i, id) in raw.iter().enumerate() {
        let id: AgentId = id.trim().parse().map_err(|_| {
            InvalidWindow::new(
                "agent_ids",
                format!("[{i}] must be an agent's UUID, got {:?}", clip(id)),
            )
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// A duration as the API shows it (`2h`, `1h 30m`, `7d`): what `duration` takes back.
pub fn format_duration(d: TimeDelta) -> String {
    let mut left = d.num_seconds().max(0);
    let mut parts = Vec::new();
    for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if left >= secs {
            parts.push(format!("{}{unit}", left / secs));
            left %= secs;
        }
    }
    if parts.is_empty() {
        return "0s".to_owned();
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const A: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    const B: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3302";

    fn id(s: &str) -> AgentId {
        s.parse().unwrap()
    }

    fn recurring_window(schedule: &str, duration: &str, zone: &str) -> MaintenanceWindow {
        WindowRequest {
            name: Some("Cal.com migration".into()),
            schedule: Some(schedule.into()),
            duration: Some(duration.into()),
            timezone: Some(zone.into()),
            ..WindowRequest::default()
        }
        .parse(WindowId::nil(), chrono_tz::UTC, t("2026-01-01T00:00:00Z"))
        .unwrap()
    }

    fn one_off_window(start: &str, end: &str, agents: Option<&[&str]>) -> MaintenanceWindow {
        WindowRequest {
            name: Some("re-connect".into()),
            start_at: Some(start.into()),
            end_at: Some(end.into()),
            agent_ids: agents.map(|a| a.iter().map(|s| s.to_string()).collect()),
            ..WindowRequest::default()
        }
        .parse(WindowId::nil(), chrono_tz::UTC, t("2026-01-01T00:00:00Z"))
        .unwrap()
    }

    /// Sunday 02:00 Berlin for 2 h, the example, on the nights the clocks change.
    #[test]
    fn a_sunday_night_window_keeps_berlin_time_across_both_daylight_saving_changes() {
        let w = recurring_window("0 2 * * SUN", "2h", "Europe/Berlin");
        // Winter: 02:00 CET is 01:00 UTC.
        assert_eq!(
            w.next_start(t("2026-03-20T12:00:00Z")),
            Some(t("2026-03-22T01:00:00Z"))
        );
        // 29 March 2026: 02:00 does not exist (02:00 → 03:00 CEST); the window starts at 03:00
        // CEST (01:00 UTC) and lasts two real hours.
        assert_eq!(
            w.next_start(t("2026-03-28T12:00:00Z")),
            Some(t("2026-03-29T01:00:00Z"))
        );
        assert!(!w.active(t("2026-03-29T00:59:59Z")));
        assert!(w.active(t("2026-03-29T01:00:00Z")));
        assert!(w.active(t("2026-03-29T02:59:59Z")));
        assert!(!w.active(t("2026-03-29T03:00:00Z")));
        // Summer: 02:00 CEST is 00:00 UTC.
        assert_eq!(
            w.next_start(t("2026-03-30T00:00:00Z")),
            Some(t("2026-04-05T00:00:00Z"))
        );
        assert!(w.active(t("2026-04-05T01:59:00Z")));
        assert!(!w.active(t("2026-04-05T02:00:00Z")));
        // 25 October 2026: 02:00 happens twice; the window starts at the first (CEST, 00:00
        // UTC) and ends two hours later.
        assert_eq!(
            w.next_start(t("2026-10-24T12:00:00Z")),
            Some(t("2026-10-25T00:00:00Z"))
        );
        assert!(w.active(t("2026-10-25T01:30:00Z")));
        assert!(!w.active(t("2026-10-25T02:00:00Z")));
        // Winter again: 02:00 CET is 01:00 UTC.
        assert_eq!(
            w.next_start(t("2026-10-26T00:00:00Z")),
            Some(t("2026-11-01T01:00:00Z"))
        );
        assert!(!w.active(t("2026-11-01T00:30:00Z")));
        assert!(w.active(t("2026-11-01T02:30:00Z")));
        // While open, the next start is the next week's.
        assert_eq!(
            w.next_start(t("2026-11-01T02:30:00Z")),
            Some(t("2026-11-08T01:00:00Z"))
        );
        assert_eq!(
            w.open_at(t("2026-11-01T02:30:00Z")),
            Some((t("2026-11-01T01:00:00Z"), t("2026-11-01T03:00:00Z")))
        );
    }

    #[test]
    fn a_daily_window_keeps_its_local_hour_and_the_default_zone_applies() {
        let w = recurring_window("30 9 * * *", "15m", "America/New_York");
        // 8 March 2026: New York moves from UTC-5 to UTC-4.
        assert_eq!(
            w.next_start(t("2026-03-07T00:00:00Z")),
            Some(t("2026-03-07T14:30:00Z"))
        );
        assert_eq!(
            w.next_start(t("2026-03-08T00:00:00Z")),
            Some(t("2026-03-08T13:30:00Z"))
        );
        let no_zone = WindowRequest {
            name: Some("n".into()),
            schedule: Some("0 2 * * SUN".into()),
            duration: Some("2h".into()),
            ..WindowRequest::default()
        }
        .parse(
            WindowId::nil(),
            chrono_tz::Europe::Berlin,
            t("2026-01-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(no_zone.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(
            no_zone.next_start(t("2026-03-28T12:00:00Z")),
            Some(t("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn a_one_off_window_is_open_from_its_start_to_before_its_end() {
        let w = one_off_window(
            "2026-05-01T10:00:00+02:00",
            "2026-05-01T12:00:00+02:00",
            None,
        );
        let a = id(A);
        assert_eq!(
            w.next_start(t("2026-05-01T07:00:00Z")),
            Some(t("2026-05-01T08:00:00Z"))
        );
        assert!(!w.covers(&a, t("2026-05-01T07:59:59Z")));
        assert!(w.covers(&a, t("2026-05-01T08:00:00Z")));
        assert!(w.covers(&a, t("2026-05-01T09:59:59Z")));
        // Ended: never open again, no next start.
        assert!(!w.covers(&a, t("2026-05-01T10:00:00Z")));
        assert_eq!(w.next_start(t("2026-05-01T08:30:00Z")), None);
        assert_eq!(w.next_start(t("2026-06-01T00:00:00Z")), None);
        assert!(!w.active(t("2027-05-01T09:00:00Z")));
    }

    #[test]
    fn a_window_for_some_agents_covers_only_them() {
        let w = one_off_window("2026-05-01T08:00:00Z", "2026-05-01T10:00:00Z", Some(&[A]));
        let inside = t("2026-05-01T09:00:00Z");
        assert!(w.covers(&id(A), inside));
        assert!(!w.covers(&id(B), inside));
        assert!(!w.covers(&id(A), t("2026-05-01T11:00:00Z")));
        let all = one_off_window("2026-05-01T09:30:00Z", "2026-05-01T10:00:00Z", None);
        let windows = [w.clone(), all];
        let early = Coverage::at(&windows, inside);
        assert!(early.covers(&id(A)) && !early.covers(&id(B)));
        let later = Coverage::at(&windows, t("2026-05-01T09:45:00Z"));
        assert!(later.covers(&id(A)) && later.covers(&id(B)));
        assert!(!Coverage::at(&windows, t("2026-05-01T10:00:00Z")).covers(&id(A)));
    }

    fn rejected(r: WindowRequest) -> InvalidWindow {
        r.parse(WindowId::nil(), chrono_tz::UTC, t("2026-01-01T00:00:00Z"))
            .unwrap_err()
    }

    fn named() -> WindowRequest {
        WindowRequest {
            name: Some("n".into()),
            ..WindowRequest::default()
        }
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let cron = || WindowRequest {
            schedule: Some("0 2 * * SUN".into()),
            duration: Some("2h".into()),
            ..named()
        };
        let once = || WindowRequest {
            start_at: Some("2026-05-01T08:00:00Z".into()),
            end_at: Some("2026-05-01T10:00:00Z".into()),
            ..named()
        };
        let cases: Vec<(WindowRequest, &str)> = vec![
            (
                WindowRequest {
                    name: None,
                    ..cron()
                },
                "name",
            ),
            (
                WindowRequest {
                    name: Some("  ".into()),
                    ..cron()
                },
                "name",
            ),
            (
                WindowRequest {
                    name: Some("x".repeat(201)),
                    ..cron()
                },
                "name",
            ),
            (
                WindowRequest {
                    name: Some("a\nb".into()),
                    ..cron()
                },
                "name",
            ),
            (
                WindowRequest {
                    duration: None,
                    ..cron()
                },
                "duration",
            ),
            (
                WindowRequest {
                    duration: Some("0s".into()),
                    ..cron()
                },
                "duration",
            ),
            (
                WindowRequest {
                    duration: Some("8d".into()),
                    ..cron()
                },
                "duration",
            ),
            (
                WindowRequest {
                    duration: Some("1.5s".into()),
                    ..cron()
                },
                "duration",
            ),
            (
                WindowRequest {
                    duration: Some("two hours".into()),
                    ..cron()
                },
                "duration",
            ),
            (
                WindowRequest {
                    schedule: Some("0 0 2 * * SUN".into()),
                    ..cron()
                },
                "schedule",
            ),
            (
                WindowRequest {
                    schedule: Some("@weekly".into()),
                    ..cron()
                },
                "schedule",
            ),
            (
                WindowRequest {
                    schedule: Some("0 25 * * *".into()),
                    ..cron()
                },
                "schedule",
            ),
            (
                WindowRequest {
                    schedule: Some("0 0 30 2 *".into()),
                    ..cron()
                },
                "schedule",
            ),
            (
                WindowRequest {
                    start_at: Some("2026-05-01T08:00:00Z".into()),
                    ..cron()
                },
                "schedule",
            ),
            (
                WindowRequest {
                    timezone: Some("Mars/Olympus".into()),
                    ..cron()
                },
                "timezone",
            ),
            (
                WindowRequest {
                    duration: Some("2h".into()),
                    ..once()
                },
                "duration",
            ),
            (
                WindowRequest {
                    start_at: None,
                    ..once()
                },
                "start_at",
            ),
            (
                WindowRequest {
                    end_at: None,
                    ..once()
                },
                "end_at",
            ),
            (
                WindowRequest {
                    start_at: Some("yesterday".into()),
                    ..once()
                },
                "start_at",
            ),
            (
                WindowRequest {
                    end_at: Some("2026-05-01T08:00:00Z".into()),
                    ..once()
                },
                "end_at",
            ),
            (
                WindowRequest {
                    end_at: Some("2026-07-01T08:00:00Z".into()),
                    ..once()
                },
                "end_at",
            ),
            (named(), "start_at"),
            (
                WindowRequest {
                    agent_ids: Some(vec![]),
                    ..once()
                },
                "agent_ids",
            ),
            (
                WindowRequest {
                    agent_ids: Some(vec![A.into(), "nope".into()]),
                    ..once()
                },
                "agent_ids",
            ),
            (
                WindowRequest {
                    agent_ids: Some(vec![A.into(); 1_001]),
                    ..once()
                },
                "agent_ids",
            ),
        ];
        for (request, field) in cases {
            let shown = format!("{request:?}");
            assert_eq!(rejected(request).field, field, "{shown}");
        }
        // At the bounds, accepted; agent ids deduplicated.
        let ok = WindowRequest {
            name: Some("x".repeat(200)),
            duration: Some("7d".into()),
            ..cron()
        };
        assert!(
            ok.parse(WindowId::nil(), chrono_tz::UTC, t("2026-01-01T00:00:00Z"))
                .is_ok()
        );
        let listed = WindowRequest {
            agent_ids: Some(vec![A.to_uppercase(), A.into(), B.into()]),
            ..once()
        }
        .parse(WindowId::nil(), chrono_tz::UTC, t("2026-01-01T00:00:00Z"))
        .unwrap();
        assert_eq!(listed.agent_ids, Some(vec![id(A), id(B)]));
    }

    #[test]
    fn durations_show_as_they_are_written() {
        assert_eq!(format_duration(TimeDelta::hours(2)), "2h");
        assert_eq!(format_duration(TimeDelta::minutes(90)), "1h 30m");
        assert_eq!(format_duration(TimeDelta::days(7)), "7d");
        assert_eq!(format_duration(TimeDelta::seconds(90_061)), "1d 1h 1m 1s");
        for secs in [1, 59, 60, 5_400, 7_200, 90_061, 604_800] {
            let shown = format_duration(TimeDelta::seconds(secs));
            let back = humantime::parse_duration(&shown).unwrap();
            assert_eq!(back.as_secs(), secs as u64, "{shown}");
        }
    }

    /// Odd patterns are refused or accepted, never a panic.
    #[test]
    fn odd_cron_patterns_never_panic() {
        for pattern in [
            "*/0 * * * *",
            "60 * * * *",
            "0 0 L * *",
            "0 0 * * 5#3",
            "0 0 ? * *",
            "0 0 15W * *",
            "0 0 * * 8",
            "0-59/7 0,12 1-31/2 JAN-DEC MON-FRI",
            "0 0 31 2,4,6,9,11 *",
            "\u{0}\u{0} * * * *",
            "9999999999999999999 * * * *",
            "* * * * * *",
            "",
        ] {
            let parsed = WindowRequest {
                name: Some("n".into()),
                schedule: Some(pattern.into()),
                duration: Some("1h".into()),
                ..WindowRequest::default()
            }
            .parse(WindowId::nil(), chrono_tz::UTC, t("2026-01-01T00:00:00Z"));
            if let Ok(w) = parsed {
                let _ = w.active(t("2026-06-01T00:00:00Z"));
                assert!(
                    w.next_start(t("2026-06-01T00:00:00Z")).is_some(),
                    "{pattern}"
                );
            }
        }
    }
}
