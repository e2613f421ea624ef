//! Following a Step Functions execution: poll its history for new events, fold them with
//! [`Replay`], and print the same kind of progress lines as a local run.
//!
//! A poll reads only the events after the last one seen (`history_since`); a throttled or
//! transient error is reported and the poll tried again, so a network blip does not end the
//! follow (the release itself runs in AWS regardless).

use std::io::Write;
use std::time::{Duration, Instant};
use steppy_engine::asl::replay::{Replay, RunStatus, Update};
use steppy_executors::aws::sfn::{SfnError, StepFunctions};

/// Prints progress lines, timed from when the follow started.
pub struct Printer {
    started: Instant,
}

impl Default for Printer {
    fn default() -> Self {
        Printer {
            started: Instant::now(),
        }
    }
}

impl Printer {
    pub fn line(&self, text: &str) {
        let t = self.started.elapsed().as_secs_f64();
        // Names and reasons come from the definition and the history: escaped here.
        let text = steppy_engine::text::printable(text);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{t:7.1}s] {text}");
        let _ = out.flush();
    }

    /// The line(s) for one update, in the local engine's wording.
    pub fn show(&self, replay: &Replay, name: &str, u: &Update) {
        let label = |s: usize, k: usize| {
            replay
                .outline
                .step(s, k)
                .map(|st| format!("  {} \"{}\"", st.kind, st.name))
                .unwrap_or_default()
        };
        let took = |ms: &Option<i64>| {
            ms.map(|m| format!("{:.1}s", m as f64 / 1000.0))
                .unwrap_or_else(|| "-".into())
        };
        match u {
            Update::ExecutionStarted => self.line(&format!(
                "execution {name} started on Step Functions ({} stages, {} steps)",
                replay.outline.stages.len(),
                replay.outline.step_count()
            )),
            Update::StageStarted(s) => self.line(&format!(
                "stage {}/{} \"{}\" started",
                s + 1,
                replay.outline.stages.len(),
                replay.outline.stages.get(*s).map(|st| st.name.as_str()).unwrap_or("")
            )),
            Update::StepRunning(s, k) => self.line(&format!("{} running", label(*s, *k))),
            Update::ApprovalRequested {
                stage,
                step,
                approve,
                reject,
            } => {
                self.line(&format!("{} waiting", label(*stage, *step)));
                let step_name = replay
                    .outline
                    .step(*stage, *step)
                    .map(|st| st.name.as_str())
                    .unwrap_or("");
                self.line(&format!("  \"{step_name}\" needs a decision:"));
                if let Some(a) = approve {
                    self.line(&format!("    open to approve: {a}"));
                }
                if let Some(r) = reject {
                    self.line(&format!("    open to reject:  {r}"));
                }
            }
            Update::StepSucceeded {
                stage,
                step,
                took_ms,
                approved_by: Some(by),
            } => self.line(&format!(
                "{} approved by {by} after {}",
                label(*stage, *step),
                took(took_ms)
            )),
            Update::StepSucceeded {
                stage,
                step,
                took_ms,
                approved_by: None,
            } => self.line(&format!("{} succeeded after {}", label(*stage, *step), took(took_ms))),
            Update::StepFailed {
                stage,
                step,
                took_ms,
                reason,
            } => self.line(&format!(
                "{} failed after {}: {reason}",
                label(*stage, *step),
                took(took_ms)
            )),
            Update::StepRejected {
                stage,
                step,
                took_ms,
                reason,
            } => self.line(&format!(
                "{} rejected after {}: {reason}",
                label(*stage, *step),
                took(took_ms)
            )),
            Update::ExecutionEnded {
                status: RunStatus::Succeeded,
                ..
            } => self.line(&format!(
                "execution {name} SUCCEEDED in {:.1}s",
                self.started.elapsed().as_secs_f64()
            )),
            Update::ExecutionEnded { status, reason } => self.line(&format!(
                "execution {name} {}: {}",
                status.as_str().to_uppercase(),
                reason.as_deref().unwrap_or("no reason given")
            )),
        }
    }
}

/// Follows execution `arn` until it ends; prints with `printer` if given. Returns how it ended.
pub async fn follow(
    sfn: &StepFunctions,
    arn: &str,
    name: &str,
    replay: &mut Replay,
    interval: Duration,
    printer: Option<&Printer>,
) -> Result<RunStatus, SfnError> {
    let mut last = 0;
    let mut failures = 0u32;
    loop {
        match sfn.history_since(arn, last).await {
            Ok(events) => {
                failures = 0;
                for e in &events {
                    last = last.max(e.id);
                    for u in replay.apply(e) {
                        if let Some(p) = printer {
                            p.show(replay, name, &u);
                        }
                    }
                }
                if replay.status != RunStatus::Running {
                    return Ok(replay.status);
                }
            }
            Err(e) if e.is_retryable() && failures < 20 => {
                failures += 1;
                crate::terminal::say_err!("steppy: reading the history of {name} failed ({e}); trying again");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep(interval).await;
    }
}
