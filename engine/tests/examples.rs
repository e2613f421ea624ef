//! Every plan under `examples/` validates, and the original Steppy example, comments and all,
//! means what it meant there.

use std::path::Path;
use steppy_engine::plan::StepKind;
use steppy_engine::validate::load_plan;

fn examples() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "yaml" | "yml")))
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_example_is_valid() {
    let paths = examples();
    assert!(paths.len() >= 3, "expected the examples, found {paths:?}");
    for path in paths {
        if let Err(e) = load_plan(&path) {
            panic!("{} is invalid:\n{e}", path.display());
        }
    }
}

#[test]
fn the_original_steppy_example_validates_unchanged() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/original-steppy.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("// This will trigger the sync CodeBuild step"),
        "the example keeps its comments"
    );
    let plan = load_plan(&path).unwrap();
    let shape: Vec<(&str, Vec<(&str, &str)>)> = plan
        .stages
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.steps
                    .iter()
                    .map(|st| (st.name.as_str(), st.kind.type_name()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            (
                "Stage 1 - Build some CodeBuilds",
                vec![
                    ("Step 1 - CodeBuild", "CodeBuild"),
                    ("Step 2 - Ask a human to confirm", "Human")
                ]
            ),
            (
                "Stage 2 - Zoomy",
                vec![
                    ("step1", "CodeBuildNoWait"),
                    ("step2", "Notify"),
                    ("step3", "CodePipeline")
                ]
            ),
            ("stage3", vec![("step2", "Notify")]),
        ]
    );
    let StepKind::CodeBuild(build) = &plan.stages[0].steps[0].kind else {
        panic!("a CodeBuild step")
    };
    assert_eq!(build.code_build_name, "codebuildTestingOrch");
    assert_eq!(
        build.source_version.as_ref().map(|v| v.to_codebuild()).as_deref(),
        Some("main")
    );
}

#[test]
fn the_full_release_example_uses_every_step_type() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/full-release.json");
    let plan = load_plan(&path).unwrap();
    let mut types: Vec<&str> = plan.steps().map(|(_, _, s)| s.kind.type_name()).collect();
    types.sort();
    types.dedup();
    let mut all = steppy_engine::validate::step_types();
    all.sort();
    assert_eq!(types, all);
}

#[test]
fn yaml_and_json_spellings_of_a_plan_are_the_same_plan() {
    let json = r#"{"name": "r", "stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": 5, "retry": {"maxAttempts": 2}}]}]}"#;
    let yaml = "name: r\nstages:\n  - name: s\n    steps:\n      - {type: Wait, name: w, seconds: 5, retry: {maxAttempts: 2}}\n";
    let a = steppy_engine::validate::validate_text("a.json", json, None).unwrap();
    let b = steppy_engine::validate::validate_text("b.yaml", yaml, None).unwrap();
    assert_eq!(a, b);
}
