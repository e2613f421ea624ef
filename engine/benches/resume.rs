//! Benchmark 3: time to resume 10,000 unfinished steps after a restart.
//!
//! A child process (this same binary) runs one stage of 10,000 hour-long waits until every one
//! is waiting with its handle recorded, then exits without any cleanup, as a crash would. The
//! parent then times: open the store, take the lease, load, and have all 10,000 steps resumed
//! (each executor's `resume` called with its recorded handle). Goal: under 1 s.
//!
//! Run: `cargo bench -p steppy-engine --bench resume`

#[path = "common.rs"]
mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use steppy_engine::store::Store;

const STEPS: usize = 10_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(db) = std::env::var("STEPPY_BENCH_CHILD_DB") {
        // Phase 1 (child): get 10,000 steps waiting, then die.
        let store = Store::open(std::path::Path::new(&db)).expect("store");
        let id = store
            .submit(&common::plan(1, STEPS, "Wait", "sleep:3600"), 0, Default::default())
            .expect("submit");
        let (engine, ex) = common::engine(&store);
        let stats = ex.stats.clone();
        runtime.block_on(async {
            let ids = vec![id];
            tokio::spawn(async move { engine.run(&ids).await });
            while stats.resumes.load(Ordering::SeqCst) < STEPS {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        std::process::exit(0);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("bench.db");
    let exe = std::env::current_exe().expect("current exe");
    let status = std::process::Command::new(exe)
        .env("STEPPY_BENCH_CHILD_DB", &db)
        .status()
        .expect("child");
    assert!(status.success(), "phase 1 failed");

    // Phase 2: the restart.
    let begin = Instant::now();
    let store = Store::open(&db).expect("store");
    let ids = store.unfinished_ids().expect("ids");
    let (engine, ex) = common::engine(&store);
    let stats = ex.stats.clone();
    let took = runtime.block_on(async {
        let task = tokio::spawn(async move { engine.run(&ids).await });
        while stats.resumes.load(Ordering::SeqCst) < STEPS {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let took = begin.elapsed();
        task.abort();
        took
    });
    let restarted = stats.starts.load(Ordering::SeqCst);
    println!(
        "resume: {} unfinished steps resumed from their recorded handles in {:.3} s ({} started again)",
        stats.resumes.load(Ordering::SeqCst),
        took.as_secs_f64(),
        restarted
    );
}
