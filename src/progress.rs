//! Live progress as plain lines (fine for a terminal or a CI log): execution and stage starts,
//! every step state change with elapsed time, and approval commands as they appear.
//!
//! [`Progress`] is both the engine's [`Observer`] (committed changes) and the executors'
//! [`Notices`] (notifications, approval tokens). It remembers the latest approval token so that
//! `steppy run` can offer inline `a`/`r` keys.
//!
//! A wave of a fan-out stage with more than [`SUMMARIZED`] instances is summarized instead of
//! listed: a running count (`deploy / rest: 212/300 succeeded, 3 failed, 20 running`) every
//! tenth of the way and at its end, and every failure as it happens, with its target.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;
use steppy_engine::events::EventType;
use steppy_engine::executor::{Notices, TokenRoute};
use steppy_engine::plan::Plan;
use steppy_engine::scheduler::Observer;
use steppy_engine::store::Change;

/// Where approval tokens are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDisplay {
    /// Every token, with its links and commands: a person at this terminal may decide
    /// (`steppy run`).
    Always,
    /// Only tokens that went nowhere else: a service's output ends up in a journal, and the
    /// people who decide have mailed tokens in their mail (`steppy serve`).
    UnlessMailed,
}

/// The latest approval token shown, for the inline keys.
#[derive(Clone)]
pub struct PendingToken {
    pub step: String,
    pub token: String,
}

pub struct Progress {
    started: Instant,
    /// `--db PATH` to repeat in the commands shown.
    db_flag: String,
    /// Prefix lines with a short execution id (several executions at once).
    tag_executions: bool,
    /// Mention the inline keys next to approval commands.
    inline_keys: bool,
    step_started: Mutex<HashMap<(String, usize, usize), Instant>>,
    pub pending: Mutex<Option<PendingToken>>,
    /// Where the approval pages are reached, once the HTTP service listens.
    public_url: Mutex<Option<String>>,
    tokens: Mutex<TokenDisplay>,
    /// Lines about the engine itself go to the log (`steppy serve`), not to stderr as text.
    engine_to_log: std::sync::atomic::AtomicBool,
    /// Running counts of the summarized waves, by execution and stage.
    waves: Mutex<HashMap<(String, usize), Tally>>,
    /// Standard output, buffered: flushed after each committed batch and after each notice.
    out: Mutex<std::io::BufWriter<std::io::Stdout>>,
}

/// Waves with more instances than this are summarized, not listed.
pub const SUMMARIZED: usize = 20;

/// The running count of one summarized wave.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    total: usize,
    running: usize,
    succeeded: usize,
    failed: usize,
    cancelled: usize,
    /// Instances ended when the last count line was printed.
    shown_at: usize,
}

impl Tally {
    fn ended(&self) -> usize {
        self.succeeded + self.failed + self.cancelled
    }

    fn line(&self, stage: &str) -> String {
        let mut text = format!("{stage}: {}/{} succeeded", self.succeeded, self.total);
        for (n, label) in [
            (self.failed, "failed"),
            (self.running, "running"),
            (self.cancelled, "not started"),
        ] {
            if n > 0 {
                text.push_str(&format!(", {n} {label}"));
            }
        }
        text
    }
}

/// How a [`Progress`] prints (a config struct rather than boolean arguments).
#[derive(Clone, Debug, Default)]
pub struct ProgressConfig {
    /// The `--db PATH` to repeat in the commands shown (empty for the default database).
    pub db_flag: String,
    /// Prefix lines with a short execution id (several executions at once).
    pub tag_executions: bool,
    /// Mention the inline keys (`a`/`r`) next to approval commands.
    pub inline_keys: bool,
}

impl Progress {
    pub fn new(config: ProgressConfig) -> Progress {
        let ProgressConfig {
            db_flag,
            tag_executions,
            inline_keys,
        } = config;
        Progress {
            started: Instant::now(),
            db_flag,
            tag_executions,
            inline_keys,
            step_started: Mutex::new(HashMap::new()),
            pending: Mutex::new(None),
            public_url: Mutex::new(None),
            tokens: Mutex::new(TokenDisplay::Always),
            engine_to_log: std::sync::atomic::AtomicBool::new(false),
            waves: Mutex::new(HashMap::new()),
            out: Mutex::new(std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout())),
        }
    }

    /// Which approval tokens are printed from now on (default [`TokenDisplay::Always`]).
    pub fn set_token_display(&self, display: TokenDisplay) {
        if let Ok(mut t) = self.tokens.lock() {
            *t = display;
        }
    }

    fn token_display(&self) -> TokenDisplay {
        self.tokens.lock().map(|t| *t).unwrap_or(TokenDisplay::UnlessMailed)
    }

    /// Lines about the engine (store trouble, a lost lease) become `warn` events of the log
    /// (target `steppy::engine`) from now on, and every committed change a `debug` event with
    /// its execution, stage, step and type (`RUST_LOG=steppy::engine=debug` shows them).
    pub fn log_engine_lines(&self) {
        self.engine_to_log.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn logging(&self) -> bool {
        self.engine_to_log.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Approval notices show links to the pages under `url` from now on.
    pub fn set_public_url(&self, url: &str) {
        if let Ok(mut u) = self.public_url.lock() {
            *u = Some(url.to_string());
        }
    }

    /// Prints a line at once (notices, approval commands: a person may be waiting for them).
    fn line(&self, execution_id: &str, text: &str) {
        self.buffer_line(execution_id, text);
        self.flush();
    }

    /// Adds a line to the output, written at the next [`Progress::flush`] (the lines of one
    /// committed batch go out in one write, not one write each).
    fn buffer_line(&self, execution_id: &str, text: &str) {
        let t = self.started.elapsed().as_secs_f64();
        let tag = if self.tag_executions {
            format!("{} ", short(execution_id))
        } else {
            String::new()
        };
        // Names, messages, reasons and comments are outside text: every line is escaped here.
        let text = steppy_engine::text::printable(text);
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "[{t:7.1}s] {tag}{text}");
        }
    }

    fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}

fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

fn secs(d: std::time::Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Progress {
    /// The lines (maybe none) for `c` in a summarized wave; `None` for a change that is
    /// printed as usual (the stage's start).
    fn summarize(
        &self,
        id: &str,
        c: &Change,
        stage: &str,
        total: usize,
        label: &str,
        detail: &dyn Fn(&str) -> String,
    ) -> Option<Vec<String>> {
        let key = (id.to_string(), c.stage.unwrap_or(0));
        let mut waves = self.waves.lock().ok()?;
        let t = waves.entry(key).or_insert(Tally {
            total,
            ..Tally::default()
        });
        let first_attempt = c.details.get("attempt").and_then(|a| a.as_u64()).unwrap_or(1) == 1;
        let mut failure = None;
        match c.kind {
            EventType::StepStarted if first_attempt => t.running += 1,
            EventType::StepSucceeded => {
                t.running = t.running.saturating_sub(1);
                t.succeeded += 1;
            }
            EventType::StepFailed | EventType::StepTimedOut => {
                t.running = t.running.saturating_sub(1);
                t.failed += 1;
                let why = match c.kind {
                    EventType::StepTimedOut => "timed out".to_string(),
                    _ => detail("reason"),
                };
                failure = Some(format!("{label} failed: {why}"));
            }
            EventType::StepCancelled | EventType::StepAbandoned => {
                if c.details
                    .get("reason")
                    .is_none_or(|r| !r.as_str().unwrap_or("").starts_with("not started"))
                {
                    t.running = t.running.saturating_sub(1);
                }
                t.cancelled += 1;
            }
            EventType::StageEnded => return Some(vec![t.line(stage)]),
            EventType::StageStarted => return None,
            _ => return Some(Vec::new()),
        }
        let step = (t.total / 10).max(1);
        let due = t.ended() >= t.shown_at + step;
        if due {
            t.shown_at = t.ended();
        }
        Some(failure.into_iter().chain(due.then(|| t.line(stage))).collect())
    }
}

impl Observer for Progress {
    fn committed(&self, plan: &Plan, c: &Change) {
        let id = &*c.execution_id;
        let step = c
            .stage
            .zip(c.step)
            .and_then(|(s, i)| plan.stages.get(s).and_then(|st| st.steps.get(i)));
        let label = step
            .map(|s| format!("  {} \"{}\"", s.kind.type_name(), s.name))
            .unwrap_or_default();
        if self.logging() {
            tracing::debug!(
                target: "steppy::engine",
                execution = id,
                stage = c.stage,
                step = step.map(|s| steppy_engine::text::printable(&s.name).into_owned()),
                step_type = step.map(|s| s.kind.type_name()),
                event = ?c.kind,
                "committed"
            );
        }
        let key = (id.to_string(), c.stage.unwrap_or(0), c.step.unwrap_or(0));
        // An ended step's start time is forgotten (a run of 100,000 steps keeps none of them).
        let took = || {
            self.step_started
                .lock()
                .ok()
                .and_then(|mut m| m.remove(&key).map(|t| secs(t.elapsed())))
                .unwrap_or_else(|| "-".into())
        };
        let detail = |k: &str| c.details.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        if let Some(stage) = c.stage.and_then(|s| plan.stages.get(s))
            && stage.fan_out.is_some()
            && stage.steps.len() > SUMMARIZED
            && let Some(lines) = self.summarize(id, c, &stage.name, stage.steps.len(), &label, &detail)
        {
            for line in lines {
                self.buffer_line(id, &line);
            }
            return;
        }
        let reason = c.exec_write.as_ref().and_then(|w| w.reason.clone()).unwrap_or_default();
        let text = match c.kind {
            EventType::ExecutionStarted => format!(
                "execution {id} started: {} ({} stages, {} steps)",
                plan.name.as_deref().unwrap_or("unnamed plan"),
                plan.stages.len(),
                plan.step_count()
            ),
            EventType::ExecutionResumed => {
                format!("execution {id} resumed by pid {}", std::process::id())
            }
            EventType::StageStarted => {
                let s = c.stage.unwrap_or(0);
                format!(
                    "stage {}/{} \"{}\" started",
                    s + 1,
                    plan.stages.len(),
                    plan.stages.get(s).map(|s| s.name.as_str()).unwrap_or("")
                )
            }
            EventType::StepStarted => {
                if let Ok(mut m) = self.step_started.lock() {
                    m.entry(key.clone()).or_insert_with(Instant::now);
                }
                let attempt = c.details.get("attempt").and_then(|a| a.as_u64()).unwrap_or(1);
                if attempt > 1 {
                    format!("{label} running (attempt {attempt})")
                } else {
                    format!("{label} running")
                }
            }
            EventType::StepHandleRecorded => match c.step_write.as_ref().map(|(_, r)| r.state) {
                Some(steppy_engine::state::StepState::Waiting) => format!("{label} waiting"),
                _ => return,
            },
            EventType::StepSucceeded => {
                let output = c.step_write.as_ref().and_then(|(_, r)| r.output.as_ref());
                let by = output.and_then(|o| o.get("approvedBy")).and_then(|v| v.as_str());
                match by {
                    Some(by) => format!("{label} approved by {by} after {}", took()),
                    None => format!("{label} succeeded after {}", took()),
                }
            }
            EventType::StepFailed => {
                format!("{label} failed after {}: {}", took(), detail("reason"))
            }
            EventType::StepRetryScheduled => {
                let at = c.details.get("retryAtMs").and_then(|v| v.as_i64()).unwrap_or(0);
                let wait = (at - steppy_engine::clock::system_now_ms()).max(0) as f64 / 1000.0;
                format!("{label} attempt failed: {}; retrying in {wait:.1}s", detail("reason"))
            }
            EventType::StepTimedOut => format!("{label} timed out after {}", took()),
            EventType::StepCancelled => format!("{label} cancelled after {}", took()),
            EventType::StepAbandoned => format!("{label} left running (execution aborted)"),
            EventType::StageEnded => return,
            EventType::ExecutionSucceeded => format!("execution {id} SUCCEEDED in {}", secs(self.started.elapsed())),
            EventType::ExecutionFailed => format!("execution {id} FAILED: {reason}"),
            EventType::ExecutionAborted => format!("execution {id} ABORTED: {reason}"),
            _ => return,
        };
        self.buffer_line(id, &text);
    }

    fn batch_done(&self) {
        self.flush();
    }
}

impl Notices for Progress {
    fn notice(&self, execution_id: &str, step: &str, line: &str) {
        self.line(execution_id, &format!("  \"{step}\": {line}"));
    }

    fn approval_token_routed(&self, execution_id: &str, step: &str, token: &str, route: TokenRoute<'_>) {
        if self.token_display() == TokenDisplay::Always {
            return self.approval_token(execution_id, step, token);
        }
        let line = match route {
            TokenRoute::Mailed { via } => {
                format!("  \"{step}\" needs a decision: the request was mailed through {via}")
            }
            TokenRoute::MailFailed => {
                format!("  \"{step}\" needs a decision: its request could not be mailed yet and is tried again")
            }
        };
        self.line(execution_id, &line);
    }

    fn engine(&self, line: &str) {
        if self.logging() {
            return tracing::warn!(target: "steppy::engine", "{}", steppy_engine::text::printable(line));
        }
        let t = self.started.elapsed().as_secs_f64();
        eprintln!("[{t:7.1}s] steppy: {}", steppy_engine::text::printable(line));
    }

    fn approval_token(&self, execution_id: &str, step: &str, token: &str) {
        let repeat = self
            .pending
            .lock()
            .ok()
            .is_some_and(|p| p.as_ref().is_some_and(|p| p.token == token));
        if repeat {
            return; // shown already (a mail that failed and went out later)
        }
        self.line(execution_id, &format!("  \"{step}\" needs a decision:"));
        if let Some(url) = self.public_url.lock().ok().and_then(|u| u.clone()) {
            let (approve, reject) = steppy_executors::human::approval_links(&url, token);
            self.line(execution_id, &format!("    open to approve: {approve}"));
            self.line(execution_id, &format!("    open to reject:  {reject}"));
        }
        self.line(
            execution_id,
            &format!("    approve: steppy approve {token}{}", self.db_flag),
        );
        self.line(
            execution_id,
            &format!("    reject:  steppy reject {token}{}", self.db_flag),
        );
        if self.inline_keys {
            self.line(
                execution_id,
                "    or type a (approve) or r (reject) and press Enter here",
            );
        }
        if let Ok(mut p) = self.pending.lock() {
            *p = Some(PendingToken {
                step: step.to_string(),
                token: token.to_string(),
            });
        }
    }
}
