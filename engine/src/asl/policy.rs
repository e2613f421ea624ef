//! The step options every task state shares: `timeoutSeconds` → `TimeoutSeconds`, `retry` →
//! `Retry` (`MaxAttempts = maxAttempts - 1`), and `roleArn` → `Credentials.RoleArn` for
//! cross-account calls.

use crate::plan::{Plan, Retry, Step};
use serde_json::{Map, Value, json};

/// The role a step's AWS calls assume: its own `roleArn`, else the plan's default.
pub fn role_arn<'a>(plan: &'a Plan, step: &'a Step) -> Option<&'a str> {
    step.options.role_arn.as_deref().or(plan.defaults.role_arn.as_deref())
}

/// The region a step's AWS calls go to: its own `region`, else the plan's default.
pub fn region<'a>(plan: &'a Plan, step: &'a Step) -> Option<&'a str> {
    step.options.region.as_deref().or(plan.defaults.region.as_deref())
}

/// Adds `Credentials` to a task state when the step assumes a role.
pub fn add_credentials(state: &mut Map<String, Value>, plan: &Plan, step: &Step) {
    if let Some(role) = role_arn(plan, step) {
        state.insert("Credentials".into(), json!({ "RoleArn": role }));
    }
}

/// Adds `TimeoutSeconds` when the step has one (ASL requires a positive integer).
pub fn add_timeout(state: &mut Map<String, Value>, step: &Step) {
    if let Some(t) = step.options.timeout_seconds {
        state.insert("TimeoutSeconds".into(), json!(t.max(1)));
    }
}

/// The retriers of a step: `not_retried` errors first (never retried), then every other error
/// retried as the plan's `retry` says. Empty when the step is tried once.
pub fn retriers(retry: Option<&Retry>, not_retried: &[&str]) -> Vec<Value> {
    let Some(retry) = retry else {
        return Vec::new();
    };
    let again = retry.max_attempts.saturating_sub(1);
    if again == 0 {
        return Vec::new();
    }
    let mut out: Vec<Value> = not_retried
        .iter()
        .map(|e| json!({ "ErrorEquals": [e], "MaxAttempts": 0 }))
        .collect();
    out.push(json!({
        "ErrorEquals": ["States.ALL"],
        "MaxAttempts": again,
        "IntervalSeconds": retry.interval_seconds.max(1),
        "BackoffRate": if retry.backoff_rate >= 1.0 { retry.backoff_rate } else { 1.0 },
    }));
    out
}

/// Adds `Retry` when [`retriers`] gives any.
pub fn add_retry(state: &mut Map<String, Value>, step: &Step, not_retried: &[&str]) {
    let r = retriers(step.options.retry.as_ref(), not_retried);
    if !r.is_empty() {
        state.insert("Retry".into(), Value::Array(r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_attempts_counts_the_first_attempt() {
        let r = Retry {
            max_attempts: 3,
            interval_seconds: 10,
            backoff_rate: 1.5,
        };
        assert_eq!(
            retriers(Some(&r), &[]),
            vec![json!({"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 10, "BackoffRate": 1.5})]
        );
        let once = Retry {
            max_attempts: 1,
            interval_seconds: 10,
            backoff_rate: 2.0,
        };
        assert!(retriers(Some(&once), &[]).is_empty());
        assert!(retriers(None, &["X"]).is_empty());
    }

    #[test]
    fn excluded_errors_come_first_and_are_never_retried() {
        let r = Retry {
            max_attempts: 2,
            interval_seconds: 0,
            backoff_rate: 0.5,
        };
        let got = retriers(Some(&r), &["Steppy.Rejected"]);
        assert_eq!(got[0], json!({"ErrorEquals": ["Steppy.Rejected"], "MaxAttempts": 0}));
        assert_eq!(got[1]["IntervalSeconds"], json!(1));
        assert_eq!(got[1]["BackoffRate"], json!(1.0));
    }
}
