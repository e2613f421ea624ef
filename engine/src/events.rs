//! The event types of an execution's append-only history.
//!
//! Like a Step Functions history: every state change is an event with a sequence number, a
//! timestamp, a type, the step it concerns and a JSON `details` object. Events are committed
//! before the engine acts on them; the history has no length limit.

use serde::{Deserialize, Serialize};
use serde_json::Value;

macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident),* $(,)?) => {
        /// What happened. Stored by name in the `events.type` column.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum EventType { $($(#[$doc])* $variant),* }

        impl EventType {
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => stringify!($variant)),* }
            }
        }

        impl std::str::FromStr for EventType {
            type Err = crate::unknown_name::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $(stringify!($variant) => Ok(EventType::$variant),)*
                    other => Err(crate::unknown_name::UnknownName { kind: "event type", name: other.to_string() }),
                }
            }
        }
    };
}

event_types!(
    ExecutionSubmitted,
    ExecutionStarted,
    /// A process took over an unfinished execution (after a restart).
    ExecutionResumed,
    StageStarted,
    /// The intent to start an attempt (its idempotency key), recorded before any side effect.
    StepStarted,
    /// The handle the executor returned for an attempt.
    StepHandleRecorded,
    StepSucceeded,
    StepFailed,
    StepRetryScheduled,
    StepTimedOut,
    StepCancelled,
    /// The execution was aborted while this step's external job ran; the job was left running.
    StepAbandoned,
    StageEnded,
    ExecutionSucceeded,
    ExecutionFailed,
    ExecutionAbortRequested,
    ExecutionAborted,
    ApprovalRequested,
    ApprovalTokenRotated,
    ApprovalVoted,
    ApprovalDecided,
    /// An attempt to decide an approval was refused (already decided, expired, not an
    /// approver, self-approval, second vote): who, when, from where, why. Never the token.
    ApprovalRefused,
);

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: i64,
    /// Unix epoch milliseconds.
    pub at_ms: i64,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    pub details: Value,
}
