//! The local executors inside the engine (in-memory store, paused time): approvals with
//! several approvers, first decision wins, timeouts with `onTimeout`, idempotent notifications.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steppy_engine::clock::Clock;
use steppy_engine::executor::{Notices, RunningWork, SilentNotices, StepContext};
use steppy_engine::plan::Plan;
use steppy_engine::scheduler::{Engine, NoObserver};
use steppy_engine::state::ExecutionState;
use steppy_engine::store::{Refusal, Store, StoreError, Vote};
use steppy_executors::human::{current_user, token_hash};

/// Remembers every approval token shown.
#[derive(Default)]
struct Tokens(Mutex<Vec<String>>);
impl Notices for Tokens {
    fn notice(&self, _: &str, _: &str, _: &str) {}
    fn approval_token(&self, _: &str, _: &str, token: &str) {
        self.0.lock().expect("tokens").push(token.to_string());
    }
}

fn one_step(step: Value) -> Plan {
    serde_json::from_value(json!({ "stages": [ { "name": "s", "steps": [step] } ] })).expect("plan")
}

fn vote(approve: bool, voter: &str) -> Vote {
    Vote {
        approve,
        voter: voter.into(),
        comment: None,
    }
}

/// Starts the plan in the background; returns the store, id, tokens and the running task.
async fn start(plan: Plan) -> (Store, String, Arc<Tokens>, tokio::task::JoinHandle<ExecutionState>) {
    let store = Store::open_in_memory().expect("store");
    let dir = std::env::temp_dir().join(format!("steppy-exec-test-{}", uuid_like()));
    let registry = Arc::new(steppy_executors::local_registry(dir.join("outbox.jsonl")));
    let tokens = Arc::new(Tokens::default());
    let id = store.submit(&plan, 0, Default::default()).expect("submit");
    let engine = Engine::new(store.clone(), registry, tokens.clone(), Arc::new(NoObserver));
    let ids = vec![id.clone()];
    let task = tokio::spawn(async move { engine.run(&ids).await.expect("run")[0].1 });
    (store, id, tokens, task)
}

fn uuid_like() -> String {
    format!("{}-{:?}", std::process::id(), std::thread::current().id()).replace(['(', ')'], "")
}

async fn first_token(tokens: &Tokens) -> String {
    for _ in 0..100 {
        if let Some(t) = tokens.0.lock().expect("tokens").first().cloned() {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no token was shown");
}

#[tokio::test(start_paused = true)]
async fn required_approvals_come_from_listed_approvers_and_the_decision_is_final() {
    let plan = one_step(json!({ "type": "Human", "name": "h", "message": "ship?",
        "approvers": ["alice", "bob", "carol"], "requiredApprovals": 2 }));
    let (store, _, tokens, task) = start(plan).await;
    let hash = token_hash(&first_token(&tokens).await);
    let err = store
        .vote(&hash, &vote(true, "mallory"), 0)
        .expect_err("not an approver");
    assert!(err.to_string().contains("not one of the approvers"), "{err}");
    let d = store.vote(&hash, &vote(true, "alice"), 0).expect("alice");
    assert!(!d.decisive && d.approval.approvals_so_far == 1);
    assert!(
        store
            .vote(&hash, &vote(true, "alice"), 0)
            .expect_err("twice")
            .to_string()
            .contains("already voted")
    );
    assert!(store.vote(&hash, &vote(true, "bob"), 0).expect("bob").decisive);
    let late = store.vote(&hash, &vote(false, "carol"), 0).expect_err("final");
    assert!(
        matches!(late, StoreError::Refused(Refusal::AlreadyDecided { .. })),
        "{late}"
    );
    assert_eq!(task.await.expect("join"), ExecutionState::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn any_reject_aborts_even_with_approvals_pending() {
    let plan = one_step(json!({ "type": "Human", "name": "h", "message": "ship?", "requiredApprovals": 3 }));
    let (store, id, tokens, task) = start(plan).await;
    let hash = token_hash(&first_token(&tokens).await);
    store.vote(&hash, &vote(true, "a"), 0).expect("a");
    store.vote(&hash, &vote(false, "b"), 0).expect("b");
    assert_eq!(task.await.expect("join"), ExecutionState::Aborted);
    let reason = store.load(&id).expect("load").summary.reason.unwrap_or_default();
    assert!(reason.contains("rejected by b"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn an_approval_times_out_as_rejected_by_default() {
    let plan = one_step(json!({ "type": "Human", "name": "h", "message": "ship?", "timeoutSeconds": 30 }));
    let (_, _, _, task) = start(plan).await;
    let begin = tokio::time::Instant::now();
    assert_eq!(task.await.expect("join"), ExecutionState::Aborted);
    assert!(begin.elapsed() >= Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn an_approval_can_time_out_as_approved() {
    let plan = one_step(
        json!({ "type": "Human", "name": "h", "message": "ship?", "timeoutSeconds": 30, "onTimeout": "approve" }),
    );
    let (store, id, _, task) = start(plan).await;
    assert_eq!(task.await.expect("join"), ExecutionState::Succeeded);
    let out = store.load(&id).expect("load").steps[0].output.clone().expect("output");
    assert_eq!(out["approvedBy"], "timeout");
}

#[tokio::test(start_paused = true)]
async fn self_approval_can_be_forbidden() {
    let plan = one_step(json!({ "type": "Human", "name": "h", "message": "ship?", "forbidSelfApproval": true }));
    let (store, _, tokens, task) = start(plan).await;
    let hash = token_hash(&first_token(&tokens).await);
    let err = store.vote(&hash, &vote(true, &current_user()), 0).expect_err("self");
    assert!(err.to_string().contains("may not approve"), "{err}");
    store.vote(&hash, &vote(true, "someone-else"), 0).expect("other");
    assert_eq!(task.await.expect("join"), ExecutionState::Succeeded);
}

#[tokio::test]
async fn a_notification_is_written_once_per_idempotency_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = dir.path().join("outbox.jsonl");
    let registry = steppy_executors::local_registry(outbox.clone());
    let notify = registry.get("Notify").expect("registered").clone();
    let plan = one_step(json!({ "type": "Notify", "name": "n", "message": "hello" }));
    let step = Arc::new(plan.stages[0].steps[0].clone());
    let ctx = |attempt| StepContext {
        execution_id: "e".into(),
        stage: 0,
        index: 0,
        flat: 0,
        attempt,
        attempt_started_ms: 0,
        idempotency_key: StepContext::key_for("e", 0, 0, attempt),
        step: step.clone(),
        clock: Clock::system(),
        notices: Arc::new(SilentNotices),
        store: Store::open_in_memory().expect("store"),
    };
    notify.start(&ctx(1)).await.expect("first");
    notify.start(&ctx(1)).await.expect("again, as after a crash");
    notify.start(&ctx(2)).await.expect("a new attempt");
    let text = std::fs::read_to_string(&outbox).expect("outbox");
    let keys: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["key"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(keys, vec!["e/0.0/1", "e/0.0/2"]);
}

#[tokio::test(start_paused = true)]
async fn an_abort_cancels_a_pending_approval_for_good() {
    let plan = one_step(json!({ "type": "Human", "name": "h", "message": "ship?" }));
    let (store, id, tokens, task) = start(plan).await;
    let hash = token_hash(&first_token(&tokens).await);
    store.request_abort(&id, RunningWork::LetFinish, 0).expect("abort");
    assert_eq!(task.await.expect("join"), ExecutionState::Aborted);
    let late = store.vote(&hash, &vote(true, "alice"), 0).expect_err("cancelled");
    assert!(late.to_string().contains("already cancelled"), "{late}");
}
