//! Execution and step states, and the one place that decides which transitions are legal.
//!
//! Every state change in the engine goes through [`check_step`] or [`check_execution`]; the
//! store refuses to write a change these functions reject, so an illegal transition is an
//! error, never silently applied.
//!
//! Step lifecycle:
//!
//! ```text
//! Pending ──► Running ──► Waiting ──► Succeeded | Failed | TimedOut | Cancelled | Aborted
//!    │           │  ▲         │
//!    │           │  └─────────┘  (a retry: Waiting for the backoff, then Running again)
//!    └──► Cancelled              Running ──► any terminal state as well
//! ```
//!
//! `Cancelled` means Steppy stopped the step; `Aborted` means the execution was aborted while
//! an external job was running and that job was left to finish on its own.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The state of one step (of its latest attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepState {
    /// Its stage has not started.
    Pending,
    /// The start of an attempt is recorded; the work is starting or running.
    Running,
    /// Waiting for time to pass or for people: a wait, an approval, a retry backoff.
    Waiting,
    Succeeded,
    Failed,
    TimedOut,
    /// Stopped by Steppy (an abort, a rejection in the same stage).
    Cancelled,
    /// The execution was aborted while the step's external job ran; the job was left running.
    Aborted,
}

/// The state of a whole execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionState {
    /// Submitted; no process has started it yet.
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Rejected by a person, or aborted by `steppy abort`.
    Aborted,
}

/// A state change that the state machine forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal {what} transition {from} -> {to}")]
pub struct IllegalTransition {
    pub what: &'static str,
    pub from: String,
    pub to: String,
}

impl StepState {
    /// True once the step can never change again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, StepState::Pending | StepState::Running | StepState::Waiting)
    }
}

impl ExecutionState {
    /// True once the execution can never change again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, ExecutionState::Pending | ExecutionState::Running)
    }
}

/// Decides whether a step may go from `from` to `to`. The single source of truth.
pub fn check_step(from: StepState, to: StepState) -> Result<(), IllegalTransition> {
    use StepState::*;
    let legal = match (from, to) {
        (Pending, Running) | (Pending, Cancelled) => true,
        (Running, Waiting) => true,
        (Waiting, Running) => true, // next attempt after a retry backoff
        (Running | Waiting, Succeeded | Failed | TimedOut | Cancelled | Aborted) => true,
        _ => false,
    };
    if legal {
        Ok(())
    } else {
        Err(IllegalTransition {
            what: "step",
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

/// Decides whether an execution may go from `from` to `to`. The single source of truth.
pub fn check_execution(from: ExecutionState, to: ExecutionState) -> Result<(), IllegalTransition> {
    use ExecutionState::*;
    let legal = matches!(
        (from, to),
        (Pending, Running) | (Pending, Aborted) | (Running, Succeeded | Failed | Aborted)
    );
    if legal {
        Ok(())
    } else {
        Err(IllegalTransition {
            what: "execution",
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            /// The name stored in the database and shown to people.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = crate::unknown_name::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)*
                    other => Err(crate::unknown_name::UnknownName { kind: stringify!($ty), name: other.to_string() }),
                }
            }
        }
    };
}

text_enum!(StepState {
    Pending => "PENDING", Running => "RUNNING", Waiting => "WAITING", Succeeded => "SUCCEEDED",
    Failed => "FAILED", TimedOut => "TIMED_OUT", Cancelled => "CANCELLED", Aborted => "ABORTED",
});
text_enum!(ExecutionState {
    Pending => "PENDING", Running => "RUNNING", Succeeded => "SUCCEEDED", Failed => "FAILED",
    Aborted => "ABORTED",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_step_states_never_change() {
        use StepState::*;
        for from in [Succeeded, Failed, TimedOut, Cancelled, Aborted] {
            for to in [
                Pending, Running, Waiting, Succeeded, Failed, TimedOut, Cancelled, Aborted,
            ] {
                assert!(check_step(from, to).is_err(), "{from} -> {to} must be illegal");
            }
        }
    }

    #[test]
    fn pending_step_cannot_jump_to_an_outcome() {
        assert!(check_step(StepState::Pending, StepState::Succeeded).is_err());
        assert!(check_step(StepState::Pending, StepState::Waiting).is_err());
        assert!(check_step(StepState::Pending, StepState::Running).is_ok());
    }

    #[test]
    fn finished_execution_cannot_restart() {
        let err = check_execution(ExecutionState::Succeeded, ExecutionState::Running).unwrap_err();
        assert_eq!(err.to_string(), "illegal execution transition SUCCEEDED -> RUNNING");
        assert!(check_execution(ExecutionState::Pending, ExecutionState::Succeeded).is_err());
    }

    #[test]
    fn states_round_trip_through_text() {
        for s in [
            "PENDING",
            "RUNNING",
            "WAITING",
            "SUCCEEDED",
            "FAILED",
            "TIMED_OUT",
            "CANCELLED",
            "ABORTED",
        ] {
            assert_eq!(s.parse::<StepState>().map(|s| s.as_str()), Ok(s));
        }
    }
}
