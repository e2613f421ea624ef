//! One attempt of one step, run as its own task: start (unless a handle is recorded), report
//! the handle and wait for its commit, resume until the outcome, within the deadline.

use super::Engine;
use super::live::{AttemptRef, Live, Report};
use crate::clock::Clock;
use crate::executor::{ExecError, Executor, Handle, StepContext};
use crate::fault;
use crate::plan::{FanOutPart, Step};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// One attempt, as a task: start (unless a handle is recorded), report the handle and wait for
/// its commit, then resume until the outcome; bounded by the deadline if there is one.
pub(super) async fn run_attempt(
    executor: Arc<dyn Executor>,
    ctx: StepContext,
    at: AttemptRef,
    handle: Option<Handle>,
    deadline_ms: Option<i64>,
    clock: Clock,
    tx: mpsc::UnboundedSender<Report>,
) {
    let work = async {
        let handle = match handle {
            Some(h) => h,
            None => {
                fault::hit("intent", &ctx.step.name);
                let h = executor.start(&ctx).await?;
                fault::hit("start", &ctx.step.name);
                let (ack, acked) = oneshot::channel();
                let report = Report::Started {
                    at: at.clone(),
                    handle: h.clone(),
                    ack,
                };
                if tx.send(report).is_err() || acked.await.is_err() {
                    return Ok(None); // the engine is gone or dropped this attempt
                }
                fault::hit("handle", &ctx.step.name);
                h
            }
        };
        executor.resume(&ctx, &handle).await.map(Some)
    };
    // A panicking executor fails its attempt instead of leaving the step running forever.
    let work = async {
        match CatchPanic(Box::pin(work)).await {
            Ok(r) => r,
            Err(panicked) => Err(ExecError::new(panicked.to_string())),
        }
    };
    let result = match deadline_ms {
        Some(d) => match tokio::time::timeout_at(clock.instant_at(d), work).await {
            Ok(r) => r,
            Err(_) => {
                let _ = tx.send(Report::TimedOut { at });
                return;
            }
        },
        None => work.await,
    };
    let result = match result {
        Ok(Some(o)) => Ok(o),
        Ok(None) => return,
        Err(e) => Err(e),
    };
    let _ = tx.send(Report::Ended { at, result });
}

/// Turns a panic while polling the inner future into `Err(Panicked)`.
pub(super) struct CatchPanic<F>(std::pin::Pin<Box<F>>);

/// A panic caught by [`CatchPanic`], with its message.
#[derive(Debug, thiserror::Error)]
#[error("the executor panicked: {0}")]
pub(super) struct Panicked(String);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, Panicked>;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                std::task::Poll::Ready(Err(Panicked(message)))
            }
        }
    }
}

pub(super) fn context(engine: &Engine, clock: Clock, live: &Live, flat: usize) -> StepContext {
    let s = live.step(flat);
    StepContext {
        execution_id: live.id.clone(),
        stage: s.stage,
        index: s.index,
        flat,
        attempt: s.attempt,
        attempt_started_ms: s.attempt_started_ms.unwrap_or_else(|| clock.now_ms()),
        idempotency_key: StepContext::key_for(&live.id, s.stage, s.index, s.attempt),
        step: step_to_run(live, flat),
        clock,
        notices: engine.notices.clone(),
        store: engine.store.clone(),
    }
}

/// The step as it runs: a between-waves step gets its wave counts rendered now.
fn step_to_run(live: &Live, flat: usize) -> Arc<Step> {
    let def = live.def(flat);
    match &live.plan.stages[live.step(flat).stage].fan_out {
        Some(of) if of.part == FanOutPart::BetweenWaves => {
            let counts = live
                .tally(of)
                .map(|t| t.counts(of))
                .unwrap_or(crate::resolve::WaveCounts {
                    succeeded: 0,
                    failed: 0,
                    remaining: of.targets,
                });
            Arc::new(crate::resolve::render_between_step(def, counts))
        }
        _ => Arc::new(def.clone()),
    }
}
