//! The mute rule, in one place: the tracker applies it (a muted agent's alerts are not sent),
//! and the status page and the API show it.

use chrono::{DateTime, Utc};

/// Whether an agent with these mute settings is muted at `now`: `muted`, until `until` when
/// it has one.
pub fn muted_at(muted: bool, until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    muted && until.is_none_or(|until| now < until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn muted_until_a_time_is_muted_before_it_only() {
        let now = Utc::now();
        assert!(!muted_at(false, None, now));
        assert!(!muted_at(false, Some(now + TimeDelta::hours(1)), now));
        assert!(muted_at(true, None, now));
        assert!(muted_at(true, Some(now + TimeDelta::seconds(1)), now));
        assert!(!muted_at(true, Some(now), now), "the end is not muted");
        assert!(!muted_at(true, Some(now - TimeDelta::hours(1)), now));
    }
}
