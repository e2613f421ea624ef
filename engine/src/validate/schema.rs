//! Structure checks against `schemas/plan.schema.json` (the one source of truth for a plan's
//! shape), translated from `jsonschema` errors into located, plain-spoken [`Diagnostic`]s.

use super::diagnostic::{Code, Diagnostic};
use super::suggest::closest;
use crate::source::{SourceMap, Span, pointer_push};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;
use std::sync::OnceLock;

/// The plan JSON Schema, embedded at build time.
pub const SCHEMA_TEXT: &str = include_str!("../../../schemas/plan.schema.json");

struct Compiled {
    schema: Value,
    validator: jsonschema::Validator,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        // The schema is part of this build and a test compiles it: failing here is a build bug.
        let schema: Value = serde_json::from_str(SCHEMA_TEXT).expect("embedded plan schema is JSON");
        let validator = jsonschema::draft202012::new(&schema).expect("embedded plan schema compiles");
        Compiled { schema, validator }
    })
}

/// The schema as a JSON value.
pub fn schema() -> &'static Value {
    &compiled().schema
}

/// The step type names the schema allows, in schema order.
pub fn step_types() -> Vec<&'static str> {
    schema()["$defs"]["stepType"]["enum"]
        .as_array()
        .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect())
}

/// Checks `value` against the schema; one diagnostic per problem.
pub fn check(value: &Value, map: &SourceMap) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for error in compiled().validator.iter_errors(value) {
        let pointer = error.instance_path().as_str().to_owned();
        translate(value, map, &pointer, error.kind(), error.instance(), &mut out);
    }
    drop_explained_missing_fields(&mut out);
    out
}

/// `"codebuildName"` reported as unknown with the suggestion `codeBuildName` already explains why
/// `codeBuildName` is missing from the same object: keep only the first diagnostic.
fn drop_explained_missing_fields(out: &mut Vec<Diagnostic>) {
    let explained: Vec<(String, String)> = out
        .iter()
        .filter(|d| d.code == Code::UnknownField)
        .filter_map(|d| Some((d.pointer.rsplit_once('/')?.0.to_owned(), d.suggestion.clone()?)))
        .collect();
    out.retain(|d| {
        d.code != Code::MissingField
            || !explained
                .iter()
                .any(|(object, word)| *object == d.pointer && d.message.ends_with(&format!("\"{word}\"")))
    });
}

fn translate(
    root: &Value,
    map: &SourceMap,
    pointer: &str,
    kind: &ValidationErrorKind,
    instance: &Value,
    out: &mut Vec<Diagnostic>,
) {
    let span = map.locate(root, pointer);
    let field = last_token(pointer);
    let d = match kind {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            let what = describe_object(root, pointer);
            Diagnostic::new(Code::MissingField, pointer, head(span), format!("{what} is missing the required field \"{name}\""))
                .with_help(field_help(root, pointer, name))
        }
        ValidationErrorKind::AdditionalProperties { unexpected } | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            for name in unexpected {
                if let Some(d) = unknown_field(root, map, pointer, name) {
                    out.push(d);
                }
            }
            return;
        }
        ValidationErrorKind::Enum { options } if field == "type" && is_step(pointer) => {
            let allowed = step_types();
            let got = instance.as_str().map_or_else(|| instance.to_string(), |s| format!("\"{s}\""));
            let mut d = Diagnostic::new(Code::UnknownType, pointer, span, format!("{got} is not a step type"));
            let list = allowed.join(", ");
            d = match instance.as_str().and_then(|s| closest(s, allowed.iter().copied())) {
                Some(best) => d.with_suggestion(best, &format!(" Step types: {list}")),
                None => d.with_help(format!("step types: {list}")),
            };
            let _ = options;
            d
        }
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options.as_array().map_or_else(Vec::new, |a| a.iter().map(Value::to_string).collect());
            let mut d = Diagnostic::new(Code::InvalidValue, pointer, span, format!("{} is not allowed for \"{field}\"", instance));
            let suggestion = instance.as_str().and_then(|s| {
                let words: Vec<&str> = options.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                closest(s, words).map(str::to_owned)
            });
            d = match suggestion {
                Some(best) => d.with_suggestion(&best, &format!(" Allowed: {}", allowed.join(", "))),
                None => d.with_help(format!("allowed: {}", allowed.join(", "))),
            };
            d
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => article(&t.to_string()),
                TypeKind::Multiple(set) => set.iter().map(|t| article(&t.to_string())).collect::<Vec<_>>().join(" or "),
            };
            Diagnostic::new(Code::WrongType, pointer, span, format!("\"{field}\" must be {expected}, not {}", describe_value(instance)))
                .with_help(type_help(pointer, field, &expected))
        }
        ValidationErrorKind::Minimum { limit } => range(pointer, span, field, instance, format!("at least {limit}")),
        ValidationErrorKind::Maximum { limit } => range(pointer, span, field, instance, format!("at most {limit}{}", seconds_hint(field, limit))),
        ValidationErrorKind::MinLength { limit: 1 } => {
            Diagnostic::new(Code::OutOfRange, pointer, span, format!("\"{field}\" must not be empty")).with_help("write a value, or remove the field")
        }
        ValidationErrorKind::MinLength { limit } => range(pointer, span, field, instance, format!("at least {limit} characters long")),
        ValidationErrorKind::MaxLength { limit } => {
            Diagnostic::new(Code::OutOfRange, pointer, span, format!("\"{field}\" is longer than {limit} characters"))
                .with_help(format!("shorten it to {limit} characters or fewer"))
        }
        ValidationErrorKind::MinItems { limit } => {
            let what = if field == "stages" { "stage" } else if field == "steps" { "step" } else { "item" };
            Diagnostic::new(Code::OutOfRange, pointer, span, format!("\"{field}\" needs at least {limit} {what}"))
                .with_help(format!("add a {what}, or remove the empty list"))
        }
        ValidationErrorKind::MaxItems { limit } | ValidationErrorKind::MaxProperties { limit } => {
            Diagnostic::new(Code::TooLarge, pointer, span, format!("\"{field}\" has more than {limit} entries"))
                .with_help(format!("keep it to {limit} or fewer"))
        }
        ValidationErrorKind::OneOfNotValid { .. } if field == "sourceVersion" => Diagnostic::new(
            Code::InvalidValue,
            pointer,
            span,
            "\"sourceVersion\" must be a branch, tag or commit: a string, or { \"type\": \"branch\" | \"tag\" | \"commit\", \"value\": ... }",
        )
        .with_help("for example \"main\", \"v1.2.0\", or { \"type\": \"tag\", \"value\": \"v1.2.0\" }"),
        other => Diagnostic::new(Code::InvalidValue, pointer, span, format!("\"{field}\" is not valid here ({})", other.keyword())),
    };
    out.push(d);
}

