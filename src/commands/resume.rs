//! `steppy resume`: finish every unfinished execution (after a crash or a restart), then exit.
//! Local executions are run to their end; Step Functions executions recorded by
//! `run --engine sfn` are started if the crash came before the start (by name: never twice)
//! and followed to their end.

use super::setup;
use crate::error::{CliError, CliResult, Exit, worse};
use crate::progress::{Progress, ProgressConfig};
use std::path::PathBuf;
use std::sync::Arc;
use steppy_engine::state::ExecutionState;
use steppy_engine::store::{OpenMode, Store};

pub fn run(db: Option<PathBuf>) -> CliResult {
    let (store, db_path) = setup::open(db, OpenMode::Existing)?;
    let ids = store.unfinished_ids()?;
    let runtime = setup::runtime()?;
    let local = if ids.is_empty() {
        None
    } else {
        Some(resume_local(&runtime, store.clone(), &db_path, &ids))
    };
    let sfn = runtime.block_on(super::sfn::run::resume_all(&store));
    match (local, sfn) {
        (None, None) => {
            println!("no unfinished executions");
            Ok(())
        }
        (Some(one), None) | (None, Some(one)) => one,
        (Some(a), Some(b)) => worse(a, b),
    }
}

fn resume_local(
    runtime: &tokio::runtime::Runtime,
    store: Store,
    db_path: &std::path::Path,
    ids: &[String],
) -> CliResult {
    let progress = Arc::new(Progress::new(ProgressConfig {
        db_flag: setup::db_flag(db_path),
        tag_executions: ids.len() > 1,
        ..ProgressConfig::default()
    }));
    let engine = setup::engine(store, db_path, progress);
    let states = runtime.block_on(engine.run(ids)).map_err(CliError::trouble)?;
    let mut ended = Ok(());
    for (id, state) in states {
        match state {
            ExecutionState::Succeeded => {}
            ExecutionState::Pending | ExecutionState::Running => {
                println!("execution {id} is being run by another process; skipped");
            }
            other => {
                println!("execution {id} ended {other}");
                ended = Err(CliError::said(Exit::Failed));
            }
        }
    }
    ended
}
