//! One stage: a `Parallel` state with one branch per step, then (when some step lacks
//! `continueOnFailure`) a `Choice` that fails the execution with `Steppy.StepFailed` if such a
//! step failed.

use super::{CompileError, Ctx, STEP_FAILED, step};
use crate::plan::Stage;
use serde_json::{Map, Value, json};

/// Where a stage's `Parallel` puts its branches' results (one `{step, status…}` per step).
pub const RESULT_PATH: &str = "$.lastStage";

/// Adds the states of `stage` (entered at `head`) to `states`; `next` is the following stage.
pub fn compile(
    ctx: &mut Ctx<'_>,
    stage: &Stage,
    head: &str,
    next: Option<&str>,
    states: &mut Map<String, Value>,
) -> Result<(), CompileError> {
    if stage.steps.is_empty() {
        return Err(CompileError::EmptyStage {
            stage: stage.name.clone(),
        });
    }
    let mut branches = Vec::new();
    for s in &stage.steps {
        branches.push(step::branch(ctx, s)?);
    }
    let mut parallel = Map::new();
    parallel.insert("Type".into(), json!("Parallel"));
    parallel.insert("Comment".into(), json!(format!("Stage '{}'", stage.name)));
    parallel.insert("Branches".into(), Value::Array(branches));
    parallel.insert("ResultPath".into(), json!(RESULT_PATH));

    let must_succeed: Vec<Value> = stage
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.options.continue_on_failure && !matches!(s.kind, crate::plan::StepKind::Wait(_)))
        .map(|(k, _)| json!({ "Variable": format!("{RESULT_PATH}[{k}].status"), "StringEquals": "Failed" }))
        .collect();
    if must_succeed.is_empty() {
        link(&mut parallel, next);
        states.insert(head.to_string(), Value::Object(parallel));
        return Ok(());
    }
    let check = ctx.names.allocate(&format!("{} check", stage.name));
    let failed = ctx.names.allocate(&format!("{} failed", stage.name));
    parallel.insert("Next".into(), json!(check));
    states.insert(head.to_string(), Value::Object(parallel));

    let condition = if must_succeed.len() == 1 {
        must_succeed.into_iter().next().unwrap_or_default()
    } else {
        json!({ "Or": must_succeed })
    };
    let mut rule = condition.as_object().cloned().unwrap_or_default();
    rule.insert("Next".into(), json!(failed));
    let (default, done) = match next {
        Some(n) => (n.to_string(), None),
        None => {
            let done = ctx.names.allocate("Release succeeded");
            (done.clone(), Some(done))
        }
    };
    states.insert(check, json!({ "Type": "Choice", "Choices": [Value::Object(rule)], "Default": default }));
    states.insert(
        failed,
        json!({ "Type": "Fail", "Error": STEP_FAILED, "Cause": format!("a step of stage '{}' without continueOnFailure failed", stage.name) }),
    );
    if let Some(done) = done {
        states.insert(done, json!({ "Type": "Succeed" }));
    }
    Ok(())
}

fn link(state: &mut Map<String, Value>, next: Option<&str>) {
    match next {
        Some(n) => state.insert("Next".into(), json!(n)),
        None => state.insert("End".into(), json!(true)),
    };
}
