//! Telling a Step Functions execution's history as stage and step progress.
//!
//! Step Functions reports an execution as a list of history events, each naming (directly, or
//! through the event it follows: `previousEventId`) the state it belongs to. [`Replay`] reads
//! them in order against the [`Outline`] of the definition and keeps each step's status, so
//! `steppy run --engine sfn` can print the same live lines as a local run and `steppy status`
//! can show where an execution stands. It is a pure fold over events: the AWS calls that fetch
//! them live in `steppy_executors::aws::sfn`.

use super::REJECTED;
use super::outline::{Outline, Role};
use serde_json::Value;
use std::collections::HashMap;

/// One history event, reduced to what the replay reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryEvent {
    pub id: i64,
    /// The event this one follows (0 for none).
    pub previous: i64,
    /// The event type as Step Functions names it (`TaskStateEntered`, `ExecutionFailed`…).
    pub kind: String,
    /// The state's name, for `…StateEntered` and `…StateExited` events.
    pub state: Option<String>,
    /// The event's JSON payload: a state's input or output, a task's parameters or output.
    pub data: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub at_ms: i64,
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Running,
    /// An approval request was sent; the task waits for its token.
    Waiting,
    Succeeded,
    Failed,
    Rejected,
}

impl StepStatus {
    /// The word the local engine uses for the same state.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Waiting => "waiting",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Rejected => "rejected",
        }
    }
}

/// Where the execution stands, in the local engine's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Rejected by a person (`Steppy.Rejected`) or stopped in Step Functions.
    Aborted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
        }
    }
}

/// Something worth a line of progress.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    ExecutionStarted,
    StageStarted(usize),
    StepRunning(usize, usize),
    /// An approval request went out with these links (read from the published message).
    ApprovalRequested {
        stage: usize,
        step: usize,
        approve: Option<String>,
        reject: Option<String>,
    },
    StepSucceeded {
        stage: usize,
        step: usize,
        took_ms: Option<i64>,
        approved_by: Option<String>,
    },
    StepFailed {
        stage: usize,
        step: usize,
        took_ms: Option<i64>,
        reason: String,
    },
    StepRejected {
        stage: usize,
        step: usize,
        took_ms: Option<i64>,
        reason: String,
    },
    ExecutionEnded {
        status: RunStatus,
        reason: Option<String>,
    },
}

/// The fold of an execution's history events.
#[derive(Debug, Clone)]
pub struct Replay {
    pub outline: Outline,
    /// `steps[stage][step]`.
    pub steps: Vec<Vec<StepStatus>>,
    pub status: RunStatus,
    pub reason: Option<String>,
    /// The state each event belongs to, by event id.
    owner: HashMap<i64, String>,
    started_ms: HashMap<(usize, usize), i64>,
    approver: HashMap<(usize, usize), String>,
}

impl Replay {
    pub fn new(outline: Outline) -> Replay {
        let steps = outline
            .stages
            .iter()
            .map(|s| vec![StepStatus::Pending; s.steps.len()])
            .collect();
        Replay {
            outline,
            steps,
            status: RunStatus::Running,
            reason: None,
            owner: HashMap::new(),
            started_ms: HashMap::new(),
            approver: HashMap::new(),
        }
    }

