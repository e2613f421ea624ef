//! What the read-only views print with, shared by the local (`inspect`) and the Step Functions
//! (`sfn::inspect`) ones: JSON documents and UTC timestamps.

use crate::error::{CliError, CliResult};

/// Prints `v` as one pretty JSON document on standard output (serde escapes control characters).
pub fn print_json(v: &serde_json::Value) -> CliResult {
    let text = serde_json::to_string_pretty(v).map_err(CliError::trouble)?;
    println!("{text}");
    Ok(())
}

/// A time in milliseconds since the epoch as `YYYY-MM-DD HH:MM:SSZ`.
pub fn when(ms: i64) -> String {
    let secs = ms / 1000;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    // Days since the epoch to a calendar date (civil-from-days, proleptic Gregorian).
    let z = d + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}Z")
}
