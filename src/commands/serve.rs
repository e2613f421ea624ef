//! `steppy serve`: the engine plus the HTTP service, until Ctrl-C or SIGTERM. Resumes unfinished
//! executions at start and picks up executions submitted by other processes. With
//! `--watch s3://bucket/prefix/` it also starts every new plan object under the prefix, once.
//!
//! The engine (and the S3 intake) runs on a thread of its own with its own runtime and its own
//! database connection; the HTTP service runs on the server runtime with another connection.
//! So a database write that waits for another process's lock, or an executor that misbehaves,
//! never holds a thread the HTTP service needs, and `/readyz` answers while the engine waits.
//!
//! If the engine stops for good (or the HTTP service fails), the process exits with code 2 at
//! once, so that a supervisor (systemd's `Restart=on-failure`, Kubernetes) restarts it; it
//! never stays up with an engine that no longer runs.

use super::setup;
use super::web;
use crate::cli::WebArgs;
use crate::error::{CliError, CliResult};
use crate::progress::{Progress, ProgressConfig, TokenDisplay};
use crate::terminal::say;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use steppy_engine::health::Health;
use steppy_engine::scheduler::Engine;
use steppy_engine::store::Store;
use steppy_engine::text::printable;
use steppy_executors::aws::intake::{Intake, Taken};
use steppy_human_approval_api::ServeLimits;
use tokio::sync::{oneshot, watch};

/// `max_connections`: the approval service's connection cap (`--max-connections`; default
/// [`ServeLimits`]'s).
pub fn run(
    db: Option<PathBuf>,
    listen: &str,
    args: &WebArgs,
    max_connections: Option<NonZeroUsize>,
    watch: Option<&str>,
) -> CliResult {
    // A `--watch` that names no bucket is refused now, not logged once while serve runs on.
    if let Some(url) = watch {
        steppy_executors::aws::s3::parse(url).map_err(|e| CliError::trouble(format!("--watch: {e}")))?;
    }
    let (store, db_path) = setup::open(db, steppy_engine::store::OpenMode::Create)?;
    // A damaged file is refused before anything runs on it (issue 10 §5).
    store.check_integrity()?;
    // The HTTP service's own connection (see the module docs).
    let http_store = Store::open_as(&db_path, steppy_engine::store::OpenMode::Existing)?;
    let runtime = setup::server_runtime()?;
    let health = Arc::new(Health::default());
    let progress = Arc::new(Progress::new(ProgressConfig {
        db_flag: setup::db_flag(&db_path),
        tag_executions: true,
        ..ProgressConfig::default()
    }));
    progress.set_token_display(TokenDisplay::UnlessMailed);
    // Engine trouble goes to the log (see `logging`), not between the progress lines.
    progress.log_engine_lines();
    let engine = setup::engine(store.clone(), &db_path, progress.clone()).with_health(health.clone());
    runtime.block_on(async move {
        let web = web::bind(http_store, listen, args).await.map_err(CliError::trouble)?;
        progress.set_public_url(&web.public_url);
        setup::aws().set_served_at(&web.public_url);
        println!(
            "steppy serve: http://{listen}  approvals at {}/approvals/...  database {}",
            web.public_url,
            db_path.display()
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done_tx, done_rx) = oneshot::channel();
        let background = Background {
            engine,
            store,
            db_path: db_path.clone(),
            watch: watch.map(str::to_string),
            stop: stop_rx.clone(),
        };
        if let Err(e) = std::thread::Builder::new().name("steppy-engine".into()).spawn(move || {
            let _ = done_tx.send(background.run());
        }) {
            return Err(CliError::trouble(format!("cannot start the engine thread: {e}")));
        }
        // Steppy's own approvals, and Step Functions task tokens of compiled plans and of
        // state machines deployed by the original Steppy.
        // `/readyz` reports the engine's health (driver liveness, database writability).
        let state = web::with_task_tokens(web.state).await.with_health(health);
        let mut limits = ServeLimits::default();
        if let Some(n) = max_connections {
            limits.max_connections = n.get();
        }
        let http = crate::http::serve_with(web.listener, state, limits, stopped(stop_rx));
        tokio::pin!(http);
        tokio::pin!(done_rx);
        tokio::select! {
            _ = setup::stop_requested() => {
                let _ = stop_tx.send(true);
                let (engine, http) = tokio::join!(done_rx, http);
                let engine = engine.unwrap_or(Err(EngineStopped::Panicked));
                finish(engine, http)
            }
            engine = &mut done_rx => {
                let why = match engine {
                    Ok(Ok(())) => EngineStopped::Unasked,
                    Ok(Err(why)) => why,
                    Err(_) => EngineStopped::Panicked,
                };
                Err(CliError::trouble(format!(
                    "the engine stopped: {why}; exiting so that a supervisor restarts `steppy serve`"
                )))
            }
            http = &mut http => {
                let _ = stop_tx.send(true);
                let engine = done_rx.await.unwrap_or(Err(EngineStopped::Panicked));
                finish(engine, http.and(Err(std::io::Error::other("it ended without being asked to"))))
            }
        }
    })
}

