//! The store's errors: [`StoreError`], with the rusqlite or serde_json error it came from as
//! its source, and [`CorruptValue`], a stored value that does not read back.
//!
//! A rusqlite error becomes a [`StoreError`] in one place: `?` inside [`Store::write`] or
//! [`Store::read`] wraps it as [`StoreError::Sqlite`], and the helper classifies it
//! ([`StoreError::at`]) as locked, corrupt, full, I/O, or left as it is.
//!
//! [`Store::write`]: super::Store::write
//! [`Store::read`]: super::Store::read

use super::Refusal;
use crate::state::IllegalTransition;
use rusqlite::ErrorCode;

/// A problem with the store, phrased for the person reading it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database {0} is locked by another process (try again in a moment)")]
    Locked(String),
    #[error("the database {0} is corrupt or is not a Steppy database")]
    Corrupt(String),
    #[error(
        "the database {path} is damaged ({problems}); restore it from a backup, or move it aside and let Steppy start a new one"
    )]
    Damaged { path: String, problems: String },
    #[error("there is no Steppy database at {0} (pass --db PATH or set STEPPY_DB to use another one)")]
    NoDatabase(String),
    #[error(
        "{0} is not a Steppy database: it is another application's SQLite file, which Steppy leaves untouched (pass --db PATH or set STEPPY_DB to use another file)"
    )]
    Foreign(String),
    #[error("the database {path} was written by a newer Steppy (schema {found}, this build knows {known})")]
    TooNew { path: String, found: usize, known: usize },
    #[error("cannot open the database {path}: {message}")]
    Open { path: String, message: String },
    #[error("no execution with id {0}")]
    UnknownExecution(String),
    /// The store refused the request by a rule of its own (see [`Refusal`], the one type of
    /// refusal).
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("the record changed under us: {0}")]
    Conflict(String),
    /// A batch would change a row of `execution_id` that is not in the state this process
    /// last saw: another process wrote it (this one's view is stale).
    #[error("execution {execution_id} changed under us: {what}")]
    Stale { execution_id: String, what: String },
    #[error("the disk holding the database {0} is full")]
    Full(String),
    #[error("the database {path} could not be read or written: {source}")]
    Io {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// An SQLite failure none of the variants above names.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value that does not read back as what it should be (an unknown state, JSON
    /// that does not parse): the row was written by something other than this Steppy, or damaged.
    #[error(transparent)]
    CorruptValue(Box<CorruptValue>),
    /// A value that could not be written as JSON (`what`: which one).
    #[error("cannot write {what} as JSON: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// The background checkpointer's thread would not start.
    #[error("cannot start the checkpointer: {0}")]
    Thread(#[source] std::io::Error),
    /// Trouble of the store's own machinery that is neither SQLite's nor the disk's.
    #[error("database error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<CorruptValue> for StoreError {
    fn from(e: CorruptValue) -> StoreError {
        StoreError::CorruptValue(Box::new(e))
    }
}

/// A stored value that does not read back: which table, column and row, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("the database holds a value Steppy cannot read: {table}.{column} of {row} {problem}")]
pub struct CorruptValue {
    pub table: &'static str,
    pub column: &'static str,
    /// The row, as people name it (`approval 0190…`, `step 1.2 of execution 0190…`).
    pub row: String,
    /// What is wrong with the value, as the end of a sentence (`is "maybe", not one of …`).
    pub problem: String,
    #[source]
    pub source: Option<serde_json::Error>,
}

impl CorruptValue {
    /// `value` is none of `known`.
    pub(crate) fn unknown(
        table: &'static str,
        column: &'static str,
        row: impl Into<String>,
        value: &str,
        known: &[&str],
    ) -> CorruptValue {
        CorruptValue {
            table,
            column,
            row: row.into(),
            problem: format!(
                "is {:?}, not one of {}",
                crate::text::printable(value),
                known.join(", ")
            ),
            source: None,
        }
    }

    /// JSON that does not parse as what the column holds.
    pub(crate) fn json(
        table: &'static str,
        column: &'static str,
        row: impl Into<String>,
        e: serde_json::Error,
    ) -> CorruptValue {
        CorruptValue {
            table,
            column,
            row: row.into(),
            problem: format!("is not the JSON it should be ({e})"),
            source: Some(e),
        }
    }

    /// The value as an error a row mapper can return; [`StoreError::at`] turns it back into
    /// [`StoreError::CorruptValue`].
    pub(crate) fn in_row(self) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(self))
    }
}

