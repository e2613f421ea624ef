//! The ASL compiler (`steppy_engine::asl`) on every plan under `examples/`: the output matches
//! the stored snapshot byte for byte, is deterministic, and is accepted by `asl-validator`
//! (installed into `.tools/` by `scripts/test`).
//!
//! Update the snapshots after an intended change with
//! `STEPPY_UPDATE_SNAPSHOTS=1 cargo test -p steppy-engine --test asl`, then review the diff.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use steppy_engine::asl::{CompileError, Options, compile};
use steppy_engine::validate::load_plan;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn examples() -> Vec<PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(root().join("examples"))
        .expect("examples/ exists")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "yaml" | "yml")))
        .collect();
    paths.sort();
    paths
}

/// The options the snapshots are compiled with.
fn options() -> Options {
    Options {
        topic_arn: Some("arn:aws:sns:us-east-1:123456789012:steppy-approvals".into()),
        public_url: "https://steppy.example.com".into(),
        ..Options::default()
    }
}

fn compiled_text(path: &Path) -> String {
    let plan = load_plan(path).unwrap_or_else(|e| panic!("{} is invalid:\n{e}", path.display()));
    compile(&plan, &options())
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()))
        .to_text()
}

fn snapshot_path(example: &Path) -> PathBuf {
    let stem = example.file_stem().and_then(|s| s.to_str()).unwrap_or("plan");
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/asl")
        .join(format!("{stem}.asl.json"))
}

