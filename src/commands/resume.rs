//! `steppy resume`: finish every unfinished execution (after a crash or a restart), then exit.
//! Local executions are run to their end; Step Functions executions recorded by
//! `run --engine sfn` are started if the crash came before the start (by name: never twice)
//! and followed to their end.

use super::setup;
use crate::progress::Progress;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use steppy_engine::state::ExecutionState;
use steppy_engine::store::{OpenMode, Store};

pub fn run(db: Option<PathBuf>) -> ExitCode {
    let (store, db_path) = match setup::open(db, OpenMode::Existing) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let ids = match store.unfinished_ids() {
        Ok(ids) => ids,
        Err(e) => return setup::store_fail(&e),
    };
    let runtime = match setup::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let local = if ids.is_empty() {
        None
    } else {
        Some(resume_local(&runtime, store.clone(), &db_path, &ids))
    };
    let sfn = runtime.block_on(super::sfn::run::resume_all(&store));
    match (local, sfn) {
        (None, None) => {
            println!("no unfinished executions");
            ExitCode::SUCCESS
        }
        (Some(code), None) | (None, Some(code)) => code,
        (Some(a), Some(b)) => {
            if a != ExitCode::SUCCESS {
                a
            } else {
                b
            }
        }
    }
}

fn resume_local(
    runtime: &tokio::runtime::Runtime,
    store: Store,
    db_path: &std::path::Path,
    ids: &[String],
) -> ExitCode {
    let progress = Arc::new(Progress::new(setup::db_flag(db_path), ids.len() > 1, false));
    let engine = setup::engine(store, db_path, progress);
    match runtime.block_on(engine.run(ids)) {
        Ok(states) => {
            let mut code = ExitCode::SUCCESS;
            for (id, state) in states {
                match state {
                    ExecutionState::Succeeded => {}
                    ExecutionState::Pending | ExecutionState::Running => {
                        println!("execution {id} is being run by another process; skipped");
                    }
                    other => {
                        println!("execution {id} ended {other}");
                        code = ExitCode::from(1);
                    }
                }
            }
            code
        }
        Err(e) => setup::fail(2, &e.to_string()),
    }
}
