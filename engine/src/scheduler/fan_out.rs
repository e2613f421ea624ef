//! What the driver needs to run the stages of a fan-out stage (see [`crate::resolve::expand`]):
//! how many of a wave's instances may run at once, how many targets have failed so far (over
//! all the waves of the same fan-out stage), and the wave counts a between-waves step shows.
//! The counts are kept as instances end ([`TargetTally`]), never recounted, and are plain data,
//! tested without a runtime.

use crate::plan::{FanOut, FanOutPart, Stage};
use crate::resolve::WaveCounts;
use crate::state::StepState;
use crate::store::StepRecord;
use std::collections::HashSet;

/// The target an instance belongs to: `deploy [t-042]` → `t-042`.
pub(super) fn target_of(step_name: &str) -> Option<&str> {
    let open = step_name.rfind(" [")?;
    step_name[open + 2..].strip_suffix(']')
}

/// Whether a step that ended in `state` failed its target (`continueOnFailure` aside). A
/// cancelled instance (not started once too many had failed, or stopped by an abort) did not.
fn failed(state: StepState) -> bool {
    matches!(state, StepState::Failed | StepState::TimedOut)
}

/// Whether a step in `state` ran to an end of its own.
fn ran(state: StepState) -> bool {
    matches!(state, StepState::Succeeded | StepState::Failed | StepState::TimedOut)
}

/// The targets of one fan-out stage (over all its waves) that ran and that failed, kept up to
/// date as instances end, so that no tick counts them again: the cost of a tick does not grow
/// with the targets.
#[derive(Debug, Default)]
pub(super) struct TargetTally {
    ran: HashSet<String>,
    failed: HashSet<String>,
    /// The failed targets with the reason of their first failed step, in the order they failed.
    failures: Vec<(String, String)>,
}

impl TargetTally {
    /// Counts `step`, an instance of a wave that has just ended (`failure`: whether its failure
    /// fails its target).
    pub(super) fn ended(&mut self, step: &StepRecord, failure: Failure) {
        let Some(target) = target_of(&step.name) else {
            return;
        };
        if ran(step.state) && !self.ran.contains(target) {
            self.ran.insert(target.to_string());
        }
        if failed(step.state) && failure == Failure::Counts && self.failed.insert(target.to_string()) {
            let why = step
                .reason
                .clone()
                .unwrap_or_else(|| step.state.as_str().to_lowercase());
            self.failures.push((target.to_string(), why));
        }
    }

    /// Targets that failed so far.
    pub(super) fn failed(&self) -> usize {
        self.failed.len()
    }

    /// The failed targets and why, in the order they failed.
    pub(super) fn failures(&self) -> &[(String, String)] {
        &self.failures
    }

    /// What `${wave.succeeded}`, `${wave.failed}` and `${wave.remaining}` are for a
    /// between-waves stage of `of`: over the waves that have run, and the targets still to come.
    pub(super) fn counts(&self, of: &FanOut) -> WaveCounts {
        let (failed, ran) = (self.failed.len(), self.ran.len());
        WaveCounts {
            succeeded: ran.saturating_sub(failed) as u32,
            failed: failed as u32,
            remaining: (of.targets as usize).saturating_sub(ran) as u32,
        }
    }
}

/// Whether a failed instance fails its target: not when its step has `continueOnFailure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    Counts,
    Tolerated,
}

/// The fan-out stage whose waves `stage` belongs to, if it is a wave.
pub(super) fn wave_of(stage: &Stage) -> Option<&FanOut> {
    stage.fan_out.as_ref().filter(|f| f.part == FanOutPart::Wave)
}

/// Instances of a wave stage that may run at once.
pub(super) fn cap(of: &FanOut) -> usize {
    of.max_concurrency.map_or(usize::MAX, |c| c.max(1) as usize)
}

#[cfg(test)]
mod tests {
    use super::target_of;

    #[test]
    fn instances_name_their_target() {
        assert_eq!(target_of("deploy [t-042]"), Some("t-042"));
        assert_eq!(target_of("a [b] [t-1]"), Some("t-1"));
        assert_eq!(target_of("deploy"), None);
        assert_eq!(target_of("deploy [t-1] later"), None);
    }
}
