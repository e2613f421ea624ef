//! `steppy status ARN` and `steppy history ARN` for Step Functions executions: the execution's
//! description, its definition's [`Outline`] and its history folded by [`Replay`], shown like
//! a local execution's.

use super::super::output::{print_json, when};
use super::super::setup;
use crate::cli::OutputFormat;
use crate::error::{CliError, CliResult};
use crate::terminal::say;
use serde_json::json;
use steppy_engine::asl::outline::Outline;
use steppy_engine::asl::replay::{Replay, StepStatus};
use steppy_executors::aws::sfn::SfnError;

fn aws_fail(arn: &str, e: &SfnError) -> CliError {
    CliError::trouble(format!("cannot read {arn}: {e}"))
}

pub fn status(arn: &str, format: OutputFormat) -> CliResult {
    let runtime = setup::runtime()?;
    let read = runtime.block_on(async {
        let sfn = super::client().await;
        let info = sfn.describe(arn).await?;
        let definition = sfn.definition_of(arn).await?;
        let events = sfn.history(arn).await?;
        Ok::<_, SfnError>((info, definition, events))
    });
    let (info, definition, events) = read.map_err(|e| aws_fail(arn, &e))?;
    let mut replay = Replay::new(Outline::of(&definition));
    for e in &events {
        replay.apply(e);
    }
    let steps: Vec<_> = replay
        .step_statuses()
        .map(|(s, k, st)| {
            let step = replay.outline.step(s, k);
            // The local engine's words: a rejected approval is a FAILED step of an ABORTED run.
            let state = if st == StepStatus::Rejected { "FAILED".to_string() } else { st.as_str().to_uppercase() };
            json!({ "stage": s, "index": k, "name": step.map(|x| x.name.clone()), "type": step.map(|x| x.kind), "state": state, "rejected": st == StepStatus::Rejected })
        })
        .collect();
    if format == OutputFormat::Json {
        return print_json(&json!({
            "execution": {
                "arn": info.arn, "name": info.name, "stateMachineArn": info.state_machine_arn,
                "status": info.status, "state": replay.status.as_str().to_uppercase(), "reason": replay.reason,
                "startMs": info.start_ms, "stopMs": info.stop_ms,
            },
            "steps": steps,
        }));
    }
    say!("execution {}  {} ({})", info.name, replay.status.as_str(), info.status);
    say!("arn        {}", info.arn);
    if let Some(comment) = definition.get("Comment").and_then(|c| c.as_str()) {
        say!("plan       {comment}");
    }
    say!("started    {}", when(info.start_ms));
    if let Some(reason) = replay.reason.as_ref().or(info.cause.as_ref()) {
        say!("reason     {reason}");
    }
    let stages = replay.outline.stages.len();
    for (i, stage) in replay.outline.stages.iter().enumerate() {
        say!("stage {}/{stages} \"{}\"", i + 1, stage.name);
        for (k, step) in stage.steps.iter().enumerate() {
            let state = replay.steps[i][k];
            say!("  {:<10} {:<12} {}", state.as_str(), step.kind, step.name);
        }
    }
    if stages == 0 {
        say!("(not a Steppy state machine: `steppy history {arn}` shows its events)");
    }
    Ok(())
}

pub fn history(arn: &str, format: OutputFormat) -> CliResult {
    let runtime = setup::runtime()?;
    let events = runtime
        .block_on(async { super::client().await.history(arn).await })
        .map_err(|e| aws_fail(arn, &e))?;
    if format == OutputFormat::Json {
        let list: Vec<_> = events
            .iter()
            .map(|e| json!({ "id": e.id, "previousEventId": e.previous, "type": e.kind, "atMs": e.at_ms, "state": e.state, "data": e.data, "error": e.error, "cause": e.cause }))
            .collect();
        return print_json(&json!(list));
    }
    for e in events {
        let detail = match (&e.error, &e.cause) {
            (Some(err), Some(c)) => format!("{err}: {c}"),
            (Some(err), None) => err.clone(),
            _ => String::new(),
        };
        say!(
            "{:>6}  {}  {:<28} {}  {}",
            e.id,
            when(e.at_ms),
            e.kind,
            e.state.as_deref().unwrap_or("-"),
            detail
        );
    }
    Ok(())
}
