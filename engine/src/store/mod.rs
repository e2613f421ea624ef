//! The durable store: one SQLite file in WAL mode holding the execution histories, the
//! materialized current state (executions, steps), leases and approvals.
//!
//! - [`error`]: [`StoreError`] (with its sources) and [`CorruptValue`], a stored value that
//!   does not read back.
//! - [`refusal`]: [`Refusal`], the one type of the store's refusals.
//! - [`open`]: the open modes, recognising Steppy's files (`PRAGMA application_id`), open errors.
//! - [`integrity`]: `PRAGMA quick_check`, for `serve` to refuse a damaged file at start.
//! - [`schema`]: the migrations (tracked by `PRAGMA user_version`).
//! - [`submit`]: submitting a plan ([`SubmitOptions`]: who started it, the lease).
//! - [`executions`]: group-committing batches of events, loading and listing.
//! - [`approvals`]: approval requests and their first-decision-wins voting.
//! - [`decisions`]: deciding approvals with audited refusals; token-free approval views.
//! - [`lease`]: which process drives which execution.
//! - [`checkpoint`]: WAL checkpoints on a thread of their own, off the commit path.
//! - [`intake`]: which S3 plan objects were already taken in (started or refused), once each.
//! - [`tallies`]: executions by state and steps by type and state, counted (for `/metrics`).
//! - [`task_tokens`]: decisions on AWS Step Functions task tokens (claimed once, then sent),
//!   and the audit of every attempt on them.
//!
//! A [`Store`] is a cheap clone around one connection; everything a process writes goes
//! through it, in short transactions (a background checkpointer, once started, has a
//! connection of its own that only checkpoints).

mod approvals;
mod checkpoint;
mod decisions;
mod error;
mod executions;
mod intake;
mod integrity;
mod lease;
mod open;
mod refusal;
mod schema;
mod sfn_runs;
#[cfg(test)]
mod stored_values_tests;
mod submit;
mod tallies;
mod task_tokens;

pub use approvals::{Approval, ApprovalState, Decision, NewApproval, Vote};
pub use decisions::{ApprovalView, Attempt, DecideError, Decided, TIMEOUT_SETTLER, Verdict, VoteView, same_identity};
pub use error::{CorruptValue, StoreError, StoreResult};
pub use executions::{Batch, Change, ExecWrite, ExecutionRecord, ExecutionSummary, StepRecord};
pub use intake::IntakeOutcome;
pub use lease::LEASE_STALE_MS;
pub use open::{APPLICATION_ID, OpenMode};
pub use refusal::Refusal;
pub use sfn_runs::SfnRun;
pub use submit::SubmitOptions;
pub use tallies::{StepTally, Tallies};
pub use task_tokens::{Claim, TASK_TOKEN_SEND_STALE_MS, TaskTokenAudit, TaskTokenDecision, TaskTokenState};

use open::Identity;
use rusqlite::{Connection, ErrorCode};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// How hard each commit is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: a commit survives power loss (the default).
    Full,
    /// `synchronous=NORMAL`: a commit survives a process crash, not a power loss.
    Normal,
}

/// What [`Store::prepare`] came to.
enum Prepared {
    Ready(Store),
    /// A read-only open of a database whose schema is older than this build's.
    Outdated,
}

