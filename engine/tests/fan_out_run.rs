//! Fan-out stages run by the local engine (paused tokio time, an in-memory store, the
//! scriptable executor: each instance's behaviour comes from its target's `script` field,
//! rendered into the step's name): the concurrency cap, the failure tolerance at and beyond
//! its threshold, waves that stop, and the counts a between-waves step is started with.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use steppy_engine::executor::SilentNotices;
use steppy_engine::plan::Plan;
use steppy_engine::resolve::Inputs;
use steppy_engine::scheduler::{Engine, NoObserver};
use steppy_engine::state::{ExecutionState, StepState};
use steppy_engine::store::Store;
use steppy_engine::testing::Scripted;
use steppy_engine::validate::validate_text_with;

/// A plan over `scripts.len()` targets (`t-1`, `t-2`, …, each with its script), one build
/// per target; `stage` adds fields to the fan-out stage (YAML, indented for it).
fn plan(scripts: &[&str], stage: &str) -> Plan {
    let targets: String = scripts
        .iter()
        .enumerate()
        .map(|(i, s)| format!("    - {{ id: t-{}, script: \"{s}\" }}\n", i + 1))
        .collect();
    let text = format!(
        "targets:\n  tenants:\n{targets}stages:\n  - name: deploy\n    forEach: tenants\n{stage}    steps:\n      - {{ type: CodeBuild, name: \"${{target.script}}#build\", codeBuildName: \"app-${{target.id}}\" }}\n  - name: after\n    steps:\n      - {{ type: CodeBuild, name: \"ok#after\", codeBuildName: app }}\n"
    );
    validate_text_with("plan.yaml", &text, None, &Inputs::default()).unwrap_or_else(|r| panic!("{r}"))
}

struct Run {
    store: Store,
    id: String,
    state: ExecutionState,
    scripted: Arc<Scripted>,
}

impl Run {
    fn steps(&self, state: StepState) -> Vec<String> {
        let rec = self.store.load(&self.id).expect("load");
        rec.steps
            .into_iter()
            .filter(|s| s.state == state)
            .map(|s| s.name)
            .collect()
    }
    fn reason(&self) -> String {
        self.store
            .load(&self.id)
            .expect("load")
            .summary
            .reason
            .unwrap_or_default()
    }
}

async fn run(plan: Plan) -> Run {
    let store = Store::open_in_memory().expect("store");
    let scripted = Scripted::external();
    let registry = Scripted::registry(scripted.clone(), scripted.clone());
    let id = store.submit(&plan, 0, Default::default()).expect("submit");
    let engine = Engine::new(
        store.clone(),
        Arc::new(registry),
        Arc::new(SilentNotices),
        Arc::new(NoObserver),
    );
    let states = engine.run(std::slice::from_ref(&id)).await.expect("run");
    Run {
        store,
        id,
        state: states[0].1,
        scripted,
    }
}

#[tokio::test(start_paused = true)]
async fn never_more_than_max_concurrency_instances_run() {
    let scripts = vec!["sleep:5"; 20];
    let r = run(plan(&scripts, "    maxConcurrency: 3\n")).await;
    assert_eq!(r.state, ExecutionState::Succeeded, "{}", r.reason());
    assert_eq!(r.scripted.stats.max_running.load(Ordering::SeqCst), 3);
    assert_eq!(r.steps(StepState::Succeeded).len(), 21);
    // Without a cap, all 20 run at once.
    let r = run(plan(&scripts, "")).await;
    assert_eq!(r.scripted.stats.max_running.load(Ordering::SeqCst), 20);
}

#[tokio::test(start_paused = true)]
async fn failures_exactly_at_the_tolerance_succeed() {
    let scripts = ["ok", "fail", "ok", "ok", "fail", "ok", "ok", "ok", "ok", "ok"];
    let r = run(plan(&scripts, "    toleratedFailureCount: 2\n")).await;
    assert_eq!(r.state, ExecutionState::Succeeded, "{}", r.reason());
    assert_eq!(r.steps(StepState::Failed), ["fail#build [t-2]", "fail#build [t-5]"]);
    assert!(r.steps(StepState::Succeeded).contains(&"ok#after".to_string()));
    // 20% of 10 targets is 2: the same.
    let r = run(plan(&scripts, "    toleratedFailurePercentage: 20\n")).await;
    assert_eq!(r.state, ExecutionState::Succeeded, "{}", r.reason());
}

#[tokio::test(start_paused = true)]
async fn one_failure_beyond_the_tolerance_fails_and_no_later_wave_starts() {
    let scripts = ["ok", "fail", "ok", "fail", "ok", "ok", "ok", "ok", "ok", "ok"];
    let waves = "    toleratedFailureCount: 1\n    maxConcurrency: 2\n    waves:\n      - { name: canary, count: 5 }\n      - { name: rest }\n";
    let r = run(plan(&scripts, waves)).await;
    assert_eq!(r.state, ExecutionState::Failed);
    let reason = r.reason();
    assert!(
        reason.contains(
            "2 of 10 targets failed, more than the 1 it tolerates: t-2 (scripted failure), t-4 (scripted failure)"
        ),
        "{reason}"
    );
    // The canary wave stopped starting targets at the second failure; the rest never began.
    let started = r.scripted.stats.starts.load(Ordering::SeqCst);
    assert!(started <= 5, "{started} started");
    let pending = r.steps(StepState::Pending);
    assert!(pending.contains(&"ok#build [t-6]".to_string()) && pending.contains(&"ok#after".to_string()));
    assert!(
        r.steps(StepState::Cancelled).iter().all(|n| n.ends_with("[t-5]")),
        "{:?}",
        r.steps(StepState::Cancelled)
    );
}

#[tokio::test(start_paused = true)]
async fn between_waves_steps_start_with_the_wave_counts() {
    let scripts = ["ok", "fail", "ok", "ok", "ok"];
    let waves = "    toleratedFailureCount: 1\n    waves:\n      - { name: canary, count: 2 }\n      - { name: rest }\n    betweenWaves:\n      - { type: CodeBuild, name: \"ok#${wave.name} ${wave.succeeded}/${wave.failed}/${wave.remaining}\", codeBuildName: app }\n";
    let r = run(plan(&scripts, waves)).await;
    assert_eq!(r.state, ExecutionState::Succeeded, "{}", r.reason());
    let names: Vec<String> = r.scripted.stats.events().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"ok#canary 1/1/3".to_string()), "{names:?}");
    // The record keeps the name as resolved at submission; the counts are the run's.
    let rec = r.store.load(&r.id).expect("load");
    assert_eq!(
        rec.steps[2].name,
        "ok#canary ${wave.succeeded}/${wave.failed}/${wave.remaining}"
    );
}
