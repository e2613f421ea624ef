//! The engine when its own machinery fails under it (issue 10): an execution already in the
//! database when `serve` starts is started once; a database locked by another process is waited
//! out; a lease taken over by another process is let go of and taken back when free; an
//! executor reporting Steppy's own trouble (store, disk, descriptors) never fails its step.
//!
//! These run on real SQLite files (the lock and the lease need a second connection) with the
//! scriptable executor of `steppy_engine::testing`.

use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steppy_engine::events::EventType;
use steppy_engine::executor::Notices;
use steppy_engine::health::Health;
use steppy_engine::plan::Plan;
use steppy_engine::scheduler::{Engine, EngineOptions, NoObserver};
use steppy_engine::state::{ExecutionState, StepState};
use steppy_engine::store::{Batch, Refusal, Store, StoreError};
use steppy_engine::testing::Scripted;

/// Notices that keep the engine's own lines, to assert on what the operator is told.
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);
impl Notices for Lines {
    fn notice(&self, _: &str, step: &str, line: &str) {
        self.0.lock().expect("lines").push(format!("{step}: {line}"));
    }
    fn engine(&self, line: &str) {
        self.0.lock().expect("lines").push(line.to_string());
    }
}
impl Lines {
    fn any(&self, needle: &str) -> bool {
        self.0.lock().expect("lines").iter().any(|l| l.contains(needle))
    }
}

fn plan(steps: &[&str]) -> Plan {
    let steps: Vec<_> = steps
        .iter()
        .map(|n| json!({ "type": "CodeBuild", "name": n, "codeBuildName": "x" }))
        .collect();
    serde_json::from_value(json!({ "stages": [ { "name": "s", "steps": steps } ] })).expect("plan")
}

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Store,
    scripted: Arc<Scripted>,
    lines: Arc<Lines>,
    health: Arc<Health>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("steppy.db");
    let store = Store::open(&path).expect("open");
    Setup {
        _dir: dir,
        path,
        store,
        scripted: Scripted::external(),
        lines: Arc::default(),
        health: Arc::default(),
    }
}

impl Setup {
    fn engine(&self) -> Engine {
        let registry = Scripted::registry(self.scripted.clone(), self.scripted.clone());
        Engine::new(
            self.store.clone(),
            Arc::new(registry),
            self.lines.clone(),
            Arc::new(NoObserver),
        )
        .with_options(EngineOptions {
            poll: Duration::from_millis(50),
            ..EngineOptions::default()
        })
        .with_health(self.health.clone())
    }
    fn state(&self, id: &str) -> ExecutionState {
        self.store.load(id).expect("load").summary.state
    }
    fn count(&self, id: &str, kind: EventType) -> usize {
        self.store
            .history(id)
            .expect("history")
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }
    fn starts_per_key(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .scripted
            .stats
            .starts_by_key
            .lock()
            .expect("stats")
            .values()
            .copied()
            .collect();
        v.sort();
        v
    }
}

