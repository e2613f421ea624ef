//! One module per subcommand; [`dispatch`] routes a parsed command line to it. Each returns a
//! [`CliResult`]; `main` turns it into the exit code (see [`crate::error`]).

mod abort;
mod compile;
mod decide;
mod iam_policy;
mod inspect;
mod resume;
mod run;
mod schema;
mod serve;
mod sfn;
mod validate;

// Shared by the commands: opening the store and building the engine, serving the approval
// pages, reading plans from files, standard input or S3.
mod output;
mod plan_source;
mod setup;
mod web;

use crate::cli::{Cli, Command, Engine};
use crate::error::{CliError, CliResult};
use steppy_engine::executor::RunningWork;
use steppy_engine::store::Verdict;

pub fn dispatch(cli: Cli) -> CliResult {
    setup::configure_aws(&cli.aws)?;
    setup::configure_params(&cli.params)?;
    match cli.command {
        Command::Validate { plans, format } => validate::run(&plans, format),
        Command::Schema => schema::run(),
        Command::Run {
            plan,
            detach,
            started_by,
            listen,
            mut web,
            engine,
            sfn,
        } => {
            web.public_url = cli.aws.public_url.clone();
            match engine {
                Engine::Local => run::run(
                    cli.db,
                    &plan,
                    run::RunOptions {
                        detach,
                        started_by,
                        listen,
                        web: Some(web),
                    },
                ),
                Engine::Sfn => sfn::run::run(
                    cli.db,
                    &plan,
                    &cli.aws,
                    &sfn,
                    sfn::run::SfnRunOptions { detach, listen, web },
                ),
            }
        }
        Command::Deploy { plan, engine, sfn } => match engine {
            Engine::Sfn => sfn::deploy::run(&plan, &cli.aws, &sfn),
            Engine::Local => Err(CliError::trouble(
                "the local engine has nothing to deploy: `steppy run PLAN` runs a plan here",
            )),
        },
        Command::Submit { plan, started_by } => run::run(
            cli.db,
            &plan,
            run::RunOptions {
                detach: true,
                started_by,
                listen: None,
                web: None,
            },
        ),
        Command::Serve {
            listen,
            mut web,
            max_connections,
            watch,
        } => {
            web.public_url = cli.aws.public_url.clone();
            serve::run(cli.db, &listen, &web, max_connections, watch.as_deref())
        }
        Command::Compile {
            plan,
            pipeline_poll_seconds,
        } => compile::run(&plan, &cli.aws, pipeline_poll_seconds),
        Command::IamPolicy {
            plan,
            role,
            watch,
            engine,
        } => iam_policy::run(&plan, role.as_deref(), watch.as_deref(), engine),
        Command::Resume => resume::run(cli.db),
        Command::List { format } => inspect::list(cli.db, format),
        Command::Status {
            id,
            format,
            target,
            state,
        } => {
            let filter = inspect::StepFilter::parse(target, state.as_deref())?;
            inspect::status(cli.db, &id, format, &filter)
        }
        Command::History { id, format } => inspect::history(cli.db, &id, format),
        Command::Abort { id, stop_running } => abort::run(cli.db, &id, RunningWork::from_stop_running(stop_running)),
        Command::Approve { decision } => decide::run(cli.db, Verdict::Approve, decision),
        Command::Reject { decision } => decide::run(cli.db, Verdict::Reject, decision),
    }
}
