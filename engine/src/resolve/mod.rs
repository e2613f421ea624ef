//! From the plan as written to the plan an execution runs: parameters given their values,
//! target sets read, every string rendered, fan-out stages expanded. This happens once, when
//! the execution is submitted; the result is recorded with it (a *snapshot*: the runnable plan
//! and [`Resolved`](crate::plan::Resolved), saying where each set came from and when), so a
//! crash, a restart or a change of the deployment table never changes a started execution.
//!
//! - [`template`]: the `${scope.name}` language of plan strings, with `$${` for a literal `${`.
//! - [`params`]: given values against the declared `parameters`.
//! - [`targets`]: target sets inline, from files (JSON, YAML, CSV) and remote sources.
//! - [`waves`]: slicing a fan-out stage's targets into waves.
//! - [`expand`]: rendering and expansion into runnable stages.
//!
//! Invariant: a plan without parameters, target sets or references comes out as it went in.

pub mod expand;
mod params;
pub mod targets;
pub mod template;
pub mod waves;

pub use expand::{WaveCounts, render_between_step};
pub use params::read_file as params_file;
pub use targets::{Remote, RemoteTargets, Sources};
pub use template::is_template;

use crate::plan::{Plan, Resolved, SetSnapshot, Target};
use crate::source::SourceMap;
use crate::validate::{Code, Diagnostic, closest};
use serde_json::Value;
use std::collections::BTreeMap;

/// What a plan is resolved with.
#[derive(Clone, Default)]
pub struct Inputs<'a> {
    /// `--param NAME=VALUE` and `--params-file` values.
    pub params: BTreeMap<String, String>,
    pub sources: Sources<'a>,
    /// The id the execution will have (`${execution.id}`); `None`: a new UUID v7, recorded in
    /// [`Resolved::execution_id`] and used by [`crate::store::Store::submit`].
    pub execution_id: Option<String>,
}

/// The problems found so far, located in the plan text.
pub struct Problems<'a> {
    root: &'a Value,
    map: &'a SourceMap,
    out: Vec<Diagnostic>,
}

impl<'a> Problems<'a> {
    pub fn new(root: &'a Value, map: &'a SourceMap) -> Problems<'a> {
        Problems {
            root,
            map,
            out: Vec::new(),
        }
    }

    /// A diagnostic at `pointer` (the nearest value that exists).
    pub fn diagnostic(&self, code: Code, pointer: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, pointer, self.map.locate(self.root, pointer), message)
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.out.push(d);
    }

    pub fn len(&self) -> usize {
        self.out.len()
    }

    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    pub fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.out
    }
}

/// Whether `root` uses anything this module renders: parameters, target sets, a fan-out
/// stage, or a `${` in a string of a stage or of the defaults.
fn uses_templates(plan: &Plan, root: &Value) -> bool {
    fn any_template(v: &Value) -> bool {
        match v {
            Value::String(s) => is_template(s),
            Value::Array(items) => items.iter().any(any_template),
            Value::Object(members) => members.values().any(any_template),
            _ => false,
        }
    }
    !plan.parameters.is_empty()
        || !plan.targets.is_empty()
        || plan.stages.iter().any(|s| s.for_each.is_some())
        || ["name", "description", "stages", "defaults"]
            .iter()
            .any(|field| root.get(field).is_some_and(any_template))
}

/// The runnable plan of `plan` (parsed from `root`, located by `map`), or every problem.
pub fn resolve(root: &Value, map: &SourceMap, plan: Plan, inputs: &Inputs<'_>) -> Result<Plan, Vec<Diagnostic>> {
    let mut problems = Problems::new(root, map);
    if !uses_templates(&plan, root) {
        params::values(&plan.parameters, &inputs.params, &mut problems);
        return if problems.is_empty() {
            Ok(plan)
        } else {
            Err(problems.into_diagnostics())
        };
    }
    let values = params::values(&plan.parameters, &inputs.params, &mut problems);
    let execution_id = inputs
        .execution_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let (sets, snapshots) = read_sets(&plan, inputs, &mut problems);
    if !problems.is_empty() {
        return Err(problems.into_diagnostics());
    }
    let ctx = expand::Context {
        params: &values,
        execution_id: &execution_id,
        sets: &sets,
    };
    let defaults = render_defaults(root, &ctx, &mut problems);
    let name = plan
        .name
        .as_deref()
        .and_then(|n| expand::render_plan_text(n, "/name", &ctx, &mut problems));
    let description = plan
        .description
        .as_deref()
        .and_then(|d| expand::render_plan_text(d, "/description", &ctx, &mut problems));
    let Some(stages) = expand::stages(root, &plan, &ctx, &mut problems) else {
        return Err(problems.into_diagnostics());
    };
    if !problems.is_empty() {
        return Err(problems.into_diagnostics());
    }
    Ok(Plan {
        name,
        description,
        defaults: defaults.unwrap_or(plan.defaults),
        parameters: BTreeMap::new(),
        targets: BTreeMap::new(),
        resolved: Some(Resolved {
            execution_id,
            params: values,
            sets: snapshots,
        }),
        stages,
    })
}

/// The defaults with `${params.…}` and `${execution.id}` rendered (no stage, target or wave
/// is known there).
fn render_defaults(
    root: &Value,
    ctx: &expand::Context<'_>,
    problems: &mut Problems<'_>,
) -> Option<crate::plan::Defaults> {
    expand::render_defaults(root.get("defaults")?, ctx, problems)
}

/// Reads every target set a fan-out stage uses (each once), with its snapshot.
fn read_sets(
    plan: &Plan,
    inputs: &Inputs<'_>,
    problems: &mut Problems<'_>,
) -> (BTreeMap<String, Vec<Target>>, Vec<SetSnapshot>) {
    let mut sets = BTreeMap::new();
    let mut snapshots = Vec::new();
    for (i, stage) in plan.stages.iter().enumerate() {
        let Some(for_each) = &stage.for_each else {
            continue;
        };
        let name = for_each.set();
        if sets.contains_key(name) {
            continue;
        }
        let Some(set) = plan.targets.get(name) else {
            let pointer = match for_each {
                crate::plan::ForEach::Set(_) => format!("/stages/{i}/forEach"),
                crate::plan::ForEach::Select { .. } => format!("/stages/{i}/forEach/targets"),
            };
            let mut d = problems.diagnostic(
                Code::InvalidValue,
                &pointer,
                format!("there is no target set \"{name}\""),
            );
            d = match closest(name, plan.targets.keys().map(String::as_str)) {
                Some(best) => d.with_suggestion(best, ""),
                None => d.with_help("declare it under \"targets\""),
            };
            problems.push(d);
            continue;
        };
        match targets::resolve(name, set, inputs.sources) {
            Ok(resolved) => {
                snapshots.push(SetSnapshot {
                    name: name.to_string(),
                    source: resolved.source,
                    read_at_ms: crate::clock::system_now_ms(),
                    targets: resolved.targets.len(),
                });
                sets.insert(name.to_string(), resolved.targets);
            }
            Err(e) => {
                let pointer = crate::source::pointer_push("/targets", name);
                let at = match set {
                    crate::plan::TargetSet::From { .. } => format!("{pointer}/from"),
                    crate::plan::TargetSet::Inline(_) => pointer,
                };
                let d = problems.diagnostic(Code::InvalidValue, &at, e);
                problems.push(d);
            }
        }
    }
    (sets, snapshots)
}
