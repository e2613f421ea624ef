//! One step: the branch of its stage's `Parallel`. The step's state (or states) end in a `Pass`
//! recording `{"step", "status": "Succeeded", "halts": false}`; any failure is caught into a
//! `Pass` recording `{"step", "status": "Failed", "halts", "continueOnFailure", "failure"}`
//! (`halts` is true without `continueOnFailure`), so the stage's other steps finish. CodeBuild, Notify and Wait are built here; CodePipeline and Human have their modules.

use super::{CompileError, Ctx, human, pipeline, policy};
use crate::plan::step_type::Completion;
use crate::plan::{CodeBuildStep, Step, StepKind};
use serde_json::{Map, Value, json};

/// The names every step branch shares: its first state, and its two ends.
pub struct Ends {
    pub ok: String,
    pub failed: String,
}

/// The branch (`{"StartAt", "States"}`) running `step`.
pub fn branch(ctx: &mut Ctx<'_>, step: &Step) -> Result<Value, CompileError> {
    let head = ctx.names.allocate(&step.name);
    let ends = Ends {
        ok: ctx.names.allocate(&format!("{} succeeded", step.name)),
        failed: ctx.names.allocate(&format!("{} failed", step.name)),
    };
    let mut states = Map::new();
    let main = match &step.kind {
        StepKind::CodeBuild(b) => codebuild(ctx, step, b, Completion::WaitForEnd, &ends),
        StepKind::CodeBuildNoWait(b) => codebuild(ctx, step, b, Completion::StartOnly, &ends),
        StepKind::CodePipeline(p) => pipeline::wait_for(ctx, step, p, &ends),
        StepKind::CodePipelineNoWait(p) => pipeline::start_only(ctx, step, p, &ends),
        StepKind::Wait(w) => json!({ "Type": "Wait", "Seconds": w.seconds, "Next": ends.ok }),
        StepKind::Notify(n) => notify(ctx, step, n, &ends)?,
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
        ordered.insert(
        ends.failed.clone(),
        json!({
            "Type": "Pass",
            "Parameters": { "step": step.name, "status": "Failed", "halts": !step.options.continue_on_failure, "continueOnFailure": step.options.continue_on_failure, "failure.$": "$" },
            "End": true
        }),
    );
    }
    Ok(json!({ "StartAt": head, "States": Value::Object(ordered) }))
}

/// A task state calling `resource` with `parameters`, with the step's timeout, retry and
/// credentials, going to `ends.ok` and catching every error into `ends.failed` (after the
/// `extra_catch` clauses).
pub fn task(
    ctx: &Ctx<'_>,
    step: &Step,
    resource: &str,
    parameters: Value,
    ends: &Ends,
    extra_catch: Vec<Value>,
    not_retried: &[&str],
) -> Value {
    let mut state = Map::new();
    state.insert("Type".into(), json!("Task"));
    state.insert("Resource".into(), json!(resource));
    state.insert("Parameters".into(), parameters);
    policy::add_credentials(&mut state, ctx.plan, step);
    policy::add_timeout(&mut state, step);
    policy::add_retry(&mut state, step, not_retried);
    let mut catch = extra_catch;
    catch.push(json!({ "ErrorEquals": ["States.ALL"], "Next": ends.failed }));
    state.insert("Catch".into(), Value::Array(catch));
    state.insert("Next".into(), json!(ends.ok));
    note_region(ctx, step, &mut state);
    Value::Object(state)
}

/// Step Functions calls services in the state machine's own region: a step's `region` is kept as
/// a `Comment` (and [`super::compile`] warns once about all regions).
pub fn note_region(ctx: &Ctx<'_>, step: &Step, state: &mut Map<String, Value>) {
    if let Some(region) = policy::region(ctx.plan, step) {
        state.insert(
            "Comment".into(),
            json!(format!(
                "region {region}: deploy this state machine in {region}, the calls go to its own region"
            )),
        );
    }
}

fn codebuild(ctx: &mut Ctx<'_>, step: &Step, b: &CodeBuildStep, completion: Completion, ends: &Ends) -> Value {
    let mut params = Map::new();
    params.insert("ProjectName".into(), json!(b.code_build_name));
    if let Some(v) = &b.source_version {
        params.insert("SourceVersion".into(), json!(v.to_codebuild()));
    }
    if !b.environment_variable_overrides.is_empty() {
        let vars: Vec<Value> = b
            .environment_variable_overrides
            .iter()
            .map(|v| json!({ "Name": v.name, "Value": v.value, "Type": serde_json::to_value(v.kind).unwrap_or(json!("PLAINTEXT")) }))
            .collect();
        params.insert("EnvironmentVariablesOverride".into(), Value::Array(vars));
    }
    let resource = if completion == Completion::WaitForEnd {
        "arn:aws:states:::codebuild:startBuild.sync"
    } else {
        "arn:aws:states:::codebuild:startBuild"
    };
    task(ctx, step, resource, Value::Object(params), ends, Vec::new(), &[])
}

/// The SNS topic a step publishes to.
pub fn topic(ctx: &Ctx<'_>, step: &Step, own: Option<&String>) -> Result<String, CompileError> {
    own.or(ctx.plan.defaults.notification_topic_arn.as_ref())
        .or(ctx.options.topic_arn.as_ref())
        .cloned()
        .ok_or_else(|| CompileError::NoTopic {
            step: step.name.clone(),
        })
}

/// An SNS subject: one line, at most 100 characters (SNS's limits).
pub fn subject(text: &str) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    one_line.chars().take(100).collect::<String>().trim().to_string()
}

fn notify(ctx: &mut Ctx<'_>, step: &Step, n: &crate::plan::NotifyStep, ends: &Ends) -> Result<Value, CompileError> {
    let mut params = Map::new();
    params.insert("TopicArn".into(), json!(topic(ctx, step, n.topic_arn.as_ref())?));
    params.insert("Message".into(), json!(n.message));
    if let Some(s) = &n.subject {
        params.insert("Subject".into(), json!(subject(s)));
    }
    Ok(task(
        ctx,
        step,
        "arn:aws:states:::sns:publish",
        Value::Object(params),
        ends,
        Vec::new(),
        &[],
    ))
}
