//! The plan as written → the stages of a runnable plan: every string of a stage rendered
//! (`${params.…}`, `${stage.name}`, `${execution.id}`), and every fan-out stage (`forEach`)
//! expanded into one stage per wave, each holding one instance of every step per target
//! (`deploy [t-042]`, with `${target.…}` and `${wave.name}`/`${wave.index}` rendered), with
//! the `betweenWaves` steps as a stage after every wave but the last. Their `${wave.succeeded}`,
//! `${wave.failed}` and `${wave.remaining}` are only known when the wave has ended: they stay
//! in the runnable plan, and the engine renders them when it starts the step
//! ([`render_between_step`]).
//!
//! Problems are reported at the string that has them, once per string (not once per target),
//! naming one target where a target is the cause.

use super::Problems;
use super::template::{self, Found, Malformed, Reference};
use super::waves::{self, Slice};
use crate::plan::{Defaults, FanOut, FanOutPart, Plan, Stage, Step, Target};
use crate::validate::{Code, MAX_STEPS, MAX_STEPS_PER_STAGE, Shape, closest};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

/// The scopes a reference may name.
const SCOPES: [&str; 5] = ["params", "target", "stage", "execution", "wave"];

/// What the strings of the whole plan are rendered with.
pub struct Context<'a> {
    pub params: &'a BTreeMap<String, String>,
    pub execution_id: &'a str,
    pub sets: &'a BTreeMap<String, Vec<Target>>,
}

/// Where a string is, for its references: which names are known there.
#[derive(Clone, Copy)]
struct Scope<'a> {
    ctx: &'a Context<'a>,
    /// The stage's name (not known inside the name itself).
    stage: Option<&'a str>,
    target: Option<&'a Target>,
    wave: Option<(&'a str, u32)>,
    /// Between waves: the wave's counts are deferred to the run.
    between: bool,
}

/// Why a reference cannot be rendered: a message, with help or a suggestion.
struct Unresolved {
    message: String,
    help: Option<String>,
    suggestion: Option<(String, String)>,
}

impl Unresolved {
    fn new(message: String) -> Unresolved {
        Unresolved {
            message,
            help: None,
            suggestion: None,
        }
    }
    fn help(mut self, help: impl Into<String>) -> Unresolved {
        self.help = Some(help.into());
        self
    }
    fn suggest(mut self, word: Option<&str>, more: &str) -> Unresolved {
        self.suggestion = word.map(|w| (w.to_string(), more.to_string()));
        self
    }
}

impl<'a> Scope<'a> {
    /// Outside any stage: only parameters and the execution id are known.
    fn plan_level(ctx: &'a Context<'a>) -> Scope<'a> {
        Scope {
            ctx,
            stage: None,
            target: None,
            wave: None,
            between: false,
        }
    }

    fn lookup(&self, r: &Reference<'_>) -> Result<Found<'a>, Unresolved> {
        let whole = format!("${{{}.{}}}", r.scope, r.name);
        match r.scope {
            "params" => match self.ctx.params.get(r.name) {
                Some(v) => Ok(Found::Value(Cow::Borrowed(v.as_str()))),
                None => Err(
                    Unresolved::new(format!("{whole}: this plan has no parameter \"{}\"", r.name))
                        .help("declare it under \"parameters\"")
                        .suggest(closest(r.name, self.ctx.params.keys().map(String::as_str)), ""),
                ),
            },
            "target" => {
                let Some(target) = self.target else {
                    return Err(Unresolved::new(format!("{whole} is only known in a fan-out stage"))
                        .help("add \"forEach\": SET to the stage, or use ${params.…}"));
                };
                match target.get(r.name) {
                    Some(v) => Ok(Found::Value(Cow::Borrowed(v.as_str()))),
                    None => {
                        let id = target.get("id").map_or("?", String::as_str);
                        Err(
                            Unresolved::new(format!("{whole}: target \"{id}\" has no field \"{}\"", r.name))
                                .help("every target of the stage needs the field (or select the targets that have it with \"where\")")
                                .suggest(closest(r.name, target.keys().map(String::as_str)), ""),
                        )
                    }
                }
            }
            "stage" if r.name == "name" => match self.stage {
                Some(name) => Ok(Found::Value(Cow::Borrowed(name))),
                None => Err(Unresolved::new(format!(
                    "{whole} cannot be used in the stage's own name"
                ))),
            },
            "execution" if r.name == "id" => Ok(Found::Value(Cow::Borrowed(self.ctx.execution_id))),
            "stage" | "execution" => {
                let known = if r.scope == "stage" { "name" } else { "id" };
                Err(Unresolved::new(format!("{whole}: {} has only \"{known}\"", r.scope)).suggest(Some(known), ""))
            }
            "wave" => {
                let Some((name, index)) = self.wave else {
                    return Err(Unresolved::new(format!("{whole} is only known in a fan-out stage"))
                        .help("${wave.…} is for the steps of a stage with \"forEach\", and its \"betweenWaves\""));
                };
                match r.name {
                    "name" => Ok(Found::Value(Cow::Borrowed(name))),
                    "index" => Ok(Found::Value(Cow::Owned(index.to_string()))),
                    "succeeded" | "failed" | "remaining" if self.between => Ok(Found::Defer),
                    "succeeded" | "failed" | "remaining" => Err(Unresolved::new(format!(
                        "{whole} is only known once a wave has ended: use it in \"betweenWaves\""
                    ))),
                    other => Err(Unresolved::new(format!("{whole}: a wave has no \"{other}\"")).suggest(
                        closest(other, ["name", "index", "succeeded", "failed", "remaining"]),
                        " A wave has name, index, succeeded, failed and remaining.",
                    )),
                }
            }
            other => Err(Unresolved::new(format!("{whole}: \"{other}\" is no scope")).suggest(
                closest(other, SCOPES),
                " Scopes: params, target, stage, execution, wave.",
            )),
        }
    }
}

