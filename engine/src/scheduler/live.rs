//! The driver's vocabulary: the in-memory state of an execution it drives ([`Live`]), what an
//! attempt task tells it ([`Report`]) and what it does once a tick's batch is committed
//! ([`Action`]). Plain data, shared by `driver`, `transitions` and `attempt`.

use crate::executor::{ExecError, Handle, Outcome, RunningWork};
use crate::plan::{Plan, Step};
use crate::state::ExecutionState;
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
pub(super) struct Live {
    pub(super) id: Arc<str>,
    pub(super) plan: Arc<Plan>,
    pub(super) state: ExecutionState,
    pub(super) stage: usize,
    pub(super) stage_started: bool,
    /// Set by the first tick after adoption; an adopted execution is started or resumed once.
    pub(super) bootstrapped: bool,
    /// Steps of all stages, flat; `offsets[s]..offsets[s+1]` are stage `s`'s.
    pub(super) steps: Vec<StepRecord>,
    pub(super) defs: Vec<Arc<Step>>,
    pub(super) offsets: Vec<usize>,
    pub(super) tasks: HashMap<usize, AbortHandle>,
}

impl Live {
    pub(super) fn stage_range(&self, stage: usize) -> std::ops::Range<usize> {
        self.offsets[stage]..self.offsets[stage + 1]
    }

    /// Stops every attempt task of this execution.
    pub(super) fn stop_tasks(&self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}
