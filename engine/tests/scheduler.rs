//! Engine behaviour, on paused (virtual) tokio time with an in-memory store and the scriptable
//! executor from `steppy_engine::testing` (its behaviour is read from each step's name).

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use steppy_engine::events::EventType;
use steppy_engine::executor::{RunningWork, SilentNotices};
use steppy_engine::plan::Plan;
use steppy_engine::scheduler::{Engine, NoObserver};
use steppy_engine::state::{ExecutionState, StepState};
use steppy_engine::store::{Batch, Change, Store, StoreError};
use steppy_engine::testing::Scripted;
use tokio::time::Instant;

/// A step: `~name` is an internal wait-like step (type Wait), anything else an external job
/// (type CodeBuild). `extra` adds step options.
fn step(name: &str, extra: Value) -> Value {
    let mut v = match name.strip_prefix('~') {
        Some(n) => json!({ "type": "Wait", "name": n, "seconds": 0 }),
        None => json!({ "type": "CodeBuild", "name": name, "codeBuildName": "x" }),
    };
    if let (Some(obj), Some(more)) = (v.as_object_mut(), extra.as_object()) {
        obj.extend(more.clone());
    }
    v
}

fn plan(stages: Vec<Vec<Value>>) -> Plan {
    let stages: Vec<Value> = stages
        .into_iter()
        .enumerate()
        .map(|(i, steps)| json!({ "name": format!("s{i}"), "steps": steps }))
        .collect();
    serde_json::from_value(json!({ "stages": stages })).expect("test plan")
}

fn simple(stages: &[&[&str]]) -> Plan {
    plan(
        stages
            .iter()
            .map(|s| s.iter().map(|n| step(n, json!({}))).collect())
            .collect(),
    )
}

struct Run {
    store: Store,
    id: String,
    state: ExecutionState,
    external: Arc<Scripted>,
    internal: Arc<Scripted>,
    took: Duration,
}

impl Run {
    fn step(&self, name: &str) -> steppy_engine::store::StepRecord {
        let rec = self.store.load(&self.id).expect("load");
        rec.steps.into_iter().find(|s| s.name == name).expect("step exists")
    }
    fn count(&self, kind: EventType) -> usize {
        self.store
            .history(&self.id)
            .expect("history")
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }
}

fn engine(store: &Store, external: &Arc<Scripted>, internal: &Arc<Scripted>) -> Engine {
    let registry = Scripted::registry(external.clone(), internal.clone());
    Engine::new(
        store.clone(),
        Arc::new(registry),
        Arc::new(SilentNotices),
        Arc::new(NoObserver),
    )
}

async fn run(plan: Plan) -> Run {
    let store = Store::open_in_memory().expect("store");
    let (external, internal) = (Scripted::external(), Scripted::internal());
    let id = store.submit(&plan, 0, Default::default()).expect("submit");
    let begin = Instant::now();
    let states = engine(&store, &external, &internal)
        .run(std::slice::from_ref(&id))
        .await
        .expect("run");
    Run {
        store,
        id,
        state: states[0].1,
        external,
        internal,
        took: begin.elapsed(),
    }
}

