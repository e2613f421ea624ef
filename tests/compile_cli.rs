//! `steppy compile`: prints exactly the engine's snapshot for an example, warnings on standard
//! error only, and a clear sentence (exit 1) when a step has no SNS topic.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn steppy(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_steppy"))
        .args(args)
        .env_remove("STEPPY_TOPIC_ARN")
        .env_remove("STEPPY_PUBLIC_URL")
        .current_dir(root())
        .output()
        .expect("steppy runs")
}

#[test]
fn compile_prints_the_snapshot_and_warns_on_stderr() {
    let out = steppy(&[
        "compile",
        "--topic-arn",
        "arn:aws:sns:us-east-1:123456789012:steppy-approvals",
        "--public-url",
        "https://steppy.example.com",
        "examples/full-release.json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = std::fs::read_to_string(root().join("engine/tests/snapshots/asl/full-release.asl.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning: step 'release manager'"), "{stderr}");
    assert!(stderr.contains("region(s) eu-central-1, eu-west-1"), "{stderr}");
}

#[test]
fn compile_without_a_topic_names_the_step() {
    let out = steppy(&["compile", "examples/quickstart.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("step 'Say hello' publishes to SNS but no topic is known"),
        "{stderr}"
    );
}

#[test]
fn iam_policy_for_the_sfn_engine_is_the_execution_roles() {
    // Every step of the example runs as a role (Credentials.RoleArn): the execution role assumes them.
    let out = steppy(&["iam-policy", "--engine", "sfn", "examples/full-release.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let policy: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON policy");
    assert!(policy.to_string().contains("sts:AssumeRole"), "{policy}");
    // The role a CodeBuild step assumes also manages the EventBridge rule of startBuild.sync;
    // the local engine's policy for the same role has none.
    let role = "arn:aws:iam::111111111111:role/SteppyDeployer";
    let out = steppy(&[
        "iam-policy",
        "--engine",
        "sfn",
        "--role",
        role,
        "examples/full-release.json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("arn:aws:events:eu-west-1:111111111111:rule/StepFunctionsGetEventForCodeBuildStartBuildRule"),
        "{text}"
    );
    let local = steppy(&["iam-policy", "--role", role, "examples/full-release.json"]);
    assert!(!String::from_utf8_lossy(&local.stdout).contains("events:PutRule"));
    // The execution role reads no plans: --watch makes no sense there.
    let watch = steppy(&[
        "iam-policy",
        "--engine",
        "sfn",
        "--watch",
        "s3://plans/releases/",
        "examples/full-release.json",
    ]);
    assert_eq!(watch.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&watch.stderr).contains("drop --watch"));
}

#[test]
fn deploy_on_the_local_engine_says_there_is_nothing_to_deploy() {
    let out = steppy(&["deploy", "--engine", "local", "examples/quickstart.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to deploy"));
}
