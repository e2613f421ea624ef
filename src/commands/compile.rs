//! `steppy compile PLAN`: prints the plan as an Amazon States Language definition (see
//! `steppy_engine::asl`); what Step Functions cannot enforce of the plan goes to standard error.

use super::setup;
use crate::cli::AwsArgs;
use std::path::Path;
use std::process::ExitCode;
use steppy_engine::asl::{Options, compile};
use steppy_engine::validate::LoadError;

pub fn run(plan_path: &Path, aws: &AwsArgs, pipeline_poll_seconds: u64) -> ExitCode {
    let plan = match super::plan_source::load(plan_path) {
        Ok(p) => p,
        Err(e @ LoadError::Io { .. }) => return setup::fail(2, &e.to_string()),
        Err(e) => return setup::fail_invalid_plan(&e),
    };
    if pipeline_poll_seconds == 0 {
        return setup::fail(2, "--pipeline-poll-seconds must be at least 1");
    }
    let options = Options {
        topic_arn: aws.topic_arn.clone(),
        public_url: aws
            .public_url
            .clone()
            .unwrap_or_else(|| steppy_executors::aws::settings::DEFAULT_PUBLIC_URL.to_string()),
        pipeline_poll_seconds,
    };
    match compile(&plan, &options) {
        Ok(compiled) => {
            print!("{}", compiled.to_text());
            for w in &compiled.warnings {
                crate::terminal::say_err!("steppy: warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => setup::fail(1, &format!("cannot compile {}: {e}", plan_path.display())),
    }
}
