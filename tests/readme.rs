//! The README's plan reference stays in step with the schema: every field and step type the
//! schema defines is named in it, and its example plan is valid.

use std::collections::BTreeSet;

const README: &str = include_str!("../README.md");
const SCHEMA: &str = include_str!("../schemas/plan.schema.json");

fn property_names(value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(members) => {
            if let Some(serde_json::Value::Object(props)) = members.get("properties") {
                out.extend(props.keys().cloned());
            }
            members.values().for_each(|v| property_names(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| property_names(v, out)),
        _ => {}
    }
}

#[test]
fn every_schema_field_and_step_type_is_in_the_plan_reference() {
    let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
    let reference = &README[README.find("### Plan reference").expect("README has a plan reference")..];
    let mut names = BTreeSet::new();
    property_names(&schema, &mut names);
    for t in schema["$defs"]["stepType"]["enum"].as_array().unwrap() {
        names.insert(t.as_str().unwrap().to_owned());
    }
    assert!(names.len() > 30, "{names:?}");
    let missing: Vec<_> = names
        .iter()
        .filter(|n| !reference.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "the README's plan reference does not mention: {missing:?}"
    );
}

#[test]
fn the_readme_example_plan_is_valid() {
    let start = README.find("```jsonc\n").expect("a jsonc example") + "```jsonc\n".len();
    let end = start + README[start..].find("```").unwrap();
    steppy_engine::validate::validate_text("README.md", &README[start..end], None).unwrap();
}
