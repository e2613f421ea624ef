//! The S3 intake record: which plan objects (`source`, `key`, `version`) were already taken in.
//!
//! `steppy serve --watch s3://bucket/prefix/` must start every new plan object exactly once,
//! also across restarts and with several watchers. The row for an object is written in the
//! **same transaction** as the execution it starts ([`Store::submit_from_intake`]), and the
//! primary key makes a second insert for the same object a no-op: a crash either left both the
//! row and the execution, or neither, and a concurrent watcher loses the race cleanly.

use super::submit::insert_execution;
use super::{Store, StoreResult};
use crate::plan::Plan;
use rusqlite::{OptionalExtension, params};

/// What became of a plan object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// It was valid and this execution was started for it.
    Started(String),
    /// It was invalid; its errors were reported and it was not started.
    Refused,
}

impl Store {
    /// What became of object `key` at `version` from `source` (`s3://bucket/prefix/`), if it
    /// was already taken in.
    pub fn intake_outcome(&self, source: &str, key: &str, version: &str) -> StoreResult<Option<IntakeOutcome>> {
        let row: Option<(String, Option<String>)> = self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT outcome, execution_id FROM intake WHERE source = ?1 AND key = ?2 AND version = ?3",
                    params![source, key, version],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        })?;
        Ok(row.map(|(outcome, id)| match (outcome.as_str(), id) {
            ("started", Some(id)) => IntakeOutcome::Started(id),
            _ => IntakeOutcome::Refused,
        }))
    }

    /// Records the object and submits `plan` for it in one transaction. Returns the new
    /// execution id, or `None` if the object was already taken in (nothing is written then).
    pub fn submit_from_intake(
        &self,
        plan: &Plan,
        source: &str,
        key: &str,
        version: &str,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        self.write(|tx| {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO intake (source, key, version, outcome, at_ms) VALUES (?1, ?2, ?3, 'started', ?4)",
                params![source, key, version, now_ms],
            )?;
            if inserted == 0 {
                return Ok(None); // nothing was written
            }
            let id = insert_execution(tx, plan, now_ms, None)?;
            tx.execute(
                "UPDATE intake SET execution_id = ?4 WHERE source = ?1 AND key = ?2 AND version = ?3",
                params![source, key, version, id],
            )?;
            Ok(Some(id))
        })
    }

    /// Records that the object was refused (invalid). Returns false if it was already recorded.
    pub fn refuse_intake(&self, source: &str, key: &str, version: &str, now_ms: i64) -> StoreResult<bool> {
        let inserted = self.write(|tx| {
            Ok(tx.execute(
                "INSERT OR IGNORE INTO intake (source, key, version, outcome, at_ms) VALUES (?1, ?2, ?3, 'refused', ?4)",
                params![source, key, version, now_ms],
            )?)
        })?;
        Ok(inserted == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        serde_json::from_str(r#"{"stages":[{"name":"s","steps":[{"name":"w","type":"Wait","seconds":1}]}]}"#)
            .expect("plan")
    }

    #[test]
    fn an_object_is_taken_in_once_and_atomically_with_its_execution() {
        let store = Store::open_in_memory().expect("store");
        let src = "s3://b/p/";
        assert_eq!(store.intake_outcome(src, "p/input.json", "e1").expect("read"), None);
        let id = store
            .submit_from_intake(&plan(), src, "p/input.json", "e1", 1)
            .expect("submit")
            .expect("new");
        assert_eq!(
            store
                .submit_from_intake(&plan(), src, "p/input.json", "e1", 2)
                .expect("submit"),
            None
        );
        assert_eq!(
            store.intake_outcome(src, "p/input.json", "e1").expect("read"),
            Some(IntakeOutcome::Started(id))
        );
        assert_eq!(store.list().expect("list").len(), 1);
        // A new version of the same key is a new plan.
        assert!(
            store
                .submit_from_intake(&plan(), src, "p/input.json", "e2", 3)
                .expect("submit")
                .is_some()
        );
        assert!(store.refuse_intake(src, "p/bad.json", "e1", 4).expect("refuse"));
        assert!(!store.refuse_intake(src, "p/bad.json", "e1", 5).expect("refuse"));
        assert_eq!(
            store.intake_outcome(src, "p/bad.json", "e1").expect("read"),
            Some(IntakeOutcome::Refused)
        );
    }
}
