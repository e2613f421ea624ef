//! `steppy abort ID [--stop-running]`: ask for an execution to be aborted. If no live process
//! is driving it, this process carries the abort out itself.

use super::setup;
use crate::progress::Progress;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use steppy_engine::clock::system_now_ms;
use steppy_engine::store::OpenMode;

pub fn run(db: Option<PathBuf>, id: &str, stop_running: bool) -> ExitCode {
    let (store, db_path) = match setup::open(db, OpenMode::Existing) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(e) = store.request_abort(id, stop_running, system_now_ms()) {
        return setup::store_fail(&e);
    }
    match store.leased_by_other(id, "", system_now_ms()) {
        Ok(true) => {
            println!("abort requested; the process running execution {id} will stop it within a second");
            return ExitCode::SUCCESS;
        }
        Ok(false) => {}
        Err(e) => return setup::store_fail(&e),
    }
    let runtime = match setup::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let progress = Arc::new(Progress::new(setup::db_flag(&db_path), false, false));
    let engine = setup::engine(store, &db_path, progress);
    match runtime.block_on(engine.run(&[id.to_string()])) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => setup::fail(2, &e.to_string()),
    }
}