/// Serves until `done` says so (or 20 s pass), then stops the engine.
async fn serve_until(engine: Engine, mut done: impl FnMut() -> bool) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        engine
            .serve(async {
                let _ = rx.await;
            })
            .await
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = tx.send(());
    serving.await.expect("join").expect("serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_an_execution_already_in_the_database_exactly_once() {
    // Issue 10 §1: serve adopted and started each submitted execution in its first poll and
    // then again in the same first tick: two starts per step, an ExecutionResumed right after
    // ExecutionStarted.
    for _ in 0..5 {
        let s = setup();
        let id = s
            .store
            .submit(&plan(&["sleep:1#a", "sleep:1#b", "sleep:1#c"]), 0, Default::default())
            .expect("submit");
        let check = s.store.clone();
        let id2 = id.clone();
        serve_until(s.engine(), move || {
            check.load(&id2).is_ok_and(|r| r.summary.state.is_terminal())
        })
        .await;
        assert_eq!(s.state(&id), ExecutionState::Succeeded);
        assert_eq!(s.starts_per_key(), [1, 1, 1], "every step started once");
        assert_eq!(s.count(&id, EventType::ExecutionStarted), 1);
        assert_eq!(
            s.count(&id, EventType::ExecutionResumed),
            0,
            "a fresh execution is started, not resumed"
        );
        assert_eq!(s.count(&id, EventType::StepStarted), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_is_waited_out_and_the_release_goes_on() {
    // Issue 10 §2: a write lock held elsewhere for longer than the busy timeout killed the
    // engine inside `serve`, silently. Now the commit is retried, /readyz's health says the
    // database is failing meanwhile, and the execution finishes once the lock is gone.
    let s = setup();
    s.store
        .set_busy_timeout(Duration::from_millis(50))
        .expect("busy timeout");
    let id = s
        .store
        .submit(&plan(&["sleep:1#a"]), 0, Default::default())
        .expect("submit");
    let path = s.path.clone();
    let health = s.health.clone();
    let holder = std::thread::spawn(move || {
        // Take the lock while the step sleeps, so its ending must be committed under it.
        std::thread::sleep(Duration::from_millis(400));
        let other = rusqlite::Connection::open(&path).expect("second connection");
        other.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
        let mut seen_failing = false;
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(50));
            let r = health.readiness(steppy_engine::clock::system_now_ms());
            seen_failing |= !r.ready && r.database == "failing";
        }
        other.execute_batch("ROLLBACK").expect("release the lock");
        seen_failing
    });
    let check = s.store.clone();
    let id2 = id.clone();
    serve_until(s.engine(), move || {
        check.load(&id2).is_ok_and(|r| r.summary.state.is_terminal())
    })
    .await;
    let seen_failing = holder.join().expect("lock holder");
    assert!(
        seen_failing,
        "the health said the database was failing while it was locked"
    );
    assert_eq!(s.state(&id), ExecutionState::Succeeded);
    assert_eq!(s.starts_per_key(), [1]);
    assert_eq!(s.count(&id, EventType::StepSucceeded), 1);
    assert!(
        s.lines.any("is locked by another process"),
        "the operator is told why nothing moves"
    );
    assert!(s.lines.any("after"), "and that it recovered");
    assert!(s.health.readiness(steppy_engine::clock::system_now_ms()).database == "writable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_taken_over_is_let_go_and_taken_back_when_free_without_starting_anything_twice() {
    // Issue 10 §2: after SIGSTOP longer than the lease, another process took the lease; on
    // SIGCONT the engine died with "the record changed under us". Here the lease is handed to an
    // intruder (alive: this very pid, fresh heartbeat) while a step runs; the engine must let go
    // of the execution, and take it back once the intruder's lease is stale.
    let s = setup();
    let id = s
        .store
        .submit(&plan(&["sleep:2#a"]), 0, Default::default())
        .expect("submit");
    let conn = rusqlite::Connection::open(&s.path).expect("second connection");
    let check = s.store.clone();
    let id2 = id.clone();
    let scripted = s.scripted.clone();
    let lines = s.lines.clone();
    let mut stolen = false;
    let mut freed = false;
    let now = steppy_engine::clock::system_now_ms;
    serve_until(s.engine(), move || {
        if !stolen && scripted.stats.resumes.load(Ordering::SeqCst) > 0 {
            conn.execute(
                "UPDATE leases SET owner = 'intruder', pid = ?2, heartbeat_ms = ?3 WHERE execution_id = ?1",
                rusqlite::params![id2, std::process::id() as i64, now()],
            )
            .expect("steal the lease");
            stolen = true;
        }
        if stolen && !freed && lines.any("took over the lease") {
            // The intruder "dies": its heartbeat goes stale.
            conn.execute("UPDATE leases SET heartbeat_ms = 0 WHERE owner = 'intruder'", [])
                .expect("stale lease");
            freed = true;
        }
        freed && check.load(&id2).is_ok_and(|r| r.summary.state.is_terminal())
    })
    .await;
    assert!(
        s.lines.any("took over the lease"),
        "{:?}",
        s.lines.0.lock().expect("lines")
    );
    assert_eq!(s.state(&id), ExecutionState::Succeeded);
    assert_eq!(
        s.starts_per_key(),
        [1],
        "the step was resumed from its handle, never started again"
    );
    assert_eq!(s.count(&id, EventType::ExecutionResumed), 1, "taken back once");
    assert_eq!(s.count(&id, EventType::StepSucceeded), 1);
}

#[test]
fn a_commit_for_an_execution_whose_lease_is_elsewhere_is_refused_whole() {
    let s = setup();
    let id = s.store.submit(&plan(&["ok#a"]), 0, Default::default()).expect("submit");
    assert!(s.store.try_lease(&id, "me", 0).expect("lease"));
    let rec = s.store.load(&id).expect("load");
    let mut running = rec.steps[0].clone();
    running.state = StepState::Running;
    running.attempt = 1;
    let change = steppy_engine::store::Change {
        execution_id: id.as_str().into(),
        kind: EventType::StepStarted,
        stage: Some(0),
        step: Some(0),
        details: json!({}),
        step_write: Some((StepState::Pending, running)),
        exec_write: None,
    };
    let batch = Batch { changes: vec![change] };
    let err = s.store.apply_leased(&batch, 1, "someone else").expect_err("fenced");
    assert!(
        matches!(&err, StoreError::Refused(Refusal::LeaseLost { execution_id }) if *execution_id == id),
        "{err}"
    );
    assert_eq!(
        s.store.history(&id).expect("history").len(),
        1,
        "nothing of the batch was written"
    );
    s.store.apply_leased(&batch, 1, "me").expect("the holder may write");
    assert_eq!(s.store.load(&id).expect("load").steps[0].state, StepState::Running);
}

#[tokio::test(start_paused = true)]
async fn machinery_failures_of_an_executor_never_fail_the_step_nor_use_up_attempts() {
    // Issue 10 §5: a descriptor shortage or a corrupt page made each running step report
    // `failed: ...` and the executions ended FAILED. A step with no retry policy reports the
    // machinery failing three times, then succeeds: same attempt, one start, no failure events.
    let s = setup();
    let id = s
        .store
        .submit(&plan(&["machinery:3#m", "ok#other"]), 0, Default::default())
        .expect("submit");
    let results = s.engine().run(std::slice::from_ref(&id)).await.expect("run");
    assert_eq!(results[0].1, ExecutionState::Succeeded);
    let step = s
        .store
        .load(&id)
        .expect("load")
        .steps
        .into_iter()
        .find(|st| st.name == "machinery:3#m")
        .expect("step");
    assert_eq!((step.state, step.attempt), (StepState::Succeeded, 1));
    assert_eq!(s.count(&id, EventType::StepRetryScheduled), 0);
    assert_eq!(s.count(&id, EventType::StepFailed), 0);
    let resumes = s
        .scripted
        .stats
        .resumes_by_key
        .lock()
        .expect("stats")
        .get(&format!("{id}/0.0/1"))
        .copied();
    assert_eq!(resumes, Some(4), "resumed again after each machinery failure");
    assert_eq!(s.starts_per_key(), [1, 1]);
    assert!(
        s.lines.any("the step has not failed"),
        "{:?}",
        s.lines.0.lock().expect("lines")
    );
}
