//! `steppy validate`: checks plans and prints every problem.
//!
//! Plans are files, `-` (standard input) or `s3://bucket/key` objects.
//! Exit code: 0 all plans valid, 1 a plan is invalid, 2 a plan could not be read.
//! `--format json` prints one JSON document on stdout for CI instead of the text report.

use crate::cli::OutputFormat;
use crate::error::{CliError, CliResult, Exit};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
use steppy_engine::validate::Paint;

pub fn run(plans: &[PathBuf], format: OutputFormat) -> CliResult {
    let paint = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        Paint::Color
    } else {
        Paint::Plain
    };
    let (mut invalid, mut unreadable) = (false, false);
    let mut results = Vec::new();
    for path in plans {
        let origin = path.display().to_string();
        let bytes = match super::plan_source::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                unreadable = true;
                match format {
                    OutputFormat::Text => eprintln!("steppy: cannot read {origin}: {e}"),
                    OutputFormat::Json => {
                        results.push(json!({ "origin": origin, "valid": false, "ioError": e.to_string() }))
                    }
                }
                continue;
            }
        };
        match (super::plan_source::validate(path, &bytes), format) {
            (Ok(plan), OutputFormat::Text) => {
                println!(
                    "{origin}: valid ({} stages, {} steps)",
                    plan.stages.len(),
                    plan.step_count()
                );
            }
            (Ok(plan), OutputFormat::Json) => {
                results.push(json!({ "origin": origin, "valid": true, "stages": plan.stages.len(), "steps": plan.step_count(), "errors": [] }));
            }
            (Err(report), OutputFormat::Text) => {
                invalid = true;
                eprint!("{}", report.render(paint));
            }
            (Err(report), OutputFormat::Json) => {
                invalid = true;
                let mut value = serde_json::to_value(&report).unwrap_or_else(|_| json!({ "origin": origin }));
                value["valid"] = json!(false);
                results.push(value);
            }
        }
    }
    if format == OutputFormat::Json {
        let doc = json!({ "valid": !invalid && !unreadable, "plans": results });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    // Every problem has been printed above; only the exit code is left to give.
    match (unreadable, invalid) {
        (true, _) => Err(CliError::said(Exit::Trouble)),
        (false, true) => Err(CliError::said(Exit::Failed)),
        (false, false) => Ok(()),
    }
}