/// One path token of a JSON pointer, kept while walking a value (the pointer is only built
/// for a problem).
enum Token<'v> {
    Key(&'v str),
    Index(usize),
}

fn pointer(base: &str, path: &[Token<'_>]) -> String {
    let mut out = base.to_string();
    for t in path {
        match t {
            Token::Key(k) => out = crate::source::pointer_push(&out, k),
            Token::Index(i) => out = crate::source::pointer_push(&out, &i.to_string()),
        }
    }
    out
}

/// Renders every string of `value` (not object keys) in `scope`; on the first problem
/// returns it with the pointer of its string (relative tokens under `base`).
fn render_value<'v>(
    value: &'v Value,
    scope: &Scope<'_>,
    path: &mut Vec<Token<'v>>,
    base: &str,
) -> Result<Value, (String, Unresolved)> {
    Ok(match value {
        Value::String(s) if template::is_template(s) => {
            let rendered = template::render(
                s,
                |r| scope.lookup(r),
                |m: Malformed| Unresolved::new(m.message).help("write $${ for a literal \"${\""),
            )
            .map_err(|u| (pointer(base, path), u))?;
            let text = rendered.text.into_owned();
            if !rendered.deferred
                && let Some(Token::Key(field)) = path.last()
                && let Some(shape) = Shape::of_field(field)
                && let Some((message, help)) = shape.problem(&text)
            {
                let whose = match scope.target.and_then(|t| t.get("id")) {
                    Some(id) => format!(" for target \"{id}\""),
                    None => String::new(),
                };
                return Err((
                    pointer(base, path),
                    Unresolved::new(format!("\"{s}\" is {message}{whose}")).help(help),
                ));
            }
            Value::String(text)
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(Token::Index(i));
                out.push(render_value(item, scope, path, base)?);
                path.pop();
            }
            Value::Array(out)
        }
        Value::Object(members) => {
            let mut out = serde_json::Map::with_capacity(members.len());
            for (k, v) in members {
                path.push(Token::Key(k));
                out.insert(k.clone(), render_value(v, scope, path, base)?);
                path.pop();
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

/// Renders `value` (at `at`) as a `T`, reporting a problem (once per `at`) in `problems`.
fn render_as<T: serde::de::DeserializeOwned>(
    value: &Value,
    at: &str,
    scope: &Scope<'_>,
    problems: &mut Problems<'_>,
) -> Option<T> {
    let rendered = match render_value(value, scope, &mut Vec::new(), at) {
        Ok(v) => v,
        Err((pointer, u)) => {
            report(problems, &pointer, u);
            return None;
        }
    };
    match serde_json::from_value(rendered) {
        Ok(t) => Some(t),
        Err(e) => {
            let d = problems.diagnostic(Code::InvalidValue, at, format!("once rendered, this does not fit: {e}"));
            problems.push(d);
            None
        }
    }
}

fn report(problems: &mut Problems<'_>, pointer: &str, u: Unresolved) {
    let mut d = problems.diagnostic(Code::InvalidValue, pointer, u.message);
    if let Some(h) = u.help {
        d = d.with_help(h);
    }
    if let Some((word, more)) = u.suggestion {
        d = d.with_suggestion(&word, &more);
    }
    problems.push(d);
}

/// The steps `raw` (the list at `at`) rendered in `scope`; those with a problem are left out
/// (and reported).
fn render_steps(raw: &[Value], at: &str, scope: &Scope<'_>, problems: &mut Problems<'_>) -> Vec<Step> {
    raw.iter()
        .enumerate()
        .filter_map(|(j, s)| render_as(s, &format!("{at}/{j}"), scope, problems))
        .collect()
}

/// A string field of a stage (its name, its description) rendered in `scope`.
fn render_text(text: &str, at: &str, scope: &Scope<'_>, problems: &mut Problems<'_>) -> Option<String> {
    match template::render(text, |r| scope.lookup(r), |m: Malformed| Unresolved::new(m.message)) {
        Ok(r) => Some(r.text.into_owned()),
        Err(u) => {
            report(problems, at, u);
            None
        }
    }
}

/// The runnable stages of `plan` (whose raw value is `root`), or `None` with the problems.
pub fn stages(root: &Value, plan: &Plan, ctx: &Context<'_>, problems: &mut Problems<'_>) -> Option<Vec<Stage>> {
    let raw_stages = root.get("stages").and_then(Value::as_array)?;
    let before = problems.len();
    let mut out = Vec::with_capacity(plan.stages.len());
    let mut total_steps = 0usize;
    for (i, (stage, raw)) in plan.stages.iter().zip(raw_stages).enumerate() {
        let at = format!("/stages/{i}");
        let outer = Scope::plan_level(ctx);
        let Some(name) = render_text(&stage.name, &format!("{at}/name"), &outer, problems) else {
            continue;
        };
        let scope = Scope {
            stage: Some(&name),
            ..outer
        };
        let description = stage
            .description
            .as_deref()
            .and_then(|d| render_text(d, &format!("{at}/description"), &scope, problems));
        let raw_steps = raw
            .get("steps")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let Some(for_each) = &stage.for_each else {
            let steps = render_steps(raw_steps, &format!("{at}/steps"), &scope, problems);
            total_steps += steps.len();
            let mut s = Stage::new(name, steps);
            s.description = description;
            out.push(s);
            continue;
        };
        let Some(set) = ctx.sets.get(for_each.set()) else {
            continue; // reported by the caller, which resolves the sets
        };
        let selected: Vec<&Target> = match for_each.filter() {
            Some(filter) => set.iter().filter(|t| super::targets::matches(t, filter)).collect(),
            None => set.iter().collect(),
        };
        if selected.is_empty() {
            let d = problems
                .diagnostic(
                    Code::InvalidValue,
                    &format!("{at}/forEach"),
                    format!(
                        "this selects none of the {} targets of set \"{}\"",
                        set.len(),
                        for_each.set()
                    ),
                )
                .with_help("check the \"where\" values against the targets' fields");
            problems.push(d);
            continue;
        }
        let slices = match waves::slice(selected.len(), &stage.waves) {
            Ok(s) => s,
            Err(e) => {
                let d = problems.diagnostic(Code::InvalidValue, &format!("{at}/waves"), e);
                problems.push(d);
                continue;
            }
        };
        let tolerated = tolerated_failures(stage, selected.len());
        let concurrency_needed = stage.max_concurrency.is_none_or(|m| m as usize > MAX_STEPS_PER_STAGE);
        let widest = slices.iter().map(|s| s.range.len()).max().unwrap_or(0) * raw_steps.len();
        if concurrency_needed && widest > MAX_STEPS_PER_STAGE {
            let d = problems
                .diagnostic(
                    Code::TooLarge,
                    &format!("{at}/forEach"),
                    format!("a wave of this stage would start {widest} steps at once; at most {MAX_STEPS_PER_STAGE} start together"),
                )
                .with_help(format!("set \"maxConcurrency\" (at most {MAX_STEPS_PER_STAGE}) or add waves"));
            problems.push(d);
        }
        let mut failed_templates = HashSet::new();
        let wave_count = slices.len();
        for (w, slice) in slices.iter().enumerate() {
            let Slice {
                name: wave,
                index,
                range,
            } = slice;
            let fan_out = |part| FanOut {
                stage: name.clone(),
                targets: selected.len() as u32,
                tolerated_failures: tolerated,
                max_concurrency: stage.max_concurrency,
                part,
                wave: wave.clone(),
                wave_index: *index,
            };
            let mut steps = Vec::with_capacity(range.len() * raw_steps.len());
            for target in &selected[range.clone()] {
                let in_wave = Scope {
                    target: Some(target),
                    wave: Some((wave, *index)),
                    ..scope
                };
                let id = target.get("id").map_or("", String::as_str);
                for (j, raw_step) in raw_steps.iter().enumerate() {
                    if failed_templates.contains(&j) {
                        continue;
                    }
                    match render_as::<Step>(raw_step, &format!("{at}/steps/{j}"), &in_wave, problems) {
                        Some(mut step) => {
                            step.name = format!("{} [{id}]", step.name);
                            steps.push(step);
                        }
                        None => {
                            failed_templates.insert(j);
                        }
                    }
                }
            }
            total_steps += steps.len();
            let stage_name = if stage.waves.is_empty() {
                name.clone()
            } else {
                format!("{name} / {wave}")
            };
            let mut s = Stage::new(stage_name, steps);
            s.description = description.clone();
            s.fan_out = Some(fan_out(FanOutPart::Wave));
            out.push(s);
            if w + 1 < wave_count && !stage.between_waves.is_empty() {
                let raw_between = raw
                    .get("betweenWaves")
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice);
                let between = Scope {
                    wave: Some((wave, *index)),
                    between: true,
                    ..scope
                };
                let steps = render_steps(raw_between, &format!("{at}/betweenWaves"), &between, problems);
                total_steps += steps.len();
                let mut s = Stage::new(format!("{name} / after {wave}"), steps);
                s.fan_out = Some(fan_out(FanOutPart::BetweenWaves));
                out.push(s);
            }
        }
    }
    if total_steps > MAX_STEPS {
        let d = problems
            .diagnostic(
                Code::TooLarge,
                "/stages",
                format!("with its targets the plan has {total_steps} steps; Steppy runs at most {MAX_STEPS}"),
            )
            .with_help("split the targets over several plans");
        problems.push(d);
    }
    (problems.len() == before).then_some(out)
}

/// A plan-level string (its name, its description) rendered: only parameters and the
/// execution id are known there.
pub fn render_plan_text(text: &str, at: &str, ctx: &Context<'_>, problems: &mut Problems<'_>) -> Option<String> {
    let scope = Scope::plan_level(ctx);
    render_text(text, at, &scope, problems)
}

/// The plan's defaults rendered: only parameters and the execution id are known there.
pub fn render_defaults(raw: &Value, ctx: &Context<'_>, problems: &mut Problems<'_>) -> Option<Defaults> {
    let scope = Scope::plan_level(ctx);
    render_as(raw, "/defaults", &scope, problems)
}

/// Failures the whole fan-out stage tolerates: the count, the percentage of `targets`
/// (rounded down), or the smaller of the two when both are set; 0 when neither is.
fn tolerated_failures(stage: &Stage, targets: usize) -> u32 {
    let by_percent = stage
        .tolerated_failure_percentage
        .map(|p| ((p * targets as f64) / 100.0 + 1e-9).floor() as u32);
    match (stage.tolerated_failure_count, by_percent) {
        (Some(c), Some(p)) => c.min(p),
        (Some(c), None) => c,
        (None, Some(p)) => p,
        (None, None) => 0,
    }
}

/// What a between-waves step's deferred references are, when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaveCounts {
    pub succeeded: u32,
    pub failed: u32,
    pub remaining: u32,
}

/// A between-waves step of a runnable plan, with its `${wave.succeeded}`, `${wave.failed}` and
/// `${wave.remaining}` rendered (and its escapes written out). A step without them is returned
/// as it is.
pub fn render_between_step(step: &Step, counts: WaveCounts) -> Step {
    let Ok(value) = serde_json::to_value(step) else {
        return step.clone();
    };
    fn walk(v: &mut Value, counts: WaveCounts) {
        match v {
            Value::String(s) if template::is_template(s) => {
                let rendered = template::render(
                    s,
                    |r| {
                        Ok::<_, ()>(Found::Value(Cow::Owned(match (r.scope, r.name) {
                            ("wave", "succeeded") => counts.succeeded.to_string(),
                            ("wave", "failed") => counts.failed.to_string(),
                            ("wave", "remaining") => counts.remaining.to_string(),
                            _ => format!("${{{}.{}}}", r.scope, r.name),
                        })))
                    },
                    |_| (),
                );
                if let Ok(r) = rendered {
                    *s = r.text.into_owned();
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, counts)),
            Value::Object(members) => members.values_mut().for_each(|m| walk(m, counts)),
            _ => {}
        }
    }
    let mut value = value;
    walk(&mut value, counts);
    serde_json::from_value(value).unwrap_or_else(|_| step.clone())
}
