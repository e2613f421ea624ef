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

/// Parses a duration written as `30s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&t[..i], t[i..].trim()),
        None => (t, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration (try 30s, 500ms or 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        _ => return Err(format!("\"{text}\" has an unknown unit \"{unit}\" (use ms, s or m)")),
    };
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err(format!("\"{text}\" must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
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
        assert!(parse_duration("3h").is_err());
    }
}
