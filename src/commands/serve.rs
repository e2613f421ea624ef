//! `steppy serve`: the engine plus the HTTP service, until Ctrl-C. Resumes unfinished
//! executions at start and picks up executions submitted by other processes.

use super::setup;
use crate::http::{AppState, router};
use crate::progress::Progress;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

pub fn run(db: Option<PathBuf>, listen: &str) -> ExitCode {
    let (store, db_path) = match setup::open(db) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let runtime = match setup::server_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let progress = Arc::new(Progress::new(setup::db_flag(&db_path), true, false));
    let engine = setup::engine(store.clone(), &db_path, progress);
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => return setup::fail(2, &format!("cannot listen on {listen}: {e}")),
        };
        println!(
            "steppy serve: http://{listen}  database {}",
            db_path.display()
        );
        let app = router(AppState { store });
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let http = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        let (engine_result, http_result) = tokio::join!(engine.serve(shutdown), http);
        if let Err(e) = engine_result {
            return setup::fail(2, &e.to_string());
        }
        if let Err(e) = http_result {
            return setup::fail(2, &format!("HTTP service: {e}"));
        }
        ExitCode::SUCCESS
    })
}
