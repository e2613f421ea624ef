//! `Notify`: SNS's `publish` integration, to the step's topic or the plan's default one.

use super::task::{Ends, subject, task, topic};
use super::{CompileError, Ctx};
use crate::plan::{NotifyStep, Step};
use serde_json::{Map, Value, json};

/// The `Task` state publishing the step's message.
pub fn publish(ctx: &mut Ctx<'_>, step: &Step, n: &NotifyStep, ends: &Ends) -> Result<Value, CompileError> {
    let mut params = Map::new();
    params.insert("TopicArn".into(), json!(topic(ctx, step, n.topic_arn.as_ref())?));
    params.insert("Message".into(), json!(n.message));
    if let Some(s) = &n.subject {
        params.insert("Subject".into(), json!(subject(s)));
    }
    Ok(task(
        ctx,
        step,
        "arn:aws:states:::sns:publish",
        Value::Object(params),
        ends,
        Vec::new(),
        &[],
    ))
}
