//! Submitting a plan: the new execution's rows and its first event, written in one
//! transaction, optionally with the lease and who started it ([`SubmitOptions`]).

use super::executions::append_event;
use super::{Store, StoreError, StoreResult};
use crate::events::EventType;
use crate::plan::Plan;
use rusqlite::params;

/// How [`Store::submit`] records a new execution; the default records neither a starter nor
/// a lease.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubmitOptions<'a> {
    /// Who started the execution (for `forbidSelfApproval`).
    pub started_by: Option<&'a str>,
    /// Takes the lease for this owner in the same transaction, so that no other process (a
    /// `steppy serve`) can pick the execution up first.
    pub lease_owner: Option<&'a str>,
}

impl Store {
    /// Records a new execution of `plan` in state PENDING, as `options` say, and returns its id
    /// (a UUID v7, so ids sort by creation time; a resolved plan brings its own, chosen when it
    /// was resolved).
    pub fn submit(&self, plan: &Plan, now_ms: i64, options: SubmitOptions<'_>) -> StoreResult<String> {
        self.write(|tx| {
            let id = insert_execution(tx, plan, now_ms, options.started_by)?;
            if let Some(owner) = options.lease_owner {
                tx.execute(
                    "INSERT INTO leases (execution_id, owner, pid, heartbeat_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![id, owner, std::process::id() as i64, now_ms],
                )?;
            }
            Ok(id)
        })
    }
}

/// The body of [`Store::submit`] inside a caller's open transaction (so other records, such
/// as an S3 intake row, can commit atomically with the new execution).
pub(super) fn insert_execution(
    tx: &rusqlite::Connection,
    plan: &Plan,
    now_ms: i64,
    started_by: Option<&str>,
) -> StoreResult<String> {
    // A resolved plan was rendered for its id (`${execution.id}`); any other gets a new one.
    let id = match &plan.resolved {
        Some(r) => r.execution_id.clone(),
        None => uuid::Uuid::now_v7().to_string(),
    };
    let plan_json = serde_json::to_string(plan).map_err(|source| StoreError::Encode {
        what: format!("the plan of execution {id}"),
        source,
    })?;
    tx.execute(
        "INSERT INTO executions (id, name, state, created_ms, updated_ms, stage_count) VALUES (?1, ?2, 'PENDING', ?3, ?3, ?4)",
        params![id, plan.name, now_ms, plan.stages.len() as i64],
    )?;
    tx.execute(
        "INSERT INTO plans (execution_id, plan_json) VALUES (?1, ?2)",
        params![id, plan_json],
    )?;
    {
        let mut st = tx.prepare_cached("INSERT INTO stages (execution_id, idx, name) VALUES (?1, ?2, ?3)")?;
        for (s, stage) in plan.stages.iter().enumerate() {
            st.execute(params![id, s as i64, stage.name])?;
        }
    }
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO steps (execution_id, stage, idx, name, type, state) VALUES (?1, ?2, ?3, ?4, ?5, 'PENDING')",
        )?;
        for (s, stage) in plan.stages.iter().enumerate() {
            for (i, step) in stage.steps.iter().enumerate() {
                st.execute(params![id, s as i64, i as i64, step.name, step.kind.type_name()])?;
            }
        }
    }
    let mut details = serde_json::json!({ "name": plan.name, "stages": plan.stages.len(), "steps": plan.step_count() });
    if let Some(who) = started_by {
        details["startedBy"] = who.into();
    }
    append_event(tx, &id, now_ms, EventType::ExecutionSubmitted, None, None, &details)?;
    Ok(id)
}
