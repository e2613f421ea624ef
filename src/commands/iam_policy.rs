//! `steppy iam-policy PLAN [--role ARN] [--watch s3://bucket/prefix/]`: prints the
//! least-privilege IAM policy the plan needs, as JSON (see `steppy_executors::aws::iam`).

use super::setup;
use crate::cli::Engine;
use crate::error::{CliError, CliResult};
use std::path::Path;
use steppy_executors::aws::iam::{PolicyInput, policy, roles};
use steppy_executors::aws::s3;

pub fn run(plan_path: &Path, role: Option<&str>, watch: Option<&str>, engine: Engine) -> CliResult {
    let plan = super::plan_source::load(plan_path)?;
    let text = plan_path.to_string_lossy();
    let watch = watch
        .map(s3::parse)
        .transpose()
        .map_err(|e| CliError::trouble(format!("--watch: {e}")))?;
    let aws = setup::aws();
    let input = PolicyInput {
        region: std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .ok(),
        topic_arn: aws.settings.topic_arn.clone(),
        // The execution role of a state machine never reads the plan.
        plan_object: if s3::is_s3_url(&text) && engine == Engine::Local {
            s3::parse(&text).ok()
        } else {
            None
        },
        watch,
        step_functions: engine == Engine::Sfn,
    };
    if engine == Engine::Sfn && input.watch.is_some() {
        return Err(CliError::trouble(
            "--engine sfn prints the policy of the state machine's execution role, which reads no plans: drop --watch",
        ));
    }
    if let Some(r) = role.filter(|r| !roles(&plan).contains(*r)) {
        let assumed = roles(&plan).into_iter().collect::<Vec<_>>().join(", ");
        return Err(CliError::failed(format!(
            "the plan assumes no role {r}; it assumes: {}",
            if assumed.is_empty() { "none" } else { &assumed }
        )));
    }
    let text = serde_json::to_string_pretty(&policy(&plan, &input, role)).map_err(CliError::trouble)?;
    println!("{text}");
    let assumed = roles(&plan);
    if role.is_none() && !assumed.is_empty() {
        eprintln!(
            "steppy: the plan also assumes {} role(s); print what each needs with --role ARN",
            assumed.len()
        );
    }
    Ok(())
}
