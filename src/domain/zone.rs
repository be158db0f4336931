//! The zone people read times in (`TIMEZONE`): messages, the digest and the status page write
//! times in it, with its abbreviation, so `10:15 CET` needs no mental arithmetic. Everything
//! stored and every API answer stays in UTC (RFC 3339): those are machine-read.

use chrono::{DateTime, Utc};

/// An IANA zone, cheap to copy; UTC unless `TIMEZONE` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(chrono_tz::Tz);

impl Default for Zone {
    fn default() -> Self {
        Self::UTC
    }
}

impl From<chrono_tz::Tz> for Zone {
    fn from(tz: chrono_tz::Tz) -> Self {
        Self(tz)
    }
}

impl Zone {
    pub const UTC: Zone = Zone(chrono_tz::UTC);

    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    /// `t` as people read it here: `2026-12-07 10:15:00 CET` (in UTC: `… UTC`, as before
    /// zones were known).
    pub fn write(self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_the_zone_with_its_abbreviation() {
        let winter: DateTime<Utc> = "2026-12-07T09:15:00Z".parse().unwrap();
        let summer: DateTime<Utc> = "2026-07-07T09:15:00Z".parse().unwrap();
        let berlin = Zone::from(chrono_tz::Europe::Berlin);
        assert_eq!(berlin.write(winter), "2026-12-07 10:15:00 CET");
        assert_eq!(berlin.write(summer), "2026-07-07 11:15:00 CEST");
        assert_eq!(Zone::UTC.write(winter), "2026-12-07 09:15:00 UTC");
        assert_eq!(Zone::default(), Zone::UTC);
    }
}
