//! Benchmark 1: 100 stages x 100 no-op steps, durable (a real SQLite file, WAL,
//! `synchronous=FULL`, then `NORMAL`). Goal: at least 10,000 durable step transitions per second.
//!
//! It runs on a current-thread tokio runtime, as `steppy run` and `steppy resume` do.
//!
//! Run: `cargo bench -p steppy-engine --bench throughput`

#[path = "common.rs"]
mod common;

use std::time::Instant;
use steppy_engine::events::EventType;
use steppy_engine::store::{Durability, Store};

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for durability in [Durability::Full, Durability::Normal] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_with(&dir.path().join("bench.db"), durability).expect("store");
        let plan = common::plan(100, 100, "CodeBuild", "ok");
        let id = store.submit(&plan, 0, Default::default()).expect("submit");
        let (engine, _) = common::engine(&store);
        let begin = Instant::now();
        let states = runtime.block_on(engine.run(std::slice::from_ref(&id))).expect("run");
        let took = begin.elapsed().as_secs_f64();
        assert_eq!(states[0].1, steppy_engine::state::ExecutionState::Succeeded);
        let history = store.history(&id).expect("history");
        // A transition is a committed step state change: PENDING->RUNNING, RUNNING->SUCCEEDED.
        let transitions = history
            .iter()
            .filter(|e| matches!(e.kind, EventType::StepStarted | EventType::StepSucceeded))
            .count();
        println!(
            "throughput ({durability:?}): {} steps, {} events, {} step transitions in {:.3} s = {:.0} transitions/s ({:.0} events/s, {} group commits)",
            plan.step_count(),
            history.len(),
            transitions,
            took,
            transitions as f64 / took,
            history.len() as f64 / took,
            store.batches_committed()
        );
    }
}
