//! `steppy validate` and `steppy schema` as a user runs them: the real binary, real files.

use std::io::Write;
use std::process::{Command, Stdio};

fn steppy() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steppy"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).env("NO_COLOR", "1");
    cmd
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn valid_plans_exit_zero() {
    let out = steppy()
        .args([
            "validate",
            "examples/original-steppy.json",
            "examples/multi-region.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("examples/original-steppy.json: valid (3 stages, 6 steps)"),
        "{stdout}"
    );
}

#[test]
fn a_typo_exits_one_and_shows_where_and_what_was_meant() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write(
        &dir,
        "typo.json",
        "{\n  \"stages\": [{\"name\": \"s\", \"steps\": [\n    {\"type\": \"CodeBuld\", \"name\": \"b\", \"codeBuildName\": \"proj\"}\n  ]}]\n}\n",
    );
    let out = steppy().arg("validate").arg(&plan).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("typo.json:3:14"), "{stderr}");
    assert!(stderr.contains("at /stages/0/steps/0/type"), "{stderr}");
    assert!(
        stderr.contains("{\"type\": \"CodeBuld\""),
        "the source line is shown: {stderr}"
    );
    assert!(stderr.contains("did you mean \"CodeBuild\"?"), "{stderr}");
}

#[test]
fn a_missing_file_exits_two_even_beside_an_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(&dir, "bad.json", "[]");
    let out = steppy()
        .arg("validate")
        .arg(&bad)
        .arg(dir.path().join("nope.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn usage_errors_exit_two() {
    let out = steppy().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn standard_input_is_read_for_dash_in_either_syntax() {
    for (text, code) in [
        (
            "stages:\n  - name: s\n    steps:\n      - {type: Wait, name: w, seconds: 1}\n",
            0,
        ),
        ("{\"stages\": 5}", 1),
    ] {
        let mut child = steppy()
            .args(["validate", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{text}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn json_format_is_one_machine_readable_document() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        &dir,
        "bad.yaml",
        "stages:\n  - name: s\n    steps:\n      - type: Wait\n        name: w\n        seconds: -1\n",
    );
    let out = steppy()
        .args(["validate", "--format", "json", "examples/full-release.json"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["plans"][0]["valid"], true);
    let error = &doc["plans"][1]["errors"][0];
    assert_eq!(error["pointer"], "/stages/0/steps/0/seconds");
    assert_eq!((error["line"].as_u64(), error["column"].as_u64()), (Some(6), Some(18)));
    assert_eq!(error["code"], "out-of-range");
}

#[test]
fn schema_prints_the_schema_file() {
    let out = steppy().arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file: serde_json::Value = serde_json::from_str(include_str!("../schemas/plan.schema.json")).unwrap();
    assert_eq!(printed, file);
}
