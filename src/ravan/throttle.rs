//! The throttle gate: politeness towards the Ravan API. A 429 from any call closes a gate that
//! every later request of every clone of the client waits at, for as long as `Retry-After` asks
//! (bounded), so the rest of a cycle and the next one slow down instead of hammering.
//!
//! Kept apart from the client because it is a policy over time, not a request: it can be read
//! and tested without a socket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::time::Instant;

use super::PollFailure;

/// The longest wait a `Retry-After` can impose; longer asks are cut to this.
pub const MAX_THROTTLE_WAIT: Duration = Duration::from_secs(300);
/// The wait after a 429 without a usable `Retry-After`.
pub const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(10);

/// No request starts before the instant it holds; shared by every clone.
#[derive(Debug, Clone, Default)]
pub(super) struct Gate(Arc<Mutex<Option<Instant>>>);

impl Gate {
    /// Until when requests wait, if a 429 asked for a pause that has not ended.
    pub(super) fn closed_until(&self) -> Option<Instant> {
        let until = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        until.filter(|&u| u > Instant::now())
    }

    /// A 429 answered `headers`: closes the gate for the wait they ask for (or the default)
    /// and gives the failure that answer is.
    pub(super) fn throttled(&self, headers: &HeaderMap) -> PollFailure {
        let wait = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, chrono::Utc::now()))
            .unwrap_or(DEFAULT_THROTTLE_WAIT);
        self.close(wait);
        PollFailure::Throttled { retry_after: wait }
    }

    fn close(&self, wait: Duration) {
        let now = Instant::now();
        let until = now + wait;
        let mut gate = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let was_open = gate.is_none_or(|g| g <= now);
        if gate.is_none_or(|g| g < until) {
            *gate = Some(until);
        }
        drop(gate);
        // Requests in flight when the gate closes may bring more 429s: one line for the pause.
        if was_open {
            tracing::warn!(
                wait_secs = wait.as_secs_f64(),
                "Ravan API answered 429: no request is sent until the wait it asked for is over"
            );
        }
    }

    /// Waits until the gate opens; when it stays closed beyond `deadline`, fails as throttled
    /// at once instead.
    pub(super) async fn pass(&self, deadline: Option<Instant>) -> Result<(), PollFailure> {
        // Read again after each sleep: another request may have moved the gate meanwhile.
        while let Some(until) = self.closed_until() {
            if deadline.is_some_and(|d| until > d) {
                return Err(PollFailure::Throttled {
                    retry_after: until - Instant::now(),
                });
            }
            tokio::time::sleep_until(until).await;
        }
        Ok(())
    }
}

/// The wait a `Retry-After` value asks for, at `now`: whole or decimal seconds, or an HTTP
/// date. Bounded by [`MAX_THROTTLE_WAIT`]; `None` for a value that is neither (or negative,
/// NaN …), which then gets the default wait.
pub fn retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_infinite() {
            return None;
        }
        return crate::util::bounded_secs(secs, MAX_THROTTLE_WAIT);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = (at.with_timezone(&chrono::Utc) - now)
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_THROTTLE_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_date(s: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc2822(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    const NOW: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn retry_after_reads_seconds_and_dates_within_bounds() {
        let now = http_date(NOW);
        for (value, want) in [
            ("5", Some(Duration::from_secs(5))),
            (" 5 ", Some(Duration::from_secs(5))),
            ("1.5", Some(Duration::from_millis(1500))),
            ("0", Some(Duration::ZERO)),
            ("300", Some(MAX_THROTTLE_WAIT)),
            ("301", Some(MAX_THROTTLE_WAIT)),
            ("1e20", Some(MAX_THROTTLE_WAIT)),
            ("99999999999999999999999999999999", Some(MAX_THROTTLE_WAIT)),
            ("inf", None),
            ("+inf", None),
            ("-inf", None),
            ("infinity", None),
            ("NaN", None),
            ("nan", None),
            ("-3", None),
            ("-0.5", None),
            ("1e400", None),
            ("", None),
            ("   ", None),
            ("soon", None),
            ("5 seconds", None),
            ("0x10", None),
            (
                "Sun, 06 Nov 1994 08:49:44 GMT",
                Some(Duration::from_secs(7)),
            ),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(Duration::ZERO)),
            ("Sun, 06 Nov 1994 08:49:36 GMT", Some(Duration::ZERO)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(Duration::ZERO)),
            ("Mon, 06 Nov 1995 08:49:37 GMT", Some(MAX_THROTTLE_WAIT)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Some(MAX_THROTTLE_WAIT)),
            // The same instant written with an offset.
            (
                "Sun, 06 Nov 1994 09:49:44 +0100",
                Some(Duration::from_secs(7)),
            ),
        ] {
            assert_eq!(retry_after(value, now), want, "{value:?}");
        }
    }

    #[test]
    fn retry_after_never_panics_nor_exceeds_the_bound() {
        let now = http_date(NOW);
        let mut hostile: Vec<String> = [
            "-0",
            "-0.0",
            "+0",
            "+5",
            "0.0000000001",
            "5e-324",
            "1e-400",
            "1.7976931348623157e308",
            "-1.7976931348623157e308",
            "18446744073709551615",
            "18446744073709551616",
            "-18446744073709551616",
            "1_000",
            "1,5",
            "١",
            "５",
            "\u{0}",
            "\t7\t",
            "e",
            ".",
            "-",
            "+",
            "1e",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 +9999",
            "Sun, 06 Nov 1994 23:59:60 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 99999 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 -2359",
            "Sun, 06 Nov 1994 08:49:37 +2359",
            "2026-11-28T12:00:00Z",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        hostile.push("9".repeat(400));
        hostile.push(format!("0.{}1", "0".repeat(400)));
        hostile.push(format!("1e{}", "9".repeat(50)));
        hostile.push(format!("1e-{}", "9".repeat(50)));
        hostile.push("x".repeat(100_000));
        for n in [-1e300, -1.0, -1e-300, 1e-300, 0.4, 299.999, 300.0001, 1e300] {
            hostile.push(n.to_string());
            hostile.push(format!("{n:e}"));
        }
        for value in &hostile {
            let got = retry_after(value, now);
            assert!(
                got.is_none_or(|d| d <= MAX_THROTTLE_WAIT),
                "{value:?} gave {got:?}"
            );
            if value.trim().starts_with('-') && value.trim().parse::<f64>().is_ok_and(|v| v < 0.0) {
                assert_eq!(got, None, "{value:?}: negative");
            }
        }
        assert_eq!(retry_after("1e300", now), Some(MAX_THROTTLE_WAIT));
        assert_eq!(retry_after("-1e-300", now), None);
        assert_eq!(retry_after("x", now), None);
        // A date, whatever `now` is.
        for now in [
            chrono::DateTime::<chrono::Utc>::MIN_UTC,
            chrono::DateTime::<chrono::Utc>::MAX_UTC,
            chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        ] {
            for value in ["Sun, 06 Nov 1994 08:49:37 GMT", "7", "NaN"] {
                let got = retry_after(value, now);
                assert!(
                    got.is_none_or(|d| d <= MAX_THROTTLE_WAIT),
                    "{value:?} at {now}"
                );
            }
        }
    }
}
