//! `steppy list`, `steppy status ID`, `steppy history ID`: read-only views of the store, as
//! text (outside text escaped, [`crate::terminal`]) or (`--format json`) JSON. They open the
//! database read-only: where there is none they say so, creating nothing.

use super::output::{print_json, when};
use super::setup;
use crate::cli::OutputFormat;
use crate::error::{CliError, CliResult};
use crate::terminal::say;
use serde_json::json;
use std::path::PathBuf;
use steppy_engine::state::StepState;
use steppy_engine::store::{OpenMode, StepRecord, Store};
use steppy_executors::aws::sfn::is_execution_arn;

fn open(db: Option<PathBuf>) -> Result<Store, CliError> {
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

/// Which steps `steppy status` shows (`--target`, `--state`); the default shows all of them,
/// with a fan-out stage of more than [`LISTED`] instances summarized.
#[derive(Debug, Default)]
pub struct StepFilter {
    target: Option<String>,
    state: Option<StepState>,
}

impl StepFilter {
    pub fn parse(target: Option<String>, state: Option<&str>) -> Result<StepFilter, CliError> {
        let state = match state {
            None => None,
            Some(s) => Some(s.to_ascii_uppercase().parse::<StepState>().map_err(|e| {
                CliError::trouble(format!(
                    "--state: {e}; one of pending, running, waiting, succeeded, failed, timed_out, cancelled, aborted"
                ))
            })?),
        };
        Ok(StepFilter { target, state })
    }

    fn is_set(&self) -> bool {
        self.target.is_some() || self.state.is_some()
    }

    fn admits(&self, step: &StepRecord) -> bool {
        self.state.is_none_or(|s| step.state == s)
            && self.target.as_deref().is_none_or(|t| {
                step.name
                    .strip_suffix(']')
                    .and_then(|n| n.rsplit_once(" ["))
                    .is_some_and(|(_, id)| id == t)
            })
    }
}

/// Most instances of a fan-out stage listed one by one without a filter.
const LISTED: usize = 20;

pub fn status(db: Option<PathBuf>, id: &str, format: OutputFormat, filter: &StepFilter) -> CliResult {
    if is_execution_arn(id) {
        setup::quiet_on_closed_pipe();
        return super::sfn::inspect::status(id, format);
    }
    let store = open(db)?;
    let rec = store.load(id)?;
    let steps: Vec<&StepRecord> = rec.steps.iter().filter(|s| filter.admits(s)).collect();
    if format == OutputFormat::Json {
        return print_json(&json!({ "execution": rec.summary, "resolved": rec.plan.resolved, "steps": steps }));
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
    if let Some(resolved) = &rec.plan.resolved {
        for (name, value) in &resolved.params {
            say!("param      {name} = {value}");
        }
        for set in &resolved.sets {
            say!(
                "targets    {}: {} from {}, read {}",
                set.name,
                set.targets,
                set.source,
                when(set.read_at_ms)
            );
        }
    }
    // One pass groups the steps by stage (not one pass per stage: a plan may have thousands).
    let mut by_stage: Vec<Vec<&StepRecord>> = vec![Vec::new(); rec.plan.stages.len()];
    for step in &steps {
        if let Some(group) = by_stage.get_mut(step.stage) {
            group.push(step);
        }
    }
    for ((i, stage), in_stage) in rec.plan.stages.iter().enumerate().zip(by_stage) {
        if filter.is_set() && in_stage.is_empty() {
            continue;
        }
        say!("stage {}/{} \"{}\"", i + 1, rec.plan.stages.len(), stage.name);
        let summarize = stage.fan_out.is_some() && !filter.is_set() && in_stage.len() > LISTED;
        if summarize {
            say!("  {}", tally(&in_stage));
        }
        for step in in_stage {
            if summarize && !matches!(step.state, StepState::Failed | StepState::TimedOut) {
                continue;
            }
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

/// `212/300 succeeded, 3 failed, 20 running, 65 pending` for the instances of one wave.
fn tally(steps: &[&StepRecord]) -> String {
    let count = |f: &dyn Fn(StepState) -> bool| steps.iter().filter(|s| f(s.state)).count();
    let mut parts = vec![format!(
        "{}/{} succeeded",
        count(&|s| s == StepState::Succeeded),
        steps.len()
    )];
    for (label, n) in [
        (
            "failed",
            count(&|s| matches!(s, StepState::Failed | StepState::TimedOut)),
        ),
        (
            "running",
            count(&|s| matches!(s, StepState::Running | StepState::Waiting)),
        ),
        (
            "cancelled",
            count(&|s| matches!(s, StepState::Cancelled | StepState::Aborted)),
        ),
        ("pending", count(&|s| s == StepState::Pending)),
    ] {
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    parts.join(", ")
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
