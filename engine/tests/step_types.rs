//! The step-type table (`steppy_engine::plan::step_type`) against everything that must agree
//! with it but that the compiler cannot check: each type's example step validates against the
//! JSON Schema as that type, compiles to Amazon States Language, and the outline read back
//! from the compiled definition recognises the type again; the README's step-type table and
//! the example plans mention every type.

use steppy_engine::asl::outline::Outline;
use steppy_engine::asl::{Options, compile};
use steppy_engine::plan::StepType;

fn plan_of(step: &str) -> String {
    format!(r#"{{ "stages": [ {{ "name": "Only", "steps": [ {step} ] }} ] }}"#)
}

#[test]
fn every_example_step_validates_compiles_and_is_recognised_in_its_outline() {
    let options = Options {
        topic_arn: Some("arn:aws:sns:us-east-1:123456789012:releases".into()),
        ..Options::default()
    };
    for t in StepType::ALL {
        let d = t.describe();
        let text = plan_of(d.example);
        let plan = steppy_engine::validate::validate_text("example.json", &text, None)
            .unwrap_or_else(|report| panic!("{t}'s example is not valid:\n{report}"));
        let step = &plan.stages[0].steps[0];
        assert_eq!(step.kind.step_type(), t, "{t}'s example parses as another type");
        assert_eq!(step.kind.type_name(), d.name);
        let compiled = compile(&plan, &options).unwrap_or_else(|e| panic!("{t}'s example does not compile: {e}"));
        let outline = Outline::of(&compiled.definition);
        assert_eq!(
            outline.stages[0].steps[0].kind, d.name,
            "the outline does not recognise {t}"
        );
        assert!(!d.summary.is_empty());
    }
}

#[test]
fn the_readme_table_and_the_example_plans_mention_every_type() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let mut examples = String::new();
    for entry in std::fs::read_dir(format!("{root}/examples")).expect("examples/") {
        let path = entry.expect("an examples/ entry").path();
        if path.extension().is_some_and(|e| e == "json" || e == "yaml") {
            examples.push_str(&std::fs::read_to_string(&path).expect("an example plan"));
        }
    }
    let examples: String = examples.chars().filter(|c| !c.is_whitespace()).collect();
    for name in StepType::names() {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "README.md's step-type table lacks {name}"
        );
        assert!(
            examples.contains(&format!(r#""type":"{name}""#)),
            "no plan in examples/ uses {name}"
        );
    }
}
