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

use std::sync::OnceLock;

fn configured() -> Option<&'static (String, String)> {
    static FAULT: OnceLock<Option<(String, String)>> = OnceLock::new();
    FAULT
        .get_or_init(|| {
            let spec = std::env::var("STEPPY_FAULT").ok()?;
            let rest = spec.strip_prefix("kill-after:")?;
            let (point, name) = rest.split_once(':')?;
            Some((point.to_string(), name.to_string()))
        })
        .as_ref()
}

/// Kills the process with SIGKILL if the configured fault is `point` for `name`.
pub fn hit(point: &str, name: &str) {
    if let Some((p, n)) = configured() {
        if p == point && (n == name || n == "*") {
            eprintln!("steppy: fault injection: SIGKILL at {point}:{name}");
            // SAFETY: sends a signal to ourselves; the process ends here.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}
