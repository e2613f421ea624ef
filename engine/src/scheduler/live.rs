//! The driver's vocabulary: the in-memory state of an execution it drives ([`Live`]), what an
//! attempt task tells it ([`Report`]) and what it does once a tick's batch is committed
//! ([`Action`]). Plain data, shared by `driver`, `transitions` and `attempt`.

use super::fan_out::{self, Failure, TargetTally};
use crate::executor::{ExecError, Handle, Outcome, RunningWork};
use crate::plan::{FanOut, Plan, Step};
use crate::state::{ExecutionState, StepState};
use crate::store::StepRecord;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

/// Which attempt of which step a report or action is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct AttemptRef {
    pub(super) exec: Arc<str>,
    /// The step's position in the whole plan (stages flattened).
    pub(super) flat: usize,
    pub(super) attempt: u32,
}

/// What an attempt task (or a timer) reports to the driver.
pub(super) enum Report {
    /// `start` returned this handle; the task waits for `ack` (sent once it is committed).
    Started {
        at: AttemptRef,
        handle: Handle,
        ack: oneshot::Sender<()>,
    },
    /// The attempt ended with an outcome, or its executor could not do its job.
    Ended {
        at: AttemptRef,
        result: Result<Outcome, ExecError>,
    },
    /// The attempt's deadline passed.
    TimedOut { at: AttemptRef },
    /// The retry backoff of a failed attempt is over: start the next attempt.
    RetryDue { at: AttemptRef },
    /// Steppy's own machinery failed this attempt; the wait before running it again is over.
    RunAgain { at: AttemptRef },
}

impl Report {
    pub(super) fn at(&self) -> &AttemptRef {
        match self {
            Report::Started { at, .. }
            | Report::Ended { at, .. }
            | Report::TimedOut { at }
            | Report::RetryDue { at }
            | Report::RunAgain { at } => at,
        }
    }
}

/// What to do once the tick's batch is committed.
pub(super) enum Action {
    /// Run the step's current attempt as a task (starting it, or resuming its handle).
    Spawn { exec: Arc<str>, flat: usize },
    /// Report [`Report::RetryDue`] at `at_ms` (epoch ms).
    RetryTimer { at: AttemptRef, at_ms: i64 },
    /// Report [`Report::RunAgain`] after `after`.
    RunAgainTimer { at: AttemptRef, after: Duration },
    /// The handle of `exec`'s attempt is committed: let the attempt go on.
    Ack { exec: Arc<str>, ack: oneshot::Sender<()> },
    /// Stop the step's task and tell its executor to cancel.
    Cancel {
        exec: Arc<str>,
        flat: usize,
        handle: Option<Handle>,
        running: RunningWork,
    },
    /// Stop the step's task only (its external job is left running).
    StopWatching { exec: Arc<str>, flat: usize },
}

impl Action {
    /// The execution the action belongs to.
    pub(super) fn execution(&self) -> &str {
        match self {
            Action::Spawn { exec, .. }
            | Action::Ack { exec, .. }
            | Action::Cancel { exec, .. }
            | Action::StopWatching { exec, .. } => exec,
            Action::RetryTimer { at, .. } | Action::RunAgainTimer { at, .. } => &at.exec,
        }
    }
}

/// In-memory state of one execution being driven.
///
/// Invariant: `steps` changes only through [`Live::set_step`], which keeps the counts
/// (`ended`, `active`, `tallies`) true; so a tick reads them instead of scanning a stage, and
/// its cost does not grow with the size of the stage or the number of targets.
pub(super) struct Live {
    pub(super) id: Arc<str>,
    pub(super) plan: Arc<Plan>,
    pub(super) state: ExecutionState,
    pub(super) stage: usize,
    pub(super) stage_started: bool,
    /// Set by the first tick after adoption; an adopted execution is started or resumed once.
    pub(super) bootstrapped: bool,
    /// Steps of all stages, flat; `offsets[s]..offsets[s+1]` are stage `s`'s.
    steps: Vec<StepRecord>,
    offsets: Vec<usize>,
    pub(super) tasks: HashMap<usize, AbortHandle>,
    /// Per stage: steps that have ended (in a terminal state).
    ended: Vec<usize>,
    /// Per stage: steps started and not ended.
    active: Vec<usize>,
    /// The first step of the current stage that may still be pending (steps never return to
    /// PENDING, so the steps before it never need looking at again).
    next_pending: usize,
    /// Per fan-out stage (by name): its targets that ran and failed, over its waves.
    tallies: HashMap<String, TargetTally>,
}

/// Whether a step in `state` has started and not ended.
fn is_active(state: StepState) -> bool {
    state != StepState::Pending && !state.is_terminal()
}

