//! Tests: a value written straight into SQLite that Steppy does not know reads back as a
//! [`CorruptValue`] naming its table, column and row, never as a default.

use super::{ApprovalState, Attempt, CorruptValue, DecideError, NewApproval, Store, StoreError, TaskTokenState};
use crate::executor::RunningWork;
use crate::plan::{OnTimeout, Plan};
use std::error::Error as _;

const TOKEN: &str = "token-hash";

fn plan() -> Plan {
    serde_json::from_value(serde_json::json!({
        "name": "p", "stages": [{ "name": "s", "steps": [{ "type": "Human", "name": "h", "message": "ok?" }] }]
    }))
    .expect("plan")
}

/// A store with one execution and one pending approval for `ann`; returns the approval's id.
fn store_with_approval() -> (Store, String, String) {
    let store = Store::open_in_memory().expect("store");
    let exec = store.submit(&plan(), 1, Default::default()).expect("submit");
    let new = NewApproval {
        execution_id: exec.clone(),
        stage: 0,
        index: 0,
        idempotency_key: "k".into(),
        token_sha256: TOKEN.into(),
        message: "ok?".into(),
        approvers: vec!["ann@example.com".into()],
        required: 1,
        forbid_self: false,
        requested_by: "starter".into(),
        deadline_ms: None,
        on_timeout: OnTimeout::Reject,
    };
    let (approval, _) = store.create_approval(&new, 1).expect("approval");
    (store, exec, approval.id)
}

/// Writes `sql` (with `?1` bound to `id`) straight into the database.
fn damage(store: &Store, sql: &str, id: &str) {
    let changed = store.read(|c| Ok(c.execute(sql, [id])?)).expect("damage");
    assert_eq!(changed, 1, "{sql}");
}

/// The [`CorruptValue`] inside `result`'s error.
fn corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>) -> Box<CorruptValue> {
    match result {
        Err(StoreError::CorruptValue(c)) => c,
        other => panic!("expected a CorruptValue, got {other:?}"),
    }
}

fn attempt(voter: &str) -> Attempt {
    Attempt {
        approve: true,
        voter: voter.into(),
        comment: None,
        source: "test".into(),
    }
}

#[test]
fn an_unknown_approval_state_is_an_error_not_pending() {
    assert_eq!(ApprovalState::parse("maybe"), None);
    let (store, _, id) = store_with_approval();
    damage(&store, "UPDATE approvals SET state = 'maybe' WHERE id = ?1", &id);
    let c = corrupt(store.approval(&id));
    assert_eq!((c.table, c.column), ("approvals", "state"));
    assert_eq!(c.row, format!("approval {id}"));
    assert!(c.problem.contains("\"maybe\""), "{}", c.problem);
    let c = corrupt(store.approval_by_token(TOKEN));
    assert_eq!((c.table, c.column), ("approvals", "state"));
}

#[test]
fn approvers_that_do_not_parse_are_an_error_naming_the_row_not_an_empty_list() {
    let (store, _, id) = store_with_approval();
    damage(&store, "UPDATE approvals SET approvers = 'ann, bob' WHERE id = ?1", &id);
    let c = corrupt(store.approval_by_token(TOKEN));
    assert_eq!((c.table, c.column), ("approvals", "approvers"));
    assert_eq!(c.row, format!("approval {id}"));
    assert!(c.source().is_some(), "the serde_json error is kept as the source");
    let c = corrupt(store.approval_views(None, 10));
    assert_eq!(c.column, "approvers");
}

#[test]
fn approvers_that_do_not_parse_let_nobody_decide() {
    let (store, _, id) = store_with_approval();
    damage(&store, "UPDATE approvals SET approvers = '{' WHERE id = ?1", &id);
    // With an empty list, anyone could decide; the vote must fail instead, and leave nothing.
    match store.decide(TOKEN, &attempt("mallory@example.com"), 2) {
        Err(DecideError::Store(StoreError::CorruptValue(c))) => assert_eq!(c.column, "approvers"),
        other => panic!("expected a CorruptValue, got {other:?}"),
    }
    assert_eq!(store.count("approval_votes", "1").expect("count"), 0);
    let state: String = store
        .read(|c| Ok(c.query_row("SELECT state FROM approvals WHERE id = ?1", [&id], |r| r.get(0))?))
        .expect("state");
    assert_eq!(state, "pending");
}

#[test]
fn an_unknown_on_timeout_is_an_error() {
    let (store, _, id) = store_with_approval();
    damage(&store, "UPDATE approvals SET on_timeout = 'shrug' WHERE id = ?1", &id);
    let c = corrupt(store.approval(&id));
    assert_eq!((c.table, c.column), ("approvals", "on_timeout"));
    assert!(c.problem.contains("\"shrug\""), "{}", c.problem);
    let c = corrupt(store.approval_by_token(TOKEN));
    assert_eq!(c.column, "on_timeout");
}

#[test]
fn on_timeout_reads_back_as_written() {
    let (store, _, id) = store_with_approval();
    assert_eq!(store.approval(&id).expect("approval").on_timeout, OnTimeout::Reject);
    damage(&store, "UPDATE approvals SET on_timeout = 'approve' WHERE id = ?1", &id);
    assert_eq!(store.approval(&id).expect("approval").on_timeout, OnTimeout::Approve);
}

#[test]
fn an_unknown_task_token_state_is_an_error_not_sending() {
    let store = Store::open_in_memory().expect("store");
    store.claim_task_token(TOKEN, &attempt("ann"), 1).expect("claim");
    assert_eq!(
        store.task_token_decision(TOKEN, 1).expect("decision").map(|d| d.state),
        Some(TaskTokenState::Sending)
    );
    damage(
        &store,
        "UPDATE task_token_decisions SET state = 'lost' WHERE token_sha256 = ?1",
        TOKEN,
    );
    let c = corrupt(store.task_token_decision(TOKEN, 1));
    assert_eq!((c.table, c.column), ("task_token_decisions", "state"));
}

#[test]
fn unknown_step_and_execution_states_and_a_damaged_plan_are_errors() {
    let (store, exec, _) = store_with_approval();
    damage(
        &store,
        "UPDATE steps SET state = 'NAPPING' WHERE execution_id = ?1",
        &exec,
    );
    let c = corrupt(store.load(&exec));
    assert_eq!((c.table, c.column), ("steps", "state"));
    assert_eq!(c.row, format!("step 0.0 of execution {exec}"));

    damage(&store, "UPDATE executions SET state = 'NAPPING' WHERE id = ?1", &exec);
    let c = corrupt(store.list());
    assert_eq!((c.table, c.column), ("executions", "state"));
    let c = corrupt(store.request_abort(&exec, RunningWork::LetFinish, 2));
    assert_eq!(c.row, format!("execution {exec}"));

    damage(&store, "UPDATE executions SET state = 'PENDING' WHERE id = ?1", &exec);
    damage(
        &store,
        r#"UPDATE plans SET plan_json = '{"name": 1, "stages": []}' WHERE execution_id = ?1"#,
        &exec,
    );
    let c = corrupt(store.load(&exec));
    assert_eq!((c.table, c.column), ("plans", "plan_json"));
    assert!(c.source().is_some());
}

#[test]
fn a_corrupt_value_is_trouble_with_the_database_not_a_refusal() {
    let (store, _, id) = store_with_approval();
    damage(&store, "UPDATE approvals SET state = 'maybe' WHERE id = ?1", &id);
    let err = store.approval(&id).expect_err("corrupt");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("approvals.state"), "{err}");
}
