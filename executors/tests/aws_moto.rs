//! End-to-end tests of the AWS executors and the S3 intake against moto in server mode (a local
//! AWS API on 127.0.0.1; see `support`). What moto does, and so what these tests can show:
//!
//! - CodeBuild: StartBuild answers IN_PROGRESS; the first BatchGetBuilds of a build reports it
//!   SUCCEEDED (moto finishes every build on first read). moto ignores `idempotencyToken` and
//!   environment variable overrides, so the fault paths (FAULT, TIMED_OUT, STOPPED, throttling,
//!   the re-start lookup) are tested with aws-smithy-mocks in `aws_mocked.rs`.
//! - SNS to SQS delivery works: the queue receives the envelope an email subscriber would see.
//! - STS AssumeRole returns temporary credentials for any role.
//! - S3 with ListObjectVersions, GetObject, PutObject.
//! - CodePipeline: moto can create pipelines but not start them (see the last test).

use steppy_test_support::moto as support;

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use steppy_engine::clock::system_now_ms;
use steppy_engine::plan::Plan;
use steppy_engine::scheduler::{Engine, NoObserver};
use steppy_engine::state::ExecutionState;
use steppy_engine::store::{Store, Vote};
use steppy_executors::aws::intake::{Intake, Taken};
use steppy_executors::aws::{Aws, AwsSettings};
use support::*;

fn settings(topic: Option<String>) -> AwsSettings {
    AwsSettings {
        topic_arn: topic,
        public_url: "http://127.0.0.1:8080".into(),
        poll_interval: Duration::from_millis(100),
    }
}

struct Setup {
    engine: Engine,
    store: Store,
    notices: Arc<Recorded>,
    aws: Arc<Aws>,
    _dir: tempfile::TempDir,
}

async fn setup(topic: Option<String>) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("steppy.db")).expect("store");
    let aws = Aws::with_config(settings(topic), aws_config().await);
    let registry = steppy_executors::aws_registry(dir.path().join("outbox.jsonl"), aws.clone());
    let notices = recorded();
    let engine = Engine::new(store.clone(), Arc::new(registry), notices.clone(), Arc::new(NoObserver));
    Setup {
        engine,
        store,
        notices,
        aws,
        _dir: dir,
    }
}

fn plan(value: Value) -> Plan {
    serde_json::from_value(value).expect("plan")
}

