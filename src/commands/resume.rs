//! `steppy resume`: finish every unfinished execution (after a crash or a restart), then exit.

use super::setup;
use crate::progress::Progress;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use steppy_engine::state::ExecutionState;

pub fn run(db: Option<PathBuf>) -> ExitCode {
    let (store, db_path) = match setup::open(db) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let ids = match store.unfinished_ids() {
        Ok(ids) => ids,
        Err(e) => return setup::store_fail(&e),
    };
    if ids.is_empty() {
        println!("no unfinished executions");
        return ExitCode::SUCCESS;
    }
    let runtime = match setup::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let progress = Arc::new(Progress::new(
        setup::db_flag(&db_path),
        ids.len() > 1,
        false,
    ));
    let engine = setup::engine(store, &db_path, progress);
    match runtime.block_on(engine.run(&ids)) {
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
