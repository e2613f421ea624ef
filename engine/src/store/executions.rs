//! Executions and their steps: group-committing batches of events with the
//! matching state changes, loading unfinished work, listing and reading histories.

use super::{CorruptValue, Refusal, Store, StoreError, StoreResult};
use crate::events::{Event, EventType};
use crate::executor::RunningWork;
use crate::plan::Plan;
use crate::state::{ExecutionState, StepState, check_execution, check_step};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The materialized current state of one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub stage: usize,
    pub index: usize,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: StepState,
    /// The current (latest) attempt, 1-based; 0 before the first start.
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<Value>,
    /// When the current attempt times out (epoch ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<i64>,
    /// When the next attempt starts, while waiting for a retry (epoch ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    /// When the current attempt's start intent was recorded (epoch ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_started_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// One execution: its summary, its plan and its steps' current state.
#[derive(Debug, Clone)]
pub struct ExecutionRecord {
    pub summary: ExecutionSummary,
    pub plan: Plan,
    pub steps: Vec<StepRecord>,
}

/// What `steppy list` shows of an execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionSummary {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub state: ExecutionState,
    pub current_stage: usize,
    pub stage_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub abort_requested: bool,
    pub stop_running: bool,
}

/// A change of an execution's state, checked against the state machine.
#[derive(Debug, Clone)]
pub struct ExecWrite {
    pub from: ExecutionState,
    pub to: ExecutionState,
    pub current_stage: usize,
    pub reason: Option<String>,
}

/// One event plus the state changes it implies, applied together.
#[derive(Debug, Clone)]
pub struct Change {
    pub execution_id: Arc<str>,
    pub kind: EventType,
    pub stage: Option<usize>,
    pub step: Option<usize>,
    pub details: Value,
    /// The step's previous state and its new row (state change checked unless unchanged).
    pub step_write: Option<(StepState, StepRecord)>,
    pub exec_write: Option<ExecWrite>,
}

/// The events of one scheduler tick, committed in one transaction (group commit).
#[derive(Debug, Default)]
pub struct Batch {
    pub changes: Vec<Change>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
    pub fn len(&self) -> usize {
        self.changes.len()
    }
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }
}

fn json_text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(|v| v.to_string())
}

fn parse_json(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

/// A stored state (or event type) of `table`.`column` in `row`; an unknown one is a
/// [`CorruptValue`].
fn parse_state<T: std::str::FromStr<Err = crate::unknown_name::UnknownName>>(
    text: String,
    table: &'static str,
    column: &'static str,
    row: impl FnOnce() -> String,
) -> rusqlite::Result<T> {
    text.parse().map_err(|e: crate::unknown_name::UnknownName| {
        CorruptValue {
            table,
            column,
            row: row(),
            problem: format!("is not valid: {e}"),
            source: None,
        }
        .in_row()
    })
}

/// Names the `steps` row `r` (for a [`CorruptValue`]).
fn step_row(r: &Row<'_>) -> String {
    let id = r.get::<_, String>("execution_id").unwrap_or_default();
    let stage = r.get::<_, i64>("stage").unwrap_or_default();
    let idx = r.get::<_, i64>("idx").unwrap_or_default();
    format!("step {stage}.{idx} of execution {id}")
}

/// Names the `executions` row `r` (for a [`CorruptValue`]).
fn execution_row(r: &Row<'_>) -> String {
    format!("execution {}", r.get::<_, String>("id").unwrap_or_default())
}

fn step_from_row(r: &Row<'_>) -> rusqlite::Result<StepRecord> {
    Ok(StepRecord {
        stage: r.get::<_, i64>("stage")? as usize,
        index: r.get::<_, i64>("idx")? as usize,
        name: r.get("name")?,
        kind: r.get("type")?,
        state: parse_state(r.get("state")?, "steps", "state", || step_row(r))?,
        attempt: r.get::<_, i64>("attempt")? as u32,
        handle: parse_json(r.get("handle")?),
        deadline_ms: r.get("deadline_ms")?,
        retry_at_ms: r.get("retry_at_ms")?,
        started_ms: r.get("started_ms")?,
        attempt_started_ms: r.get("attempt_started_ms")?,
        ended_ms: r.get("ended_ms")?,
        reason: r.get("reason")?,
        output: parse_json(r.get("output")?),
    })
}

const SUMMARY_COLUMNS: &str =
    "id, name, state, current_stage, stage_count, reason, created_ms, updated_ms, abort_requested, stop_running";

fn summary_from_row(r: &Row<'_>) -> rusqlite::Result<ExecutionSummary> {
    Ok(ExecutionSummary {
        id: r.get("id")?,
        name: r.get("name")?,
        state: parse_state(r.get("state")?, "executions", "state", || execution_row(r))?,
        current_stage: r.get::<_, i64>("current_stage")? as usize,
        stage_count: r.get::<_, i64>("stage_count")? as usize,
        reason: r.get("reason")?,
        created_ms: r.get("created_ms")?,
        updated_ms: r.get("updated_ms")?,
        abort_requested: r.get("abort_requested")?,
        stop_running: r.get("stop_running")?,
    })
}

/// One event to append with [`append_events`].
pub(super) struct NewEvent<'a> {
    pub kind: EventType,
    pub stage: Option<usize>,
    pub step: Option<usize>,
    pub details: &'a Value,
}