    /// Reads one event (in history order) and says what changed.
    pub fn apply(&mut self, e: &HistoryEvent) -> Vec<Update> {
        let owner = match &e.state {
            Some(name) if e.kind.ends_with("StateEntered") => Some(name.clone()),
            _ => self.owner.get(&e.previous).cloned(),
        };
        if let Some(o) = &owner {
            self.owner.insert(e.id, o.clone());
        }
        let role = owner.as_deref().and_then(|o| self.outline.role(o));
        match (e.kind.as_str(), role) {
            ("ExecutionStarted", _) => vec![Update::ExecutionStarted],
            ("ExecutionSucceeded", _) => self.end(RunStatus::Succeeded, None),
            ("ExecutionFailed", _) => {
                let reason = describe(e.error.as_deref(), e.cause.as_deref());
                let status = if e.error.as_deref() == Some(REJECTED) {
                    RunStatus::Aborted
                } else {
                    RunStatus::Failed
                };
                self.end(status, Some(reason))
            }
            ("ExecutionAborted", _) => self.end(RunStatus::Aborted, Some("stopped in Step Functions".into())),
            ("ExecutionTimedOut", _) => self.end(
                RunStatus::Failed,
                Some("the execution timed out in Step Functions".into()),
            ),
            (kind, Some(Role::Stage(s))) if kind.ends_with("StateEntered") => vec![Update::StageStarted(s)],
            (kind, Some(Role::StepStart(s, k))) if kind.ends_with("StateEntered") => {
                self.started_ms.entry((s, k)).or_insert(e.at_ms);
                self.set(s, k, StepStatus::Running);
                vec![Update::StepRunning(s, k)]
            }
            ("TaskScheduled", Some(Role::StepStart(s, k))) if self.kind(s, k) == "Human" => {
                self.set(s, k, StepStatus::Waiting);
                let (approve, reject) = links(e.data.as_deref());
                vec![Update::ApprovalRequested {
                    stage: s,
                    step: k,
                    approve,
                    reject,
                }]
            }
            ("TaskSucceeded", Some(Role::StepStart(s, k))) => {
                let by = e
                    .data
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                    .and_then(|v| v.get("approver").and_then(Value::as_str).map(String::from));
                if let Some(by) = by {
                    self.approver.insert((s, k), by);
                }
                Vec::new()
            }
            (kind, Some(Role::StepSucceeded(s, k))) if kind.ends_with("StateEntered") => {
                self.set(s, k, StepStatus::Succeeded);
                vec![Update::StepSucceeded {
                    stage: s,
                    step: k,
                    took_ms: self.took(s, k, e.at_ms),
                    approved_by: self.approver.get(&(s, k)).cloned(),
                }]
            }
            (kind, Some(Role::StepApprovedOnTimeout(s, k))) if kind.ends_with("StateEntered") => {
                self.set(s, k, StepStatus::Succeeded);
                // The local engine's words for the same: the approval was settled by "timeout".
                vec![Update::StepSucceeded {
                    stage: s,
                    step: k,
                    took_ms: self.took(s, k, e.at_ms),
                    approved_by: Some(crate::store::TIMEOUT_SETTLER.to_string()),
                }]
            }
            (kind, Some(Role::StepFailed(s, k))) if kind.ends_with("StateEntered") => {
                self.set(s, k, StepStatus::Failed);
                vec![Update::StepFailed {
                    stage: s,
                    step: k,
                    took_ms: self.took(s, k, e.at_ms),
                    reason: failure(e.data.as_deref()),
                }]
            }
            (kind, Some(Role::StepRejected(s, k))) if kind.ends_with("StateEntered") => {
                self.set(s, k, StepStatus::Rejected);
                vec![Update::StepRejected {
                    stage: s,
                    step: k,
                    took_ms: self.took(s, k, e.at_ms),
                    reason: failure(e.data.as_deref()),
                }]
            }
            _ => Vec::new(),
        }
    }

    /// The status of every step, flattened in plan order with its stage and index.
    pub fn step_statuses(&self) -> impl Iterator<Item = (usize, usize, StepStatus)> + '_ {
        self.steps
            .iter()
            .enumerate()
            .flat_map(|(s, steps)| steps.iter().enumerate().map(move |(k, st)| (s, k, *st)))
    }

    fn kind(&self, s: usize, k: usize) -> &'static str {
        self.outline.step(s, k).map(|st| st.kind).unwrap_or("")
    }

    fn set(&mut self, s: usize, k: usize, status: StepStatus) {
        if let Some(slot) = self.steps.get_mut(s).and_then(|st| st.get_mut(k)) {
            *slot = status;
        }
    }

    fn took(&self, s: usize, k: usize, now: i64) -> Option<i64> {
        self.started_ms.get(&(s, k)).map(|t| (now - t).max(0))
    }

    fn end(&mut self, status: RunStatus, reason: Option<String>) -> Vec<Update> {
        self.status = status;
        self.reason = reason.clone();
        // A step still running when the execution ended did not get to finish.
        vec![Update::ExecutionEnded { status, reason }]
    }
}

