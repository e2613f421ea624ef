//! The executor trait every step type implements, and the registry mapping type names to them.
//!
//! An executor is written for durability. The engine drives each attempt of a step as:
//!
//! 1. record a `StepStarted` event with the attempt's [`StepContext::idempotency_key`] (committed);
//! 2. [`Executor::start`]: begin the work and return a small JSON [`Handle`] (a build id, a
//!    deadline, an approval id). `start` must be idempotent on the key: after a crash it may be
//!    called again with the same key and must not start the work twice;
//! 3. record the handle (committed);
//! 4. [`Executor::resume`]: wait for the outcome of the work the handle names. After a restart the
//!    engine skips straight to this step with the recorded handle;
//! 5. [`Executor::cancel`] if the execution is aborted or the step is cancelled.
//!
//! A step type's executor is one module implementing [`Executor`]; the registries
//! (`steppy_executors::{local_registry, aws_registry}`) match on every
//! [`StepType`](crate::plan::StepType), so a new type is refused by the compiler until it has
//! one. `ARCHITECTURE.md` ("Adding a step type") lists every other place.

use crate::clock::Clock;
use crate::plan::Step;
use crate::store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed, sendable future: what trait methods return so executors can live in a registry.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The durable record of a started piece of work, as JSON (kept small: it is stored).
pub type Handle = Value;

/// How an attempt ended, as told by [`Executor::resume`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; the JSON is kept as the step's output.
    Succeeded(Value),
    /// Failed. `retryable` failures are tried again if the step has a `retry` policy.
    Failed { reason: String, retryable: bool },
    /// A person rejected the step: the whole execution is aborted.
    Rejected { reason: String },
}

/// An executor could not do its job (the work itself did not get to fail or succeed).
///
/// Its [`ErrorKind`] says whose fault that is. An [`ErrorKind::Attempt`] error is a retryable
/// failure of the attempt (the step's `retry` policy decides). An [`ErrorKind::Machinery`] error
/// is Steppy's own trouble (the store is locked or corrupt, the disk is full, no file
/// descriptors are left): it is not the release's fault, so it never fails the step and uses
/// up no attempt; the engine runs the same attempt again, with the same key and handle, once
/// the machinery works again (and says so on its readiness endpoint meanwhile).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ExecError {
    pub message: String,
    pub kind: ErrorKind,
}

/// Whose fault an [`ExecError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The attempt failed (a refused call, a missing resource, a network error to AWS).
    Attempt,
    /// Steppy's own machinery failed (store, disk, descriptors); the attempt is run again.
    Machinery,
}

impl ExecError {
    /// An attempt failure.
    pub fn new(message: impl Into<String>) -> Self {
        ExecError {
            message: message.into(),
            kind: ErrorKind::Attempt,
        }
    }

    /// Steppy's own machinery failed (see [`ErrorKind::Machinery`]).
    pub fn machinery(message: impl Into<String>) -> Self {
        ExecError {
            message: message.into(),
            kind: ErrorKind::Machinery,
        }
    }

    /// A local I/O error while doing `what`: descriptor exhaustion, a full disk or quota, and
    /// device errors are [`ErrorKind::Machinery`]; anything else fails the attempt.
    pub fn io(what: &str, e: &std::io::Error) -> Self {
        let message = format!("{what}: {e}");
        let machinery = matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOSPC | libc::EDQUOT | libc::EIO | libc::ENOMEM | libc::EAGAIN)
        ) || matches!(
            e.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::OutOfMemory
        );
        if machinery {
            ExecError::machinery(message)
        } else {
            ExecError::new(message)
        }
    }

    /// True for [`ErrorKind::Machinery`].
    pub fn is_machinery(&self) -> bool {
        self.kind == ErrorKind::Machinery
    }
}

/// Every store error reaching an executor is the machinery's: the step's work did not fail.
impl From<crate::store::StoreError> for ExecError {
    fn from(e: crate::store::StoreError) -> Self {
        ExecError::machinery(e.to_string())
    }
}

/// Where executors send lines meant for the person running Steppy (an approval command, a
/// notification). Never written to the history: it may carry a secret token.
pub trait Notices: Send + Sync {
    /// Shows one line about step `step` of execution `execution_id`.
    fn notice(&self, execution_id: &str, step: &str, line: &str);
    /// A fresh approval token was issued for a step (the one moment the plain token exists).
    fn approval_token(&self, _execution_id: &str, _step: &str, _token: &str) {}
    /// A fresh approval token that was also sent by mail, or whose mail failed (it is tried
    /// again). By default it is shown like any other; a long-running service that logs to a
    /// journal shows only where it went, since the people who decide have it in their mail.
    fn approval_token_routed(&self, execution_id: &str, step: &str, token: &str, _route: TokenRoute<'_>) {
        self.approval_token(execution_id, step, token)
    }
    /// A line about the engine itself, not about one step (store trouble, a lost lease).
    fn engine(&self, line: &str) {
        eprintln!("steppy: {}", crate::text::printable(line));
    }
}

/// Where else a fresh approval token went (see [`Notices::approval_token_routed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRoute<'a> {
    /// Mailed, e.g. published to the SNS topic `via`.
    Mailed { via: &'a str },
    /// Mailing failed; it is tried again with the same token.
    MailFailed,
}