/// An unknown field, unless it is a known field whose own value is wrong (reported elsewhere) or
/// sits on a step whose type is itself wrong (the type's diagnostic says it all).
fn unknown_field(root: &Value, map: &SourceMap, pointer: &str, name: &str) -> Option<Diagnostic> {
    let object = root.pointer(pointer)?;
    let known = known_fields(root, pointer);
    if is_step(pointer) {
        let type_ok = object
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| step_types().contains(&t));
        if !type_ok || known.contains(&name.to_owned()) {
            return None;
        }
    }
    let child = pointer_push(pointer, name);
    let span = map.key(root, &child).unwrap_or_else(|| map.locate(root, &child));
    let what = describe_object(root, pointer);
    let d = Diagnostic::new(
        Code::UnknownField,
        &child,
        span,
        format!("unknown field \"{name}\" in {what}"),
    );
    if let Some(best) = closest(name, known.iter().map(String::as_str)) {
        return Some(d.with_suggestion(best, ""));
    }
    if is_step(pointer) {
        let owners: Vec<&str> = step_types()
            .into_iter()
            .filter(|t| fields_of_step_type(t).iter().any(|f| f == name))
            .collect();
        if !owners.is_empty() {
            return Some(d.with_help(format!(
                "\"{name}\" belongs to {} steps; fields here: {}",
                owners.join(" and "),
                known.join(", ")
            )));
        }
    }
    Some(d.with_help(format!("fields here: {}", known.join(", "))))
}

