//! `steppy list`, `steppy status ID`, `steppy history ID`: read-only views of the store, as
//! text (outside text escaped, [`crate::terminal`]) or (`--format json`) JSON. They open the
//! database read-only: where there is none they say so, creating nothing.

use super::output::{print_json, when};
use super::setup;
use crate::cli::OutputFormat;
use crate::error::CliResult;
use crate::terminal::say;
use serde_json::json;
use std::path::PathBuf;
use steppy_engine::store::{OpenMode, Store};
use steppy_executors::aws::sfn::is_execution_arn;

fn open(db: Option<PathBuf>) -> Result<Store, crate::error::CliError> {
    setup::quiet_on_closed_pipe();
    setup::open(db, OpenMode::ReadOnly).map(|(s, _)| s)
}

pub fn list(db: Option<PathBuf>, format: OutputFormat) -> CliResult {
    let store = open(db)?;
    let (rows, sfn_runs) = (store.list()?, store.sfn_runs()?);
    if format == OutputFormat::Json {
        // Local executions as before; Step Functions runs after them, marked `"engine": "sfn"`.
        let mut all: Vec<serde_json::Value> = rows.iter().map(|r| json!(r)).collect();
        for r in &sfn_runs {
            let mut v = json!(r);
            if let Some(o) = v.as_object_mut() {
                o.insert("engine".into(), json!("sfn"));
            }
            all.push(v);
        }
        return print_json(&json!(all));
    }
    if rows.is_empty() && sfn_runs.is_empty() {
        say!("no executions");
    }
    for r in rows {
        say!(
            "{}  {:<9}  stage {}/{}  {}  {}",
            r.id,
            r.state.as_str(),
            (r.current_stage + 1).min(r.stage_count),
            r.stage_count,
            when(r.created_ms),
            r.name.as_deref().unwrap_or("")
        );
    }
    for r in sfn_runs {
        say!(
            "{}  {:<9}  {}  {}  {}",
            r.execution_arn.as_deref().unwrap_or(&r.name),
            r.status,
            when(r.created_ms),
            r.plan_name.as_deref().unwrap_or(""),
            "(Step Functions)"
        );
    }
    Ok(())
}

pub fn status(db: Option<PathBuf>, id: &str, format: OutputFormat) -> CliResult {
    if is_execution_arn(id) {
        setup::quiet_on_closed_pipe();
        return super::sfn::inspect::status(id, format);
    }
    let store = open(db)?;
    let rec = store.load(id)?;
    if format == OutputFormat::Json {
        return print_json(&json!({ "execution": rec.summary, "steps": rec.steps }));
    }
    let s = &rec.summary;
    say!("execution {}  {}", s.id, s.state);
    if let Some(name) = &s.name {
        say!("plan       {name}");
    }
    say!("created    {}", when(s.created_ms));
    if let Some(reason) = &s.reason {
        say!("reason     {reason}");
    }
    for (i, stage) in rec.plan.stages.iter().enumerate() {
        say!("stage {}/{} \"{}\"", i + 1, rec.plan.stages.len(), stage.name);
        for step in rec.steps.iter().filter(|st| st.stage == i) {
            let attempt = if step.attempt > 1 {
                format!(" (attempt {})", step.attempt)
            } else {
                String::new()
            };
            let reason = step.reason.as_deref().map(|r| format!("  {r}")).unwrap_or_default();
            say!(
                "  {:<10} {:<12} {}{attempt}{reason}",
                step.state.as_str(),
                step.kind,
                step.name
            );
        }
    }
    Ok(())
}

pub fn history(db: Option<PathBuf>, id: &str, format: OutputFormat) -> CliResult {
    if is_execution_arn(id) {
        setup::quiet_on_closed_pipe();
        return super::sfn::inspect::history(id, format);
    }
    let store = open(db)?;
    let events = store.history(id)?;
    if format == OutputFormat::Json {
        return print_json(&json!(events));
    }
    for e in events {
        let at = match (e.stage, e.step) {
            (Some(s), Some(i)) => format!("{s}.{i}"),
            (Some(s), None) => format!("{s}"),
            _ => "-".into(),
        };
        say!(
            "{:>6}  {}  {:<24} {:<6} {}",
            e.seq,
            when(e.at_ms),
            e.kind.as_str(),
            at,
            e.details
        );
    }
    Ok(())
}
