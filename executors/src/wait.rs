//! `Wait`: sleeps a number of seconds against a durable deadline.
//!
//! `start` records the deadline (`{"untilMs": ...}`) in the handle, so after a restart the wait
//! resumes with only the remaining time. The deadline counts from the recorded start intent, so
//! even a restart before the handle was recorded keeps it.

use serde_json::json;
use steppy_engine::executor::{BoxFuture, ExecError, Executor, Handle, Outcome, RunningWork, StepContext};
use steppy_engine::plan::StepKind;

/// The `Wait` executor.
pub struct WaitExecutor;

impl Executor for WaitExecutor {
    fn start<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Handle, ExecError>> {
        Box::pin(async move {
            let StepKind::Wait(w) = &ctx.step.kind else {
                return Err(ExecError::new("the Wait executor was given another step type"));
            };
            let until_ms = ctx
                .attempt_started_ms
                .saturating_add((w.seconds as i64).saturating_mul(1000));
            Ok(json!({ "untilMs": until_ms }))
        })
    }

    fn resume<'a>(&'a self, ctx: &'a StepContext, handle: &'a Handle) -> BoxFuture<'a, Result<Outcome, ExecError>> {
        Box::pin(async move {
            let until_ms = handle
                .get("untilMs")
                .and_then(|v| v.as_i64())
                .ok_or_else(|| ExecError::new("wait handle has no untilMs"))?;
            ctx.clock.sleep_until(until_ms).await;
            Ok(Outcome::Succeeded(json!({})))
        })
    }

    fn cancel<'a>(&'a self, _: &'a StepContext, _: &'a Handle, _: RunningWork) -> BoxFuture<'a, Result<(), ExecError>> {
        Box::pin(async { Ok(()) })
    }

    fn waits(&self) -> bool {
        true
    }
}
