//! Compiling a plan to Amazon States Language (a Standard workflow of AWS Step Functions) with
//! the local engine's semantics (issue #6).
//!
//! - each stage is a `Parallel` state with one branch per step ([`stage`]); each branch catches
//!   its own failure into a `Pass` that records it, so the stage's other steps finish; a `Choice`
//!   after the `Parallel` fails the execution (`Steppy.StepFailed`) when a step without
//!   `continueOnFailure` failed;
//! - each step type becomes its service integration, one module per type ([`codebuild`],
//!   [`notify`], [`pipeline`], [`human`]; [`step`] dispatches, [`task`] holds what they share); step
//!   options become `TimeoutSeconds`, `Retry` and `Credentials` ([`policy`]);
//! - state names are sanitised and unique ([`names`]); the output is deterministic: the same
//!   plan and options always give the same bytes.
//!
//! Nothing here talks to AWS: this is a pure function from a [`Plan`] to JSON.

mod codebuild;
mod human;
pub mod names;
mod notify;
pub mod outline;
mod pipeline;
mod policy;
pub mod replay;
mod stage;
mod step;
mod task;

use crate::plan::Plan;
use serde_json::{Map, Value, json};

/// The error a human rejection (and a rejecting timeout) fails the execution with.
pub const REJECTED: &str = "Steppy.Rejected";
/// The error the execution fails with when a step without `continueOnFailure` failed.
pub const STEP_FAILED: &str = "Steppy.StepFailed";
/// The error a `CodePipeline` step fails with when its pipeline execution does not succeed.
pub const PIPELINE_FAILED: &str = "Steppy.PipelineFailed";
/// The error a `CodePipeline` step fails with when its pipeline outlives `timeoutSeconds`.
pub const PIPELINE_TIMEOUT: &str = "Steppy.Timeout";

/// Seconds between two reads of a running pipeline by default. One poll writes 9 history events
/// (Wait entered/exited 2, Task entered/scheduled/started/succeeded/exited 5, Choice 2), 13 when
/// `timeoutSeconds` adds the counting Pass and Choice. A 24-hour pipeline polled every 300 s is
/// 288 polls: at most 288 × 13 = 3,744 events, 15% of the 25,000-event quota, leaving room for
/// several such pipelines in one execution. (Every 30 s would be 2,880 polls, 25,920 events or
/// more: over the quota on its own.)
pub const DEFAULT_PIPELINE_POLL_SECONDS: u64 = 300;

/// What the plan does not say but the state machine needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// SNS topic for steps that name none and a plan without `defaults.notificationTopicArn`.
    pub topic_arn: Option<String>,
    /// Base URL of the approval API (`{public_url}/humanConfirmation?taskToken=…&action=…`).
    pub public_url: String,
    /// Seconds between two `GetPipelineExecution` calls of a `CodePipeline` step.
    pub pipeline_poll_seconds: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            topic_arn: None,
            public_url: "http://127.0.0.1:8080".into(),
            pipeline_poll_seconds: DEFAULT_PIPELINE_POLL_SECONDS,
        }
    }
}

/// A compiled state machine definition, and what it cannot enforce of the plan.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub definition: Value,
    /// One sentence per plan feature Step Functions does not enforce (also kept as `Comment`s).
    pub warnings: Vec<String>,
}

impl Compiled {
    /// The definition as pretty-printed JSON with a final newline (what `steppy compile` prints).
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.definition).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Why a plan cannot be compiled.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CompileError {
    #[error("the plan has no stages")]
    NoStages,
    #[error("stage '{stage}' has no steps")]
    EmptyStage { stage: String },
    #[error(
        "step '{step}' publishes to SNS but no topic is known: set its topicArn, the plan's defaults.notificationTopicArn, or --topic-arn"
    )]
    NoTopic { step: String },
}

/// Shared state of one compilation: the plan, the options, the names handed out so far and the
/// warnings collected.
pub(crate) struct Ctx<'a> {
    pub plan: &'a Plan,
    pub options: &'a Options,
    pub names: names::Names,
    pub warnings: Vec<String>,
}

/// Compiles `plan` to an ASL definition.
pub fn compile(plan: &Plan, options: &Options) -> Result<Compiled, CompileError> {
    if plan.stages.is_empty() {
        return Err(CompileError::NoStages);
    }
    let mut ctx = Ctx {
        plan,
        options,
        names: names::Names::default(),
        warnings: Vec::new(),
    };
    // Stage names first, so that they keep the plan's wording whatever the steps are called.
    let heads: Vec<String> = plan.stages.iter().map(|s| ctx.names.allocate(&s.name)).collect();
    let mut states = Map::new();
    for (i, stage) in plan.stages.iter().enumerate() {
        let next = heads.get(i + 1).map(String::as_str);
        stage::compile(&mut ctx, stage, &heads[i], next, &mut states)?;
    }
    let regions: std::collections::BTreeSet<&str> =
        plan.steps().filter_map(|(_, _, s)| policy::region(plan, s)).collect();
    if !regions.is_empty() {
        let list: Vec<&str> = regions.into_iter().collect();
        ctx.warnings.push(format!(
            "the plan names region(s) {}: Step Functions calls services in the state machine's own region, so deploy it there (a step in another region needs its own state machine)",
            list.join(", ")
        ));
    }
    let fan_outs: std::collections::BTreeSet<&str> = plan
        .stages
        .iter()
        .filter_map(|s| s.fan_out.as_ref().map(|f| f.stage.as_str()))
        .collect();
    if !fan_outs.is_empty() {
        ctx.warnings.push(format!(
            "fan-out stage(s) {} are compiled expanded, one Parallel branch per target and wave: the definition grows with the targets, and Step Functions starts every target of a wave at once and fails the wave on the first failed target (maxConcurrency and the failure tolerance are the local engine's only)",
            fan_outs.into_iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
        ));
    }
    let comment = match &plan.name {
        Some(n) => format!("Steppy plan '{n}', compiled by steppy compile"),
        None => "Steppy plan, compiled by steppy compile".to_string(),
    };
    let definition = json!({ "Comment": comment, "StartAt": heads[0], "States": Value::Object(states) });
    Ok(Compiled {
        definition,
        warnings: ctx.warnings,
    })
}
