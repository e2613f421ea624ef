//! `CodePipeline` and `CodePipelineNoWait`. Waiting for a pipeline has no optimized integration:
//! the step is a one-branch `Parallel` (so a failed pipeline is an error its `Retry` and `Catch`
//! see) that starts the execution with the AWS SDK integration, then loops Wait →
//! `GetPipelineExecution` → Choice every [`super::Options::pipeline_poll_seconds`] (see
//! [`super::DEFAULT_PIPELINE_POLL_SECONDS`] for the history arithmetic). `timeoutSeconds` bounds
//! the number of polls (`Steppy.Timeout`).

use super::task::{Ends, note_region, task};
use super::{Ctx, PIPELINE_FAILED, PIPELINE_TIMEOUT, policy};
use crate::plan::{CodePipelineStep, Step};
use serde_json::{Map, Value, json};

const START: &str = "arn:aws:states:::aws-sdk:codepipeline:startPipelineExecution";
const GET: &str = "arn:aws:states:::aws-sdk:codepipeline:getPipelineExecution";

fn start_parameters(p: &CodePipelineStep) -> Value {
    let mut params = Map::new();
    params.insert("Name".into(), json!(p.code_pipeline_name));
    if !p.variables.is_empty() {
        let vars: Vec<Value> = p
            .variables
            .iter()
            .map(|(k, v)| json!({ "Name": k, "Value": v }))
            .collect();
        params.insert("Variables".into(), Value::Array(vars));
    }
    Value::Object(params)
}

fn warn_auto_approve(ctx: &mut Ctx<'_>, step: &Step, p: &CodePipelineStep) {
    if p.auto_approve {
        ctx.warnings.push(format!(
            "step '{}': autoApprove is not compiled; the pipeline's manual approval actions wait for a person",
            step.name
        ));
    }
}

/// `CodePipelineNoWait`: start the execution and succeed.
pub fn start_only(ctx: &mut Ctx<'_>, step: &Step, p: &CodePipelineStep, ends: &Ends) -> Value {
    warn_auto_approve(ctx, step, p);
    task(ctx, step, START, start_parameters(p), ends, Vec::new(), &[])
}

/// `CodePipeline`: start the execution and poll it until it ends (or the step times out).
pub fn wait_for(ctx: &mut Ctx<'_>, step: &Step, p: &CodePipelineStep, ends: &Ends) -> Value {
    warn_auto_approve(ctx, step, p);
    let poll = ctx.options.pipeline_poll_seconds.max(1);
    let n = |ctx: &mut Ctx<'_>, what: &str| ctx.names.allocate(&format!("{} {what}", step.name));
    let start = n(ctx, "start");
    let wait = n(ctx, "wait");
    let get = n(ctx, "poll");
    let check = n(ctx, "check");
    let done = n(ctx, "pipeline succeeded");
    let failed = n(ctx, "pipeline failed");
    let max_polls = step.options.timeout_seconds.map(|t| t.div_ceil(poll).max(1));
    let (count, deadline, timed_out) = match max_polls {
        Some(_) => (
            Some(n(ctx, "count")),
            Some(n(ctx, "deadline")),
            Some(n(ctx, "timed out")),
        ),
        None => (None, None, None),
    };

    let credentials = |state: &mut Map<String, Value>| policy::add_credentials(state, ctx.plan, step);
    let mut states = Map::new();
    let mut start_state = Map::new();
    start_state.insert("Type".into(), json!("Task"));
    start_state.insert("Resource".into(), json!(START));
    start_state.insert("Parameters".into(), start_parameters(p));
    credentials(&mut start_state);
    start_state.insert(
        "ResultSelector".into(),
        json!({ "PipelineExecutionId.$": "$.PipelineExecutionId", "polls": 0 }),
    );
    start_state.insert("ResultPath".into(), json!("$.pipeline"));
    start_state.insert("Next".into(), json!(wait));
    note_region(ctx, step, &mut start_state);
    states.insert(start.clone(), Value::Object(start_state));
    states.insert(wait.clone(), json!({ "Type": "Wait", "Seconds": poll, "Next": get }));
    let mut get_state = Map::new();
    get_state.insert("Type".into(), json!("Task"));
    get_state.insert("Resource".into(), json!(GET));
    get_state.insert(
        "Parameters".into(),
        json!({ "PipelineName": p.code_pipeline_name, "PipelineExecutionId.$": "$.pipeline.PipelineExecutionId" }),
    );
    credentials(&mut get_state);
    get_state.insert(
        "ResultSelector".into(),
        json!({ "Status.$": "$.PipelineExecution.Status" }),
    );
    get_state.insert("ResultPath".into(), json!("$.status"));
    get_state.insert("Next".into(), json!(check));
    states.insert(get, Value::Object(get_state));
    let again = count.clone().unwrap_or_else(|| wait.clone());
    states.insert(
        check,
        json!({
            "Type": "Choice",
            "Choices": [
                { "Variable": "$.status.Status", "StringEquals": "Succeeded", "Next": done },
                { "Or": [
                    { "Variable": "$.status.Status", "StringEquals": "InProgress" },
                    { "Variable": "$.status.Status", "StringEquals": "Stopping" }
                ], "Next": again }
            ],
            "Default": failed
        }),
    );
    if let (Some(count), Some(deadline), Some(timed_out), Some(max)) = (count, deadline, timed_out, max_polls) {
        states.insert(
            count,
            json!({
                "Type": "Pass",
                "Parameters": { "PipelineExecutionId.$": "$.pipeline.PipelineExecutionId", "polls.$": "States.MathAdd($.pipeline.polls, 1)" },
                "ResultPath": "$.pipeline",
                "Next": deadline
            }),
        );
        states.insert(
            deadline,
            json!({ "Type": "Choice", "Choices": [{ "Variable": "$.pipeline.polls", "NumericGreaterThanEquals": max, "Next": timed_out }], "Default": wait }),
        );
        states.insert(
            timed_out,
            json!({ "Type": "Fail", "Error": PIPELINE_TIMEOUT, "Cause": format!("pipeline {} still running after {} polls {poll} seconds apart", p.code_pipeline_name, max) }),
        );
    }
    states.insert(done, json!({ "Type": "Succeed" }));
    states.insert(
        failed,
        json!({ "Type": "Fail", "Error": PIPELINE_FAILED, "Cause": format!("pipeline {} did not succeed", p.code_pipeline_name) }),
    );

    let mut wrapper = Map::new();
    wrapper.insert("Type".into(), json!("Parallel"));
    wrapper.insert(
        "Branches".into(),
        json!([{ "StartAt": start, "States": Value::Object(states) }]),
    );
    wrapper.insert("ResultPath".into(), Value::Null);
    policy::add_retry(&mut wrapper, step, &[]);
    wrapper.insert(
        "Catch".into(),
        json!([{ "ErrorEquals": ["States.ALL"], "Next": ends.failed }]),
    );
    wrapper.insert("Next".into(), json!(ends.ok));
    Value::Object(wrapper)
}
