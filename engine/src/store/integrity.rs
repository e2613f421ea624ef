//! [`Store::check_integrity`]: SQLite's `PRAGMA quick_check` over the whole file, so that
//! `steppy serve` refuses a damaged database at start instead of failing the releases in it one
//! step at a time.

use super::{Store, StoreError, StoreResult};
use rusqlite::ErrorCode;

/// Most problems quoted in the error; `quick_check` may find thousands.
const QUOTED: usize = 3;

impl Store {
    /// Checks every page, index and constraint SQLite can check without comparing indexes to
    /// their tables (`PRAGMA quick_check`: O(size of the file)). A damaged file is
    /// [`StoreError::Damaged`] with the first problems found.
    pub fn check_integrity(&self) -> StoreResult<()> {
        let damaged = |problems: String| StoreError::Damaged {
            path: self.path.to_string(),
            problems,
        };
        let rows = self.read(|conn| {
            Ok(conn.prepare("PRAGMA quick_check").and_then(|mut stmt| {
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
            }))
        })?;
        match rows {
            Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Ok(()),
            Ok(rows) => {
                let mut problems: Vec<String> = rows
                    .iter()
                    .take(QUOTED)
                    .map(|p| crate::text::printable(p).into_owned())
                    .collect();
                if rows.len() > QUOTED {
                    problems.push(format!("{} more", rows.len() - QUOTED));
                }
                Err(damaged(format!("integrity check: {}", problems.join("; "))))
            }
            // A page so damaged that the check itself cannot read past it.
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
                ) =>
            {
                Err(damaged(format!("integrity check: {e}")))
            }
            Err(e) => Err(StoreError::from(e).at(&self.path)),
        }
    }
}
