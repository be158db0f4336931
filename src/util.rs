//! Small helpers shared by the adapters: error chains, and the one truncation that never cuts
//! an escape sequence in half (the formatters build on it; the Ravan client clips upstream text
//! with it), kept here so that no lower layer needs `notify`.

pub mod alive;
pub mod process;

/// The innermost message of an error chain: reqwest's own top-level message says only "error
/// sending request", while the cause says what happened ("connection refused").
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The first `cap` bytes of a response's body, and whether there was more (left unread: an
/// answer from outside never fills memory, and one without end never holds a request open).
pub async fn read_prefix(
    mut response: reqwest::Response,
    cap: usize,
) -> reqwest::Result<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Appended to text that was cut; counted inside the limit.
pub const MARKER: &str = "…";

/// Joins `units` (pieces of already-escaped text) and keeps at most `max_chars` code points,
/// ending with [`MARKER`] when something was cut. Cuts only between units, so an escape sequence
/// such as `&amp;` or `\*` is kept whole or dropped whole. Stops reading at the first overflow.
pub fn fit<I, S>(units: I, max_chars: usize) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let marker_len = MARKER.chars().count();
    let mut out = String::new();
    let mut len = 0;
    // Byte length of `out` at the last unit boundary that still leaves room for the marker.
    let mut keep = 0;
    for unit in units {
        let unit = unit.as_ref();
        let n = unit.chars().count();
        if len + n > max_chars {
            if max_chars < marker_len {
                return String::new();
            }
            out.truncate(keep);
            out.push_str(MARKER);
            return out;
        }
        out.push_str(unit);
        len += n;
        if len + marker_len <= max_chars {
            keep = out.len();
        }
    }
    out
}

/// Cuts `s` to at most `max_chars` code points, ending with [`MARKER`] when cut.
pub fn truncate(s: &str, max_chars: usize) -> String {
    fit(s.chars().map(String::from), max_chars)
}

/// A wait that outside input asks for, in (possibly fractional) seconds, as a `Duration` of at
/// most `max`; `None` for NaN or a negative value. The one way such a number becomes a
/// `Duration`: `Duration::from_secs_f64` panics on values it cannot hold (1e20, infinity).
pub fn bounded_secs(secs: f64, max: std::time::Duration) -> Option<std::time::Duration> {
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    // Compared before converting; `min` on a finite bound also tames infinity.
    Some(std::time::Duration::from_secs_f64(
        secs.min(max.as_secs_f64()),
    ))
}
/// How the units of a duration are written by [`two_units`].
pub struct UnitNames {
    pub day: &'static str,
    pub hour: &'static str,
    pub minute: &'static str,
    pub second: &'static str,
    /// Between a number and its unit: `""` for `12m`, `" "` for `12 min`.
    pub gap: &'static str,
}

/// A duration as people say it, in its two largest units and the smaller left out when zero:
/// `45s`, `12m 5s`, `3h 5m`, `2d 4h`. Negative durations (clock skew) are `0s`. The one
/// duration writer of alerts and the status page, which only name the units differently.
pub fn two_units(secs: i64, names: &UnitNames) -> String {
    let s = secs.max(0);
    let (days, hours, mins, secs) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    let (big, big_unit, small, small_unit) = match () {
        _ if days > 0 => (days, names.day, hours, names.hour),
        _ if hours > 0 => (hours, names.hour, mins, names.minute),
        _ if mins > 0 => (mins, names.minute, secs, names.second),
        _ => (secs, names.second, 0, ""),
    };
    let gap = names.gap;
    if small == 0 {
        format!("{big}{gap}{big_unit}")
    } else {
        format!("{big}{gap}{big_unit} {small}{gap}{small_unit}")
    }
}