/// Appends one event inside an open transaction, taking the execution's next sequence number.
pub(super) fn append_event(
    tx: &rusqlite::Connection,
    execution_id: &str,
    now_ms: i64,
    kind: EventType,
    stage: Option<usize>,
    step: Option<usize>,
    details: &Value,
) -> StoreResult<()> {
    append_events(
        tx,
        execution_id,
        now_ms,
        &[NewEvent {
            kind,
            stage,
            step,
            details,
        }],
    )
}

/// Appends `events`, in order, inside an open transaction: one update reserves their sequence
/// numbers, then one insert each (all statements prepared once per connection).
pub(super) fn append_events(
    tx: &rusqlite::Connection,
    execution_id: &str,
    now_ms: i64,
    events: &[NewEvent<'_>],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let count = events.len() as i64;
    let first: Option<i64> = tx
        .prepare_cached(
            "UPDATE executions SET next_seq = next_seq + ?3, updated_ms = ?2 WHERE id = ?1 RETURNING next_seq - ?3",
        )
        .and_then(|mut st| {
            st.query_row(params![execution_id, now_ms, count], |r| r.get(0))
                .optional()
        })?;
    let first = first.ok_or_else(|| StoreError::UnknownExecution(execution_id.to_string()))?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (execution_id, seq, at_ms, type, stage, step, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for (seq, e) in (first..).zip(events) {
        let (stage, step) = (e.stage.map(|s| s as i64), e.step.map(|s| s as i64));
        insert.execute(params![
            execution_id,
            seq,
            now_ms,
            e.kind.as_str(),
            stage,
            step,
            e.details.to_string()
        ])?;
    }
    Ok(())
}

impl Store {
    /// Commits every change of `batch` in one transaction: events appended with consecutive
    /// sequence numbers, step and execution rows updated. Each state change is checked by the
    /// state machine and against the stored previous state; any refusal rolls back the batch.
    pub fn apply(&self, batch: &Batch, now_ms: i64) -> StoreResult<()> {
        self.apply_fenced(batch, now_ms, None)
    }

    /// [`Store::apply`] for the driver holding leases as `owner`: the lease is the fence. If
    /// `owner` no longer holds the lease of an execution in the batch (another process took it
    /// over while this one was stopped or cut off), nothing is applied and the error is
    /// [`Refusal::LeaseLost`] naming that execution; a row in another state than this
    /// process last saw is [`StoreError::Stale`].
    pub fn apply_leased(&self, batch: &Batch, now_ms: i64, owner: &str) -> StoreResult<()> {
        self.apply_fenced(batch, now_ms, Some(owner))
    }

    fn apply_fenced(&self, batch: &Batch, now_ms: i64, owner: Option<&str>) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut next_seq: HashMap<&str, i64> = HashMap::new();
            {
                let mut read_seq = tx
                    .prepare_cached("SELECT next_seq FROM executions WHERE id = ?1")?;
                let mut read_owner = tx
                    .prepare_cached("SELECT owner FROM leases WHERE execution_id = ?1")?;
                let mut insert_event = tx
                    .prepare_cached("INSERT INTO events (execution_id, seq, at_ms, type, stage, step, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
                let mut update_step = tx
                    .prepare_cached(
                        "UPDATE steps SET state = ?4, attempt = ?5, handle = ?6, deadline_ms = ?7, retry_at_ms = ?8, started_ms = ?9, \
                         ended_ms = ?10, reason = ?11, output = ?12, attempt_started_ms = ?14 \
                         WHERE execution_id = ?1 AND stage = ?2 AND idx = ?3 AND state = ?13",
                    )?;
                let mut update_exec = tx
                    .prepare_cached(
                        "UPDATE executions SET state = ?2, current_stage = ?3, reason = ?4 WHERE id = ?1 AND state = ?5",
                    )?;
                for c in &batch.changes {
                    let id: &str = &c.execution_id;
                    let seq = match next_seq.get_mut(id) {
                        Some(seq) => seq,
                        None => {
                            let s: i64 = read_seq
                                .query_row([id], |r| r.get(0))
                                .optional()
                                ?
                                .ok_or_else(|| StoreError::UnknownExecution(id.to_string()))?;
                            if let Some(owner) = owner {
                                let holder: Option<String> =
                                    read_owner.query_row([id], |r| r.get(0)).optional()?;
                                if holder.as_deref() != Some(owner) {
                                    return Err(StoreError::Refused(Refusal::LeaseLost {
                                        execution_id: id.to_string(),
                                    }));
                                }
                            }
                            next_seq.entry(id).or_insert(s)
                        }
                    };
                    insert_event
                        .execute(params![
                            id,
                            *seq,
                            now_ms,
                            c.kind.as_str(),
                            c.stage.map(|s| s as i64),
                            c.step.map(|s| s as i64),
                            c.details.to_string()
                        ])
                        ?;
                    *seq += 1;
                    if let Some((from, row)) = &c.step_write {
                        if *from != row.state {
                            check_step(*from, row.state)?;
                        }
                        let n = update_step
                            .execute(params![
                                id,
                                row.stage as i64,
                                row.index as i64,
                                row.state.as_str(),
                                row.attempt as i64,
                                json_text(&row.handle),
                                row.deadline_ms,
                                row.retry_at_ms,
                                row.started_ms,
                                row.ended_ms,
                                row.reason,
                                json_text(&row.output),
                                from.as_str(),
                                row.attempt_started_ms
                            ])
                            ?;
                        if n != 1 {
                            return Err(StoreError::Stale {
                                execution_id: id.to_string(),
                                what: format!("step {}.{} is not {from}", row.stage, row.index),
                            });
                        }
                    }
                    if let Some(w) = &c.exec_write {
                        if w.from != w.to {
                            check_execution(w.from, w.to)?;
                        }
                        let n = update_exec
                            .execute(params![
                                id,
                                w.to.as_str(),
                                w.current_stage as i64,
                                w.reason,
                                w.from.as_str()
                            ])
                            ?;
                        if n != 1 {
                            return Err(StoreError::Stale {
                                execution_id: id.to_string(),
                                what: format!("it is not {}", w.from),
                            });
                        }
                    }
                }
                let mut write_seq = tx
                    .prepare_cached("UPDATE executions SET next_seq = ?2, updated_ms = ?3 WHERE id = ?1")?;
                for (id, seq) in &next_seq {
                    write_seq.execute(params![id, seq, now_ms])?;
                }
            }
            Ok(())
        })?;
        self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Ids of executions that are not finished (PENDING or RUNNING), oldest first.
    pub fn unfinished_ids(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut st = conn.prepare_cached(
                "SELECT id FROM executions WHERE state IN ('PENDING', 'RUNNING') ORDER BY created_ms, id",
            )?;
            let ids = st.query_map([], |r| r.get(0)).and_then(|rows| rows.collect())?;
            Ok(ids)
        })
    }

    /// Loads one execution with its plan and every step's current state.
    pub fn load(&self, id: &str) -> StoreResult<ExecutionRecord> {
        self.read(|conn| {
            let summary: ExecutionSummary = conn
                .prepare_cached(&format!("SELECT {SUMMARY_COLUMNS} FROM executions WHERE id = ?1"))?
                .query_row([id], summary_from_row)
                .optional()?
                .ok_or_else(|| StoreError::UnknownExecution(id.to_string()))?;
            let plan_json: String = conn
                .prepare_cached("SELECT plan_json FROM plans WHERE execution_id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?
                .ok_or_else(|| {
                    StoreError::CorruptValue(Box::new(CorruptValue {
                        table: "plans",
                        column: "plan_json",
                        row: format!("execution {id}"),
                        problem: "is missing".into(),
                        source: None,
                    }))
                })?;
            let plan: Plan = serde_json::from_str(&plan_json).map_err(|e| {
                StoreError::CorruptValue(Box::new(CorruptValue::json(
                    "plans",
                    "plan_json",
                    format!("execution {id}"),
                    e,
                )))
            })?;
            let mut st = conn.prepare_cached("SELECT * FROM steps WHERE execution_id = ?1 ORDER BY stage, idx")?;
            let steps = st.query_map([id], step_from_row).and_then(|rows| rows.collect())?;
            Ok(ExecutionRecord { summary, plan, steps })
        })
    }

    /// Summaries of every execution, newest first.
    pub fn list(&self) -> StoreResult<Vec<ExecutionSummary>> {
        self.read(|conn| {
            let mut st = conn.prepare(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM executions ORDER BY created_ms DESC, id DESC"
            ))?;
            let rows = st.query_map([], summary_from_row).and_then(|rows| rows.collect())?;
            Ok(rows)
        })
    }

    /// The full history of an execution, in order.
    pub fn history(&self, id: &str) -> StoreResult<Vec<Event>> {
        self.read(|conn| {
            let exists: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM executions WHERE id = ?1)", [id], |r| {
                r.get(0)
            })?;
            if !exists {
                return Err(StoreError::UnknownExecution(id.to_string()));
            }
            let mut st = conn.prepare_cached(
                "SELECT seq, at_ms, type, stage, step, details FROM events WHERE execution_id = ?1 ORDER BY seq",
            )?;
            let events = st
                .query_map([id], |r| {
                    let seq: i64 = r.get(0)?;
                    Ok(Event {
                        seq,
                        at_ms: r.get(1)?,
                        kind: parse_state(r.get(2)?, "events", "type", || format!("event {seq} of execution {id}"))?,
                        stage: r.get::<_, Option<i64>>(3)?.map(|s| s as usize),
                        step: r.get::<_, Option<i64>>(4)?.map(|s| s as usize),
                        details: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or(Value::Null),
                    })
                })
                .and_then(|rows| rows.collect())?;
            Ok(events)
        })
    }

    /// Asks for an execution to be aborted (from any process); the process driving it acts on
    /// the request. Returns the execution's state at the time of the request.
    pub fn request_abort(&self, id: &str, running: RunningWork, now_ms: i64) -> StoreResult<ExecutionState> {
        let stop_running = running.stop_running();
        self.write(|tx| {
            let state: ExecutionState = tx
                .query_row("SELECT id, state FROM executions WHERE id = ?1", [id], |r| {
                    parse_state(r.get("state")?, "executions", "state", || execution_row(r))
                })
                .optional()?
                .ok_or_else(|| StoreError::UnknownExecution(id.to_string()))?;
            if state.is_terminal() {
                return Err(StoreError::Refused(Refusal::ExecutionEnded {
                    id: id.to_string(),
                    state: state.to_string(),
                }));
            }
            tx.execute(
                "UPDATE executions SET abort_requested = 1, stop_running = MAX(stop_running, ?2) WHERE id = ?1",
                params![id, stop_running],
            )?;
            append_event(
                tx,
                id,
                now_ms,
                EventType::ExecutionAbortRequested,
                None,
                None,
                &serde_json::json!({ "stopRunning": stop_running }),
            )?;
            Ok(state)
        })
    }

    /// Of `ids`, those with a pending abort request, with what it asks of running work.
    pub fn abort_requests(&self, ids: &[Arc<str>]) -> StoreResult<Vec<(String, RunningWork)>> {
        self.read(|conn| {
            let mut st =
                conn.prepare_cached("SELECT stop_running FROM executions WHERE id = ?1 AND abort_requested = 1")?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(stop) = st.query_row([&**id], |r| r.get::<_, bool>(0)).optional()? {
                    out.push((id.to_string(), RunningWork::from_stop_running(stop)));
                }
            }
            Ok(out)
        })
    }

    /// Counts the rows of `table` (tests and benchmarks only: feature `testing`).
    #[cfg(any(test, feature = "testing"))]
    pub fn count(&self, table: &str, where_sql: &str) -> StoreResult<i64> {
        self.read(|conn| {
            Ok(
                conn.query_row(&format!("SELECT COUNT(*) FROM {table} WHERE {where_sql}"), [], |r| {
                    r.get(0)
                })?,
            )
        })
    }
}