async fn run(s: &Setup, p: &Plan) -> (String, ExecutionState) {
    let id = s.store.submit(p, system_now_ms(), Default::default()).expect("submit");
    let states = tokio::time::timeout(Duration::from_secs(60), s.engine.run(std::slice::from_ref(&id)))
        .await
        .expect("finishes in time")
        .expect("engine");
    (id, states[0].1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codebuild_then_notify_through_sns_against_moto() {
    let config = aws_config().await;
    let project = unique("app");
    create_project(&config, &project).await;
    let (topic, queue) = topic_with_queue(&config, &unique("releases")).await;
    let s = setup(None).await;
    let p = plan(json!({
        "name": "release-42",
        "defaults": { "region": REGION, "notificationTopicArn": topic },
        "stages": [
            { "name": "build", "steps": [
                { "name": "app", "type": "CodeBuild", "codeBuildName": project, "sourceVersion": { "type": "branch", "value": "main" },
                  "environmentVariableOverrides": [{ "name": "STAGE", "value": "prod" }] },
                { "name": "docs", "type": "CodeBuildNoWait", "codeBuildName": project }
            ]},
            { "name": "announce", "steps": [
                { "name": "tell", "type": "Notify", "subject": "Release 42 built", "message": "Release 42 is built." }
            ]}
        ]
    }));
    let (id, state) = run(&s, &p).await;
    let record = s.store.load(&id).expect("load");
    assert_eq!(state, ExecutionState::Succeeded, "{:?}", record.summary.reason);

    let app = &record.steps[0];
    let out = app.output.as_ref().expect("output");
    assert_eq!(out["status"], "SUCCEEDED");
    let build_id = out["buildId"].as_str().expect("build id");
    assert!(build_id.starts_with(&format!("{project}:")));
    assert!(out["logs"].as_str().expect("logs").contains(&format!(
        "{REGION}.console.aws.amazon.com/codesuite/codebuild/projects/{project}/build/"
    )));
    assert!(record.steps[1].output.as_ref().expect("no-wait output")["buildId"].is_string());

    // Two builds in moto, one per step: no step started a second one.
    let cb = aws_sdk_codebuild::Client::new(&config);
    let builds = cb
        .list_builds_for_project()
        .project_name(&project)
        .send()
        .await
        .expect("list builds");
    assert_eq!(builds.ids().len(), 2);

    let got = notifications(&config, &queue, 1, 10).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["Subject"], "Release 42 built");
    let body = got[0]["Message"].as_str().expect("message");
    assert!(body.starts_with("Release 42 is built."));
    for line in [
        "Plan: release-42",
        &format!("Execution: {id}"),
        "Stage: announce",
        "Step: tell",
    ] {
        assert!(body.contains(line), "{line:?} missing from {body}");
    }
    assert_eq!(got[0]["MessageAttributes"]["steppy.execution"]["Value"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_without_any_topic_stays_local() {
    let s = setup(None).await;
    let p = plan(
        json!({ "stages": [{ "name": "s", "steps": [{ "name": "tell", "type": "Notify", "message": "local only" }] }] }),
    );
    let (_, state) = run(&s, &p).await;
    assert_eq!(state, ExecutionState::Succeeded);
    let outbox = std::fs::read_to_string(s._dir.path().join("outbox.jsonl")).expect("outbox");
    assert!(outbox.contains("local only") && !outbox.contains("topicArn"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_is_assumed_with_sts_and_its_credentials_are_cached() {
    use aws_credential_types::provider::ProvideCredentials;
    let s = setup(None).await;
    let role = format!("arn:aws:iam::{ACCOUNT}:role/deployer");
    let target = s
        .aws
        .target(Some(REGION.into()), Some(role.clone()))
        .await
        .expect("target");
    let config = s.aws.config(&target, "steppy-test-execution").await;
    let creds = config
        .credentials_provider()
        .expect("provider")
        .provide_credentials()
        .await
        .expect("assumed credentials");
    assert_ne!(
        creds.access_key_id(),
        "testing",
        "the role's temporary credentials, not the base ones"
    );
    assert!(creds.session_token().is_some() && creds.expiry().is_some());
    // The same (role, region, session) gives the same configuration back (cached).
    let again = s.aws.config(&target, "steppy-test-execution").await;
    assert!(again.credentials_provider().is_some());

    // A CodeBuild step running under the role works end to end.
    let project = unique("cross-account");
    create_project(&aws_config().await, &project).await;
    let p = plan(json!({ "defaults": { "roleArn": role, "region": REGION },
        "stages": [{ "name": "s", "steps": [{ "name": "b", "type": "CodeBuild", "codeBuildName": project }] }] }));
    let (_, state) = run(&s, &p).await;
    assert_eq!(state, ExecutionState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_uploaded_to_s3_runs_once_through_build_approval_and_notify() {
    let config = aws_config().await;
    let project = unique("svc");
    create_project(&config, &project).await;
    let (topic, queue) = topic_with_queue(&config, &unique("approvals")).await;
    let bucket = unique("plans");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    let p = json!({
        "name": "svc-release",
        "stages": [
            { "name": "build", "steps": [{ "name": "svc", "type": "CodeBuild", "codeBuildName": project }] },
            { "name": "gate", "steps": [{ "name": "go?", "type": "Human", "message": "Ship svc to production?", "timeoutSeconds": 3600 }] },
            { "name": "done", "steps": [{ "name": "tell", "type": "Notify", "message": "svc shipped" }] }
        ]
    });
    s3.put_object()
        .bucket(&bucket)
        .key("releases/r1/input.json")
        .body(p.to_string().into_bytes().into())
        .send()
        .await
        .expect("upload");
    s3.put_object()
        .bucket(&bucket)
        .key("releases/readme.md")
        .body(b"not a plan".to_vec().into())
        .send()
        .await
        .expect("upload");

    let s = setup(Some(topic.clone())).await;
    let url = format!("s3://{bucket}/releases/");
    let intake = Intake::new(
        s.aws.clone(),
        s.store.clone(),
        Arc::new(steppy_executors::aws_registry(
            s._dir.path().join("o.jsonl"),
            s.aws.clone(),
        )),
        &url,
    )
    .expect("intake");
    let taken = intake.scan().await.expect("scan");
    assert_eq!(taken.len(), 1, "{taken:?}");
    let Taken::Started { execution_id: id, .. } = &taken[0] else {
        panic!("not started: {taken:?}")
    };
    // Exactly once: a second scan, and a watcher restarted on the same database, start nothing.
    assert!(intake.scan().await.expect("scan").is_empty());
    let reopened = Store::open(&s._dir.path().join("steppy.db")).expect("reopen");
    let again = Intake::new(
        s.aws.clone(),
        reopened,
        Arc::new(steppy_executors::local_registry("x".into())),
        &url,
    )
    .expect("intake");
    assert!(again.scan().await.expect("scan").is_empty());

    let engine = s.engine.clone();
    let ids = vec![id.clone()];
    let running = tokio::spawn(async move { engine.run(&ids).await });

    // The approval request arrives like an email: subject, message, expiry, working links.
    let got = notifications(&config, &queue, 1, 30).await;
    assert!(!got.is_empty(), "no approval request arrived");
    let body = got[0]["Message"].as_str().expect("message").to_string();
    assert!(got[0]["Subject"].as_str().expect("subject").contains("go?"));
    assert!(
        body.contains("Ship svc to production?") && body.contains("This request expires at "),
        "{body}"
    );
    let approve = body
        .lines()
        .find_map(|l| l.strip_prefix("Approve: "))
        .expect("approve link");
    let reject = body
        .lines()
        .find_map(|l| l.strip_prefix("Reject:  "))
        .expect("reject link");
    assert!(approve.starts_with("http://127.0.0.1:8080/approvals/") && approve.ends_with("?action=approve"));
    assert!(reject.ends_with("?action=reject"));
    let token = approve
        .trim_start_matches("http://127.0.0.1:8080/approvals/")
        .trim_end_matches("?action=approve");
    assert_eq!(
        s.notices.tokens.lock().expect("tokens").as_slice(),
        [token.to_string()],
        "the same token on the terminal and in the mail"
    );
    // The token is not stored: only its hash is.
    let db = std::fs::read(s._dir.path().join("steppy.db")).expect("db");
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()));

    let vote = Vote {
        approve: true,
        voter: "release-manager".into(),
        comment: Some("ship it".into()),
    };
    s.store
        .vote(&steppy_executors::human::token_hash(token), &vote, system_now_ms())
        .expect("approve with the link's token");
    let states = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("in time")
        .expect("join")
        .expect("engine");
    assert_eq!(states[0].1, ExecutionState::Succeeded);
    let tell = notifications(&config, &queue, 1, 10).await;
    assert!(
        tell.iter()
            .any(|n| n["Message"].as_str().unwrap_or("").starts_with("svc shipped")),
        "{tell:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_plan_is_not_started_and_its_errors_are_reported() {
    let config = aws_config().await;
    let (topic, queue) = topic_with_queue(&config, &unique("intake")).await;
    let bucket = unique("plans");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    s3.put_object()
        .bucket(&bucket)
        .key("in/bad.json")
        .body(b"{\"stages\": 7}".to_vec().into())
        .send()
        .await
        .expect("upload");
    let s = setup(Some(topic)).await;
    let registry = Arc::new(steppy_executors::aws_registry(
        s._dir.path().join("o.jsonl"),
        s.aws.clone(),
    ));
    let intake = Intake::new(s.aws.clone(), s.store.clone(), registry, &format!("s3://{bucket}/in/")).expect("intake");
    let taken = intake.scan().await.expect("scan");
    assert!(
        matches!(&taken[..], [Taken::Refused { key, .. }] if key == "in/bad.json"),
        "{taken:?}"
    );
    assert!(s.store.list().expect("list").is_empty(), "nothing started");
    let report = s3
        .get_object()
        .bucket(&bucket)
        .key("in/bad.json.errors.json")
        .send()
        .await
        .expect("errors beside the plan");
    let report: Value = serde_json::from_slice(&report.body.collect().await.expect("body").into_bytes()).expect("json");
    assert_eq!(report["valid"], false);
    // The validator's own report: where (pointer, line, column) and why.
    assert_eq!(report["errors"][0]["pointer"], "/stages", "{report}");
    assert_eq!(report["errors"][0]["line"], 1, "{report}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("must be a list"),
        "{report}"
    );
    let got = notifications(&config, &queue, 1, 10).await;
    assert!(got[0]["Subject"].as_str().expect("subject").contains("is invalid"));
    // The errors file itself is not a plan, and the refused plan is not reported twice.
    assert!(intake.scan().await.expect("scan").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codepipeline_start_is_not_supported_by_moto_and_fails_with_a_clear_message() {
    // moto 5.2.5 implements CreatePipeline/GetPipeline but not StartPipelineExecution: the
    // CodePipeline step's behaviour is tested with aws-smithy-mocks (aws_mocked.rs). Here: the
    // step reports the API's refusal as a sentence naming the call and the pipeline.
    let s = setup(None).await;
    let p = plan(
        json!({ "stages": [{ "name": "s", "steps": [{ "name": "p", "type": "CodePipeline", "codePipelineName": "ship", "region": REGION }] }] }),
    );
    let (id, state) = run(&s, &p).await;
    assert_eq!(state, ExecutionState::Failed);
    let reason = s.store.load(&id).expect("load").steps[0]
        .reason
        .clone()
        .unwrap_or_default();
    assert!(reason.contains("StartPipelineExecution of pipeline ship"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_codebuild_reports_in_progress_then_succeeded_on_the_first_read() {
    // Pins what moto models, which the tests above rely on: a started build is IN_PROGRESS,
    // and the first BatchGetBuilds reports it SUCCEEDED (phases filled in, COMPLETED).
    use aws_sdk_codebuild::types::StatusType;
    let config = aws_config().await;
    let project = unique("probe");
    create_project(&config, &project).await;
    let cb = aws_sdk_codebuild::Client::new(&config);
    let started = cb
        .start_build()
        .project_name(&project)
        .idempotency_token("t")
        .send()
        .await
        .expect("start");
    let build = started.build_value().expect("build");
    assert_eq!(build.build_status(), Some(&StatusType::InProgress));
    let id = build.id().expect("id").to_string();
    let read = cb.batch_get_builds().ids(&id).send().await.expect("read");
    assert_eq!(read.builds()[0].build_status(), Some(&StatusType::Succeeded));
    assert_eq!(read.builds()[0].current_phase(), Some("COMPLETED"));
    // moto ignores the idempotency token: the same token starts a second build (which is why
    // the re-start lookup is tested against the fake).
    cb.start_build()
        .project_name(&project)
        .idempotency_token("t")
        .send()
        .await
        .expect("start");
    assert_eq!(
        cb.list_builds_for_project()
            .project_name(&project)
            .send()
            .await
            .expect("list")
            .ids()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_started_again_with_the_same_key_publishes_once() {
    // A crash after Publish but before the handle was recorded: `start` runs again with the
    // same idempotency key and finds the message in its sent-log (the outbox).
    use steppy_engine::clock::Clock;
    use steppy_engine::executor::{Executor, SilentNotices, StepContext};
    let config = aws_config().await;
    let (topic, queue) = topic_with_queue(&config, &unique("once")).await;
    let s = setup(Some(topic)).await;
    let p = plan(
        json!({ "stages": [{ "name": "s", "steps": [{ "name": "n", "type": "Notify", "message": "exactly once" }] }] }),
    );
    let id = s.store.submit(&p, system_now_ms(), Default::default()).expect("submit");
    let ctx = StepContext {
        idempotency_key: StepContext::key_for(&id, 0, 0, 1),
        execution_id: id.as_str().into(),
        stage: 0,
        index: 0,
        flat: 0,
        attempt: 1,
        attempt_started_ms: system_now_ms(),
        step: Arc::new(p.stages[0].steps[0].clone()),
        clock: Clock::system(),
        notices: Arc::new(SilentNotices),
        store: s.store.clone(),
    };
    let outbox = s._dir.path().join("outbox.jsonl");
    let first = steppy_executors::sns::SnsNotifyExecutor::new(
        s.aws.clone(),
        steppy_executors::notify::NotifyExecutor::new(outbox.clone()),
    );
    first.start(&ctx).await.expect("publish");
    let restarted = steppy_executors::sns::SnsNotifyExecutor::new(
        s.aws.clone(),
        steppy_executors::notify::NotifyExecutor::new(outbox),
    );
    restarted.start(&ctx).await.expect("start again");
    let got = notifications(&config, &queue, 2, 3).await;
    assert_eq!(got.len(), 1, "{got:?}");
}
