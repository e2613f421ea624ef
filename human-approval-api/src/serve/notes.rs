//! Lines about the accept loop in the log (`warn` events, target `steppy::serve`), at most one per kind per interval: a flood of
//! refused connections or a run of accept errors says so once, with a count, instead of once
//! per connection.

use std::time::{Duration, Instant};

/// One kind of line, rate-limited.
#[derive(Debug)]
pub struct Throttled {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    pub fn new(every: Duration) -> Throttled {
        Throttled {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Prints `line()` (plus how many were held back since the last one) if the interval has
    /// passed since the last line of this kind; counts it otherwise. Outside text in the line
    /// must already be escaped ([`steppy_engine::text::printable`]).
    pub fn note(&mut self, line: impl FnOnce() -> String) {
        if self.last.is_some_and(|t| t.elapsed() < self.every) {
            self.suppressed += 1;
            return;
        }
        let more = match std::mem::take(&mut self.suppressed) {
            0 => String::new(),
            n => format!(" ({n} more like it since the last such line)"),
        };
        tracing::warn!(target: "steppy::serve", "{}{more}", line());
        self.last = Some(Instant::now());
    }
}
