//! The scheduler: drives executions stage by stage, durably.
//!
//! One driver task owns the in-memory state of every execution it holds a lease on. Step
//! attempts run as their own tokio tasks and report back over a channel. Each *tick* the driver
//! takes every report that has arrived, turns them into events plus state changes (checked by
//! [`crate::state`]), commits them as **one** transaction (group commit), and only then acts:
//! spawns attempts, acknowledges recorded handles, cancels steps. Nothing is acted on before
//! the commit that records it.
//!
//! After a crash the same driver picks an execution up from the materialized state: steps
//! with a recorded handle are resumed from it, steps with only a start intent are started again
//! with the same idempotency key (executors make that safe), retry backoffs and deadlines keep
//! their recorded times.
//!
//! - `live`: the driver's data: an execution in memory, attempt reports, actions.
//! - `driver`: the tick loop: gather reports, commit a batch, act; riding out store trouble
//!   and lost leases.
//! - `transitions`: what each report, stage end or abort changes (events + state changes).
//! - `attempt`: one attempt of one step, as a task.

mod attempt;
mod driver;
mod fan_out;
mod live;
mod transitions;

use crate::executor::{Notices, Registry};
use crate::health::Health;
use crate::plan::Plan;
use crate::state::ExecutionState;
use crate::store::{Change, Store, StoreError};
use driver::Driver;
use std::sync::Arc;
use std::time::Duration;

/// Sees every change after it is committed (the CLI prints progress from these).
pub trait Observer: Send + Sync {
    fn committed(&self, plan: &Plan, change: &Change);
    /// Every change of one committed batch has been seen (an observer that buffers writes
    /// them out now).
    fn batch_done(&self) {}
}

/// An observer that ignores everything.
pub struct NoObserver;
impl Observer for NoObserver {
    fn committed(&self, _: &Plan, _: &Change) {}
}

/// Why the engine stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `STEPPY_FAULT=stop-engine-after:...` (tests of what a supervisor sees).
    #[error("stopped by fault injection")]
    Injected,
}

/// A step of a plan whose type this build has no executor for ([`check_runnable`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step \"{step}\" in stage \"{stage}\" has type {kind}, which this build of Steppy has no executor for")]
pub struct NoExecutor {
    pub step: String,
    pub stage: String,
    pub kind: &'static str,
}

/// Checks that every step of `plan` has an executor, before anything is recorded.
pub fn check_runnable(registry: &Registry, plan: &Plan) -> Result<(), NoExecutor> {
    for (_, stage, step) in plan.steps() {
        let kind = step.kind.type_name();
        if registry.get(kind).is_none() {
            return Err(NoExecutor {
                step: step.name.clone(),
                stage: stage.name.clone(),
                kind,
            });
        }
    }
    Ok(())
}

/// How the driver is tuned.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How often to look for abort requests, refresh leases and (when watching) new executions.
    pub poll: Duration,
    /// Most reports folded into one tick.
    pub max_batch: usize,
    /// During a burst of reports, how long to wait for one more before committing the tick
    /// (the group commit window; not needed, so not used, on a current-thread runtime).
    pub gather: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            poll: Duration::from_millis(500),
            max_batch: 20_000,
            gather: Duration::from_millis(1),
        }
    }
}

/// The engine: a store, a registry of executors, and where to report.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    registry: Arc<Registry>,
    notices: Arc<dyn Notices>,
    observer: Arc<dyn Observer>,
    options: EngineOptions,
    owner: Arc<str>,
    health: Arc<Health>,
}

impl Engine {
    pub fn new(
        store: Store,
        registry: Arc<Registry>,
        notices: Arc<dyn Notices>,
        observer: Arc<dyn Observer>,
    ) -> Engine {
        Engine {
            store,
            registry,
            notices,
            observer,
            options: EngineOptions::default(),
            owner: uuid::Uuid::new_v4().to_string().into(),
            health: Arc::default(),
        }
    }

    /// Reports liveness and store trouble to `health` (e.g. the one `/readyz` reads).
    pub fn with_health(mut self, health: Arc<Health>) -> Engine {
        self.health = health;
        self
    }

    /// Where this engine reports whether it can do its work.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    pub fn with_options(mut self, options: EngineOptions) -> Engine {
        self.options = options;
        self
    }

    /// This engine's lease owner id (see [`Store::submit_leased`]).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Drives the executions `ids` until each has ended; returns their final states. Executions
    /// another live process is driving are skipped (and reported with their current state).
    pub async fn run(&self, ids: &[String]) -> Result<Vec<(String, ExecutionState)>, EngineError> {
        let mut driver = Driver::new(self.clone());
        for id in ids {
            driver.adopt(id)?;
        }
        driver.drive(None).await?;
        let mut out = Vec::new();
        for id in ids {
            out.push((id.clone(), self.store.load(id)?.summary.state));
        }
        Ok(out)
    }

    /// Drives every unfinished execution, and any submitted later, until `shutdown` resolves.
    pub async fn serve(&self, shutdown: impl Future<Output = ()> + Send) -> Result<(), EngineError> {
        let mut driver = Driver::new(self.clone());
        driver.drive(Some(Box::pin(shutdown))).await
    }
}
