//! What a decision on a task token sends: the output of an approved task and the `error` and
//! `cause` of a rejected one, within Step Functions' limits.

use super::{MAX_CAUSE_LEN, MAX_ERROR_LEN, truncate_utf16};
use crate::time;
use serde_json::json;
use steppy_engine::store::TaskTokenDecision;

/// The output of an approved task: `{"decision":"approved","approver","comment","decidedAt"}`.
pub fn output_json(d: &TaskTokenDecision) -> String {
    json!({
        "decision": if d.approve { "approved" } else { "rejected" },
        "approver": d.approver,
        "comment": d.comment,
        "decidedAt": time::rfc3339(d.decided_ms),
    })
    .to_string()
}

/// The `error` and `cause` of a rejected task (`Steppy.Rejected`; who rejected, when, why).
pub fn failure(d: &TaskTokenDecision) -> (String, String) {
    let when = time::rfc3339(d.decided_ms);
    let cause = match &d.comment {
        Some(c) => format!("rejected by {} at {when}: {c}", d.approver),
        None => format!("rejected by {} at {when} (no comment)", d.approver),
    };
    let error = truncate_utf16(steppy_engine::asl::REJECTED, MAX_ERROR_LEN).to_string();
    (error, truncate_utf16(&cause, MAX_CAUSE_LEN).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use steppy_engine::store::TaskTokenState;

    fn decision(approve: bool, comment: Option<&str>) -> TaskTokenDecision {
        TaskTokenDecision {
            approve,
            approver: "ann@example.com".into(),
            comment: comment.map(str::to_string),
            source: "10.0.0.1".into(),
            decided_ms: 1_709_301_907_123,
            state: TaskTokenState::Sending,
            attempts: 1,
            last_error: None,
            updated_ms: 0,
            in_flight: true,
        }
    }

    #[test]
    fn output_and_failure_say_who_and_why() {
        let out: serde_json::Value = serde_json::from_str(&output_json(&decision(true, Some("ok")))).expect("json");
        assert_eq!(
            out,
            json!({ "decision": "approved", "approver": "ann@example.com", "comment": "ok", "decidedAt": "2024-03-01T14:05:07.123Z" })
        );
        let (error, cause) = failure(&decision(false, Some("not today")));
        assert_eq!(error, "Steppy.Rejected");
        assert_eq!(
            cause,
            "rejected by ann@example.com at 2024-03-01T14:05:07.123Z: not today"
        );
        let huge = "😀".repeat(MAX_CAUSE_LEN);
        let (_, cause) = failure(&decision(false, Some(&huge)));
        assert!(
            cause.encode_utf16().count() <= MAX_CAUSE_LEN && cause.starts_with("rejected by ann"),
            "{}",
            cause.len()
        );
        assert!(failure(&decision(false, None)).1.ends_with("(no comment)"));
    }
}
