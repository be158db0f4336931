//! When poll cycles run: a cron pattern with a seconds field, checked once at start, in UTC.
//! The monitor needs its next tick to tell an overrun, the scheduler to run it.

/// A cron pattern with a seconds field, checked with the parser tokio-cron-scheduler uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSchedule(String);

impl PollSchedule {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(pattern)
            .map_err(|e| format!("not a cron pattern with a seconds field ({e}): {pattern:?}"))?;
        Ok(Self(pattern.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first tick strictly after `t` (UTC, as the scheduler runs it); `None` if the
    /// pattern has none.
    pub fn next_after(
        &self,
        t: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&self.0)
            .ok()?
            .find_next_occurrence(&t, false)
            .ok()
    }
}