/// `error: cause`, or whichever is there.
fn describe(error: Option<&str>, cause: Option<&str>) -> String {
    match (error, cause) {
        (Some(e), Some(c)) if !c.is_empty() => format!("{e}: {c}"),
        (Some(e), _) => e.to_string(),
        (None, Some(c)) => c.to_string(),
        (None, None) => "no reason given".to_string(),
    }
}

/// The reason in a failure Pass's input: `{"Error", "Cause"}` (a caught error) or
/// `{"failure": {"Error", "Cause"}}`.
fn failure(data: Option<&str>) -> String {
    let v: Value = data.and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null);
    let v = v.get("failure").unwrap_or(&v);
    describe(
        v.get("Error").and_then(Value::as_str),
        v.get("Cause").and_then(Value::as_str),
    )
}

/// The approve and reject links of a published approval request (its `Message` parameter).
fn links(parameters: Option<&str>) -> (Option<String>, Option<String>) {
    let v: Value = parameters
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    let message = v.get("Message").and_then(Value::as_str).unwrap_or("");
    let find = |label: &str| {
        message
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|rest| rest.trim().to_string())
    };
    (find("Approve:"), find("Reject:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asl::{Options, compile};

    fn replay() -> Replay {
        let plan = crate::validate::validate_text(
            "plan.json",
            r#"{"stages":[
              {"name":"A","steps":[{"type":"Notify","name":"hello","message":"hi"},{"type":"Wait","name":"w","seconds":1}]},
              {"name":"B","steps":[{"type":"Human","name":"ok","message":"ship?"}]}
            ]}"#,
            None,
        )
        .expect("valid");
        let options = Options {
            topic_arn: Some("arn:aws:sns:us-east-1:123456789012:t".into()),
            ..Options::default()
        };
        Replay::new(Outline::of(&compile(&plan, &options).expect("compiles").definition))
    }

    fn ev(id: i64, previous: i64, kind: &str, state: Option<&str>, data: Option<&str>, at_ms: i64) -> HistoryEvent {
        HistoryEvent {
            id,
            previous,
            kind: kind.into(),
            state: state.map(String::from),
            data: data.map(String::from),
            at_ms,
            ..Default::default()
        }
    }

    #[test]
    fn a_history_becomes_stage_and_step_progress() {
        let mut r = replay();
        let msg = r#"{"TopicArn":"t","Message":"ship?\n\nApprove: http://h/humanConfirmation?taskToken=abc&action=approve\nReject: http://h/humanConfirmation?taskToken=abc&action=reject"}"#;
        let events = [
            ev(1, 0, "ExecutionStarted", None, None, 0),
            ev(2, 0, "ParallelStateEntered", Some("A"), None, 1),
            ev(3, 2, "TaskStateEntered", Some("hello"), None, 2),
            ev(4, 2, "WaitStateEntered", Some("w"), None, 2),
            ev(5, 3, "PassStateEntered", Some("hello succeeded"), None, 50),
            ev(6, 4, "PassStateEntered", Some("w succeeded"), None, 1002),
            ev(7, 6, "ParallelStateEntered", Some("B"), None, 1003),
            ev(8, 7, "TaskStateEntered", Some("ok"), None, 1004),
            ev(9, 8, "TaskScheduled", None, Some(msg), 1005),
            ev(10, 9, "TaskSubmitted", None, None, 1006),
        ];
        let updates: Vec<Update> = events.iter().flat_map(|e| r.apply(e)).collect();
        assert_eq!(updates[0], Update::ExecutionStarted);
        assert_eq!(updates[1], Update::StageStarted(0));
        assert!(updates.contains(&Update::StepSucceeded {
            stage: 0,
            step: 0,
            took_ms: Some(48),
            approved_by: None
        }));
        assert!(updates.contains(&Update::StepSucceeded {
            stage: 0,
            step: 1,
            took_ms: Some(1000),
            approved_by: None
        }));
        assert!(updates.contains(&Update::ApprovalRequested {
            stage: 1,
            step: 0,
            approve: Some("http://h/humanConfirmation?taskToken=abc&action=approve".into()),
            reject: Some("http://h/humanConfirmation?taskToken=abc&action=reject".into()),
        }));
        assert_eq!(r.steps[1][0], StepStatus::Waiting);
        assert_eq!(r.status, RunStatus::Running);

        // The approver's name comes from the task's output; then the rejection path.
        let done = r.apply(&ev(
            11,
            10,
            "TaskSucceeded",
            None,
            Some(r#"{"decision":"approved","approver":"ana"}"#),
            2000,
        ));
        assert!(done.is_empty());
        let ok = r.apply(&ev(12, 11, "PassStateEntered", Some("ok succeeded"), None, 2001));
        assert_eq!(
            ok,
            vec![Update::StepSucceeded {
                stage: 1,
                step: 0,
                took_ms: Some(997),
                approved_by: Some("ana".into())
            }]
        );
        let end = r.apply(&ev(13, 12, "ExecutionSucceeded", None, None, 2002));
        assert_eq!(
            end,
            vec![Update::ExecutionEnded {
                status: RunStatus::Succeeded,
                reason: None
            }]
        );
    }

    #[test]
    fn a_rejection_aborts_and_a_failure_fails() {
        let mut r = replay();
        r.apply(&ev(1, 0, "TaskStateEntered", Some("ok"), None, 0));
        let rejected = r.apply(&ev(
            2,
            1,
            "FailStateEntered",
            Some("ok rejected"),
            Some(r#"{"Error":"Steppy.Rejected","Cause":"rejected by bo: not today"}"#),
            5,
        ));
        assert_eq!(
            rejected,
            vec![Update::StepRejected {
                stage: 1,
                step: 0,
                took_ms: Some(5),
                reason: "Steppy.Rejected: rejected by bo: not today".into()
            }]
        );
        let mut failed = HistoryEvent {
            id: 3,
            previous: 2,
            kind: "ExecutionFailed".into(),
            error: Some(REJECTED.into()),
            cause: Some("approval 'ok' was rejected".into()),
            ..Default::default()
        };
        r.apply(&failed);
        assert_eq!(r.status, RunStatus::Aborted);

        let mut r = replay();
        r.apply(&ev(1, 0, "TaskStateEntered", Some("hello"), None, 0));
        let f = r.apply(&ev(
            2,
            1,
            "PassStateEntered",
            Some("hello failed"),
            Some(r#"{"Error":"SNS.NotFoundException","Cause":"Topic does not exist"}"#),
            3,
        ));
        assert_eq!(
            f,
            vec![Update::StepFailed {
                stage: 0,
                step: 0,
                took_ms: Some(3),
                reason: "SNS.NotFoundException: Topic does not exist".into()
            }]
        );
        failed.error = Some("Steppy.StepFailed".into());
        r.apply(&failed);
        assert_eq!(r.status, RunStatus::Failed);
        assert_eq!(
            r.step_statuses().filter(|(_, _, s)| *s == StepStatus::Failed).count(),
            1
        );
    }

    #[test]
    fn events_of_unknown_states_change_nothing() {
        let mut r = replay();
        assert!(
            r.apply(&ev(1, 0, "TaskStateEntered", Some("not a step"), None, 0))
                .is_empty()
        );
        assert!(
            r.apply(&ev(2, 99, "TaskScheduled", None, Some("not json"), 0))
                .is_empty()
        );
        assert!(r.step_statuses().all(|(_, _, s)| s == StepStatus::Pending));
    }
}
