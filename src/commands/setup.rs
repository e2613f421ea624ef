//! What the engine commands share: finding and opening the database, building the engine with
//! this build's executors, and a tokio runtime. Errors go back as [`CliError`]s.

use crate::cli::{AwsArgs, ParamArgs};
use crate::error::{CliError, CliResult};
use crate::progress::Progress;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use steppy_engine::executor::Registry;
use steppy_engine::scheduler::Engine;
use steppy_engine::store::{OpenMode, Store};
use steppy_executors::aws::settings::{DEFAULT_PUBLIC_URL, parse_duration};
use steppy_executors::aws::{Aws, AwsSettings};

/// Where the database lives: `--db`/`STEPPY_DB`, else `<data dir>/steppy/steppy.db`.
pub fn db_path(db: Option<PathBuf>) -> Result<PathBuf, CliError> {
    match db {
        Some(p) => Ok(p),
        None => dirs::data_dir()
            .map(|d| d.join("steppy").join("steppy.db"))
            .ok_or_else(|| CliError::trouble("cannot find a per-user data directory; pass --db PATH or set STEPPY_DB")),
    }
}

/// The Notify outbox: `outbox.jsonl` next to the database.
pub fn outbox_path(db: &Path) -> PathBuf {
    db.parent().unwrap_or_else(|| Path::new(".")).join("outbox.jsonl")
}

/// Opens the store as `mode` says, or says why not (exit code 2): commands that record new
/// work create the database, the others need one to exist, and read-only commands write
/// nothing to it.
pub fn open(db: Option<PathBuf>, mode: OpenMode) -> Result<(Store, PathBuf), CliError> {
    let path = db_path(db)?;
    let store = Store::open_as(&path, mode).map_err(CliError::trouble)?;
    Ok((store, path))
}

/// The engine with every executor this build has.
pub fn engine(store: Store, db: &Path, progress: Arc<Progress>) -> Engine {
    Engine::new(store, Arc::new(registry(db)), progress.clone(), progress)
}

/// The AWS plumbing shared by every AWS executor of this process (see [`configure_aws`]).
static AWS: OnceLock<Arc<Aws>> = OnceLock::new();

/// Records the AWS settings of the command line (once, before any command runs).
pub fn configure_aws(args: &AwsArgs) -> CliResult {
    let poll_interval =
        parse_duration(&args.poll_interval).map_err(|e| CliError::trouble(format!("--poll-interval: {e}")))?;
    let settings = AwsSettings {
        topic_arn: args.topic_arn.clone().filter(|t| !t.is_empty()),
        public_url: args
            .public_url
            .clone()
            .unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_string()),
        poll_interval,
    };
    let _ = AWS.set(Aws::from_environment(settings));
    Ok(())
}

/// The parameter values of the command line (see [`configure_params`]).
static PARAMS: OnceLock<BTreeMap<String, String>> = OnceLock::new();

/// Records `--params-file` and `--param` values (once, before any command runs): the file's,
/// then each `--param` over them. A malformed one is a usage error.
pub fn configure_params(args: &ParamArgs) -> CliResult {
    let mut values = match &args.params_file {
        Some(path) => {
            let shown = path.display().to_string();
            let bytes = steppy_engine::validate::read_source(path)
                .map_err(|e| CliError::trouble(format!("--params-file: cannot read {shown}: {e}")))?;
            steppy_engine::resolve::params_file(&shown, &bytes)
                .map_err(|e| CliError::trouble(format!("--params-file: {e}")))?
        }
        None => BTreeMap::new(),
    };
    for p in &args.params {
        let Some((name, value)) = p.split_once('=') else {
            return Err(CliError::trouble(format!(
                "--param {p}: write NAME=VALUE (e.g. --param version=1.4.2)"
            )));
        };
        if name.trim().is_empty() {
            return Err(CliError::trouble(format!("--param {p}: the name before '=' is empty")));
        }
        values.insert(name.trim().to_string(), value.to_string());
    }
    let _ = PARAMS.set(values);
    Ok(())
}

/// The parameter values given on the command line (none if [`configure_params`] was not called).
pub fn params() -> BTreeMap<String, String> {
    PARAMS.get().cloned().unwrap_or_default()
}

/// The process's AWS plumbing (default settings if [`configure_aws`] was not called).
pub fn aws() -> Arc<Aws> {
    AWS.get_or_init(|| Aws::from_environment(AwsSettings::default()))
        .clone()
}

/// Every executor this build has: local, AWS (CodeBuild, CodePipeline) and SNS-backed ones.
pub fn registry(db: &Path) -> Registry {
    steppy_executors::aws_registry(outbox_path(db), aws())
}

/// The tokio runtime for `run`, `resume` and `abort`: one thread. The engine is one driver
/// task plus light attempt tasks, and on one thread a tick's reports arrive together, which
/// makes group commit batches as large as they can be.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::trouble(format!("cannot start the async runtime: {e}")))
}

/// The tokio runtime for `serve`: the engine and the HTTP service on two worker threads.
pub fn server_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::trouble(format!("cannot start the async runtime: {e}")))
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT), or SIGTERM as sent by systemd,
/// Kubernetes and `docker stop`. Every caller gets its own registration, so several tasks can
/// each wait for the same signal.
pub async fn stop_requested() {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// The `--db PATH` to repeat in commands shown to the user, if the database is not the default.
pub fn db_flag(db: &Path) -> String {
    match db_path(None) {
        Ok(default) if default == db => String::new(),
        _ => format!(" --db {}", shell_quote(&db.display().to_string())),
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:=".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// For commands that only print (`list`, `status`, `history`): end quietly when the reader of
/// the output goes away (`steppy history ID | head`) instead of failing on the write. Commands
/// that drive executions keep ignoring SIGPIPE: losing the terminal must not stop a release.
pub fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE; no handler is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
