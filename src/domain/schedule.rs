//! When poll cycles run: a cron pattern with a seconds field, checked once at start, in UTC.
//! The monitor needs its next tick to tell an overrun, the scheduler to run it.

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
}