fn position(events: &[(String, &'static str)], name: &str, what: &str) -> usize {
    events
        .iter()
        .position(|(n, w)| n == name && *w == what)
        .unwrap_or_else(|| panic!("{name} {what} not logged"))
}

#[tokio::test(start_paused = true)]
async fn stages_run_in_order_and_wait_for_every_step() {
    let r = run(simple(&[&["sleep:2#a", "sleep:1#b"], &["ok#c"], &["ok#d"]])).await;
    assert_eq!(r.state, ExecutionState::Succeeded);
    let log = r.external.stats.events();
    let c_start = position(&log, "ok#c", "start");
    assert!(
        position(&log, "sleep:2#a", "end") < c_start,
        "stage 2 started before a ended: {log:?}"
    );
    assert!(position(&log, "sleep:1#b", "end") < c_start);
    assert!(position(&log, "ok#c", "end") < position(&log, "ok#d", "start"));
    // Both steps of stage 1 started before either ended: they ran together.
    assert!(position(&log, "sleep:1#b", "start") < position(&log, "sleep:1#b", "end"));
    assert!(position(&log, "sleep:2#a", "start") < position(&log, "sleep:1#b", "end"));
}

#[tokio::test(start_paused = true)]
async fn a_stage_of_1000_steps_takes_as_long_as_one() {
    let names: Vec<String> = (0..1000).map(|i| format!("sleep:10#{i}")).collect();
    let steps: Vec<Value> = names.iter().map(|n| step(n, json!({}))).collect();
    let r = run(plan(vec![steps])).await;
    assert_eq!(r.state, ExecutionState::Succeeded);
    assert_eq!(
        r.external.stats.max_running.load(Ordering::SeqCst),
        1000,
        "all 1000 ran at once"
    );
    // Virtual time: one step sleeps 10 s; the stage must take 10 s, not 10,000 s.
    assert!(
        r.took >= Duration::from_secs(10) && r.took < Duration::from_secs(12),
        "took {:?}",
        r.took
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_step_fails_the_execution_after_its_stage_ends() {
    let r = run(simple(&[&["fail#x", "sleep:5#y"], &["ok#z"]])).await;
    assert_eq!(r.state, ExecutionState::Failed);
    assert_eq!(r.step("fail#x").state, StepState::Failed);
    assert_eq!(
        r.step("sleep:5#y").state,
        StepState::Succeeded,
        "the sibling still finishes"
    );
    assert_eq!(r.step("ok#z").state, StepState::Pending, "the next stage never starts");
    assert_eq!(r.external.stats.starts.load(Ordering::SeqCst), 2);
    let reason = r.store.load(&r.id).expect("load").summary.reason.unwrap_or_default();
    assert!(reason.contains("fail#x"), "{reason}");
    assert!(r.took >= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn continue_on_failure_lets_the_execution_go_on() {
    let stages = vec![
        vec![
            step("fail#x", json!({ "continueOnFailure": true })),
            step("ok#y", json!({})),
        ],
        vec![step("ok#z", json!({}))],
    ];
    let r = run(plan(stages)).await;
    assert_eq!(r.state, ExecutionState::Succeeded);
    assert_eq!(r.step("fail#x").state, StepState::Failed);
    assert_eq!(r.step("ok#z").state, StepState::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_rejection_aborts_and_cancels_waiting_siblings_at_once() {
    let r = run(simple(&[&["~reject:1#h", "~hang#w", "hang#job"], &["ok#next"]])).await;
    assert_eq!(r.state, ExecutionState::Aborted);
    assert_eq!(r.step("reject:1#h").state, StepState::Failed);
    assert_eq!(
        r.step("hang#w").state,
        StepState::Cancelled,
        "a waiting sibling is cancelled"
    );
    assert_eq!(
        r.step("hang#job").state,
        StepState::Aborted,
        "a running external job is left to finish"
    );
    assert_eq!(
        r.external.stats.cancels.load(Ordering::SeqCst),
        0,
        "the external job was not stopped"
    );
    assert_eq!(r.internal.stats.cancels.load(Ordering::SeqCst), 1);
    assert_eq!(r.step("ok#next").state, StepState::Pending);
    assert!(r.took < Duration::from_secs(2), "cancelled at once, took {:?}", r.took);
    assert_eq!(r.count(EventType::ExecutionAborted), 1);
}

#[tokio::test(start_paused = true)]
async fn a_step_over_its_timeout_times_out_and_fails_the_execution() {
    let r = run(plan(vec![vec![step("sleep:100#t", json!({ "timeoutSeconds": 5 }))]])).await;
    assert_eq!(r.state, ExecutionState::Failed);
    assert_eq!(r.step("sleep:100#t").state, StepState::TimedOut);
    assert!(
        r.took >= Duration::from_secs(5) && r.took < Duration::from_secs(7),
        "took {:?}",
        r.took
    );
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_with_backoff() {
    let retry = json!({ "retry": { "maxAttempts": 3, "intervalSeconds": 2, "backoffRate": 3.0 } });
    let r = run(plan(vec![vec![step("flaky:2#r", retry)]])).await;
    assert_eq!(r.state, ExecutionState::Succeeded);
    let s = r.step("flaky:2#r");
    assert_eq!((s.state, s.attempt), (StepState::Succeeded, 3));
    assert_eq!(r.count(EventType::StepRetryScheduled), 2);
    let starts: Vec<i64> = r
        .external
        .stats
        .log
        .lock()
        .expect("log")
        .iter()
        .filter(|(_, w, _)| *w == "start")
        .map(|(_, _, t)| *t)
        .collect();
    assert_eq!(starts.len(), 3);
    let (gap1, gap2) = (starts[1] - starts[0], starts[2] - starts[1]);
    assert!((2000..2100).contains(&gap1), "first backoff 2 s, was {gap1} ms");
    assert!((6000..6100).contains(&gap2), "second backoff 2 s x 3, was {gap2} ms");
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_max_attempts() {
    let retry = json!({ "retry": { "maxAttempts": 2, "intervalSeconds": 1 } });
    let r = run(plan(vec![vec![step("flaky:9#r", retry)]])).await;
    assert_eq!(r.state, ExecutionState::Failed);
    let s = r.step("flaky:9#r");
    assert_eq!((s.state, s.attempt), (StepState::Failed, 2));
    assert_eq!(r.external.stats.starts.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_user_abort_cancels_waits_and_leaves_external_jobs_running() {
    let store = Store::open_in_memory().expect("store");
    let (external, internal) = (Scripted::external(), Scripted::internal());
    let id = store
        .submit(&simple(&[&["~hang#w", "hang#job"], &["ok#n"]]), 0, Default::default())
        .expect("submit");
    let e = engine(&store, &external, &internal);
    let ids = vec![id.clone()];
    let driving = tokio::spawn(async move { e.run(&ids).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    store
        .request_abort(&id, RunningWork::LetFinish, 0)
        .expect("abort request");
    let states = driving.await.expect("join").expect("run");
    assert_eq!(states[0].1, ExecutionState::Aborted);
    let rec = store.load(&id).expect("load");
    assert_eq!(rec.steps[0].state, StepState::Cancelled);
    assert_eq!(rec.steps[1].state, StepState::Aborted);
    assert_eq!(external.stats.cancels.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn abort_with_stop_running_stops_external_jobs() {
    let store = Store::open_in_memory().expect("store");
    let (external, internal) = (Scripted::external(), Scripted::internal());
    let id = store
        .submit(&simple(&[&["hang#job"]]), 0, Default::default())
        .expect("submit");
    let e = engine(&store, &external, &internal);
    let ids = vec![id.clone()];
    let driving = tokio::spawn(async move { e.run(&ids).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    store.request_abort(&id, RunningWork::Stop, 0).expect("abort request");
    assert_eq!(driving.await.expect("join").expect("run")[0].1, ExecutionState::Aborted);
    assert_eq!(store.load(&id).expect("load").steps[0].state, StepState::Cancelled);
    assert_eq!(external.stats.cancels.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_engine_resumes_from_recorded_handles_without_restarting_steps() {
    let store = Store::open_in_memory().expect("store");
    let (external, internal) = (Scripted::external(), Scripted::internal());
    let id = store
        .submit(&simple(&[&["ok#a"], &["sleep:10#b"], &["ok#c"]]), 0, Default::default())
        .expect("submit");
    let first = engine(&store, &external, &internal);
    let ids = vec![id.clone()];
    let driving = tokio::spawn(async move { first.run(&ids).await });
    tokio::time::sleep(Duration::from_secs(4)).await;
    driving.abort(); // the "crash": no cleanup, the lease stays behind
    let _ = driving.await;
    assert_eq!(store.load(&id).expect("load").summary.state, ExecutionState::Running);

    // While the dead engine's lease is fresh, a second engine keeps out...
    let second = engine(&store, &external, &internal);
    assert_eq!(
        second.run(std::slice::from_ref(&id)).await.expect("run")[0].1,
        ExecutionState::Running
    );
    // ...and once it is stale, it takes over and finishes.
    tokio::time::advance(Duration::from_secs(16)).await;
    let states = second.run(std::slice::from_ref(&id)).await.expect("run");
    assert_eq!(states[0].1, ExecutionState::Succeeded);
    let starts = external.stats.starts_by_key.lock().expect("stats").clone();
    assert_eq!(starts.len(), 3, "{starts:?}");
    assert!(
        starts.values().all(|&n| n == 1),
        "every step started exactly once: {starts:?}"
    );
    let history = store.history(&id).expect("history");
    assert_eq!(
        history.iter().filter(|e| e.kind == EventType::ExecutionResumed).count(),
        1
    );
    let seqs: Vec<i64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "history is gap-free");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_executor_fails_its_step_instead_of_hanging() {
    let r = run(simple(&[&["panic#p", "ok#q"]])).await;
    assert_eq!(r.state, ExecutionState::Failed);
    let p = r.step("panic#p");
    assert_eq!(p.state, StepState::Failed);
    assert!(p.reason.unwrap_or_default().contains("scripted panic"));
}

#[test]
fn the_store_refuses_illegal_transitions() {
    let store = Store::open_in_memory().expect("store");
    let id = store
        .submit(&simple(&[&["ok#a"]]), 0, Default::default())
        .expect("submit");
    let rec = store.load(&id).expect("load");
    let mut jumped = rec.steps[0].clone();
    jumped.state = StepState::Succeeded; // PENDING -> SUCCEEDED skips RUNNING
    let change = Change {
        execution_id: id.as_str().into(),
        kind: EventType::StepSucceeded,
        stage: Some(0),
        step: Some(0),
        details: json!({}),
        step_write: Some((StepState::Pending, jumped)),
        exec_write: None,
    };
    let err = store
        .apply(
            &Batch {
                changes: vec![change.clone()],
            },
            0,
        )
        .expect_err("illegal");
    assert!(matches!(err, StoreError::Illegal(_)), "{err}");
    assert_eq!(err.to_string(), "illegal step transition PENDING -> SUCCEEDED");
    // Nothing of the batch was applied.
    assert_eq!(store.load(&id).expect("load").steps[0].state, StepState::Pending);
    assert_eq!(store.history(&id).expect("history").len(), 1);

    // A legal transition from a state the step is not in is refused too.
    let mut running = rec.steps[0].clone();
    running.state = StepState::Succeeded;
    let stale = Change {
        step_write: Some((StepState::Running, running)),
        ..change
    };
    assert!(matches!(
        store.apply(&Batch { changes: vec![stale] }, 0),
        Err(StoreError::Stale { .. })
    ));
}

#[test]
fn unknown_ids_are_clear_errors() {
    let store = Store::open_in_memory().expect("store");
    let err = store.load("nope").expect_err("unknown");
    assert_eq!(err.to_string(), "no execution with id nope");
    assert!(store.history("nope").is_err());
}

#[test]
fn a_plan_with_a_step_type_nobody_registered_is_refused_before_anything_runs() {
    // A build of Steppy that knows CodeBuild and Wait only.
    let mut registry = steppy_engine::executor::Registry::new();
    registry
        .register("CodeBuild", Scripted::external())
        .register("Wait", Scripted::internal());
    assert!(steppy_engine::scheduler::check_runnable(&registry, &simple(&[&["build"], &["~soak"]])).is_ok());
    let notify = plan(vec![
        vec![step("build", json!({}))],
        vec![json!({ "type": "Notify", "name": "tell", "message": "hi" })],
    ]);
    let why = steppy_engine::scheduler::check_runnable(&registry, &notify).expect_err("refused");
    assert!(
        why.to_string()
            .contains("step \"tell\" in stage \"s1\" has type Notify"),
        "{why}"
    );
}
