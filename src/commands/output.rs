//! What the read-only views print with, shared by the local (`inspect`) and the Step Functions
//! (`sfn::inspect`) ones: JSON documents and UTC timestamps.

use crate::error::{CliError, CliResult};

/// Prints `v` as one pretty JSON document on standard output (serde escapes control characters).
pub fn print_json(v: &serde_json::Value) -> CliResult {
    let text = serde_json::to_string_pretty(v).map_err(CliError::trouble)?;
    println!("{text}");
    Ok(())
}

/// A time in milliseconds since the epoch as `YYYY-MM-DD HH:MM:SSZ` (see
/// [`steppy_engine::clock::format_utc`] for instants no calendar can show).
pub fn when(ms: i64) -> String {
    steppy_engine::clock::format_utc(ms, "%Y-%m-%d %H:%M:%SZ")
}

#[cfg(test)]
mod tests {
    use super::when;

    #[test]
    fn shows_known_instants_and_survives_impossible_ones() {
        assert_eq!(when(0), "1970-01-01 00:00:00Z");
        assert_eq!(when(1_709_301_907_123), "2024-03-01 14:05:07Z");
        assert_eq!(when(-86_400_000), "1969-12-31 00:00:00Z");
        assert_eq!(when(i64::MAX), format!("{} ms after the epoch", i64::MAX));
    }
}
