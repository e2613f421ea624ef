//! What the task states of every step type share: the two ends of a step's branch, a `Task`
//! state with the step's timeout, retry, credentials and catch-all, the region note, and the SNS
//! topic and subject rules. The step-type modules ([`super::codebuild`], [`super::notify`],
//! [`super::pipeline`], [`super::human`]) build on these and never on each other.

use super::{CompileError, Ctx, policy};
use crate::plan::Step;
use serde_json::{Map, Value, json};

/// The names every step branch shares: its first state, and its two ends.
pub struct Ends {
    pub ok: String,
    pub failed: String,
}

/// A task state calling `resource` with `parameters`, with the step's timeout, retry and
/// credentials, going to `ends.ok` and catching every error into `ends.failed` (after the
/// `extra_catch` clauses).
pub fn task(
    ctx: &Ctx<'_>,
    step: &Step,
    resource: &str,
    parameters: Value,
    ends: &Ends,
    extra_catch: Vec<Value>,
    not_retried: &[&str],
) -> Value {
    let mut state = Map::new();
    state.insert("Type".into(), json!("Task"));
    state.insert("Resource".into(), json!(resource));
    state.insert("Parameters".into(), parameters);
    policy::add_credentials(&mut state, ctx.plan, step);
    policy::add_timeout(&mut state, step);
    policy::add_retry(&mut state, step, not_retried);
    let mut catch = extra_catch;
    catch.push(json!({ "ErrorEquals": ["States.ALL"], "Next": ends.failed }));
    state.insert("Catch".into(), Value::Array(catch));
    state.insert("Next".into(), json!(ends.ok));
    note_region(ctx, step, &mut state);
    Value::Object(state)
}

/// Step Functions calls services in the state machine's own region: a step's `region` is kept as
/// a `Comment` (and [`super::compile`] warns once about all regions).
pub fn note_region(ctx: &Ctx<'_>, step: &Step, state: &mut Map<String, Value>) {
    if let Some(region) = policy::region(ctx.plan, step) {
        state.insert(
            "Comment".into(),
            json!(format!(
                "region {region}: deploy this state machine in {region}, the calls go to its own region"
            )),
        );
    }
}

/// The SNS topic a step publishes to.
pub fn topic(ctx: &Ctx<'_>, step: &Step, own: Option<&String>) -> Result<String, CompileError> {
    own.or(ctx.plan.defaults.notification_topic_arn.as_ref())
        .or(ctx.options.topic_arn.as_ref())
        .cloned()
        .ok_or_else(|| CompileError::NoTopic {
            step: step.name.clone(),
        })
}

/// An SNS subject: one line, at most 100 characters (SNS's limits).
pub fn subject(text: &str) -> String {
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    one_line.chars().take(100).collect::<String>().trim().to_string()
}
