//! Failed logins, logged once per source address a minute: someone guessing the admin token
//! sends thousands of wrong ones, and a line per request would bury the log (and cost a write
//! per guess). Pure: the caller passes the time, so the minute is tested without waiting.
//!
//! Bounded: at most [`MAX_SOURCES`] addresses are remembered. When the table is full, the
//! addresses whose minute is over are forgotten first (what they had suppressed is dropped
//! with them: over a minute old, and already announced by their last line); if it is still
//! full, the failure counts under one shared source, [`Source::Others`], so an attacker cycling
//! through addresses grows nothing and still gets a line a minute.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A source's failures are logged at most once in this long.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once (a few hundred bytes each at most, with the map's overhead).
pub const MAX_SOURCES: usize = 1024;

/// Where failed logins came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The peer's address (the proxy's, behind a reverse proxy).
    Addr(IpAddr),
    /// The connection's address was not known.
    Unknown,
    /// Any address that found the table full.
    Others,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(ip) => ip.fmt(f),
            Self::Unknown => f.write_str("an unknown address"),
            Self::Others => write!(f, "addresses beyond the {MAX_SOURCES} tracked"),
        }
    }
}

/// A failure to log now: its source, and how many of that source's failures went unlogged
/// since its last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub source: Source,
    pub suppressed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    logged_at: Instant,
    suppressed: u64,
}

/// The failures of the last minute, per source.
#[derive(Debug)]
pub struct FailedLogins {
    entries: HashMap<Source, Entry>,
    capacity: usize,
}

impl Default for FailedLogins {
    fn default() -> Self {
        Self::with_capacity(MAX_SOURCES)
    }
}

impl FailedLogins {
    /// At most `capacity` addresses, beside [`Source::Unknown`] and [`Source::Others`].
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
        }
    }

    /// One failed login from `addr` (`None`: not known) at `now`: the report to log when this
    /// source's last line is a [`WINDOW`] old or more (or it has none), else `None` and the
    /// failure is counted for its next line.
    pub fn record(&mut self, addr: Option<IpAddr>, now: Instant) -> Option<Report> {
        let mut source = addr.map_or(Source::Unknown, |ip| Source::Addr(ip.to_canonical()));
        if matches!(source, Source::Addr(_))
            && !self.entries.contains_key(&source)
            && self.addresses() >= self.capacity
        {
            self.entries
                .retain(|_, e| now.saturating_duration_since(e.logged_at) < WINDOW);
            if self.addresses() >= self.capacity {
                source = Source::Others;
            }
        }
        match self.entries.get_mut(&source) {
            Some(e) if now.saturating_duration_since(e.logged_at) < WINDOW => {
                e.suppressed += 1;
                None
            }
            Some(e) => {
                let suppressed = std::mem::take(&mut e.suppressed);
                e.logged_at = now;
                Some(Report { source, suppressed })
            }
            None => {
                self.entries.insert(
                    source,
                    Entry {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
                Some(Report {
                    source,
                    suppressed: 0,
                })
            }
        }
    }

    /// Addresses remembered (not counting the two shared sources).
    fn addresses(&self) -> usize {
        self.entries
            .keys()
            .filter(|s| matches!(s, Source::Addr(_)))
            .count()
    }

    /// Everything remembered, the shared sources included: never above `capacity + 2`.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn one_line_a_minute_per_source_saying_how_many_were_suppressed() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut f = FailedLogins::default();
        let first = Report {
            source: Source::Addr("10.0.0.1".parse().unwrap()),
            suppressed: 0,
        };
        assert_eq!(f.record(ip("10.0.0.1"), at(0)), Some(first));
        for s in 1..60 {
            assert_eq!(f.record(ip("10.0.0.1"), at(s)), None, "second {s}");
        }
        // Another source has its own minute.
        assert!(f.record(ip("10.0.0.2"), at(30)).is_some());
        assert_eq!(f.record(ip("10.0.0.2"), at(31)), None);
        // A minute after its line, the next failure is logged with the count since.
        assert_eq!(
            f.record(ip("10.0.0.1"), at(60)),
            Some(Report {
                suppressed: 59,
                ..first
            })
        );
        assert_eq!(f.record(ip("10.0.0.1"), at(61)), None);
        assert_eq!(
            f.record(ip("10.0.0.1"), at(200)),
            Some(Report {
                suppressed: 1,
                ..first
            })
        );
        // An IPv4-mapped address is the IPv4 one.
        assert_eq!(f.record(ip("::ffff:10.0.0.1"), at(201)), None);
        // Without an address, the failures share one source.
        assert_eq!(
            f.record(None, at(0)),
            Some(Report {
                source: Source::Unknown,
                suppressed: 0
            })
        );
        assert_eq!(f.record(None, at(1)), None);
    }

    /// An attacker cycling through addresses fills the table once; after that the new ones
    /// share one source (a line a minute), and addresses whose minute is over make room.
    #[test]
    fn the_table_stays_bounded_when_addresses_keep_changing() {
        let start = Instant::now();
        let mut f = FailedLogins::with_capacity(4);
        for n in 0..4u8 {
            assert!(f.record(Some([10, 0, 0, n].into()), start).is_some());
        }
        let others = f.record(Some([10, 0, 1, 0].into()), start);
        assert_eq!(
            others,
            Some(Report {
                source: Source::Others,
                suppressed: 0
            })
        );
        for n in 1..=255u8 {
            let later = start + Duration::from_millis(n.into());
            assert_eq!(f.record(Some([10, 0, 1, n].into()), later), None);
        }
        assert_eq!(f.len(), 5, "four addresses and the shared source");
        // A tracked address is still its own.
        assert_eq!(f.record(Some([10, 0, 0, 1].into()), start), None);
        // A minute on, the old addresses go to make room for a new one.
        let later = start + WINDOW;
        assert_eq!(
            f.record(Some([10, 0, 2, 0].into()), later),
            Some(Report {
                source: Source::Addr([10, 0, 2, 0].into()),
                suppressed: 0
            })
        );
        assert!(f.len() <= 4 + 2, "{}", f.len());
        assert_eq!(
            Source::Others.to_string(),
            "addresses beyond the 1024 tracked"
        );
    }
}