/// The outcome once both halves have ended.
fn finish(engine: Result<(), EngineStopped>, http: std::io::Result<()>) -> CliResult {
    engine.map_err(|why| CliError::trouble(format!("the engine stopped: {why}")))?;
    http.map_err(|e| CliError::trouble(format!("HTTP service: {e}")))
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Why the engine thread ended.
#[derive(Debug, thiserror::Error)]
enum EngineStopped {
    #[error("cannot start its runtime")]
    NoRuntime,
    #[error(transparent)]
    Failed(#[from] steppy_engine::scheduler::EngineError),
    #[error("the engine ended without being asked to")]
    Unasked,
    #[error("the engine thread panicked")]
    Panicked,
}

/// What runs on the engine thread: the engine and the S3 intake.
struct Background {
    engine: Engine,
    store: Store,
    db_path: PathBuf,
    watch: Option<String>,
    stop: watch::Receiver<bool>,
}

impl Background {
    /// Runs until `stop`; `Err` says why the engine stopped for good.
    fn run(self) -> Result<(), EngineStopped> {
        let runtime = setup::runtime().map_err(|_| EngineStopped::NoRuntime)?;
        runtime.block_on(async {
            let engine = self.engine.serve(stopped(self.stop.clone()));
            let intake = intake(
                self.watch.as_deref(),
                self.store.clone(),
                &self.db_path,
                self.stop.clone(),
            );
            let (engine, ()) = tokio::join!(engine, intake);
            engine.map_err(EngineStopped::Failed)
        })
    }
}

/// Watches `url` for uploaded plans until `stop` (nothing without `--watch`).
async fn intake(url: Option<&str>, store: Store, db_path: &Path, stop: watch::Receiver<bool>) {
    let Some(url) = url else { return };
    let registry = Arc::new(setup::registry(db_path));
    let intake = match Intake::new(setup::aws(), store, registry, url) {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(target: "steppy::intake", "--watch: {}", printable(&e.to_string()));
            return;
        }
    };
    println!("steppy serve: watching {url}");
    // Object keys and service errors are outside text: printed escaped.
    let taken = |t: &Taken| match t {
        Taken::Started { key, execution_id, .. } => say!("{key}: started execution {execution_id}"),
        Taken::Refused { key, problems, .. } => say!(
            "{key}: invalid, not started ({} problem(s); see {key}.errors.json)",
            problems.len()
        ),
        Taken::Skipped { key, error, .. } => tracing::warn!(
            target: "steppy::intake",
            key = %printable(key),
            "{}: {} (trying again)",
            printable(key),
            printable(error)
        ),
    };
    let failed = |e: &str| tracing::warn!(target: "steppy::intake", "watching {url}: {} (trying again)", printable(e));
    intake
        .run(setup::aws().settings.poll_interval, stopped(stop), taken, failed)
        .await;
}
