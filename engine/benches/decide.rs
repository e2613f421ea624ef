//! The store's side of an approval decision, without HTTP: `Store::decide_batch` on a SQLite
//! file, in batches the size the approval API forms under load, with every decision deciding
//! its own pending approval. With `synchronous=NORMAL` a commit does not wait for the disk, so
//! that run shows what the decisions themselves cost; `FULL` adds one fsync per batch.
//!
//! `cargo bench -p steppy-engine --bench decide` (env: BENCH_DECISIONS, default 6000;
//! BENCH_BATCH, default 16). Bounded: BENCH_DECISIONS decisions per durability.

use std::time::{Duration, Instant};
use steppy_engine::store::{Attempt, Durability, NewApproval, Store};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `count` pending approvals on one execution, keyed by hash `h{i}` (as the load bench seeds).
fn seed(store: &Store, count: usize) {
    let plan: steppy_engine::Plan = serde_json::from_value(serde_json::json!({
        "name": "Load", "stages": [{ "name": "Sign-off", "steps": [{ "type": "Human", "name": "Go", "message": "Ship it?" }] }]
    }))
    .expect("plan");
    let exec = store
        .submit(
            &plan,
            1,
            steppy_engine::store::SubmitOptions {
                started_by: Some("bench"),
                ..Default::default()
            },
        )
        .expect("submit");
    for i in 0..count {
        let new = NewApproval {
            execution_id: exec.clone(),
            stage: 0,
            index: 0,
            idempotency_key: format!("{exec}/bench/{i}"),
            token_sha256: format!("h{i}"),
            message: format!("Approval {i}: ship release 1.2.{i}?"),
            approvers: vec![],
            required: 1,
            forbid_self: false,
            requested_by: "bench".into(),
            deadline_ms: None,
            on_timeout: steppy_engine::plan::OnTimeout::Reject,
        };
        store.create_approval(&new, 1).expect("approval");
    }
}

fn main() {
    let count = env_or("BENCH_DECISIONS", 6000);
    let batch = env_or("BENCH_BATCH", 16).max(1);
    for durability in [Durability::Normal, Durability::Full] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_with(&dir.path().join("bench.db"), durability).expect("store");
        seed(&store, count);
        let attempt = Attempt {
            approve: true,
            voter: "load@example.com".into(),
            comment: Some("bench".into()),
            source: "127.0.0.1".into(),
        };
        let mut per_batch = Vec::new();
        let begin = Instant::now();
        for chunk in (0..count).collect::<Vec<_>>().chunks(batch) {
            let attempts: Vec<(String, Attempt)> = chunk.iter().map(|i| (format!("h{i}"), attempt.clone())).collect();
            let started = Instant::now();
            let results = store.decide_batch(&attempts, 2).expect("batch");
            per_batch.push(started.elapsed());
            assert!(
                results.iter().all(|r| r.as_ref().is_ok_and(|d| d.decisive)),
                "every decision decides its own approval"
            );
        }
        let took = begin.elapsed();
        per_batch.sort();
        let pct = |p: f64| per_batch[((per_batch.len() as f64 * p) as usize).min(per_batch.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "decide_batch ({durability:?}, batches of {batch}): {:.1} µs per decision; batch p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            took.as_secs_f64() * 1e6 / count as f64,
            ms(pct(0.5)),
            ms(pct(0.99)),
            ms(pct(1.0))
        );
    }
}
