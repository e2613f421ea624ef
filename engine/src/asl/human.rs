//! `Human`: an approval as `sns:publish.waitForTaskToken`. The message carries approve and
//! reject links to the approval API with the task token, in the original Steppy's shape
//! (`{public_url}/humanConfirmation?taskToken=…&action=approve|reject`), built with
//! `States.Format` and `$$.Task.Token`. A rejection (`SendTaskFailure` with `Steppy.Rejected`)
//! ends the execution in a `Fail` state with that error; `timeoutSeconds` becomes the task's
//! `TimeoutSeconds`, and the timeout either approves (`onTimeout: approve`) or rejects.

use super::task::{Ends, subject, task, topic};
use super::{CompileError, Ctx, REJECTED};
use crate::plan::{HumanStep, OnTimeout, Step};
use serde_json::{Map, Value, json};

/// Escapes text for a string literal inside an intrinsic function (`'`, `{`, `}` and `\`).
pub fn escape_intrinsic(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\'' | '{' | '}' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `Message.$` of an approval request: the plan's message, then the two links.
pub fn message(public_url: &str, text: &str) -> String {
    let base = escape_intrinsic(public_url.trim_end_matches('/'));
    let body = escape_intrinsic(text);
    format!(
        "States.Format('{body}\n\nApprove: {base}/humanConfirmation?taskToken={{}}&action=approve\nReject: {base}/humanConfirmation?taskToken={{}}&action=reject', $$.Task.Token, $$.Task.Token)"
    )
}

/// The approval task; the `Fail` and `Pass` states it leads to go into `states`.
pub fn approval(
    ctx: &mut Ctx<'_>,
    step: &Step,
    h: &HumanStep,
    ends: &Ends,
    states: &mut Map<String, Value>,
) -> Result<Value, CompileError> {
    if !h.approvers.is_empty() || h.required_approvals > 1 || h.forbid_self_approval {
        ctx.warnings.push(format!(
            "step '{}': Step Functions redeems a task token once, for whoever holds the link: approvers, requiredApprovals > 1 and forbidSelfApproval are not enforced",
            step.name
        ));
    }
    let mut params = Map::new();
    params.insert("TopicArn".into(), json!(topic(ctx, step, h.topic_arn.as_ref())?));
    params.insert(
        "Subject".into(),
        json!(subject(
            h.subject
                .as_deref()
                .unwrap_or(&format!("Approval needed: {}", step.name))
        )),
    );
    params.insert("Message.$".into(), json!(message(&ctx.options.public_url, &h.message)));

    let rejected = ctx.names.allocate(&format!("{} rejected", step.name));
    let mut catch = vec![json!({ "ErrorEquals": [REJECTED], "Next": rejected })];
    states.insert(
        rejected.clone(),
        json!({ "Type": "Fail", "Error": REJECTED, "Cause": format!("approval '{}' was rejected", step.name) }),
    );
    if let Some(t) = step.options.timeout_seconds {
        match h.on_timeout {
            OnTimeout::Approve => {
                let approved = ctx.names.allocate(&format!("{} approved on timeout", step.name));
                catch.push(json!({ "ErrorEquals": ["States.Timeout"], "Next": approved }));
                states.insert(approved, json!({ "Type": "Pass", "Result": { "step": step.name, "status": "Succeeded", "halts": false, "decision": "approved on timeout" }, "End": true }));
            }
            OnTimeout::Reject => {
                let timed_out = ctx.names.allocate(&format!("{} rejected on timeout", step.name));
                catch.push(json!({ "ErrorEquals": ["States.Timeout"], "Next": timed_out }));
                states.insert(timed_out, json!({ "Type": "Fail", "Error": REJECTED, "Cause": format!("approval '{}' had no decision within {t} seconds (onTimeout: reject)", step.name) }));
            }
        }
    }
    Ok(task(
        ctx,
        step,
        "arn:aws:states:::sns:publish.waitForTaskToken",
        Value::Object(params),
        ends,
        catch,
        &[REJECTED, "States.Timeout"],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_links_carry_the_task_token_in_the_original_shape() {
        let m = message("https://approve.example.com/", "Ship it?");
        assert_eq!(
            m,
            "States.Format('Ship it?\n\nApprove: https://approve.example.com/humanConfirmation?taskToken={}&action=approve\nReject: https://approve.example.com/humanConfirmation?taskToken={}&action=reject', $$.Task.Token, $$.Task.Token)"
        );
    }

    #[test]
    fn quotes_and_braces_in_messages_are_escaped() {
        assert_eq!(escape_intrinsic("it's {x} \\ y"), "it\\'s \\{x\\} \\\\ y");
    }
}
