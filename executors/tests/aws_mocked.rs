//! The AWS executors against in-memory fakes (aws-smithy-mocks, see `support/fakes.rs`), for
//! the paths moto cannot produce: moto ends every build SUCCEEDED on its first read, ignores
//! environment variables and idempotency tokens, never throttles, and cannot start pipelines.
//! Each test names the path it covers. No request leaves the process.

use steppy_test_support::fakes;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use fakes::{FakeCodeBuild, FakeCodePipeline};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use steppy_engine::clock::{Clock, system_now_ms};
use steppy_engine::executor::{Executor, Outcome, RunningWork, SilentNotices, StepContext};
use steppy_engine::plan::Plan;
use steppy_engine::scheduler::{Engine, NoObserver};
use steppy_engine::state::ExecutionState;
use steppy_engine::store::Store;
use steppy_executors::Completion;
use steppy_executors::aws::clients::FixedClients;
use steppy_executors::aws::{Aws, AwsSettings};
use steppy_executors::codebuild::CodeBuildExecutor;
use steppy_executors::codepipeline::CodePipelineExecutor;

/// A base configuration that cannot reach anything: the fakes answer every call.
fn offline_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build()
}

fn aws(codebuild: Option<&FakeCodeBuild>, pipeline: Option<&FakeCodePipeline>) -> Arc<Aws> {
    let settings = AwsSettings {
        poll_interval: Duration::from_millis(20),
        ..AwsSettings::default()
    };
    let fixed = FixedClients {
        codebuild: codebuild.map(|f| f.client()),
        codepipeline: pipeline.map(|f| f.client()),
        sns: None,
    };
    Aws::with_clients(settings, offline_config(), fixed)
}

fn engine(aws: Arc<Aws>, store: &Store, dir: &tempfile::TempDir) -> Engine {
    let registry = steppy_executors::aws_registry(dir.path().join("outbox.jsonl"), aws);
    Engine::new(
        store.clone(),
        Arc::new(registry),
        Arc::new(SilentNotices),
        Arc::new(NoObserver),
    )
}

fn one_step(step: Value) -> Plan {
    serde_json::from_value(
        json!({ "defaults": { "region": "us-east-1" }, "stages": [{ "name": "s", "steps": [step] }] }),
    )
    .expect("plan")
}

/// Runs each plan as its own execution, all at once; returns (state, step reason, step output).
async fn run_all(aws: Arc<Aws>, plans: &[Plan]) -> Vec<(ExecutionState, Option<String>, Option<Value>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("steppy.db")).expect("store");
    let ids: Vec<String> = plans
        .iter()
        .map(|p| store.submit(p, system_now_ms(), Default::default()).expect("submit"))
        .collect();
    let engine = engine(aws, &store, &dir);
    tokio::time::timeout(Duration::from_secs(30), engine.run(&ids))
        .await
        .expect("in time")
        .expect("engine");
    ids.iter()
        .map(|id| {
            let r = store.load(id).expect("load");
            (r.summary.state, r.steps[0].reason.clone(), r.steps[0].output.clone())
        })
        .collect()
}

/// A context for calling an executor directly, for step `step` of a recorded one-step plan.
fn context(store: &Store, plan: &Plan) -> StepContext {
    let id = store.submit(plan, system_now_ms(), Default::default()).expect("submit");
    StepContext {
        idempotency_key: StepContext::key_for(&id, 0, 0, 1),
        execution_id: id.into(),
        stage: 0,
        index: 0,
        flat: 0,
        attempt: 1,
        attempt_started_ms: system_now_ms(),
        step: Arc::new(plan.stages[0].steps[0].clone()),
        clock: Clock::system(),
        notices: Arc::new(SilentNotices),
        store: store.clone(),
    }
}

