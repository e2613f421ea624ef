//! `steppy run PLAN` (and `steppy submit PLAN`, `run --detach`): validate, record, run.
//!
//! Exit codes: 0 the execution succeeded, 1 the plan is invalid or the execution failed or was
//! aborted, 2 I/O or database trouble.

use super::setup;
use crate::error::{CliError, CliResult};
use crate::progress::{Progress, ProgressConfig};
use crate::terminal::{say, say_err};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use steppy_engine::clock::system_now_ms;
use steppy_engine::scheduler::check_runnable;
use steppy_engine::state::ExecutionState;
use steppy_engine::store::{OpenMode, Store, SubmitOptions, Vote};

/// How `run`/`submit` was asked to run.
pub struct RunOptions {
    pub detach: bool,
    /// `--as NAME`: who starts the execution (default: the OS user).
    pub started_by: Option<String>,
    /// Where the approval pages listen while the run waits (default: a free loopback port).
    pub listen: Option<String>,
    /// Approval page settings; `None` for `submit`.
    pub web: Option<crate::cli::WebArgs>,
}

pub fn run(db: Option<PathBuf>, plan_path: &Path, options: RunOptions) -> CliResult {
    let detach = options.detach;
    let plan = super::plan_source::load(plan_path)?;
    let (store, db_path) = setup::open(db, OpenMode::Create)?;
    let registry = setup::registry(&db_path);
    check_runnable(&registry, &plan)
        .map_err(|why| CliError::failed(format!("cannot run {}: {why}", plan_path.display())))?;
    let inline_keys = !detach && std::io::stdin().is_terminal();
    let progress = Arc::new(Progress::new(ProgressConfig {
        db_flag: setup::db_flag(&db_path),
        inline_keys,
        ..ProgressConfig::default()
    }));
    let engine = setup::engine(store.clone(), &db_path, progress.clone());
    // Submitted with our lease unless detached, so a `steppy serve` cannot take it first.
    let owner = (!detach).then(|| engine.owner());
    let starter = options
        .started_by
        .clone()
        .unwrap_or_else(steppy_executors::human::current_user);
    let id = store.submit(
        &plan,
        system_now_ms(),
        SubmitOptions {
            lease_owner: owner,
            started_by: Some(&starter),
        },
    )?;
    if detach {
        println!("{id}");
        eprintln!("submitted; `steppy serve` or `steppy resume` will run it");
        return Ok(());
    }
    if inline_keys {
        spawn_key_reader(store.clone(), progress.clone());
    }
    let runtime = setup::runtime()?;
    let ran = runtime.block_on(async {
        if let Some(args) = &options.web {
            let listen = options.listen.as_deref().unwrap_or("127.0.0.1:0");
            match super::web::bind(store.clone(), listen, args).await {
                Ok(web) => {
                    progress.set_public_url(&web.public_url);
                    setup::aws().set_served_at(&web.public_url);
                    tokio::spawn(crate::http::serve(web.listener, web.state, std::future::pending()));
                }
                Err(why) => say_err!("steppy: approval pages are not available: {why}"),
            }
        }
        engine.run(std::slice::from_ref(&id)).await
    });
    let states = ran.map_err(|e| CliError::trouble(format!("{e}; `steppy resume` continues execution {id}")))?;
    match states.first().map(|(_, s)| *s) {
        Some(ExecutionState::Succeeded) => Ok(()),
        Some(ExecutionState::Pending | ExecutionState::Running) => Err(CliError::failed(format!(
            "execution {id} is being run by another process"
        ))),
        _ => {
            let reason = store.load(&id).ok().and_then(|r| r.summary.reason).unwrap_or_default();
            Err(CliError::failed(format!("execution {id} did not succeed: {reason}")))
        }
    }
}

/// Reads lines from the terminal: `a` approves and `r` rejects the latest approval shown.
fn spawn_key_reader(store: Store, progress: Arc<Progress>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            let approve = match line.trim() {
                "a" | "A" => true,
                "r" | "R" => false,
                _ => continue,
            };
            let pending = progress.pending.lock().ok().and_then(|p| p.clone());
            let Some(p) = pending else {
                say!("no approval is waiting");
                continue;
            };
            let vote = Vote {
                approve,
                voter: steppy_executors::human::current_user(),
                comment: None,
            };
            match store.vote(&steppy_executors::human::token_hash(&p.token), &vote, system_now_ms()) {
                Ok(d) => say!("\"{}\": {}", p.step, super::decide::describe(&d)),
                Err(e) => say!("\"{}\": {e}", p.step),
            }
        }
    });
}
