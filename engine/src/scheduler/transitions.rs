//! What changes, and why: starting and ending stages, aborting, and turning each attempt report
//! into events plus state changes (applied in memory here, committed by the driver).

use super::driver::{Driver, backoff};
use super::fan_out;
use super::live::{Action, AttemptRef, Live, Report};
use crate::events::EventType;
use crate::executor::{Outcome, Registry, RunningWork, StepContext};
use crate::plan::FanOut;
use crate::state::{ExecutionState, StepState};
use crate::store::{Batch, Change, ExecWrite, StepRecord};
use serde_json::{Value, json};
use std::sync::Arc;

impl Driver {
    pub(super) fn bootstrap_all(&mut self, batch: &mut Batch, actions: &mut Vec<Action>) {
        let ids: Vec<Arc<str>> = self.live.keys().cloned().collect();
        for id in ids {
            self.bootstrap(&id, batch, actions);
        }
    }

    /// First tick of an adopted execution: start it, or pick its running steps back up.
    pub(super) fn bootstrap(&mut self, id: &Arc<str>, batch: &mut Batch, actions: &mut Vec<Action>) {
        let Some(live) = self.live.get_mut(id) else {
            return;
        };
        if std::mem::replace(&mut live.bootstrapped, true) {
            return;
        }
        match live.state {
            ExecutionState::Pending => batch.push(exec_change(
                live,
                EventType::ExecutionStarted,
                ExecutionState::Running,
                None,
                json!({}),
            )),
            ExecutionState::Running => {
                batch.push(exec_change(
                    live,
                    EventType::ExecutionResumed,
                    ExecutionState::Running,
                    None,
                    json!({ "pid": std::process::id() }),
                ));
                for flat in live.stage_range(live.stage) {
                    let s = live.step(flat);
                    match (s.state, s.retry_at_ms) {
                        (StepState::Waiting, Some(at_ms)) => actions.push(Action::RetryTimer {
                            at: AttemptRef {
                                exec: id.clone(),
                                flat,
                                attempt: s.attempt,
                            },
                            at_ms,
                        }),
                        (StepState::Running | StepState::Waiting, _) => {
                            actions.push(Action::Spawn { exec: id.clone(), flat })
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        self.advance(id, batch, actions);
    }

    /// Starts stages and ends them (and the execution) as far as the current state allows.
    pub(super) fn advance(&mut self, id: &Arc<str>, batch: &mut Batch, actions: &mut Vec<Action>) {
        let now = self.clock.now_ms();
        let Some(live) = self.live.get_mut(id) else {
            return;
        };
        while live.state == ExecutionState::Running {
            if live.plan.stages.is_empty() {
                batch.push(exec_change(
                    live,
                    EventType::ExecutionSucceeded,
                    ExecutionState::Succeeded,
                    None,
                    json!({}),
                ));
                break;
            }
            let range = live.stage_range(live.stage);
            let wave = fan_out::wave_of(&live.plan.stages[live.stage]).cloned();
            if !live.stage_started {
                live.stage_started = true;
                let stage = live.stage;
                batch.push(exec_change(
                    live,
                    EventType::StageStarted,
                    ExecutionState::Running,
                    None,
                    json!({ "name": live.plan.stages[stage].name }),
                ));
                if let Some(c) = batch.changes.last_mut() {
                    c.stage = Some(stage);
                }
                let cap = wave.as_ref().map_or(usize::MAX, fan_out::cap);
                for flat in range.take(cap) {
                    batch.push(start_attempt(live, flat, now, &self.engine.registry));
                    actions.push(Action::Spawn { exec: id.clone(), flat });
                }
                continue;
            }
            if let Some(wave) = &wave {
                run_wave(live, wave, now, &self.engine.registry, batch, actions);
            }
            if !live.stage_ended(live.stage) {
                break;
            }
            let stage = live.stage;
            let failed = match &wave {
                Some(wave) => wave_failure(live, wave),
                None => range
                    .clone()
                    .find(|&i| {
                        let s = live.step(i);
                        !matches!(s.state, StepState::Succeeded) && !live.def(i).options.continue_on_failure
                    })
                    .map(|i| {
                        let s = live.step(i);
                        format!(
                            "step \"{}\" {}: {}",
                            s.name,
                            s.state.as_str().to_lowercase().replace('_', " "),
                            s.reason.clone().unwrap_or_default()
                        )
                    }),
            };
            let name = live.plan.stages[stage].name.clone();
            batch.push(Change {
                execution_id: id.clone(),
                kind: EventType::StageEnded,
                stage: Some(stage),
                step: None,
                details: json!({ "name": name, "failed": failed.is_some() }),
                step_write: None,
                exec_write: None,
            });
            if let Some(reason) = failed {
                batch.push(exec_change(
                    live,
                    EventType::ExecutionFailed,
                    ExecutionState::Failed,
                    Some(reason),
                    json!({}),
                ));
            } else if stage + 1 == live.plan.stages.len() {
                batch.push(exec_change(
                    live,
                    EventType::ExecutionSucceeded,
                    ExecutionState::Succeeded,
                    None,
                    json!({}),
                ));
            } else {
                live.next_stage();
            }
        }
    }

    /// Aborts an execution: waiting and internal steps of the current stage are cancelled;
    /// running external jobs are left to finish unless `running` is [`RunningWork::Stop`].
    pub(super) fn abort(
        &mut self,
        id: &Arc<str>,
        reason: &str,
        running: RunningWork,
        batch: &mut Batch,
        actions: &mut Vec<Action>,
    ) {
        let now = self.clock.now_ms();
        let Some(live) = self.live.get_mut(id) else {
            return;
        };
        if live.state.is_terminal() {
            return;
        }
        if live.state == ExecutionState::Running && live.stage_started {
            for flat in live.stage_range(live.stage) {
                let before = live.step(flat).clone();
                if before.state.is_terminal() {
                    continue;
                }
                let external = self.engine.registry.get(&before.kind).is_some_and(|e| e.is_external());
                let leave_running = external
                    && before.handle.is_some()
                    && running == RunningWork::LetFinish
                    && before.state == StepState::Running;
                let mut after = before.clone();
                after.ended_ms = Some(now);
                after.retry_at_ms = None;
                let kind = if leave_running {
                    after.state = StepState::Aborted;
                    after.reason = Some("execution aborted; the external job was left running".into());
                    actions.push(Action::StopWatching { exec: id.clone(), flat });
                    EventType::StepAbandoned
                } else {
                    after.state = StepState::Cancelled;
                    after.reason = Some(reason.to_string());
                    if before.state != StepState::Pending {
                        actions.push(Action::Cancel {
                            exec: id.clone(),
                            flat,
                            handle: before.handle.clone(),
                            running,
                        });
                    }
                    EventType::StepCancelled
                };
                batch.push(step_change(
                    live,
                    flat,
                    before.state,
                    after,
                    kind,
                    json!({ "reason": reason }),
                ));
            }
        }
        batch.push(exec_change(
            live,
            EventType::ExecutionAborted,
            ExecutionState::Aborted,
            Some(reason.to_string()),
            json!({ "stopRunning": running.stop_running() }),
        ));
    }

    pub(super) fn on_report(&mut self, report: Report, batch: &mut Batch, actions: &mut Vec<Action>) {
        let now = self.clock.now_ms();
        let at = report.at().clone();
        let (exec, flat, attempt) = (at.exec.clone(), at.flat, at.attempt);
        let registry = self.engine.registry.clone();
        let Some(live) = self.live.get_mut(&exec) else {
            return;
        };
        let before = live.step(flat).clone();
        // Reports about an attempt that is no longer current (cancelled, superseded) are stale.
        if live.state.is_terminal() || before.state.is_terminal() || before.attempt != attempt {
            return;
        }
        let (name, options) = {
            let def = live.def(flat);
            (def.name.clone(), def.options.clone())
        };
        let mut after = before.clone();
        match report {
            Report::Started { handle, ack, .. } => {
                if before.state != StepState::Running || before.handle.is_some() {
                    return;
                }
                let waits = registry.get(&before.kind).is_some_and(|e| e.waits());
                after.state = if waits { StepState::Waiting } else { StepState::Running };
                after.handle = Some(handle.clone());
                batch.push(step_change(
                    live,
                    flat,
                    before.state,
                    after,
                    EventType::StepHandleRecorded,
                    json!({ "attempt": attempt, "handle": handle }),
                ));
                actions.push(Action::Ack {
                    exec: exec.clone(),
                    ack,
                });
                self.held_back.remove(&(exec.clone(), flat));
            }
            Report::RunAgain { .. } => {
                // Only an attempt still in progress runs again (not one waiting for a retry).
                if !matches!(before.state, StepState::Running | StepState::Waiting) || before.retry_at_ms.is_some() {
                    return;
                }
                if let Some(h) = self.held_back.get_mut(&(exec.clone(), flat)) {
                    h.waiting = false;
                }
                actions.push(Action::Spawn {
                    exec: exec.clone(),
                    flat,
                });
            }
            Report::Ended { result: Err(e), .. } if e.is_machinery() => {
                // Steppy's own trouble, not the step's: nothing is recorded and no attempt is
                // used up; the same attempt runs again (same key, same handle) after a backoff.
                live.tasks.remove(&flat);
                let held = self.held_back.entry((exec.clone(), flat)).or_default();
                held.failures += 1;
                held.waiting = true;
                let after = backoff(held.failures, std::time::Duration::from_secs(30));
                if held.failures == 1 || held.failures.is_multiple_of(10) {
                    let line = format!(
                        "Steppy could not do its own part ({e}); the step has not failed and runs again in {} ms",
                        after.as_millis()
                    );
                    self.engine.notices.notice(&exec, &name, &line);
                }
                actions.push(Action::RunAgainTimer { at, after });
            }
            Report::RetryDue { .. } => {
                if before.state != StepState::Waiting || before.retry_at_ms.is_none() {
                    return;
                }
                batch.push(start_attempt(live, flat, now, &registry));
                actions.push(Action::Spawn {
                    exec: exec.clone(),
                    flat,
                });
            }
            Report::TimedOut { .. } => {
                live.tasks.remove(&flat);
                after.state = StepState::TimedOut;
                after.ended_ms = Some(now);
                after.reason = Some(format!("no outcome within {}s", options.timeout_seconds.unwrap_or(0)));
                batch.push(step_change(
                    live,
                    flat,
                    before.state,
                    after,
                    EventType::StepTimedOut,
                    json!({ "attempt": attempt }),
                ));
                actions.push(Action::Cancel {
                    exec: exec.clone(),
                    flat,
                    handle: before.handle.clone(),
                    running: RunningWork::Stop,
                });
            }
            Report::Ended { result, .. } => {
                live.tasks.remove(&flat);
                self.held_back.remove(&(exec.clone(), flat));
                let outcome = match result {
                    Ok(o) => o,
                    Err(e) => Outcome::Failed {
                        reason: e.message,
                        retryable: true,
                    },
                };
                match outcome {
                    Outcome::Succeeded(output) => {
                        after.state = StepState::Succeeded;
                        after.ended_ms = Some(now);
                        after.output = Some(output);
                        batch.push(step_change(
                            live,
                            flat,
                            before.state,
                            after,
                            EventType::StepSucceeded,
                            json!({ "attempt": attempt }),
                        ));
                    }
                    Outcome::Failed { reason, retryable } => {
                        let retry = options.retry.filter(|r| retryable && attempt < r.max_attempts);
                        if let Some(r) = retry {
                            let at_ms = now + (r.delay_after(attempt) * 1000.0) as i64;
                            after.state = StepState::Waiting;
                            after.retry_at_ms = Some(at_ms);
                            after.reason = Some(reason.clone());
                            batch.push(step_change(
                                live,
                                flat,
                                before.state,
                                after,
                                EventType::StepRetryScheduled,
                                json!({ "attempt": attempt, "reason": reason, "retryAtMs": at_ms }),
                            ));
                            actions.push(Action::RetryTimer { at: at.clone(), at_ms });
                        } else {
                            ended_failed(&mut after, now, &reason);
                            batch.push(step_change(
                                live,
                                flat,
                                before.state,
                                after,
                                EventType::StepFailed,
                                json!({ "attempt": attempt, "reason": reason, "retryable": retryable }),
                            ));
                        }
                    }
                    Outcome::Rejected { reason } => {
                        ended_failed(&mut after, now, &reason);
                        batch.push(step_change(
                            live,
                            flat,
                            before.state,
                            after,
                            EventType::StepFailed,
                            json!({ "attempt": attempt, "reason": reason, "rejected": true }),
                        ));
                        let why = format!("step \"{name}\" was rejected: {reason}");
                        self.abort(&exec, &why, RunningWork::LetFinish, batch, actions);
                    }
                }
            }
        }
    }
}

/// The change that starts the next attempt of step `flat`: the start intent, with its key.
/// A started wave: while its failed targets are within the tolerance, starts pending
/// instances up to the cap; beyond it, starts none and cancels the ones not started (those
/// running go on to their end).
fn run_wave(
    live: &mut Live,
    wave: &FanOut,
    now: i64,
    registry: &Registry,
    batch: &mut Batch,
    actions: &mut Vec<Action>,
) {
    let range = live.stage_range(live.stage);
    let failed = live.tally(wave).map_or(0, |t| t.failed());
    if failed > wave.tolerated_failures as usize {
        let reason = format!(
            "not started: {failed} targets failed, more than the {} the stage tolerates",
            wave.tolerated_failures
        );
        for flat in live.pending(range.len()) {
            let before = live.step(flat).clone();
            let mut after = before.clone();
            after.state = StepState::Cancelled;
            after.ended_ms = Some(now);
            after.reason = Some(reason.clone());
            batch.push(step_change(
                live,
                flat,
                before.state,
                after,
                EventType::StepCancelled,
                json!({ "reason": reason }),
            ));
        }
        return;
    }
    let room = fan_out::cap(wave).saturating_sub(live.active(live.stage));
    for flat in live.pending(room) {
        batch.push(start_attempt(live, flat, now, registry));
        actions.push(Action::Spawn {
            exec: live.id.clone(),
            flat,
        });
    }
}

/// Why a wave stage fails its execution: more failed targets (over the fan-out stage so far)
/// than it tolerates. `None`: it succeeds, failures and all.
fn wave_failure(live: &Live, wave: &FanOut) -> Option<String> {
    let failures = live.tally(wave).map_or(&[][..], |t| t.failures());
    if failures.len() <= wave.tolerated_failures as usize {
        return None;
    }
    const SHOWN: usize = 5;
    let mut listed: Vec<String> = failures
        .iter()
        .take(SHOWN)
        .map(|(target, why)| format!("{target} ({why})"))
        .collect();
    if failures.len() > SHOWN {
        listed.push(format!("and {} more", failures.len() - SHOWN));
    }
    Some(format!(
        "stage \"{}\": {} of {} targets failed, more than the {} it tolerates: {}",
        wave.stage,
        failures.len(),
        wave.targets,
        wave.tolerated_failures,
        listed.join(", ")
    ))
}

pub(super) fn start_attempt(live: &mut Live, flat: usize, now: i64, registry: &Registry) -> Change {
    let before = live.step(flat).clone();
    let def = live.def(flat);
    let mut after = before.clone();
    after.state = StepState::Running;
    after.attempt = before.attempt + 1;
    after.handle = None;
    after.retry_at_ms = None;
    after.reason = None;
    after.started_ms = before.started_ms.or(Some(now));
    after.attempt_started_ms = Some(now);
    let owns_timeout = registry.get(&before.kind).is_some_and(|e| e.owns_timeout());
    after.deadline_ms = def
        .options
        .timeout_seconds
        .filter(|_| !owns_timeout)
        .map(|t| now + (t as i64) * 1000);
    let key = StepContext::key_for(&live.id, before.stage, before.index, after.attempt);
    let details = json!({ "attempt": after.attempt, "key": key, "deadlineMs": after.deadline_ms });
    step_change(live, flat, before.state, after, EventType::StepStarted, details)
}

/// A change of step `flat` from `from` to `after`, applied to the in-memory state too.
pub(super) fn step_change(
    live: &mut Live,
    flat: usize,
    from: StepState,
    after: StepRecord,
    kind: EventType,
    details: Value,
) -> Change {
    let change = Change {
        execution_id: live.id.clone(),
        kind,
        stage: Some(after.stage),
        step: Some(after.index),
        details,
        step_write: Some((from, after.clone())),
        exec_write: None,
    };
    live.set_step(flat, after);
    change
}

/// A change of the execution (state and current stage), applied to the in-memory state too.
pub(super) fn exec_change(
    live: &mut Live,
    kind: EventType,
    to: ExecutionState,
    reason: Option<String>,
    details: Value,
) -> Change {
    let from = live.state;
    live.state = to;
    Change {
        execution_id: live.id.clone(),
        kind,
        stage: None,
        step: None,
        details,
        step_write: None,
        exec_write: Some(ExecWrite {
            from,
            to,
            current_stage: live.stage,
            reason,
        }),
    }
}

/// A step's last attempt failed (or a person rejected it) at `now`, for `reason`.
fn ended_failed(after: &mut StepRecord, now: i64, reason: &str) {
    after.state = StepState::Failed;
    after.ended_ms = Some(now);
    after.reason = Some(reason.to_string());
}