#[tokio::test]
async fn every_build_end_state_ends_the_step() {
    // moto only ever reports SUCCEEDED; the old Steppy looped forever on FAULT, TIMED_OUT and
    // STOPPED. Here each ends the step, with the status and the logs link in the reason.
    let fake = FakeCodeBuild::new(2);
    let projects = ["ok-app", "failed-app", "fault-app", "timeout-app", "stopped-app"];
    let plans: Vec<Plan> = projects
        .iter()
        .map(|p| one_step(json!({ "name": p, "type": "CodeBuild", "codeBuildName": p })))
        .collect();
    let results = run_all(aws(Some(&fake), None), &plans).await;
    assert_eq!(results[0].0, ExecutionState::Succeeded);
    assert_eq!(results[0].2.as_ref().expect("output")["status"], "SUCCEEDED");
    for ((state, reason, _), status) in results[1..].iter().zip(["FAILED", "FAULT", "TIMED_OUT", "STOPPED"]) {
        assert_eq!(*state, ExecutionState::Failed, "{status}");
        let reason = reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains(&format!("ended {status}")) && reason.contains("console.aws.amazon.com"),
            "{reason}"
        );
    }
    assert_eq!(fake.start_calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn throttling_and_server_errors_never_fail_a_build_step() {
    // moto never throttles. Four throttled reads, then two 5xx-class errors: the poller backs
    // off and keeps reading; the step still succeeds.
    let fake = FakeCodeBuild::new(1);
    fake.fail_next_reads(4, "ThrottlingException");
    let a = aws(Some(&fake), None);
    let results = run_all(
        a.clone(),
        &[one_step(
            json!({ "name": "b", "type": "CodeBuild", "codeBuildName": "app" }),
        )],
    )
    .await;
    assert_eq!(results[0].0, ExecutionState::Succeeded, "{:?}", results[0].1);
    fake.fail_next_reads(2, "InternalFailure");
    // (A new project: for "app" the re-start lookup in `start` would read its earlier build
    // and take the injected errors itself — it retries them too.)
    let results = run_all(
        a.clone(),
        &[one_step(
            json!({ "name": "b", "type": "CodeBuild", "codeBuildName": "app2" }),
        )],
    )
    .await;
    assert_eq!(results[0].0, ExecutionState::Succeeded, "{:?}", results[0].1);
    let target = a.target(Some("us-east-1".into()), None).await.expect("target");
    let stats = a.build_poller(&target).await;
    assert_eq!(stats.stats().throttled.load(Ordering::SeqCst), 4);
    assert_eq!(stats.stats().transient.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_build_codebuild_does_not_know_fails_the_step_after_three_reads() {
    // moto never answers buildsNotFound for a build it started.
    let fake = FakeCodeBuild::new(0);
    let a = aws(Some(&fake), None);
    let store = Store::open_in_memory().expect("store");
    let plan = one_step(json!({ "name": "b", "type": "CodeBuild", "codeBuildName": "app" }));
    let ctx = context(&store, &plan);
    let handle = json!({ "buildId": "app:gone", "project": "app", "region": "us-east-1" });
    let outcome = CodeBuildExecutor::new(a, Completion::WaitForEnd)
        .resume(&ctx, &handle)
        .await
        .expect("resume");
    assert!(
        matches!(&outcome, Outcome::Failed { reason, retryable: false } if reason.contains("does not know build app:gone")),
        "{outcome:?}"
    );
    assert_eq!(fake.batch_calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_restart_before_the_handle_was_recorded_reattaches_to_the_started_build() {
    // The crash window between StartBuild and the handle's commit: the engine calls `start`
    // again with the same idempotency key. moto drops the environment variables the marker
    // lives in, so this runs against the fake, which keeps them. StartBuild is called once.
    let fake = FakeCodeBuild::new(3);
    let store = Store::open_in_memory().expect("store");
    let plan = one_step(json!({ "name": "b", "type": "CodeBuild", "codeBuildName": "app" }));
    let ctx = context(&store, &plan);
    let first = CodeBuildExecutor::new(aws(Some(&fake), None), Completion::WaitForEnd)
        .start(&ctx)
        .await
        .expect("start");
    // A new process: new executor, new clients, same key.
    let restarted = CodeBuildExecutor::new(aws(Some(&fake), None), Completion::WaitForEnd);
    let second = restarted.start(&ctx).await.expect("start again");
    assert_eq!(first["buildId"], second["buildId"]);
    assert_eq!(fake.start_calls.load(Ordering::SeqCst), 1, "StartBuild called once");
    // After the handle was recorded a restart resumes: the same build, still one StartBuild.
    let outcome = restarted.resume(&ctx, &second).await.expect("resume");
    let Outcome::Succeeded(out) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(out["buildId"], first["buildId"]);
    assert_eq!(fake.start_calls.load(Ordering::SeqCst), 1);
    // A new attempt (a different key) is a new build.
    let mut retry = ctx.clone();
    retry.attempt = 2;
    retry.idempotency_key = StepContext::key_for(&ctx.execution_id, 0, 0, 2);
    let third = restarted.start(&retry).await.expect("start attempt 2");
    assert_ne!(third["buildId"], first["buildId"]);
    assert_eq!(fake.start_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn abort_with_stop_running_stops_the_build() {
    // moto's StopBuild exists but its next read reports SUCCEEDED anyway; the fake keeps STOPPED.
    let fake = FakeCodeBuild::new(1000);
    let a = aws(Some(&fake), None);
    let store = Store::open_in_memory().expect("store");
    let plan = one_step(json!({ "name": "b", "type": "CodeBuild", "codeBuildName": "app" }));
    let ctx = context(&store, &plan);
    let exec = CodeBuildExecutor::new(a, Completion::WaitForEnd);
    let handle = exec.start(&ctx).await.expect("start");
    exec.cancel(&ctx, &handle, RunningWork::LetFinish)
        .await
        .expect("cancel without stopping");
    let id = handle["buildId"].as_str().expect("id").to_string();
    assert!(!fake.builds.lock().expect("lock")[&id].stopped, "left running");
    exec.cancel(&ctx, &handle, RunningWork::Stop)
        .await
        .expect("cancel and stop");
    assert!(fake.builds.lock().expect("lock")[&id].stopped);
    let outcome = exec.resume(&ctx, &handle).await.expect("resume");
    assert!(matches!(outcome, Outcome::Failed { retryable: false, ref reason } if reason.contains("STOPPED")));
}

#[tokio::test]
async fn codebuild_no_wait_succeeds_once_started() {
    let fake = FakeCodeBuild::new(1000);
    let results = run_all(
        aws(Some(&fake), None),
        &[one_step(
            json!({ "name": "b", "type": "CodeBuildNoWait", "codeBuildName": "app" }),
        )],
    )
    .await;
    assert_eq!(results[0].0, ExecutionState::Succeeded);
    assert!(
        results[0].2.as_ref().expect("output")["buildId"]
            .as_str()
            .expect("id")
            .starts_with("app:")
    );
    assert_eq!(fake.batch_calls.load(Ordering::SeqCst), 0, "never read");
}

#[tokio::test]
async fn auto_approve_approves_the_pending_manual_approval_of_its_execution() {
    // moto cannot start pipelines or hold approvals.
    let fake = FakeCodePipeline::default();
    let plan = one_step(
        json!({ "name": "p", "type": "CodePipeline", "codePipelineName": "approve-ship", "autoApprove": true, "variables": { "VERSION": "1.2.3" } }),
    );
    let results = run_all(aws(None, Some(&fake)), &[plan]).await;
    assert_eq!(results[0].0, ExecutionState::Succeeded, "{:?}", results[0].1);
    let approvals = fake.approvals.lock().expect("lock").clone();
    assert_eq!(
        approvals,
        vec![("Gate".to_string(), "Manual".to_string(), "approval-token-1".to_string())]
    );
}

#[tokio::test]
async fn without_auto_approve_a_pending_approval_is_left_alone() {
    let fake = FakeCodePipeline::default();
    let a = aws(None, Some(&fake));
    let store = Store::open_in_memory().expect("store");
    let plan = one_step(json!({ "name": "p", "type": "CodePipeline", "codePipelineName": "approve-ship" }));
    let ctx = context(&store, &plan);
    let exec = CodePipelineExecutor::new(a, Completion::WaitForEnd);
    let handle = exec.start(&ctx).await.expect("start");
    let waited = tokio::time::timeout(Duration::from_millis(300), exec.resume(&ctx, &handle)).await;
    assert!(waited.is_err(), "still waiting for a person");
    assert!(fake.approvals.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn pipeline_end_states_and_throttling() {
    // Superseded, Stopped, Cancelled and Failed end the step; four throttled reads do not.
    let fake = FakeCodePipeline::default();
    fake.throttle_reads.store(4, Ordering::SeqCst);
    let names = [
        "ok-ship",
        "superseded-ship",
        "stopped-ship",
        "cancelled-ship",
        "failed-ship",
    ];
    let plans: Vec<Plan> = names
        .iter()
        .map(|n| one_step(json!({ "name": n, "type": "CodePipeline", "codePipelineName": n })))
        .collect();
    let results = run_all(aws(None, Some(&fake)), &plans).await;
    assert_eq!(results[0].0, ExecutionState::Succeeded, "{:?}", results[0].1);
    for ((state, reason, _), status) in results[1..]
        .iter()
        .zip(["Superseded", "Stopped", "Cancelled", "Failed"])
    {
        assert_eq!(*state, ExecutionState::Failed);
        assert!(
            reason
                .as_deref()
                .unwrap_or_default()
                .contains(&format!("ended {status}")),
            "{reason:?}"
        );
    }
    assert_eq!(
        fake.throttle_reads.load(Ordering::SeqCst),
        0,
        "the throttled reads happened"
    );
}

#[tokio::test]
async fn a_pipeline_restart_before_the_handle_reuses_the_execution() {
    // The clientRequestToken comes from the idempotency key: starting again returns the same
    // execution (the fake honours the token the way CodePipeline does).
    let fake = FakeCodePipeline::default();
    let store = Store::open_in_memory().expect("store");
    let plan = one_step(json!({ "name": "p", "type": "CodePipelineNoWait", "codePipelineName": "ship" }));
    let ctx = context(&store, &plan);
    let a = CodePipelineExecutor::new(aws(None, Some(&fake)), Completion::StartOnly)
        .start(&ctx)
        .await
        .expect("start");
    let b = CodePipelineExecutor::new(aws(None, Some(&fake)), Completion::StartOnly)
        .start(&ctx)
        .await
        .expect("start again");
    assert_eq!(a["executionId"], b["executionId"]);
    assert_eq!(fake.executions.lock().expect("lock").len(), 1);
}
