//! `steppy abort ID [--stop-running]`: ask for an execution to be aborted. If no live process
//! is driving it, this process carries the abort out itself.

use super::setup;
use crate::error::{CliError, CliResult};
use crate::progress::{Progress, ProgressConfig};
use std::path::PathBuf;
use std::sync::Arc;
use steppy_engine::clock::system_now_ms;
use steppy_engine::executor::RunningWork;
use steppy_engine::store::OpenMode;

pub fn run(db: Option<PathBuf>, id: &str, running: RunningWork) -> CliResult {
    let (store, db_path) = setup::open(db, OpenMode::Existing)?;
    store.request_abort(id, running, system_now_ms())?;
    if store.leased_by_other(id, "", system_now_ms())? {
        println!("abort requested; the process running execution {id} will stop it within a second");
        return Ok(());
    }
    let runtime = setup::runtime()?;
    let progress = Arc::new(Progress::new(ProgressConfig {
        db_flag: setup::db_flag(&db_path),
        ..ProgressConfig::default()
    }));
    let engine = setup::engine(store, &db_path, progress);
    runtime
        .block_on(engine.run(&[id.to_string()]))
        .map_err(CliError::trouble)?;
    Ok(())
}