/// The fields the schema allows on the object at `pointer`.
fn known_fields(root: &Value, pointer: &str) -> Vec<String> {
    let defs = &schema()["$defs"];
    let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
    let props = |def: &Value| -> Vec<String> {
        def["properties"]
            .as_object()
            .map_or_else(Vec::new, |m| m.keys().cloned().collect())
    };
    match tokens.as_slice() {
        [] => props(&defs["plan"]),
        ["defaults"] => props(&defs["defaults"]),
        ["stages", _] => props(&defs["stage"]),
        ["stages", _, "steps" | "betweenWaves", _] => {
            let t = root
                .pointer(pointer)
                .and_then(|s| s.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let mut fields = props(&defs["step"]);
            fields.extend(fields_of_step_type(t));
            fields
        }
        ["stages", _, "steps" | "betweenWaves", _, "retry"] => props(&defs["retry"]),
        [
            "stages",
            _,
            "steps" | "betweenWaves",
            _,
            "environmentVariableOverrides",
            _,
        ] => props(&defs["environmentVariable"]),
        ["stages", _, "steps" | "betweenWaves", _, "sourceVersion"] => props(&defs["sourceVersion"]["oneOf"][1]),
        _ => Vec::new(),
    }
}

/// The fields a step type adds to the common ones, read from the schema's `allOf` if/then list.
fn fields_of_step_type(step_type: &str) -> Vec<String> {
    let defs = &schema()["$defs"];
    let suffix = format!("/typeIs/{step_type}");
    defs["step"]["allOf"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|rule| rule["if"]["$ref"].as_str().is_some_and(|r| r.ends_with(&suffix)))
        .and_then(|rule| rule["then"]["$ref"].as_str())
        .and_then(|r| r.rsplit('/').next())
        .and_then(|def| defs[def]["properties"].as_object())
        .map_or_else(Vec::new, |m| m.keys().cloned().collect())
}

fn is_step(pointer: &str) -> bool {
    let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
    matches!(
        tokens.as_slice(),
        ["stages", _, "steps" | "betweenWaves", _] | ["stages", _, "steps" | "betweenWaves", _, "type"]
    )
}

/// "the plan", "stage \"Build\"", "step \"deploy\" (CodeBuild)", or "this object".
fn describe_object(root: &Value, pointer: &str) -> String {
    let tokens: Vec<&str> = pointer.split('/').skip(1).collect();
    let object = root.pointer(pointer);
    let name = object.and_then(|o| o.get("name")).and_then(Value::as_str);
    match (tokens.as_slice(), name) {
        ([], _) => "the plan".into(),
        (["defaults"], _) => "\"defaults\"".into(),
        (["stages", _], Some(n)) => format!("stage \"{n}\""),
        (["stages", i], None) => format!("stage {}", i.parse::<usize>().map_or(0, |i| i + 1)),
        (["stages", _, "steps" | "betweenWaves", _], n) => {
            let t = object.and_then(|o| o.get("type")).and_then(Value::as_str);
            match (n, t) {
                (Some(n), Some(t)) => format!("{t} step \"{n}\""),
                (Some(n), None) => format!("step \"{n}\""),
                (None, Some(t)) => format!("this {t} step"),
                (None, None) => "this step".into(),
            }
        }
        _ => format!("\"{}\"", last_token(pointer)),
    }
}

fn field_help(root: &Value, pointer: &str, name: &str) -> String {
    let t = root
        .pointer(pointer)
        .and_then(|o| o.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match name {
        "stages" => "a plan is { \"stages\": [ { \"name\": \"...\", \"steps\": [ ... ] } ] }".into(),
        "steps" => "a stage needs \"steps\": a list of at least one step".into(),
        "name" => "give it a \"name\": it appears in progress, history and notifications".into(),
        "type" => format!("add \"type\": one of {}", step_types().join(", ")),
        "codeBuildName" => format!("a {t} step names the CodeBuild project to start in \"codeBuildName\""),
        "codePipelineName" => format!("a {t} step names the pipeline to start in \"codePipelineName\""),
        "seconds" => "a Wait step says how long in \"seconds\" (0 to 31536000)".into(),
        "message" => format!("a {t} step needs the \"message\" to send"),
        other => format!("add \"{other}\""),
    }
}

fn type_help(pointer: &str, field: &str, expected: &str) -> String {
    if expected.contains("integer") && field.to_ascii_lowercase().contains("seconds") {
        return format!("write a whole number of seconds without quotes, e.g. \"{field}\": 300");
    }
    if pointer.is_empty() {
        return "a plan is an object: { \"stages\": [ ... ] }".into();
    }
    format!("write \"{field}\" as {expected}")
}

fn range(pointer: &str, span: Span, field: &str, instance: &Value, bound: String) -> Diagnostic {
    Diagnostic::new(
        Code::OutOfRange,
        pointer,
        span,
        format!("\"{field}\" is {instance}, but must be {bound}"),
    )
    .with_help(format!("use a value that is {bound}"))
}

fn seconds_hint(field: &str, limit: &Value) -> String {
    if field.to_ascii_lowercase().contains("seconds") && limit.as_u64() == Some(31_536_000) {
        " (365 days)".into()
    } else {
        String::new()
    }
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a string".into(),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn article(t: &str) -> String {
    match t {
        "array" => "a list".into(),
        "object" | "integer" => format!("an {t}"),
        other => format!("a {other}"),
    }
}

fn last_token(pointer: &str) -> &str {
    pointer.rsplit('/').next().unwrap_or("")
}

/// The first line of a span: a missing field is reported at the start of its object.
fn head(span: Span) -> Span {
    Span::new(span.start, span.start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_schema_compiles_and_lists_every_step_type() {
        // The schema and the step-type table list the same types, in the same order.
        assert_eq!(step_types(), crate::plan::StepType::names().collect::<Vec<_>>());
        for t in step_types() {
            assert!(!fields_of_step_type(t).is_empty(), "{t} has no fields in the schema");
        }
    }
}
