//! `steppy deploy --engine sfn [--name NAME] [--role-arn ARN] PLAN`: compiles the plan and
//! creates the state machine, or updates it when its definition or role changed. Prints the
//! state machine's ARN.

use super::super::setup;
use crate::cli::{AwsArgs, SfnArgs};
use crate::error::{CliError, CliResult};
use std::path::Path;
use steppy_executors::aws::settings::DEFAULT_PUBLIC_URL;

pub fn run(plan_path: &Path, aws: &AwsArgs, sfn: &SfnArgs) -> CliResult {
    let plan = super::load(plan_path)?;
    let public_url = aws.public_url.clone().unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_string());
    if aws.public_url.is_none() {
        eprintln!(
            "steppy: warning: approval links will point at {public_url}; pass --public-url with the address of your `steppy serve`"
        );
    }
    let compiled = super::compiled(&plan, plan_path, aws, sfn, &public_url)?;
    let name = super::name_of(&plan, plan_path, sfn);
    let runtime = setup::runtime()?;
    let deployed = runtime.block_on(async {
        super::client()
            .await
            .deploy(&name, sfn.role_arn.as_deref(), &compiled.definition)
            .await
    });
    let d = deployed.map_err(|e| CliError::trouble(format!("cannot deploy {name}: {e}")))?;
    eprintln!("state machine {name} {}", d.action.as_str());
    println!("{}", d.arn);
    Ok(())
}
