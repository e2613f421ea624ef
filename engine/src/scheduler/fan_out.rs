//! What the driver needs to run the stages of a fan-out stage (see [`crate::resolve::expand`]):
//! how many of a wave's instances may run at once, how many targets have failed so far (over
//! all the waves of the same fan-out stage), and the wave counts a between-waves step shows.
//! Pure functions of the live state, so they are tested without a runtime.

use super::live::Live;
use crate::plan::{FanOut, FanOutPart};
use crate::resolve::WaveCounts;
use crate::state::StepState;
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

/// The stages of `live` that are waves of the same fan-out stage as `stage`, up to it.
fn waves_so_far<'a>(live: &'a Live, stage: usize, of: &'a FanOut) -> impl Iterator<Item = usize> + 'a {
    (0..=stage).filter(move |&s| {
        live.plan.stages[s]
            .fan_out
            .as_ref()
            .is_some_and(|f| f.stage == of.stage && f.part == FanOutPart::Wave)
    })
}

/// Targets of the fan-out stage (over its waves up to `stage`) that failed, and that ran.
pub(super) fn target_tally(live: &Live, stage: usize, of: &FanOut) -> (usize, usize) {
    let mut failed_targets = HashSet::new();
    let mut ran_targets = HashSet::new();
    for s in waves_so_far(live, stage, of) {
        for flat in live.stage_range(s) {
            let Some(target) = target_of(&live.steps[flat].name) else {
                continue;
            };
            if ran(live.steps[flat].state) {
                ran_targets.insert(target);
            }
            if failed(live.steps[flat].state) && !live.defs[flat].options.continue_on_failure {
                failed_targets.insert(target);
            }
        }
    }
    (failed_targets.len(), ran_targets.len())
}

/// The failed targets, with the reason of their first failed step, in plan order (for the
/// execution's reason when the stage fails).
pub(super) fn failures(live: &Live, stage: usize, of: &FanOut) -> Vec<(String, String)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for s in waves_so_far(live, stage, of) {
        for flat in live.stage_range(s) {
            let step = &live.steps[flat];
            if let Some(target) = target_of(&step.name)
                && failed(step.state)
                && !live.defs[flat].options.continue_on_failure
                && seen.insert(target.to_string())
            {
                let why = step
                    .reason
                    .clone()
                    .unwrap_or_else(|| step.state.as_str().to_lowercase());
                out.push((target.to_string(), why));
            }
        }
    }
    out
}

/// Instances of a wave stage that may run at once.
pub(super) fn cap(of: &FanOut) -> usize {
    of.max_concurrency.map_or(usize::MAX, |c| c.max(1) as usize)
}

/// What `${wave.succeeded}`, `${wave.failed}` and `${wave.remaining}` are for a between-waves
/// stage: over the waves that have run, and the targets still to come.
pub(super) fn counts(live: &Live, stage: usize, of: &FanOut) -> WaveCounts {
    let (failed, ran) = target_tally(live, stage, of);
    WaveCounts {
        succeeded: ran.saturating_sub(failed) as u32,
        failed: failed as u32,
        remaining: (of.targets as usize).saturating_sub(ran) as u32,
    }
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
