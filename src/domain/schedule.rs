//! When poll cycles run, and when the digest is sent: a cron pattern with a seconds field,
//! checked once at start. `POLL_SCHEDULE` is read in UTC; the digest's in `TIMEZONE`
//! ([`PollSchedule::next_after_in`]). The monitor needs its next tick to tell an overrun, the
//! scheduler to run it.

/// A cron pattern with a seconds field, parsed once with croner (the parser tokio-cron-scheduler
/// used, so the syntax is what it accepted).
#[derive(Debug, Clone)]
pub struct PollSchedule {
    pattern: String,
    cron: croner::Cron,
}

impl PartialEq for PollSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for PollSchedule {}

impl PollSchedule {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(pattern)
            .map_err(|e| format!("not a cron pattern with a seconds field ({e}): {pattern:?}"))?;
        Ok(Self {
            pattern: pattern.to_owned(),
            cron,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The first tick strictly after `t` (UTC, as the scheduler runs it), on a whole second;
    /// `None` if the pattern has none. (croner keeps the fraction of a second it is given.)
    pub fn next_after(
        &self,
        t: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::SubsecRound;
        self.cron
            .find_next_occurrence(&t.trunc_subsecs(0), false)
            .ok()
    }

    /// The first tick strictly after `t` with the pattern read in `zone` (9 o'clock is 9
    /// o'clock there, summer and winter); `None` if there is none.
    pub fn next_after_in<Z: chrono::TimeZone>(
        &self,
        t: chrono::DateTime<chrono::Utc>,
        zone: &Z,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::SubsecRound;
        self.cron
            .find_next_occurrence(&t.trunc_subsecs(0).with_timezone(zone), false)
            .ok()
            .map(|at| at.with_timezone(&chrono::Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zoned_schedule_keeps_its_local_hour_across_daylight_saving() {
        let nine = PollSchedule::parse("0 0 9 * * *").unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        let winter: chrono::DateTime<chrono::Utc> = "2026-03-28T12:00:00Z".parse().unwrap();
        // 29 March 2026: Berlin moves from UTC+1 to UTC+2.
        assert_eq!(
            nine.next_after_in(winter, &berlin),
            Some("2026-03-29T07:00:00Z".parse().unwrap())
        );
        let before = "2026-03-28T07:59:59Z".parse().unwrap();
        assert_eq!(
            nine.next_after_in(before, &berlin),
            Some("2026-03-28T08:00:00Z".parse().unwrap())
        );
        assert_eq!(
            nine.next_after_in(before, &chrono::Utc),
            nine.next_after(before)
        );
    }
}
