//! The record of Step Functions executions started by `steppy run --engine sfn`.
//!
//! An execution started in AWS is state that must survive Steppy: its name is written here
//! **before** `StartExecution` is called with it (Step Functions refuses a second execution of
//! the same name, so calling again after a crash starts nothing twice), its ARN once the call
//! answered, and its final status once it ended. `steppy resume` follows the unfinished ones;
//! `steppy list` shows them next to local executions.

use super::{Store, StoreResult};
use rusqlite::{Row, params};
use serde::Serialize;

/// One Step Functions execution started by Steppy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SfnRun {
    /// The execution name chosen before starting it.
    pub name: String,
    pub state_machine_arn: String,
    /// Known once `StartExecution` answered.
    pub execution_arn: Option<String>,
    pub plan_name: Option<String>,
    /// The execution input sent (the same on a retried start).
    pub input: String,
    /// `starting`, `running`, then `succeeded`, `failed` or `aborted`.
    pub status: String,
    pub reason: Option<String>,
    pub created_ms: i64,
    pub ended_ms: Option<i64>,
}

const COLUMNS: &str = "name, state_machine_arn, execution_arn, plan_name, input, status, reason, created_ms, ended_ms";

fn row(r: &Row<'_>) -> rusqlite::Result<SfnRun> {
    Ok(SfnRun {
        name: r.get(0)?,
        state_machine_arn: r.get(1)?,
        execution_arn: r.get(2)?,
        plan_name: r.get(3)?,
        input: r.get(4)?,
        status: r.get(5)?,
        reason: r.get(6)?,
        created_ms: r.get(7)?,
        ended_ms: r.get(8)?,
    })
}

impl Store {
    /// Records that execution `name` of `state_machine_arn` is about to be started.
    pub fn sfn_record(
        &self,
        name: &str,
        state_machine_arn: &str,
        plan_name: Option<&str>,
        input: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO sfn_runs (name, state_machine_arn, plan_name, input, status, created_ms) VALUES (?1, ?2, ?3, ?4, 'starting', ?5)",
                params![name, state_machine_arn, plan_name, input, now_ms],
            )?;
            Ok(())
        })
    }

    /// Records the ARN `StartExecution` answered with.
    pub fn sfn_started(&self, name: &str, execution_arn: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE sfn_runs SET execution_arn = ?2, status = 'running' WHERE name = ?1 AND status = 'starting'",
                params![name, execution_arn],
            )?;
            Ok(())
        })
    }

    /// Records how the execution ended (`succeeded`, `failed`, `aborted`).
    pub fn sfn_ended(&self, name: &str, status: &str, reason: Option<&str>, now_ms: i64) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE sfn_runs SET status = ?2, reason = ?3, ended_ms = ?4 WHERE name = ?1",
                params![name, status, reason, now_ms],
            )?;
            Ok(())
        })
    }

    /// Every recorded run, newest first.
    pub fn sfn_runs(&self) -> StoreResult<Vec<SfnRun>> {
        self.sfn_query(&format!(
            "SELECT {COLUMNS} FROM sfn_runs ORDER BY created_ms DESC, name DESC"
        ))
    }

    /// The runs not known to have ended, oldest first (what `steppy resume` follows).
    pub fn sfn_unfinished(&self) -> StoreResult<Vec<SfnRun>> {
        self.sfn_query(&format!(
            "SELECT {COLUMNS} FROM sfn_runs WHERE ended_ms IS NULL ORDER BY created_ms, name"
        ))
    }

    fn sfn_query(&self, sql: &str) -> StoreResult<Vec<SfnRun>> {
        self.read(|conn| {
            let mut stmt = conn.prepare(sql)?;
            let rows = stmt.query_map([], row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_recorded_before_it_starts_and_followed_until_it_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("s.db")).expect("open");
        store
            .sfn_record("run-1", "arn:sm", Some("plan"), "{}", 10)
            .expect("record");
        // A second record of the same name is refused: a name is started once.
        assert!(store.sfn_record("run-1", "arn:sm", None, "{}", 11).is_err());
        assert_eq!(store.sfn_unfinished().expect("unfinished")[0].status, "starting");
        store.sfn_started("run-1", "arn:ex").expect("started");
        let run = &store.sfn_unfinished().expect("unfinished")[0];
        assert_eq!(
            (run.status.as_str(), run.execution_arn.as_deref()),
            ("running", Some("arn:ex"))
        );
        store.sfn_ended("run-1", "succeeded", None, 20).expect("ended");
        assert!(store.sfn_unfinished().expect("unfinished").is_empty());
        assert_eq!(store.sfn_runs().expect("runs")[0].ended_ms, Some(20));
    }
}
