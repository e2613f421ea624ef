//! `steppy serve`: the engine plus the HTTP service, until Ctrl-C or SIGTERM. Resumes unfinished
//! executions at start and picks up executions submitted by other processes. With
//! `--watch s3://bucket/prefix/` it also starts every new plan object under the prefix, once.

use super::setup;
use super::web;
use crate::cli::WebArgs;
use crate::progress::Progress;
use crate::terminal::{say, say_err};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use steppy_executors::aws::intake::{Intake, Taken};

pub fn run(db: Option<PathBuf>, listen: &str, args: &WebArgs, watch: Option<&str>) -> ExitCode {
    let (store, db_path) = match setup::open(db, steppy_engine::store::OpenMode::Create) {
        Ok(s) => s,
        Err(code) => return code,
    };
    // A damaged file is refused before anything runs on it (issue 10 §5).
    if let Err(e) = store.check_integrity() {
        return setup::store_fail(&e);
    }
    let runtime = match setup::server_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let progress = Arc::new(Progress::new(setup::db_flag(&db_path), true, false));
    let engine = setup::engine(store.clone(), &db_path, progress.clone());
    let store_for_intake = store.clone();
    runtime.block_on(async move {
        let web = match web::bind(store, listen, args).await {
            Ok(w) => w,
            Err(why) => return setup::fail(2, &why),
        };
        progress.set_public_url(&web.public_url);
        setup::aws().set_served_at(&web.public_url);
        println!("steppy serve: http://{listen}  approvals at {}/approvals/...  database {}", web.public_url, db_path.display());
        let shutdown = setup::stop_requested();
        // Steppy's own approvals, and Step Functions task tokens of compiled plans and of
        // state machines deployed by the original Steppy.
        let state = web::with_task_tokens(web.state).await;
        let http = crate::http::serve(web.listener, state, setup::stop_requested());
        let intake = async {
            let Some(url) = watch else { return };
            let registry = Arc::new(setup::registry(&db_path));
            let intake = match Intake::new(setup::aws(), store_for_intake, registry, url) {
                Ok(i) => i,
                Err(e) => {
                    say_err!("steppy: --watch: {e}");
                    return;
                }
            };
            println!("steppy serve: watching {url}");
            // Object keys and service errors are outside text: printed escaped.
            let taken = |t: &Taken| match t {
                Taken::Started { key, execution_id, .. } => say!("{key}: started execution {execution_id}"),
                Taken::Refused { key, problems, .. } => say!("{key}: invalid, not started ({} problem(s); see {key}.errors.json)", problems.len()),
                Taken::Skipped { key, error, .. } => say_err!("steppy: {key}: {error} (trying again)"),
            };
            let failed = |e: &str| say_err!("steppy: watching {url}: {e} (trying again)");
            intake.run(setup::aws().settings.poll_interval, setup::stop_requested(), taken, failed).await;
        };
        let (engine_result, http_result, ()) = tokio::join!(engine.serve(shutdown), http, intake);
        if let Err(e) = engine_result {
            return setup::fail(2, &e.to_string());
        }
        if let Err(e) = http_result {
            return setup::fail(2, &format!("HTTP service: {e}"));
        }
        ExitCode::SUCCESS
    })
}
