//! Showing times to people: epoch milliseconds as UTC dates, and "in 2 h 5 min" distances.

use steppy_engine::clock::format_utc;

/// `2025-03-01 14:05 UTC` for Unix epoch milliseconds.
pub fn utc(ms: i64) -> String {
    format_utc(ms, "%Y-%m-%d %H:%M UTC")
}

/// `2025-03-01T14:05:07.123Z` (RFC 3339, UTC, milliseconds) for Unix epoch milliseconds.
pub fn rfc3339(ms: i64) -> String {
    format_utc(ms, "%Y-%m-%dT%H:%M:%S%.3fZ")
}

/// A rough distance between now and `at` (both epoch ms): "in 2 h 5 min", "3 min ago".
pub fn relative(at_ms: i64, now_ms: i64) -> String {
    let delta = (at_ms - now_ms) / 1000;
    let n = delta.unsigned_abs();
    let text = if n < 60 {
        format!("{n} s")
    } else if n < 3600 {
        format!("{} min", n / 60)
    } else if n < 86_400 {
        format!("{} h {} min", n / 3600, (n % 3600) / 60)
    } else {
        format!("{} d {} h", n / 86_400, (n % 86_400) / 3600)
    };
    if delta >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_709_301_900_000), "2024-03-01 14:05 UTC");
        assert_eq!(rfc3339(1_709_301_907_123), "2024-03-01T14:05:07.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(relative(3_900_000, 0), "in 1 h 5 min");
        assert_eq!(relative(0, 180_000), "3 min ago");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(utc(i64::MIN), format!("{} ms after the epoch", i64::MIN));
    }
}