/// Notices that go nowhere (tests, benchmarks).
pub struct SilentNotices;
impl Notices for SilentNotices {
    fn notice(&self, _: &str, _: &str, _: &str) {}
}

/// Everything an executor knows about the attempt it runs.
#[derive(Clone)]
pub struct StepContext {
    pub execution_id: Arc<str>,
    /// Stage index (0-based) and step index within the stage.
    pub stage: usize,
    pub index: usize,
    /// Position of the step in the whole plan (stages flattened), for the engine's bookkeeping.
    pub flat: usize,
    /// 1-based attempt number.
    pub attempt: u32,
    /// When this attempt's start intent was recorded (epoch ms): the same after a restart, so
    /// deadlines derived from it do not move.
    pub attempt_started_ms: i64,
    /// `"{execution_id}/{stage}.{index}/{attempt}"`: stable across restarts of this attempt.
    pub idempotency_key: String,
    /// The step as written in the plan.
    pub step: Arc<Step>,
    /// The clock to read time and sleep with.
    pub clock: Clock,
    /// Where to show lines to the person running Steppy.
    pub notices: Arc<dyn Notices>,
    /// The durable store, for executors that keep their own records (approvals).
    pub store: Store,
}

impl StepContext {
    /// The idempotency key of an attempt; derived, so it is the same after a restart.
    pub fn key_for(execution_id: &str, stage: usize, index: usize, attempt: u32) -> String {
        format!("{execution_id}/{stage}.{index}/{attempt}")
    }
}

/// What stopping a step does to external work already running (a build, a pipeline
/// execution): an abort leaves it to finish unless asked to stop it (`steppy abort
/// --stop-running`); a timeout always stops it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunningWork {
    /// Stop watching; the external job goes on to its end.
    #[default]
    LetFinish,
    /// Ask the service to stop the external job too.
    Stop,
}

impl RunningWork {
    /// From a stored or sent `stopRunning` flag.
    pub fn from_stop_running(stop_running: bool) -> Self {
        if stop_running {
            RunningWork::Stop
        } else {
            RunningWork::LetFinish
        }
    }

    /// The `stopRunning` flag this is stored and sent as.
    pub fn stop_running(self) -> bool {
        self == RunningWork::Stop
    }
}

/// One step type's behaviour. See the module docs for the durable protocol.
pub trait Executor: Send + Sync {
    /// Begins the work; idempotent on `ctx.idempotency_key`. Returns the handle to record.
    fn start<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Handle, ExecError>>;

    /// Waits until the work named by `handle` ends and reports how.
    fn resume<'a>(&'a self, ctx: &'a StepContext, handle: &'a Handle) -> BoxFuture<'a, Result<Outcome, ExecError>>;

    /// Stops waiting for the work. [`RunningWork::Stop`] asks to stop an external job too (a
    /// build); [`RunningWork::LetFinish`] leaves it to finish.
    fn cancel<'a>(
        &'a self,
        ctx: &'a StepContext,
        handle: &'a Handle,
        running: RunningWork,
    ) -> BoxFuture<'a, Result<(), ExecError>>;

    /// True if the work runs outside Steppy (a build, a pipeline): an abort leaves it running
    /// unless asked to stop it. Waits and approvals are internal and are simply cancelled.
    fn is_external(&self) -> bool {
        false
    }

    /// True if, once started, the step waits for time or for people (shown as WAITING rather
    /// than RUNNING).
    fn waits(&self) -> bool {
        false
    }

    /// True if the executor applies the step's `timeoutSeconds` itself (an approval decides
    /// what a timeout means); otherwise the engine times the attempt out.
    fn owns_timeout(&self) -> bool {
        false
    }
}

/// Maps a plan `type` name (`"Wait"`, `"Human"`) to its executor.
#[derive(Default, Clone)]
pub struct Registry {
    executors: HashMap<String, Arc<dyn Executor>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `executor` for steps whose `type` is `type_name`.
    pub fn register(&mut self, type_name: &str, executor: Arc<dyn Executor>) -> &mut Self {
        self.executors.insert(type_name.to_string(), executor);
        self
    }

    /// The executor for `type_name`, if one is registered.
    pub fn get(&self, type_name: &str) -> Option<&Arc<dyn Executor>> {
        self.executors.get(type_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_and_disk_exhaustion_are_the_machinerys_fault_not_the_steps() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOSPC, libc::EDQUOT, libc::EIO] {
            let e = ExecError::io("outbox", &std::io::Error::from_raw_os_error(errno));
            assert!(e.is_machinery(), "{errno}: {e}");
            assert!(e.message.starts_with("outbox: "), "{e}");
        }
        for errno in [libc::ENOENT, libc::EACCES, libc::EISDIR] {
            let e = ExecError::io("outbox", &std::io::Error::from_raw_os_error(errno));
            assert_eq!(e.kind, ErrorKind::Attempt, "{errno}: {e}");
        }
        let store = crate::store::StoreError::Full("/var/lib/steppy/steppy.db".into());
        assert!(ExecError::from(store).is_machinery());
        assert!(!ExecError::new("StartBuild refused").is_machinery());
    }
}
