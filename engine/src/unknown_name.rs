//! [`UnknownName`]: the error of parsing a name (a state, an event type) that is none of the
//! names Steppy knows.

/// `name` is not one of the names of `kind` (`"StepState"`, `"event type"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{name}'")]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
}
