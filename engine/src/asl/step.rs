//! One step: the branch of its stage's `Parallel`. The step's state (or states) end in a `Pass`
//! recording `{"step", "status": "Succeeded", "halts": false}`; any failure is caught into a
//! `Pass` recording `{"step", "status": "Failed", "halts", "continueOnFailure", "failure"}`
//! (`halts` is true without `continueOnFailure`), so the stage's other steps finish.
//!
//! This module only dispatches: each step type's states come from its own module, and what
//! they share (the task state, the ends) from [`super::task`]. `Wait` is one line, here.

use super::task::Ends;
use super::{CompileError, Ctx, codebuild, human, notify, pipeline};
use crate::plan::step_type::Completion;
use crate::plan::{Step, StepKind};
use serde_json::{Map, Value, json};

/// The branch (`{"StartAt", "States"}`) running `step`.
pub fn branch(ctx: &mut Ctx<'_>, step: &Step) -> Result<Value, CompileError> {
    let head = ctx.names.allocate(&step.name);
    let ends = Ends {
        ok: ctx.names.allocate(&format!("{} succeeded", step.name)),
        failed: ctx.names.allocate(&format!("{} failed", step.name)),
    };
    let mut states = Map::new();
    let main = match &step.kind {
        StepKind::CodeBuild(b) => codebuild::start(ctx, step, b, Completion::WaitForEnd, &ends),
        StepKind::CodeBuildNoWait(b) => codebuild::start(ctx, step, b, Completion::StartOnly, &ends),
        StepKind::CodePipeline(p) => pipeline::wait_for(ctx, step, p, &ends),
        StepKind::CodePipelineNoWait(p) => pipeline::start_only(ctx, step, p, &ends),
        StepKind::Wait(w) => json!({ "Type": "Wait", "Seconds": w.seconds, "Next": ends.ok }),
        StepKind::Notify(n) => notify::publish(ctx, step, n, &ends)?,
        StepKind::Human(h) => human::approval(ctx, step, h, &ends, &mut states)?,
    };
    let mut ordered = Map::new();
    ordered.insert(head.clone(), main);
    ordered.extend(states);
    ordered.insert(
        ends.ok.clone(),
        json!({ "Type": "Pass", "Result": { "step": step.name, "status": "Succeeded", "halts": false }, "End": true }),
    );
    // A Wait state cannot fail: it has no Catch, and ASL refuses unreachable states.
    if step.kind.can_fail() {
        let halts = !step.options.continue_on_failure;
        let failed = json!({
            "Type": "Pass",
            "Parameters": {
                "step": step.name,
                "status": "Failed",
                "halts": halts,
                "continueOnFailure": step.options.continue_on_failure,
                "failure.$": "$"
            },
            "End": true
        });
        ordered.insert(ends.failed.clone(), failed);
    }
    Ok(json!({ "StartAt": head, "States": Value::Object(ordered) }))
}
