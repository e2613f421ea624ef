//! `steppy run --engine sfn PLAN`: the plan run by AWS Step Functions, watched from here.
//!
//! 1. serve the approval pages (they redeem the execution's task tokens) and compile the plan
//!    with links to them;
//! 2. deploy the state machine if it is missing or differs;
//! 3. record the execution's name in the store, **then** start it under that name (a second
//!    start of the same name finds the first: nothing is started twice after a crash);
//! 4. follow it to the end with live progress, and record how it ended.
//!
//! `steppy resume` follows recorded executions that were not seen to end ([`resume_all`]).
//! Exit codes as for a local run: 0 succeeded, 1 failed, aborted or rejected, 2 trouble.

use super::super::{setup, web};
use super::follow::{Printer, follow};
use crate::cli::{AwsArgs, SfnArgs, WebArgs};
use crate::error::{CliError, CliResult, Exit, worse};
use std::path::{Path, PathBuf};
use std::time::Duration;
use steppy_engine::asl::outline::Outline;
use steppy_engine::asl::replay::{Replay, RunStatus};
use steppy_engine::clock::system_now_ms;
use steppy_engine::fault;
use steppy_engine::store::{OpenMode, Store};
use steppy_executors::aws::sfn::StepFunctions;

/// What `run --engine sfn` was asked.
pub struct SfnRunOptions {
    pub detach: bool,
    pub listen: Option<String>,
    pub web: WebArgs,
}

/// How often a followed execution's history is read: the poll interval, at most 2 s (a live
/// view; GetExecutionHistory is not billed).
fn follow_interval() -> Duration {
    setup::aws().settings.poll_interval.min(Duration::from_secs(2))
}

pub fn run(
    db: Option<PathBuf>,
    plan_path: &Path,
    aws: &AwsArgs,
    sfn_args: &SfnArgs,
    options: SfnRunOptions,
) -> CliResult {
    let plan = super::load(plan_path)?;
    let (store, _) = setup::open(db, OpenMode::Create)?;
    let runtime = setup::runtime()?;
    runtime.block_on(async {
        // The approval pages first: the compiled links point at them.
        let mut public_url = aws
            .public_url
            .clone()
            .unwrap_or_else(|| steppy_executors::aws::settings::DEFAULT_PUBLIC_URL.to_string());
        if !options.detach {
            let listen = options.listen.as_deref().unwrap_or("127.0.0.1:0");
            match web::bind(store.clone(), listen, &options.web).await {
                Ok(w) => {
                    public_url = w.public_url.clone();
                    let state = web::with_task_tokens(w.state).await;
                    tokio::spawn(crate::http::serve(w.listener, state, std::future::pending()));
                }
                Err(why) => crate::terminal::say_err!("steppy: approval pages are not available: {why}"),
            }
        }
        let compiled = super::compiled(&plan, plan_path, aws, sfn_args, &public_url)?;
        let name = super::name_of(&plan, plan_path, sfn_args);
        let sfn = super::client().await;
        let deployed = sfn
            .deploy(&name, sfn_args.role_arn.as_deref(), &compiled.definition)
            .await
            .map_err(|e| CliError::trouble(format!("cannot deploy {name}: {e}")))?;
        eprintln!("state machine {name} {}: {}", deployed.action.as_str(), deployed.arn);
        let exec_name = uuid::Uuid::now_v7().to_string();
        // The plan is in the definition: the execution needs no input.
        let input = "{}";
        store.sfn_record(&exec_name, &deployed.arn, plan.name.as_deref(), input, system_now_ms())?;
        let arn = start(&sfn, &store, &deployed.arn, &exec_name, input).await?;
        if options.detach {
            println!("{arn}");
            eprintln!("started; `steppy status {arn}` shows it, `steppy resume` follows it");
            return Ok(());
        }
        let printer = Printer::default();
        printer.line(&format!("execution {exec_name}: {arn}"));
        let mut replay = Replay::new(Outline::of(&compiled.definition));
        finish(&sfn, &store, &exec_name, &arn, &mut replay, Some(&printer)).await
    })
}

/// Starts the recorded execution `name` of `machine_arn` (or finds it started) and records its
/// ARN.
async fn start(
    sfn: &StepFunctions,
    store: &Store,
    machine_arn: &str,
    name: &str,
    input: &str,
) -> Result<String, CliError> {
    let machine = machine_arn.rsplit(':').next().unwrap_or_default();
    fault::hit("sfn-recorded", machine);
    let arn = sfn.start(machine_arn, name, input).await.map_err(|e| {
        CliError::trouble(format!(
            "cannot start execution {name}: {e}; `steppy resume` tries again"
        ))
    })?;
    fault::hit("sfn-started", machine);
    store.sfn_started(name, &arn)?;
    Ok(arn)
}

/// Follows the execution to its end, records the end, and maps it to an exit code.
async fn finish(
    sfn: &StepFunctions,
    store: &Store,
    name: &str,
    arn: &str,
    replay: &mut Replay,
    printer: Option<&Printer>,
) -> CliResult {
    let status = follow(sfn, arn, name, replay, follow_interval(), printer)
        .await
        .map_err(|e| CliError::trouble(format!("cannot follow {arn}: {e}; `steppy resume` follows it again")))?;
    store.sfn_ended(name, status.as_str(), replay.reason.as_deref(), system_now_ms())?;
    match status {
        RunStatus::Succeeded => Ok(()),
        // The follower has shown how it ended.
        _ => Err(CliError::said(Exit::Failed)),
    }
}

/// `steppy resume`'s share: start (idempotently) and follow every recorded Step Functions
/// execution not seen to end. Returns the worst outcome (each failure is printed as it
/// happens), or `None` if there were none.
pub async fn resume_all(store: &Store) -> Option<CliResult> {
    let runs = match store.sfn_unfinished() {
        Ok(r) if r.is_empty() => return None,
        Ok(r) => r,
        Err(e) => return Some(Err(e.into())),
    };
    let sfn = super::client().await;
    let printer = Printer::default();
    let mut outcome = Ok(());
    for run in runs {
        let arn = match start(&sfn, store, &run.state_machine_arn, &run.name, &run.input).await {
            Ok(a) => a,
            Err(e) => {
                outcome = worse(outcome, Err(e.print_now()));
                continue;
            }
        };
        printer.line(&format!("following Step Functions execution {}: {arn}", run.name));
        let definition = match sfn.definition_of(&arn).await {
            Ok(d) => d,
            Err(e) => {
                let e = CliError::trouble(format!("cannot read the definition of {arn}: {e}"));
                outcome = worse(outcome, Err(e.print_now()));
                continue;
            }
        };
        let mut replay = Replay::new(Outline::of(&definition));
        let ended = finish(&sfn, store, &run.name, &arn, &mut replay, Some(&printer)).await;
        outcome = worse(outcome, ended.map_err(CliError::print_now));
    }
    Some(outcome)
}
