//! Parameter values: what was given (`--param`, `--params-file`) checked against what the plan
//! declares (`parameters`): every given name is declared, every declared one has a value (given
//! or `default`), and every value matches its `pattern` and `enum`.

use super::Problems;
use crate::plan::Parameter;
use crate::validate::Code;
use std::collections::BTreeMap;

/// The value of every declared parameter, or the problems (all of them) in `problems`.
pub fn values(
    declared: &BTreeMap<String, Parameter>,
    given: &BTreeMap<String, String>,
    problems: &mut Problems<'_>,
) -> BTreeMap<String, String> {
    for name in given.keys().filter(|n| !declared.contains_key(*n)) {
        let at = if declared.is_empty() { "" } else { "/parameters" };
        let mut d = problems.diagnostic(
            Code::InvalidValue,
            at,
            format!("\"{name}\" (given with --param or --params-file) is not a parameter of this plan"),
        );
        d = match crate::validate::closest(name, declared.keys().map(String::as_str)) {
            Some(best) => d.with_suggestion(best, ""),
            None if declared.is_empty() => d.with_help("this plan declares no parameters"),
            None => d.with_help(format!(
                "its parameters: {}",
                declared.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        };
        problems.push(d);
    }
    let mut out = BTreeMap::new();
    for (name, p) in declared {
        let at = crate::source::pointer_push("/parameters", name);
        let value = match (given.get(name), &p.default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => {
                let d = problems
                    .diagnostic(
                        Code::MissingField,
                        &at,
                        format!("parameter \"{name}\" has no default and was not given"),
                    )
                    .with_help(format!("run with --param {name}=VALUE"));
                problems.push(d);
                continue;
            }
        };
        let origin = if given.contains_key(name) { "given" } else { "default" };
        if let Some(allowed) = &p.allowed
            && !allowed.contains(&value)
        {
            let d = problems.diagnostic(
                Code::InvalidValue,
                &format!("{at}/enum"),
                format!("parameter \"{name}\" is \"{value}\" ({origin}), which is none of its enum"),
            );
            let d = match crate::validate::closest(&value, allowed.iter().map(String::as_str)) {
                Some(best) => d.with_suggestion(best, &format!(" Allowed: {}", allowed.join(", "))),
                None => d.with_help(format!("allowed: {}", allowed.join(", "))),
            };
            problems.push(d);
        }
        if let Some(pattern) = &p.pattern {
            match regex::Regex::new(&format!("^(?:{pattern})$")) {
                Err(e) => {
                    let d = problems.diagnostic(
                        Code::InvalidValue,
                        &format!("{at}/pattern"),
                        format!("the pattern of parameter \"{name}\" is not a regular expression: {e}"),
                    );
                    problems.push(d);
                }
                Ok(re) if !re.is_match(&value) => {
                    let d = problems
                        .diagnostic(
                            Code::InvalidValue,
                            &format!("{at}/pattern"),
                            format!("parameter \"{name}\" is \"{value}\" ({origin}), which does not match its pattern"),
                        )
                        .with_help(format!("the whole value must match {pattern}"));
                    problems.push(d);
                }
                Ok(_) => {}
            }
        }
        out.insert(name.clone(), value);
    }
    out
}

/// The values of a `--params-file` (named `name`: `.yaml`/`.yml` is YAML, anything else
/// JSON): an object of NAME: VALUE, values strings (numbers and booleans as written).
pub fn read_file(name: &str, bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("{name} is not UTF-8 text: {e}"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc = crate::source::parse(text, 0, crate::source::Format::detect(name, text)).map_err(|e| {
        let (line, column) = crate::source::LineIndex::new(text).line_col(text, e.span.start);
        format!("{name}:{line}:{column}: {}", e.message)
    })?;
    let Some(members) = doc.value.as_object() else {
        return Err(format!("{name} must hold an object of NAME: VALUE"));
    };
    members
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
            serde_json::Value::Number(n) => Ok((k.clone(), n.to_string())),
            serde_json::Value::Bool(b) => Ok((k.clone(), b.to_string())),
            _ => Err(format!(
                "{name}: the value of \"{k}\" is not a string, number or boolean"
            )),
        })
        .collect()
}