/// The store; clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: Arc<str>,
    commits: Arc<std::sync::atomic::AtomicUsize>,
    /// Passes of the background checkpointer, if one was started ([`checkpoint`]).
    checkpoints: Arc<std::sync::atomic::AtomicUsize>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> StoreResult<Store> {
        Self::open_with(path, Durability::Full)
    }

    /// [`Store::open`] with an explicit [`Durability`].
    pub fn open_with(path: &Path, durability: Durability) -> StoreResult<Store> {
        Self::open_file(path, OpenMode::Create, durability)
    }

    /// Opens the database at `path` as `mode` says: [`OpenMode::Create`] is [`Store::open`];
    /// the other modes refuse with [`StoreError::NoDatabase`] where there is none, creating
    /// nothing, and [`OpenMode::ReadOnly`] writes nothing.
    pub fn open_as(path: &Path, mode: OpenMode) -> StoreResult<Store> {
        Self::open_file(path, mode, Durability::Full)
    }

    fn open_file(path: &Path, mode: OpenMode, durability: Durability) -> StoreResult<Store> {
        let outdated = || StoreError::Open {
            path: path.display().to_string(),
            message: "its schema could not be brought up to date".into(),
        };
        match Self::open_once(path, mode, durability)? {
            Prepared::Ready(store) => Ok(store),
            // A database of an earlier Steppy lacks tables this build reads: bring it up to
            // date (the one write a read-only command makes), then read it as asked.
            Prepared::Outdated => {
                Self::open_once(path, OpenMode::Existing, durability)?;
                match Self::open_once(path, mode, durability)? {
                    Prepared::Ready(store) => Ok(store),
                    Prepared::Outdated => Err(outdated()),
                }
            }
        }
    }

    fn open_once(path: &Path, mode: OpenMode, durability: Durability) -> StoreResult<Prepared> {
        open::prepare_file(path, mode)?;
        let conn = Connection::open_with_flags(path, open::flags(mode)).map_err(|e| open::error(path, e))?;
        Self::prepare(conn, path, mode, durability)
    }

    /// A private in-memory store (tests).
    pub fn open_in_memory() -> StoreResult<Store> {
        let conn = Connection::open_in_memory().map_err(|e| StoreError::from_sqlite(":memory:", e))?;
        match Self::prepare(conn, Path::new(":memory:"), OpenMode::Create, Durability::Normal)? {
            Prepared::Ready(store) => Ok(store),
            Prepared::Outdated => Err(StoreError::Internal(
                "a new in-memory database cannot be outdated".into(),
            )),
        }
    }

    /// Checks what the file is, then sets the connection up: busy timeout; for writers the mark,
    /// WAL, durability and migrations; for readers only what reading needs.
    fn prepare(mut conn: Connection, path: &Path, mode: OpenMode, durability: Durability) -> StoreResult<Prepared> {
        let err = |e| open::error(path, e);
        let shown = path.display().to_string();
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
        // Reading the header first also detects a file that is not a database at all.
        let identity = open::identify(&conn).map_err(err)?;
        match (identity, mode) {
            (Identity::Foreign, _) => return Err(StoreError::Foreign(shown)),
            (Identity::Empty, OpenMode::Existing | OpenMode::ReadOnly) => return Err(StoreError::NoDatabase(shown)),
            (Identity::Empty | Identity::EarlierSteppy, OpenMode::Create | OpenMode::Existing) => {
                open::mark(&conn).map_err(err)?
            }
            (Identity::Steppy, _) | (Identity::EarlierSteppy, OpenMode::ReadOnly) => {}
        }
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
        if version as usize > schema::latest_version() {
            return Err(StoreError::TooNew {
                path: shown,
                found: version as usize,
                known: schema::latest_version(),
            });
        }
        if mode == OpenMode::ReadOnly {
            if (version as usize) < schema::latest_version() {
                return Ok(Prepared::Outdated);
            }
            conn.pragma_update(None, "query_only", "ON").map_err(err)?;
            return Self::wrap(conn, path).map(Prepared::Ready);
        }
        // Switching a brand-new file to WAL needs a moment of exclusive access, and SQLite does
        // not call the busy handler for it: when several processes create the database at
        // once, the others retry here (for up to the busy timeout).
        let mut waited = std::time::Duration::ZERO;
        while let Err(e) = conn.pragma_update(None, "journal_mode", "WAL") {
            let busy = matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            );
            if !busy || waited >= std::time::Duration::from_secs(5) {
                return Err(err(e));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            waited += std::time::Duration::from_millis(20);
        }
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync).map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        schema::migrate(&mut conn).map_err(err)?;
        Self::wrap(conn, path).map(Prepared::Ready)
    }

    /// The store around a prepared connection.
    fn wrap(conn: Connection, path: &Path) -> StoreResult<Store> {
        // Plans never depend on bound values (query planner stability guarantee). Without it,
        // SQLite marks some joined queries (the approval view) to be re-planned whenever a
        // parameter is bound, so every cached statement was parsed again on every use.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(|e| open::error(path, e))?;
        conn.set_prepared_statement_cache_capacity(64);
        let path = path.display().to_string().into();
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path,
            commits: Arc::default(),
            checkpoints: Arc::default(),
        })
    }

    /// How long to wait for another process's write lock before giving up with
    /// [`StoreError::Locked`] (default 5 s).
    pub fn set_busy_timeout(&self, timeout: std::time::Duration) -> StoreResult<()> {
        self.read(|conn| Ok(conn.busy_timeout(timeout)?))
    }

    /// The path the store was opened from (for messages).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// How many batches this handle has group-committed (benchmarks).
    pub fn batches_committed(&self) -> usize {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-applied transaction behind
        // (rusqlite rolls back on drop), so a poisoned mutex is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in an `IMMEDIATE` transaction and commits it if `f` returns `Ok` (an `Err`
    /// rolls it back). Every rusqlite error on the way, `?`-converted to
    /// [`StoreError::Sqlite`], is classified here, the one place (see [`StoreError::at`]).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut rusqlite::Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.lock();
        let run = || -> StoreResult<T> {
            let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let value = f(&mut tx)?;
            tx.commit()?;
            Ok(value)
        };
        run().map_err(|e| e.at(&self.path))
    }

    /// Runs `f` on the connection, outside any explicit transaction: reads only (every write goes
    /// through [`Store::write`]), with errors classified as there.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.with_connection(|conn| f(conn))
    }

    /// [`Store::read`] for what needs the connection itself (installing a hook).
    fn with_connection<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.lock();
        f(&mut conn).map_err(|e| e.at(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_lock_held_elsewhere_is_a_clear_locked_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let store = Store::open(&path).expect("open");
        store
            .set_busy_timeout(std::time::Duration::from_millis(50))
            .expect("timeout");
        let other = Connection::open(&path).expect("second connection");
        other.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
        let err = store
            .request_abort("x", crate::executor::RunningWork::LetFinish, 0)
            .expect_err("locked");
        assert!(matches!(err, StoreError::Locked(_)), "{err}");
        assert!(err.to_string().contains("is locked by another process"), "{err}");
    }

    #[test]
    fn reopening_applies_no_migration_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        drop(Store::open(&path).expect("first open"));
        let store = Store::open(&path).expect("second open");
        let version: i64 = store
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version as usize, schema::latest_version());
        let mode: String = store
            .lock()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
    }
}