#[test]
fn every_example_matches_its_snapshot() {
    let update = std::env::var_os("STEPPY_UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for example in examples() {
        let text = compiled_text(&example);
        let snap = snapshot_path(&example);
        if update {
            std::fs::create_dir_all(snap.parent().unwrap()).unwrap();
            std::fs::write(&snap, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&snap) {
            Ok(stored) if stored == text => {}
            Ok(stored) => {
                let line = stored
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .map(|i| i + 1)
                    .unwrap_or(stored.lines().count().min(text.lines().count()) + 1);
                stale.push(format!(
                    "{} differs from {} from line {line} on",
                    example.display(),
                    snap.display()
                ));
            }
            Err(_) => stale.push(format!("{} has no snapshot at {}", example.display(), snap.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nIf the change is intended, update the snapshots with\n  STEPPY_UPDATE_SNAPSHOTS=1 cargo test -p steppy-engine --test asl\nand review the diff.",
        stale.join("\n")
    );
}

#[test]
fn compiling_is_deterministic() {
    for example in examples() {
        let first = compiled_text(&example);
        for _ in 0..5 {
            assert_eq!(
                compiled_text(&example),
                first,
                "{} compiled twice differs",
                example.display()
            );
        }
    }
}

fn validator() -> PathBuf {
    root().join(".tools/node_modules/.bin/asl-validator")
}

#[test]
fn every_example_is_accepted_by_asl_validator() {
    let bin = validator();
    assert!(
        bin.exists(),
        "{} is missing: run scripts/test, or `npm install --prefix .tools asl-validator@4.0.0` at the repository root",
        bin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    for example in examples() {
        let file = dir.path().join(snapshot_path(&example).file_name().unwrap());
        std::fs::write(&file, compiled_text(&example)).unwrap();
        let out = Command::new(&bin)
            .arg("--json-path")
            .arg(&file)
            .output()
            .expect("asl-validator runs");
        assert!(
            out.status.success(),
            "asl-validator rejects the ASL of {}:\n{}{}",
            example.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every state of a definition, branches included, by name.
fn all_states(definition: &Value, out: &mut Vec<(String, Value)>) {
    if let Some(states) = definition["States"].as_object() {
        for (name, state) in states {
            out.push((name.clone(), state.clone()));
            for b in state["Branches"].as_array().into_iter().flatten() {
                all_states(b, out);
            }
        }
    }
}

#[test]
fn state_names_are_unique_and_acceptable_across_branches() {
    let plan: steppy_engine::Plan = serde_json::from_value(serde_json::json!({
        "stages": [
            { "name": "Deploy: eu/us {x}", "steps": [
                { "type": "Wait", "name": "step", "seconds": 1 },
                { "type": "Wait", "name": "step", "seconds": 2 }
            ]},
            { "name": "Deploy: eu/us {x}", "steps": [ { "type": "Wait", "name": "step", "seconds": 3 } ] }
        ]
    }))
    .unwrap();
    let compiled = compile(&plan, &options()).unwrap();
    let mut states = Vec::new();
    all_states(&compiled.definition, &mut states);
    let mut names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "duplicate state names in {names:?}");
    assert!(
        names.contains(&"Deploy_ eu_us _x_") && names.contains(&"Deploy_ eu_us _x_ 2"),
        "{names:?}"
    );
}

#[test]
fn a_failed_step_without_continue_on_failure_fails_the_execution() {
    let plan = load_plan(&root().join("examples/full-release.json")).unwrap();
    let d = compile(&plan, &options()).unwrap().definition;
    // Build: "api" must succeed, "docs" continues on failure: only "api" can halt the release.
    assert_eq!(d["States"]["Build"]["Next"], "Build check");
    assert_eq!(
        d["States"]["Build"]["ResultSelector"]["halted.$"],
        "States.ArrayContains($[*].halts, true)"
    );
    let branches = d["States"]["Build"]["Branches"].as_array().unwrap();
    assert_eq!(branches[0]["States"]["api failed"]["Parameters"]["halts"], true);
    assert_eq!(branches[1]["States"]["docs failed"]["Parameters"]["halts"], false);
    assert_eq!(branches[0]["States"]["api succeeded"]["Result"]["halts"], false);
    assert_eq!(
        d["States"]["Build check"]["Choices"][0]["Variable"],
        "$.lastStage.halted"
    );
    assert_eq!(d["States"]["Build check"]["Choices"][0]["BooleanEquals"], true);
    assert_eq!(d["States"]["Build check"]["Choices"][0]["Next"], "Build failed");
    assert_eq!(d["States"]["Build failed"]["Error"], "Steppy.StepFailed");
    let api = &d["States"]["Build"]["Branches"][0]["States"]["api"];
    assert_eq!(api["Resource"], "arn:aws:states:::codebuild:startBuild.sync");
    assert_eq!(api["Retry"][0]["MaxAttempts"], 1);
    assert_eq!(api["TimeoutSeconds"], 3600);
    assert_eq!(
        api["Credentials"]["RoleArn"],
        "arn:aws:iam::111111111111:role/SteppyDeployer"
    );
    assert_eq!(api["Parameters"]["SourceVersion"], "refs/tags/v2.4.0");
}

#[test]
fn a_rejection_and_a_rejecting_timeout_abort_the_execution() {
    let plan = load_plan(&root().join("examples/full-release.json")).unwrap();
    let d = compile(&plan, &options()).unwrap().definition;
    let human = &d["States"]["Soak and sign-off"]["Branches"][1]["States"];
    let task = &human["release manager"];
    assert_eq!(task["Resource"], "arn:aws:states:::sns:publish.waitForTaskToken");
    assert_eq!(task["TimeoutSeconds"], 86400);
    assert_eq!(task["Catch"][0]["ErrorEquals"][0], "Steppy.Rejected");
    assert_eq!(human[task["Catch"][0]["Next"].as_str().unwrap()]["Type"], "Fail");
    assert_eq!(task["Catch"][1]["ErrorEquals"][0], "States.Timeout");
    assert_eq!(
        human[task["Catch"][1]["Next"].as_str().unwrap()]["Error"],
        "Steppy.Rejected"
    );
    let message = task["Parameters"]["Message.$"].as_str().unwrap();
    assert!(
        message.contains("https://steppy.example.com/humanConfirmation?taskToken={}&action=approve"),
        "{message}"
    );
    assert!(message.ends_with("$$.Task.Token, $$.Task.Token)"), "{message}");
}

#[test]
fn an_approving_timeout_continues() {
    let plan = load_plan(&root().join("examples/quickstart.json")).unwrap();
    let d = compile(&plan, &options()).unwrap().definition;
    let states = &d["States"]["Sign-off"]["Branches"][0]["States"];
    let next = states["Go _ no-go"]["Catch"][1]["Next"].as_str().unwrap();
    assert_eq!(states[next]["Type"], "Pass");
    assert_eq!(states[next]["Result"]["status"], "Succeeded");
}

#[test]
fn a_plan_without_any_topic_names_the_step_that_needs_one() {
    let plan = load_plan(&root().join("examples/quickstart.json")).unwrap();
    let err = compile(&plan, &Options::default()).unwrap_err();
    assert_eq!(
        err,
        CompileError::NoTopic {
            step: "Say hello".into()
        }
    );
    assert!(err.to_string().contains("--topic-arn"));
}
