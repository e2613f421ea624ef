//! The `steppy` program against moto (a local AWS API on 127.0.0.1, started by the shared
//! harness in `executors/tests/support`): S3 plan sources, `serve --watch`, `iam-policy`, and a
//! SIGKILL in the middle of a build followed by `steppy resume`.
//!
//! Every `steppy` started here gets `AWS_ENDPOINT_URL` = the moto server, dummy credentials,
//! and no AWS profile or config file: nothing can reach real AWS.

mod support;

use steppy_test_support::moto as aws_support;

use aws_support::{aws_config, create_project, moto, unique};
use serde_json::{Value, json};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::Sandbox;

/// `steppy ARGS` in `sb`, talking to moto only.
fn steppy(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.steppy(args);
    support::talk_to(&mut c, &moto().url);
    c
}

fn output(mut c: Command) -> (std::process::ExitStatus, String, String) {
    let o = c.output().expect("spawn steppy");
    (
        o.status,
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

async fn s3() -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws_config().await)
            .force_path_style(true)
            .build(),
    )
}

async fn put(bucket: &str, key: &str, body: &Value) {
    s3().await
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_string().into_bytes().into())
        .send()
        .await
        .expect("upload");
}

async fn builds_of(project: &str) -> Vec<String> {
    let cb = aws_sdk_codebuild::Client::new(&aws_config().await);
    cb.list_builds_for_project()
        .project_name(project)
        .send()
        .await
        .expect("list builds")
        .ids()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_the_middle_of_a_build_resume_reattaches_to_the_same_build() {
    let project = unique("app");
    create_project(&aws_config().await, &project).await;
    let sb = Sandbox::new();
    let plan = sb.write_plan(&json!({ "stages": [
        { "name": "build", "steps": [{ "name": "build", "type": "CodeBuild", "codeBuildName": project }] },
        { "name": "after", "steps": [{ "name": "n", "type": "Notify", "message": "built" }] }
    ]}));
    let mut run = steppy(&sb, &["run", plan.to_str().expect("utf-8")]);
    run.env("STEPPY_FAULT", "kill-after:handle:build").stdin(Stdio::null());
    let (status, out, err) = output(run);
    assert_eq!(
        status.signal(),
        Some(9),
        "expected SIGKILL after the build's handle was recorded:\n{out}{err}"
    );
    let started = builds_of(&project).await;
    assert_eq!(started.len(), 1, "one build started before the kill");

    let (status, out, err) = output(steppy(&sb, &["resume"]));
    assert!(status.success(), "resume failed:\n{out}{err}");
    let id = sb.only_execution_id();
    let (_, shown, _) = output(steppy(&sb, &["status", &id, "--format", "json"]));
    let shown: Value = serde_json::from_str(&shown).expect("status json");
    assert_eq!(shown["execution"]["state"], "SUCCEEDED", "{shown}");
    assert!(
        shown.to_string().contains(&started[0]),
        "the step reports the build started before the kill: {shown}"
    );
    assert_eq!(builds_of(&project).await, started, "StartBuild was called once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_and_run_read_plans_from_s3_and_name_the_object_in_errors() {
    let bucket = unique("plans");
    s3().await.create_bucket().bucket(&bucket).send().await.expect("bucket");
    put(
        &bucket,
        "p/ok.json",
        &json!({ "stages": [{ "name": "s", "steps": [{ "name": "w", "type": "Wait", "seconds": 0 }] }] }),
    )
    .await;
    put(&bucket, "p/bad.json", &json!({ "stages": "nope" })).await;
    let sb = Sandbox::new();
    let ok = format!("s3://{bucket}/p/ok.json");
    let (status, out, err) = output(steppy(&sb, &["validate", &ok]));
    assert!(status.success(), "{out}{err}");
    assert!(out.contains(&format!("{ok}: valid")));
    let (status, _, err) = output(steppy(&sb, &["validate", &format!("s3://{bucket}/p/bad.json")]));
    assert_eq!(status.code(), Some(1), "{err}");
    let missing = format!("s3://{bucket}/p/missing.json");
    let (status, _, err) = output(steppy(&sb, &["validate", &missing]));
    assert_eq!(status.code(), Some(2));
    assert!(err.contains(&missing) && err.contains("NoSuchKey"), "{err}");
    let (status, out, err) = output(steppy(&sb, &["run", &ok]));
    assert!(status.success(), "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_watch_starts_each_new_plan_once_across_restarts() {
    let project = unique("svc");
    create_project(&aws_config().await, &project).await;
    let bucket = unique("intake");
    s3().await.create_bucket().bucket(&bucket).send().await.expect("bucket");
    let plan = json!({ "name": "from-s3", "stages": [{ "name": "b", "steps": [{ "name": "b", "type": "CodeBuild", "codeBuildName": project }] }] });
    put(&bucket, "releases/one/input.json", &plan).await;
    let sb = Sandbox::new();
    let watch = format!("s3://{bucket}/releases/");
    let serve = |sb: &Sandbox| {
        let mut c = steppy(sb, &["serve", "--listen", "127.0.0.1:0", "--watch", &watch]);
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve")
    };
    let list = |sb: &Sandbox| -> Vec<Value> {
        let (_, out, _) = output(steppy(sb, &["list", "--format", "json"]));
        serde_json::from_str::<Value>(&out)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    };
    let wait_for = |sb: &Sandbox, done: &dyn Fn(&[Value]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let rows = list(sb);
            if done(&rows) {
                return rows;
            }
            assert!(Instant::now() < deadline, "timed out; executions: {rows:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let mut first = serve(&sb);
    let rows = wait_for(&sb, &|r| r.len() == 1 && r[0]["state"] == "SUCCEEDED");
    assert_eq!(rows[0]["name"], "from-s3");
    first.kill().expect("stop serve");
    first.wait().expect("reap");

    // Restarted: the old object is not started again; a new version of it is.
    let mut second = serve(&sb);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(list(&sb).len(), 1, "started once, also across restarts");
    let mut changed = plan.clone();
    changed["name"] = json!("from-s3-v2");
    put(&bucket, "releases/one/input.json", &changed).await;
    let rows = wait_for(&sb, &|r| r.len() == 2 && r.iter().all(|e| e["state"] == "SUCCEEDED"));
    assert!(rows.iter().any(|e| e["name"] == "from-s3-v2"));
    second.kill().expect("stop serve");
    second.wait().expect("reap");
}

#[test]
fn iam_policy_prints_the_least_privilege_policy() {
    let sb = Sandbox::new();
    let plan = sb.write_plan(&json!({
        "defaults": { "region": "eu-west-1" },
        "stages": [{ "name": "s", "steps": [
            { "name": "b", "type": "CodeBuild", "codeBuildName": "app" },
            { "name": "x", "type": "CodeBuild", "codeBuildName": "infra", "roleArn": "arn:aws:iam::222222222222:role/deployer" },
            { "name": "n", "type": "Notify", "message": "hi", "topicArn": "arn:aws:sns:eu-west-1:111111111111:t" }
        ]}]
    }));
    let path = plan.to_str().expect("utf-8");
    let (status, out, err) = sb.output(&["iam-policy", path, "--watch", "s3://plans/releases/"]);
    assert!(status.success(), "{err}");
    let policy: Value = serde_json::from_str(&out).expect("policy JSON");
    assert_eq!(policy["Version"], "2012-10-17");
    let text = policy.to_string();
    for needle in [
        "arn:aws:codebuild:eu-west-1:*:project/app",
        "arn:aws:iam::222222222222:role/deployer",
        "arn:aws:sns:eu-west-1:111111111111:t",
        "arn:aws:s3:::plans/releases/*",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    assert!(err.contains("--role"), "{err}");
    let (status, out, _) = sb.output(&["iam-policy", path, "--role", "arn:aws:iam::222222222222:role/deployer"]);
    assert!(status.success());
    assert!(out.contains("arn:aws:codebuild:eu-west-1:222222222222:project/infra"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_mailed_after_a_crash_carries_a_fresh_token_that_steppy_approve_accepts() {
    // Killed after the approval row was committed, before its token was delivered: nothing was
    // mailed. `steppy resume` rotates the token and mails the request; the link's token,
    // given to `steppy approve`, lets the run finish.
    let config = aws_config().await;
    let (topic, queue) = aws_support::topic_with_queue(&config, &unique("gate")).await;
    let sb = Sandbox::new();
    let plan = sb.write_plan(&json!({ "name": "gated", "stages": [
        { "name": "gate", "steps": [{ "name": "gate", "type": "Human", "message": "Ship it?", "timeoutSeconds": 600 }] }
    ]}));
    let mut run = steppy(&sb, &["run", plan.to_str().expect("utf-8")]);
    run.env("STEPPY_FAULT", "kill-after:approval-row:gate")
        .env("STEPPY_TOPIC_ARN", &topic)
        .stdin(Stdio::null());
    let (status, out, err) = output(run);
    assert_eq!(status.signal(), Some(9), "{out}{err}");
    assert!(
        aws_support::notifications(&config, &queue, 1, 2).await.is_empty(),
        "nothing mailed before the crash"
    );

    let mut resume = steppy(&sb, &["resume"]);
    resume
        .env("STEPPY_TOPIC_ARN", &topic)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut resumed = resume.spawn().expect("spawn resume");
    let mail = aws_support::notifications(&config, &queue, 1, 30).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    let body = mail[0]["Message"].as_str().expect("message");
    let link = body
        .lines()
        .find_map(|l| l.strip_prefix("Approve: "))
        .expect("approve link");
    let token = link
        .split("/approvals/")
        .nth(1)
        .and_then(|t| t.strip_suffix("?action=approve"))
        .expect("token in link");
    let (status, out, err) = output(steppy(&sb, &["approve", token, "--as", "release-manager"]));
    assert!(status.success(), "{out}{err}");
    let finished = tokio::task::spawn_blocking(move || resumed.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(finished.success());
    let id = sb.only_execution_id();
    let (_, shown, _) = output(steppy(&sb, &["status", &id, "--format", "json"]));
    assert!(shown.contains("\"SUCCEEDED\""), "{shown}");
}

/// A DynamoDB table (moto) keyed by `id`, holding `items` (attribute name → string value).
async fn tenant_table(items: &[Vec<(&str, String)>]) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let ddb = aws_sdk_dynamodb::Client::new(&aws_config().await);
    let table = unique("tenants");
    ddb.create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
    for item in items {
        let mut put = ddb.put_item().table_name(&table);
        for (name, value) in item {
            put = put.item(*name, AttributeValue::S(value.clone()));
        }
        put.send().await.expect("put item");
    }
    table
}

/// 30 tenants in a deployment table (DynamoDB on moto), one CodeBuild build per tenant whose
/// project is named after it, the projects of two tenants (both in the second wave) missing.
/// With two failures tolerated the release succeeds and names the two; with one it fails after
/// the second wave and the third never starts. Every existing project is built exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_over_30_tenants_from_dynamodb_tolerates_failures_within_its_limit() {
    let config = aws_config().await;
    for tolerated in [2, 1] {
        let run = unique("r");
        let tenants: Vec<String> = (1..=30).map(|i| format!("{run}-t{i:02}")).collect();
        let missing = [&tenants[3], &tenants[7]];
        for t in tenants.iter().filter(|t| !missing.contains(t)) {
            create_project(&config, &format!("app-{t}")).await;
        }
        let items: Vec<Vec<(&str, String)>> = tenants
            .iter()
            .map(|t| vec![("id", t.clone()), ("tier", "pool".to_string())])
            .collect();
        let table = tenant_table(&items).await;
        let sb = Sandbox::new();
        let plan = sb.write_plan(&json!({
            "targets": { "tenants": { "from": format!("dynamodb://{table}") } },
            "stages": [{
                "name": "deploy", "forEach": "tenants", "maxConcurrency": 5,
                "toleratedFailureCount": tolerated,
                "waves": [ { "name": "canary", "count": 1 }, { "name": "next", "count": 9 }, { "name": "rest" } ],
                "steps": [ { "type": "CodeBuild", "name": "build", "codeBuildName": "app-${target.id}" } ]
            }]
        }));
        let (status, out, err) = output(steppy(&sb, &["run", plan.to_str().expect("utf-8")]));
        let id = sb.only_execution_id();
        let report = sb.json(&["status", &id, "--format", "json"]);
        let failed: Vec<String> = report["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter(|s| s["state"] == "FAILED")
            .map(|s| s["name"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            failed,
            missing.map(|t| format!("build [{t}]")),
            "tolerating {tolerated}:\n{out}{err}"
        );
        assert_eq!(report["resolved"]["sets"][0]["targets"], 30, "{report}");
        let third_wave = &tenants[10..];
        if tolerated == 2 {
            assert!(status.success(), "{out}{err}");
            assert_eq!(report["execution"]["state"], "SUCCEEDED");
        } else {
            assert_eq!(status.code(), Some(1), "{out}{err}");
            let reason = report["execution"]["reason"].as_str().unwrap_or("");
            assert!(
                reason.contains("2 of 30 targets failed, more than the 1 it tolerates"),
                "{reason}"
            );
            for t in third_wave {
                assert!(
                    builds_of(&format!("app-{t}")).await.is_empty(),
                    "{t} of the third wave was built"
                );
            }
        }
        // Every instance that ran built its project exactly once. With one failure tolerated,
        // the second wave's instances still pending when the second failure came were not
        // started ("not started", CANCELLED), and built nothing; which ones depends on timing.
        let state_of = |t: &str| {
            report["steps"]
                .as_array()
                .and_then(|steps| steps.iter().find(|s| s["name"] == format!("build [{t}]")))
                .and_then(|s| s["state"].as_str())
                .unwrap_or("")
                .to_string()
        };
        let considered = if tolerated == 2 { &tenants[..] } else { &tenants[..10] };
        for t in considered.iter().filter(|t| !missing.contains(t)) {
            let (builds, state) = (builds_of(&format!("app-{t}")).await.len(), state_of(t));
            match state.as_str() {
                "SUCCEEDED" => assert_eq!(builds, 1, "{t} built once"),
                "CANCELLED" if tolerated == 1 => assert_eq!(builds, 0, "{t} was not started"),
                other => panic!("{t} is {other} (tolerating {tolerated}):\n{out}{err}"),
            }
        }
        if tolerated == 2 {
            for t in considered {
                assert!(!missing.contains(&t) || state_of(t) == "FAILED", "{t}");
            }
        }
    }
}

/// A target set read from a DynamoDB table (moto): every item becomes a target, and the set is
/// a snapshot: an item added after the execution was recorded is not in it when `resume` runs
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_set_from_dynamodb_is_read_once_at_submission() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let ddb = aws_sdk_dynamodb::Client::new(&aws_config().await);
    let table = tenant_table(&[]).await;
    let put = |id: String, shard: u32| {
        ddb.put_item()
            .table_name(&table)
            .item("id", AttributeValue::S(id))
            .item("shard", AttributeValue::N(shard.to_string()))
            .item("active", AttributeValue::Bool(true))
            .item("tags", AttributeValue::Ss(vec!["x".into()]))
            .send()
    };
    for i in 0..30 {
        put(format!("t-{i:02}"), i % 4).await.expect("put item");
    }
    let sb = Sandbox::new();
    let plan = sb.write_plan(&json!({
        "targets": { "tenants": { "from": format!("dynamodb://{table}") } },
        "stages": [{ "name": "deploy", "forEach": "tenants", "maxConcurrency": 10,
            "steps": [ { "type": "Wait", "name": "w ${target.shard} ${target.active}", "seconds": 0 } ] }]
    }));
    let (status, out, err) = output(steppy(&sb, &["run", "--detach", plan.to_str().expect("utf-8")]));
    assert!(status.success(), "{out}{err}");
    put("t-99".into(), 1).await.expect("a later item");
    let (status, out, err) = output(steppy(&sb, &["resume"]));
    assert!(status.success(), "{out}{err}");
    let id = sb.only_execution_id();
    let report = sb.json(&["status", &id, "--format", "json"]);
    assert_eq!(report["execution"]["state"], "SUCCEEDED", "{report}");
    let names: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        names.len(),
        30,
        "the snapshot holds the 30 items read at submission: {names:?}"
    );
    assert!(names.contains(&"w 3 true [t-07]"), "{names:?}");
    let set = &report["resolved"]["sets"][0];
    assert_eq!(
        (set["source"].as_str(), set["targets"].as_u64()),
        (Some(format!("dynamodb://{table}").as_str()), Some(30))
    );
    // An unknown table is an error naming it, before anything is recorded.
    let missing = sb.write_plan(&json!({
        "targets": { "tenants": { "from": "dynamodb://no-such-table" } },
        "stages": [{ "name": "deploy", "forEach": "tenants", "steps": [ { "type": "Wait", "name": "w", "seconds": 0 } ] }]
    }));
    let (status, _, err) = output(steppy(&sb, &["validate", missing.to_str().expect("utf-8")]));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("no-such-table"), "{err}");
}
