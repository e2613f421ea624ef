//! What the person running Steppy configured for the AWS executors, with its defaults.

use std::time::Duration;

/// The default `--public-url`: where the approval links point.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// The default `--poll-interval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Settings shared by every AWS executor.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// `--topic-arn` / `STEPPY_TOPIC_ARN`: the SNS topic used when neither the step nor the
    /// plan's `defaults.notificationTopicArn` names one. With no topic anywhere, `Notify` stays
    /// local (terminal and outbox) and approvals are not mailed.
    pub topic_arn: Option<String>,
    /// `--public-url` / `STEPPY_PUBLIC_URL`: the base of the approve/reject links.
    pub public_url: String,
    /// `--poll-interval`: how often in-flight builds and pipeline executions are read.
    pub poll_interval: Duration,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            topic_arn: None,
            public_url: DEFAULT_PUBLIC_URL.to_string(),
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

/// Why a duration option could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Neither a bare number of seconds nor humantime's `30s`, `500ms`, `2m`, `1h 30m`.
    #[error("\"{text}\" is not a duration (try 30s, 500ms or 2m): {reason}")]
    Unreadable { text: String, reason: String },
    /// Zero: a poll interval of nothing would spin.
    #[error("\"{text}\" must be a positive duration")]
    NotPositive { text: String },
}

/// Parses a duration written as humantime reads it (`30s`, `500ms`, `2m`, `1h 30m`) or as a bare
/// number of seconds (`5`, `0.5`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let parsed = match t.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(Duration::from_secs_f64(seconds)),
        Ok(_) => Err(DurationError::NotPositive { text: text.to_string() }),
        Err(_) => humantime::parse_duration(t).map_err(|e| DurationError::Unreadable {
            text: text.to_string(),
            reason: e.to_string(),
        }),
    }?;
    if parsed.is_zero() {
        return Err(DurationError::NotPositive { text: text.to_string() });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(matches!(parse_duration("-3"), Err(DurationError::NotPositive { .. })));
        assert!(matches!(
            parse_duration("3 parsecs"),
            Err(DurationError::Unreadable { .. })
        ));
        assert!(matches!(parse_duration(""), Err(DurationError::Unreadable { .. })));
    }
}
