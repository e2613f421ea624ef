//! Shared by the engine benchmarks: plans, an engine over the scriptable executor.
#![allow(dead_code)]

use serde_json::json;
use std::sync::Arc;
use steppy_engine::executor::SilentNotices;
use steppy_engine::plan::Plan;
use steppy_engine::scheduler::{Engine, NoObserver};
use steppy_engine::store::Store;
use steppy_engine::testing::Scripted;

/// `stages` stages of `steps` steps each; `name` is the scripted behaviour; `kind` the type.
pub fn plan(stages: usize, steps: usize, kind: &str, name: &str) -> Plan {
    let step = match kind {
        "Wait" => json!({ "type": "Wait", "name": name, "seconds": 0 }),
        _ => json!({ "type": "CodeBuild", "name": name, "codeBuildName": "x" }),
    };
    let stages: Vec<_> = (0..stages)
        .map(|i| json!({ "name": format!("stage {i}"), "steps": vec![step.clone(); steps] }))
        .collect();
    serde_json::from_value(json!({ "name": "bench", "stages": stages })).expect("bench plan")
}

/// An engine whose every step type is the scriptable executor (no logging).
pub fn engine(store: &Store) -> (Engine, Arc<Scripted>) {
    let ex = Arc::new(Scripted {
        stats: Arc::default(),
        external: false,
        quiet: true,
    });
    let registry = Scripted::registry(ex.clone(), ex.clone());
    (
        Engine::new(
            store.clone(),
            Arc::new(registry),
            Arc::new(SilentNotices),
            Arc::new(NoObserver),
        ),
        ex,
    )
}

/// Resident set size of this process, in bytes (Linux).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
