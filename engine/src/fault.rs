//! Fault injection for crash tests: `STEPPY_FAULT=kill-after:<point>:<name>` makes the process
//! send itself SIGKILL when it reaches `<point>` for the step (or stage) called `<name>`
//! (`*` matches any name).
//!
//! Points: `intent` (a start intent is committed, the executor not yet called), `start` (the
//! executor started the work, its handle is not yet recorded), `handle` (the handle is
//! committed), `approval-row` (an approval request is committed, its token not yet shown),
//! `stage-end` (a stage's end is committed, the next stage not yet started); for
//! `run --engine sfn`, with the state machine's name: `sfn-recorded` (the execution's name is
//! committed, StartExecution not yet called) and `sfn-started` (StartExecution answered, its ARN
//! not yet recorded).
//!
//! `STEPPY_FAULT=stop-engine-after:<point>:<name>` instead makes the driver stop with an error
//! there (for `stage-end`): what a bug would do, to test that `serve` then exits non-zero.

use std::sync::OnceLock;

/// What the configured fault does.
#[derive(PartialEq, Eq)]
enum Kind {
    Kill,
    StopEngine,
}

fn configured() -> Option<&'static (Kind, String, String)> {
    static FAULT: OnceLock<Option<(Kind, String, String)>> = OnceLock::new();
    FAULT
        .get_or_init(|| {
            let spec = std::env::var("STEPPY_FAULT").ok()?;
            let (kind, rest) = match spec.strip_prefix("kill-after:") {
                Some(rest) => (Kind::Kill, rest),
                None => (Kind::StopEngine, spec.strip_prefix("stop-engine-after:")?),
            };
            let (point, name) = rest.split_once(':')?;
            Some((kind, point.to_string(), name.to_string()))
        })
        .as_ref()
}

fn matches(kind: Kind, point: &str, name: &str) -> bool {
    configured().is_some_and(|(k, p, n)| *k == kind && p == point && (n == name || n == "*"))
}

/// True if the configured fault stops the engine at `point` for `name`.
pub fn stops_engine(point: &str, name: &str) -> bool {
    let stop = matches(Kind::StopEngine, point, name);
    if stop {
        eprintln!("steppy: fault injection: the engine stops at {point}:{name}");
    }
    stop
}

/// Kills the process with SIGKILL if the configured fault is `point` for `name`.
pub fn hit(point: &str, name: &str) {
    if matches(Kind::Kill, point, name) {
        eprintln!("steppy: fault injection: SIGKILL at {point}:{name}");
        // SAFETY: sends a signal to ourselves; the process ends here.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
