//! `steppy compile PLAN`: prints the plan as an Amazon States Language definition (see
//! `steppy_engine::asl`); what Step Functions cannot enforce of the plan goes to standard error.

use crate::cli::AwsArgs;
use crate::error::{CliError, CliResult};
use std::path::Path;
use steppy_engine::asl::{Options, compile};

pub fn run(plan_path: &Path, aws: &AwsArgs, pipeline_poll_seconds: u64) -> CliResult {
    let plan = super::plan_source::load(plan_path)?;
    if pipeline_poll_seconds == 0 {
        return Err(CliError::trouble("--pipeline-poll-seconds must be at least 1"));
    }
    let options = Options {
        topic_arn: aws.topic_arn.clone(),
        public_url: aws
            .public_url
            .clone()
            .unwrap_or_else(|| steppy_executors::aws::settings::DEFAULT_PUBLIC_URL.to_string()),
        pipeline_poll_seconds,
    };
    let compiled = compile(&plan, &options)
        .map_err(|e| CliError::failed(format!("cannot compile {}: {e}", plan_path.display())))?;
    print!("{}", compiled.to_text());
    for w in &compiled.warnings {
        crate::terminal::say_err!("steppy: warning: {w}");
    }
    Ok(())
}
