//! The `sfn` engine: the same plan run by AWS Step Functions instead of this process.
//!
//! - [`deploy`]: `steppy deploy --engine sfn`: compile the plan and create or update the state
//!   machine.
//! - [`run`]: `steppy run --engine sfn`: deploy if needed, record the execution's name, start
//!   it, serve the approval pages (which redeem task tokens) and follow it to the end.
//! - [`follow`]: reading an execution's history as it grows and printing progress lines.
//! - [`inspect`]: `steppy status ARN` and `steppy history ARN`.
//!
//! The AWS calls are in `steppy_executors::aws::sfn`; reading histories as step progress is
//! `steppy_engine::asl::replay`.

pub mod deploy;
pub mod follow;
pub mod inspect;
pub mod run;

use super::setup;
use crate::cli::{AwsArgs, SfnArgs};
use crate::error::CliError;
use std::path::Path;
use steppy_engine::asl::{Compiled, Options, compile};
use steppy_engine::plan::Plan;
use steppy_executors::aws::sfn::{StepFunctions, machine_name};

/// Loads and validates the plan (exit 2 if unreadable, 1 if invalid).
pub fn load(plan_path: &Path) -> Result<Plan, CliError> {
    Ok(super::plan_source::load(plan_path)?)
}

/// Compiles the plan with approval links under `public_url`; warnings go to standard error.
pub fn compiled(
    plan: &Plan,
    plan_path: &Path,
    aws: &AwsArgs,
    sfn: &SfnArgs,
    public_url: &str,
) -> Result<Compiled, CliError> {
    if sfn.pipeline_poll_seconds == 0 {
        return Err(CliError::trouble("--pipeline-poll-seconds must be at least 1"));
    }
    let options = Options {
        topic_arn: aws.topic_arn.clone(),
        public_url: public_url.to_string(),
        pipeline_poll_seconds: sfn.pipeline_poll_seconds,
    };
    let compiled = compile(plan, &options)
        .map_err(|e| CliError::failed(format!("cannot compile {}: {e}", plan_path.display())))?;
    for w in &compiled.warnings {
        crate::terminal::say_err!("steppy: warning: {w}");
    }
    Ok(compiled)
}

/// The state machine's name: `--name`, else one made from the plan's name or file name.
pub fn name_of(plan: &Plan, plan_path: &Path, sfn: &SfnArgs) -> String {
    match (&sfn.name, &plan.name) {
        (Some(n), _) => n.clone(),
        (None, Some(n)) => machine_name(n),
        (None, None) => machine_name(
            &plan_path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    }
}

/// The Step Functions client of the standard AWS configuration.
pub async fn client() -> StepFunctions {
    StepFunctions::new(setup::aws().base().await)
}
