//! Opening the database file: the three ways a command opens it ([`OpenMode`]), recognising
//! Steppy's files by `PRAGMA application_id` ([`APPLICATION_ID`]) and refusing any other
//! SQLite file before anything is written to it, and open errors that name the path and say why.
//!
//! A file is Steppy's when its header carries [`APPLICATION_ID`]. A file whose application id is
//! 0 is adopted (and marked) only when it is empty (a new database) or already holds Steppy's
//! tables (a database of a Steppy from before the mark); anything else belongs to another
//! application and is refused untouched: no journal-mode switch, no tables, no mark.

use super::StoreError;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::Path;

/// `PRAGMA application_id` of every Steppy database: the ASCII bytes `STPY` (0x53545059), so
/// `file(1)` and `sqlite3 DB 'PRAGMA application_id'` tell Steppy's files from others.
pub const APPLICATION_ID: i32 = 0x5354_5059;

/// The tables every Steppy database has had since its first schema version.
const FIRST_TABLES: &[&str] = &["executions", "steps", "events", "leases", "approvals", "approval_votes"];

/// How a command opens the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Creates the file (and its directory) when it does not exist: commands that record new
    /// work (`run`, `submit`, `serve`).
    Create,
    /// The database must exist; it is written to (`approve`, `reject`, `abort`, `resume`).
    Existing,
    /// The database must exist; nothing is written to it, so the file, its journal mode and
    /// its schema are left as they are (`list`, `status`, `history`). Only a database of an
    /// earlier Steppy, whose tables this build cannot read yet, is first brought up to date.
    ReadOnly,
}

/// What the file at hand is, read from its header and its tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Identity {
    /// Marked with [`APPLICATION_ID`].
    Steppy,
    /// Unmarked and holding nothing: a new database.
    Empty,
    /// Unmarked but holding Steppy's tables: written by a Steppy from before the mark.
    EarlierSteppy,
    /// Another application's database.
    Foreign,
}

/// Reads what the file behind `conn` is, writing nothing.
pub(super) fn identify(conn: &Connection) -> rusqlite::Result<Identity> {
    let id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if id == APPLICATION_ID {
        return Ok(Identity::Steppy);
    }
    if id != 0 {
        return Ok(Identity::Foreign);
    }
    let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    if objects == 0 {
        return Ok(Identity::Empty);
    }
    let mut found = 0;
    for table in FIRST_TABLES {
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        found += n;
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found == FIRST_TABLES.len() as i64 && version >= 1 {
        Ok(Identity::EarlierSteppy)
    } else {
        Ok(Identity::Foreign)
    }
}

/// Marks the file as Steppy's (a new database, or one of an earlier Steppy being adopted).
pub(super) fn mark(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "application_id", APPLICATION_ID)
}

/// Makes sure the file can be opened as `mode` asks before SQLite is involved, so that a
/// missing file is never created by a command that only reads and every refusal carries the
/// operating system's reason (SQLite's own says only "unable to open database file").
pub(super) fn prepare_file(path: &Path, mode: OpenMode) -> Result<(), StoreError> {
    let shown = || path.display().to_string();
    let open_error = |message: String| StoreError::Open { path: shown(), message };
    if mode == OpenMode::Create
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| open_error(format!("cannot create the directory {}: {e}", dir.display())))?;
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(open_error("it is a directory, not a database file".into())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && mode != OpenMode::Create => {
            return Err(StoreError::NoDatabase(shown()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(open_error(e.to_string())),
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    match mode {
        // Creating the empty file is what SQLite would do first; doing it here gives the
        // operating system's reason when it cannot be done.
        OpenMode::Create => options.write(true).create(true),
        OpenMode::Existing => options.write(true),
        OpenMode::ReadOnly => &mut options,
    };
    let verb = if mode == OpenMode::ReadOnly { "read" } else { "write" };
    options.open(path).map(drop).map_err(|e| match std::fs::metadata(path) {
        Ok(_) => open_error(format!("cannot {verb} the file: {e}")),
        Err(_) => open_error(format!("cannot create the file in {}: {e}", directory(path))),
    })
}

/// The SQLite flags for `mode`.
pub(super) fn flags(mode: OpenMode) -> OpenFlags {
    let access = match mode {
        OpenMode::Create => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        OpenMode::Existing => OpenFlags::SQLITE_OPEN_READ_WRITE,
        OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
    };
    access | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// An error while opening `path`, phrased with the path and the reason: a lock and a damaged
/// file keep their own kinds; everything else says what SQLite could not do and what to check.
pub(super) fn error(path: &Path, e: rusqlite::Error) -> StoreError {
    let shown = path.display().to_string();
    let code = e.sqlite_error_code();
    let sqlite = match &e {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        other => other.to_string(),
    };
    let message = match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => return StoreError::Locked(shown),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => return StoreError::Corrupt(shown),
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => format!(
            "{sqlite}: SQLite keeps {name}-wal and {name}-shm beside the database, so the directory {dir} must be writable as well as the file",
            name = path
                .file_name()
                .map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned()),
            dir = directory(path),
        ),
        Some(ErrorCode::DiskFull) => format!("{sqlite}: the disk is full"),
        _ => sqlite,
    };
    StoreError::Open { path: shown, message }
}

/// The directory holding `path`, for messages.
fn directory(path: &Path) -> String {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.display().to_string(),
        _ => ".".into(),
    }
}