impl StoreError {
    /// The one place a rusqlite error becomes a [`StoreError`] (via [`StoreError::at`]): lock,
    /// corruption, full disk and I/O get their own variants, a [`CorruptValue`] raised inside a
    /// row mapper comes back out, anything else keeps the rusqlite error as its source.
    pub(super) fn from_sqlite(path: &str, e: rusqlite::Error) -> Self {
        let e = match e {
            rusqlite::Error::FromSqlConversionFailure(i, t, inner) => match inner.downcast::<CorruptValue>() {
                Ok(corrupt) => return StoreError::CorruptValue(corrupt),
                Err(inner) => rusqlite::Error::FromSqlConversionFailure(i, t, inner),
            },
            e => e,
        };
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked(path.to_string()),
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt(path.to_string()),
            Some(ErrorCode::DiskFull) => StoreError::Full(path.to_string()),
            Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen | ErrorCode::OutOfMemory) => StoreError::Io {
                path: path.to_string(),
                source: e,
            },
            _ => StoreError::Sqlite(e),
        }
    }

    /// This error as met on the database at `path`: a bare [`StoreError::Sqlite`] (what `?`
    /// makes of a rusqlite error) is classified by [`StoreError::from_sqlite`]; others pass.
    pub(super) fn at(self, path: &str) -> Self {
        match self {
            StoreError::Sqlite(e) => StoreError::from_sqlite(path, e),
            other => other,
        }
    }

    /// True for trouble of the database itself (locked, full, failing I/O, corrupt), which
    /// may pass: the engine retries with backoff instead of stopping or failing a step.
    /// False for refusals and for a view of an execution that is no longer this process's.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Locked(_)
                | StoreError::Corrupt(_)
                | StoreError::Full(_)
                | StoreError::Io { .. }
                | StoreError::Open { .. }
                | StoreError::Sqlite(_)
                | StoreError::CorruptValue(_)
                | StoreError::Encode { .. }
                | StoreError::Thread(_)
                | StoreError::Internal(_)
        )
    }

    /// True for trouble with the database (it cannot be opened, read or written as it is, or
    /// holds a value Steppy cannot read), as opposed to a refused request (unknown execution,
    /// a [`Refusal`], illegal transition): the command line exits 2 for the first and 1 for
    /// the second.
    pub fn is_database_trouble(&self) -> bool {
        self.is_transient()
            || matches!(
                self,
                StoreError::Damaged { .. }
                    | StoreError::NoDatabase(_)
                    | StoreError::Foreign(_)
                    | StoreError::TooNew { .. }
            )
    }

    /// The execution this process must let go of, for [`StoreError::Stale`] and
    /// [`Refusal::LeaseLost`].
    pub fn lost_execution(&self) -> Option<&str> {
        match self {
            StoreError::Stale { execution_id, .. } | StoreError::Refused(Refusal::LeaseLost { execution_id }) => {
                Some(execution_id)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn sqlite(code: ErrorCode) -> rusqlite::Error {
        let extended = match code {
            ErrorCode::DatabaseBusy => 5,
            ErrorCode::DatabaseLocked => 6,
            ErrorCode::SystemIoFailure => 10,
            ErrorCode::DiskFull => 13,
            _ => 1,
        };
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error {
                code,
                extended_code: extended,
            },
            None,
        )
    }

    #[test]
    fn busy_locked_full_and_io_failures_are_database_trouble() {
        for code in [ErrorCode::DatabaseBusy, ErrorCode::DatabaseLocked] {
            let e = StoreError::Sqlite(sqlite(code)).at("s.db");
            assert!(matches!(e, StoreError::Locked(_)), "{e:?}");
            assert!(e.is_database_trouble() && e.is_transient(), "{e}");
        }
        let full = StoreError::Sqlite(sqlite(ErrorCode::DiskFull)).at("s.db");
        assert!(
            matches!(full, StoreError::Full(_)) && full.is_database_trouble(),
            "{full:?}"
        );
        let io = StoreError::Sqlite(sqlite(ErrorCode::SystemIoFailure)).at("s.db");
        assert!(
            matches!(io, StoreError::Io { .. }) && io.is_database_trouble(),
            "{io:?}"
        );
        assert!(io.source().is_some(), "the rusqlite error is kept as the source");
        let other = StoreError::Sqlite(sqlite(ErrorCode::ConstraintViolation)).at("s.db");
        assert!(
            matches!(other, StoreError::Sqlite(_)) && other.is_database_trouble(),
            "{other:?}"
        );
        assert!(other.source().is_some());
    }

    #[test]
    fn refusals_are_not_database_trouble() {
        let refused = StoreError::Refused(Refusal::UnknownToken);
        assert!(!refused.is_database_trouble() && !refused.is_transient());
        let lost = StoreError::Refused(Refusal::LeaseLost {
            execution_id: "x".into(),
        });
        assert!(!lost.is_database_trouble());
        assert_eq!(lost.lost_execution(), Some("x"));
    }
}
