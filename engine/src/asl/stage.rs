//! One stage: a `Parallel` state with one branch per step, whose `ResultSelector` keeps the
//! branches' results (`steps`) and whether one of them halts the release (`halted`: a step
//! without `continueOnFailure` failed); then, when some step can halt, a `Choice` that fails
//! the execution with `Steppy.StepFailed` if one did.

use super::{CompileError, Ctx, STEP_FAILED, step};
use crate::plan::Stage;
use serde_json::{Map, Value, json};

/// Where a stage's `Parallel` puts `{"steps": [{step, status, halts…}…], "halted": bool}`.
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

    // The branches' results, and whether any of them halts the release. The Choice reads one
    // boolean: no indexing into the results (which also keeps it within what interpreters such
    // as moto's evaluate the way AWS does).
    parallel.insert(
        "ResultSelector".into(),
        json!({ "steps.$": "$", "halted.$": "States.ArrayContains($[*].halts, true)" }),
    );
    parallel.insert("ResultPath".into(), json!(RESULT_PATH));

    let can_halt = stage
        .steps
        .iter()
        .any(|s| !s.options.continue_on_failure && s.kind.can_fail());
    if !can_halt {
        link(&mut parallel, next);
        states.insert(head.to_string(), Value::Object(parallel));
        return Ok(());
    }
    let check = ctx.names.allocate(&format!("{} check", stage.name));
    let failed = ctx.names.allocate(&format!("{} failed", stage.name));
    parallel.insert("Next".into(), json!(check));
    states.insert(head.to_string(), Value::Object(parallel));

    let rule = json!({ "Variable": format!("{RESULT_PATH}.halted"), "BooleanEquals": true, "Next": failed });
    let (default, done) = match next {
        Some(n) => (n.to_string(), None),
        None => {
            let done = ctx.names.allocate("Release succeeded");
            (done.clone(), Some(done))
        }
    };
    states.insert(
        check,
        json!({ "Type": "Choice", "Choices": [rule], "Default": default }),
    );
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
