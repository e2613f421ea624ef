//! `steppy list`, `steppy status ID`, `steppy history ID`: read-only views of the store, as
//! text (outside text escaped, [`crate::terminal`]) or (`--format json`) JSON. They open the
//! database read-only: where there is none they say so, creating nothing.

use super::setup;
use crate::cli::OutputFormat;
use crate::terminal::say;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use steppy_engine::store::{OpenMode, Store};
use steppy_executors::aws::sfn::is_execution_arn;

fn open(db: Option<PathBuf>) -> Result<Store, ExitCode> {
    setup::quiet_on_closed_pipe();
    setup::open(db, OpenMode::ReadOnly).map(|(s, _)| s)
}

pub fn print_json(v: &serde_json::Value) -> ExitCode {
    match serde_json::to_string_pretty(v) {
        Ok(s) => {
            println!("{s}"); // JSON: serde escapes control characters
            ExitCode::SUCCESS
        }
        Err(e) => setup::fail(2, &e.to_string()),
    }
}

pub fn when(ms: i64) -> String {
    let secs = ms / 1000;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    // Days since the epoch to a calendar date (civil-from-days, proleptic Gregorian).
    let z = d + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}Z")
}

pub fn list(db: Option<PathBuf>, format: OutputFormat) -> ExitCode {
    let store = match open(db) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let (rows, sfn_runs) = match store.list().and_then(|r| Ok((r, store.sfn_runs()?))) {
        Ok(r) => r,
        Err(e) => return setup::store_fail(&e),
    };
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
    ExitCode::SUCCESS
}

pub fn status(db: Option<PathBuf>, id: &str, format: OutputFormat) -> ExitCode {
    if is_execution_arn(id) {
        setup::quiet_on_closed_pipe();
        return super::sfn::inspect::status(id, format, when);
    }
    let store = match open(db) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let rec = match store.load(id) {
        Ok(r) => r,
        Err(e) => return setup::store_fail(&e),
    };
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
    ExitCode::SUCCESS
}

pub fn history(db: Option<PathBuf>, id: &str, format: OutputFormat) -> ExitCode {
    if is_execution_arn(id) {
        setup::quiet_on_closed_pipe();
        return super::sfn::inspect::history(id, format, when);
    }
    let store = match open(db) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let events = match store.history(id) {
        Ok(e) => e,
        Err(e) => return setup::store_fail(&e),
    };
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
    ExitCode::SUCCESS
}