impl Live {
    /// The live state of execution `id` of `plan`, from its steps' recorded state (in plan
    /// order, one record per step of the plan).
    pub(super) fn new(
        id: Arc<str>,
        plan: Arc<Plan>,
        state: ExecutionState,
        stage: usize,
        steps: Vec<StepRecord>,
    ) -> Result<Live, String> {
        let mut offsets = vec![0];
        for s in &plan.stages {
            offsets.push(offsets[offsets.len() - 1] + s.steps.len());
        }
        if steps.len() != offsets[offsets.len() - 1] {
            return Err(format!("execution {id}: stored steps do not match its plan"));
        }
        let stages = plan.stages.len();
        let mut live = Live {
            id,
            plan,
            state,
            stage: stage.min(stages.saturating_sub(1)),
            stage_started: false,
            bootstrapped: false,
            steps: Vec::with_capacity(steps.len()),
            offsets,
            tasks: HashMap::new(),
            ended: vec![0; stages],
            active: vec![0; stages],
            next_pending: 0,
            tallies: HashMap::new(),
        };
        for (flat, record) in steps.into_iter().enumerate() {
            live.count(flat, StepState::Pending, &record);
            live.steps.push(record);
        }
        live.stage_started = live.plan.stages.get(live.stage).is_some()
            && live
                .stage_range(live.stage)
                .any(|i| live.steps[i].state != StepState::Pending);
        live.next_pending = live.offsets.get(live.stage).copied().unwrap_or(0);
        Ok(live)
    }

    pub(super) fn stage_range(&self, stage: usize) -> std::ops::Range<usize> {
        self.offsets[stage]..self.offsets[stage + 1]
    }

    /// Step `flat` as the plan defines it.
    pub(super) fn def(&self, flat: usize) -> &Step {
        // `offsets` starts at 0 and ends at the step count: the stage is the last start <= flat.
        let stage = self.offsets.partition_point(|&start| start <= flat).saturating_sub(1);
        &self.plan.stages[stage].steps[flat - self.offsets[stage]]
    }

    /// Every step's current state, flat.
    pub(super) fn steps(&self) -> &[StepRecord] {
        &self.steps
    }

    /// Step `flat`'s current state.
    pub(super) fn step(&self, flat: usize) -> &StepRecord {
        &self.steps[flat]
    }

    /// Records step `flat`'s new state, keeping the counts true.
    pub(super) fn set_step(&mut self, flat: usize, after: StepRecord) {
        let before = self.steps[flat].state;
        self.count(flat, before, &after);
        self.steps[flat] = after;
    }

    /// Counts step `flat` going from `before` to `after`.
    fn count(&mut self, flat: usize, before: StepState, after: &StepRecord) {
        let stage = after.stage;
        if stage >= self.ended.len() {
            return;
        }
        match (is_active(before), is_active(after.state)) {
            (false, true) => self.active[stage] += 1,
            (true, false) => self.active[stage] = self.active[stage].saturating_sub(1),
            _ => {}
        }
        if !before.is_terminal() && after.state.is_terminal() {
            self.ended[stage] += 1;
            if let Some(of) = fan_out::wave_of(&self.plan.stages[stage]) {
                let failure = if self.def(flat).options.continue_on_failure {
                    Failure::Tolerated
                } else {
                    Failure::Counts
                };
                self.tallies.entry(of.stage.clone()).or_default().ended(after, failure);
            }
        }
    }

    /// Whether every step of `stage` has ended.
    pub(super) fn stage_ended(&self, stage: usize) -> bool {
        self.ended.get(stage).copied().unwrap_or(0) == self.stage_range(stage).len()
    }

    /// Steps of `stage` started and not ended.
    pub(super) fn active(&self, stage: usize) -> usize {
        self.active.get(stage).copied().unwrap_or(0)
    }

    /// Up to `room` pending steps of the current stage, in plan order.
    pub(super) fn pending(&mut self, room: usize) -> Vec<usize> {
        let range = self.stage_range(self.stage);
        let mut at = self.next_pending.max(range.start);
        while at < range.end && self.steps[at].state != StepState::Pending {
            at += 1;
        }
        self.next_pending = at;
        (at..range.end)
            .filter(|&flat| self.steps[flat].state == StepState::Pending)
            .take(room)
            .collect()
    }

    /// The targets of fan-out stage `of` that ran and failed so far.
    pub(super) fn tally(&self, of: &FanOut) -> Option<&TargetTally> {
        self.tallies.get(&of.stage)
    }

    /// Moves on to the next stage (not started yet).
    pub(super) fn next_stage(&mut self) {
        self.stage += 1;
        self.stage_started = false;
        self.next_pending = self.offsets.get(self.stage).copied().unwrap_or(0);
    }

    /// Stops every attempt task of this execution.
    pub(super) fn stop_tasks(&self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}
