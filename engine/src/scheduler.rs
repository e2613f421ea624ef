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

use crate::clock::Clock;
use crate::events::EventType;
use crate::executor::{ExecError, Executor, Handle, Notices, Outcome, Registry, StepContext};
use crate::fault;
use crate::plan::{Plan, Step};
use crate::state::{ExecutionState, StepState};
use crate::store::{Batch, Change, ExecWrite, StepRecord, Store, StoreError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

/// Sees every change after it is committed (the CLI prints progress from these).
pub trait Observer: Send + Sync {
    fn committed(&self, plan: &Plan, change: &Change);
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
}

/// Checks that every step of `plan` has an executor, before anything is recorded.
pub fn check_runnable(registry: &Registry, plan: &Plan) -> Result<(), String> {
    for (_, stage, step) in plan.steps() {
        let kind = step.kind.type_name();
        if registry.get(kind).is_none() {
            let later = if kind.starts_with("Code") {
                ": the AWS executors (CodeBuild, CodePipeline) come in a later release"
            } else {
                ""
            };
            return Err(format!(
                "step \"{}\" in stage \"{}\" has type {kind}, which this build of Steppy cannot run yet{later}",
                step.name, stage.name
            ));
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
}

/// What an attempt task reports.
enum Report {
    Started {
        exec: Arc<str>,
        flat: usize,
        attempt: u32,
        handle: Handle,
        ack: oneshot::Sender<()>,
    },
    Ended {
        exec: Arc<str>,
        flat: usize,
        attempt: u32,
        result: Result<Outcome, ExecError>,
    },
    TimedOut {
        exec: Arc<str>,
        flat: usize,
        attempt: u32,
    },
    RetryDue {
        exec: Arc<str>,
        flat: usize,
        attempt: u32,
    },
}

/// What to do once the tick's batch is committed.
enum Action {
    Spawn {
        exec: Arc<str>,
        flat: usize,
    },
    RetryTimer {
        exec: Arc<str>,
        flat: usize,
        attempt: u32,
        at_ms: i64,
    },
    Ack(oneshot::Sender<()>),
    Cancel {
        exec: Arc<str>,
        flat: usize,
        handle: Option<Handle>,
        stop_external: bool,
    },
    StopWatching {
        exec: Arc<str>,
        flat: usize,
    },
}

/// In-memory state of one execution being driven.
struct Live {
    id: Arc<str>,
    plan: Arc<Plan>,
    state: ExecutionState,
    stage: usize,
    stage_started: bool,
    /// Steps of all stages, flat; `offsets[s]..offsets[s+1]` are stage `s`'s.
    steps: Vec<StepRecord>,
    defs: Vec<Arc<Step>>,
    offsets: Vec<usize>,
    tasks: HashMap<usize, AbortHandle>,
}

impl Live {
    fn stage_range(&self, stage: usize) -> std::ops::Range<usize> {
        self.offsets[stage]..self.offsets[stage + 1]
    }
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
        }
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
    pub async fn serve(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), EngineError> {
        let mut driver = Driver::new(self.clone());
        driver.drive(Some(Box::pin(shutdown))).await
    }
}

struct Driver {
    engine: Engine,
    clock: Clock,
    live: HashMap<Arc<str>, Live>,
    tx: mpsc::UnboundedSender<Report>,
    rx: mpsc::UnboundedReceiver<Report>,
}

impl Driver {
    fn new(engine: Engine) -> Driver {
        let (tx, rx) = mpsc::unbounded_channel();
        Driver {
            engine,
            clock: Clock::system(),
            live: HashMap::new(),
            tx,
            rx,
        }
    }

    /// Takes the lease on `id` and loads it. Returns false if another process drives it.
    fn adopt(&mut self, id: &str) -> Result<bool, EngineError> {
        if self.live.contains_key(id) {
            return Ok(true);
        }
        let store = &self.engine.store;
        let now = self.clock.now_ms();
        // The lease first: it is cheap, and another process may be driving this execution.
        if !store.try_lease(id, &self.engine.owner, now)? {
            return Ok(false);
        }
        let record = store.load(id)?;
        if record.summary.state.is_terminal() {
            store.release(id, &self.engine.owner)?;
            return Ok(false);
        }
        let plan = Arc::new(record.plan);
        let mut offsets = vec![0];
        let mut defs = Vec::with_capacity(record.steps.len());
        for stage in &plan.stages {
            defs.extend(stage.steps.iter().cloned().map(Arc::new));
            offsets.push(defs.len());
        }
        let stage = record
            .summary
            .current_stage
            .min(plan.stages.len().saturating_sub(1));
        let id: Arc<str> = id.into();
        let mut live = Live {
            id: id.clone(),
            plan,
            state: record.summary.state,
            stage,
            stage_started: false,
            steps: record.steps,
            defs,
            offsets,
            tasks: HashMap::new(),
        };
        if live.steps.len() != live.defs.len() {
            return Err(StoreError::Conflict(format!(
                "execution {id}: stored steps do not match its plan"
            ))
            .into());
        }
        live.stage_started = live.plan.stages.get(stage).is_some()
            && live
                .stage_range(stage)
                .any(|i| live.steps[i].state != StepState::Pending);
        self.live.insert(id, live);
        Ok(true)
    }

    async fn drive<'a>(
        &mut self,
        mut shutdown: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>>,
    ) -> Result<(), EngineError> {
        let watching = shutdown.is_some();
        let result = async {
            // The first tick: start or resume everything adopted so far.
            let mut batch = Batch::default();
            let mut actions = Vec::new();
            self.poll(watching, &mut batch, &mut actions)?;
            self.bootstrap_all(&mut batch, &mut actions);
            self.commit_and_act(batch, actions).await?;
            let mut next_poll = tokio::time::Instant::now() + self.engine.options.poll;
            loop {
                if !watching && self.live.values().all(|l| l.state.is_terminal()) {
                    return Ok(());
                }
                let mut reports = Vec::new();
                let tick = tokio::time::sleep_until(next_poll);
                let stop = async {
                    match shutdown.as_mut() {
                        Some(s) => s.await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    r = self.rx.recv() => if let Some(r) = r { reports.push(r) },
                    _ = tick => {},
                    _ = stop => return Ok(()),
                }
                // Group commit: attempts spawned together report together, so while reports
                // keep arriving less than `gather` apart, keep gathering (up to `max_batch`). A
                // lone report (a wait ending) is committed at once.
                let (gather, max) = (self.engine.options.gather, self.engine.options.max_batch);
                let single_threaded = tokio::runtime::Handle::current().runtime_flavor()
                    == tokio::runtime::RuntimeFlavor::CurrentThread;
                tokio::task::yield_now().await;
                while reports.len() < max {
                    let before = reports.len();
                    while reports.len() < max {
                        match self.rx.try_recv() {
                            Ok(r) => reports.push(r),
                            Err(_) => break,
                        }
                    }
                    if reports.len() == 1 || reports.len() >= max {
                        break;
                    }
                    if reports.len() == before {
                        // On a current-thread runtime the yield above already ran every task
                        // that was ready: nothing more is coming right now.
                        if single_threaded {
                            break;
                        }
                        match tokio::time::timeout(gather, self.rx.recv()).await {
                            Ok(Some(r)) => reports.push(r),
                            _ => break,
                        }
                    }
                }
                let mut batch = Batch::default();
                let mut actions = Vec::new();
                for r in reports {
                    self.on_report(r, &mut batch, &mut actions);
                }
                if tokio::time::Instant::now() >= next_poll {
                    next_poll = tokio::time::Instant::now() + self.engine.options.poll;
                    self.poll(watching, &mut batch, &mut actions)?;
                }
                let ids: Vec<Arc<str>> = self.live.keys().cloned().collect();
                for id in ids {
                    self.advance(&id, &mut batch, &mut actions);
                }
                self.commit_and_act(batch, actions).await?;
                if watching {
                    self.forget_finished();
                }
            }
        }
        .await;
        // Whatever happened, stop every attempt task and give up our leases.
        for live in self.live.values() {
            for task in live.tasks.values() {
                task.abort();
            }
            let _ = self.engine.store.release(&live.id, &self.engine.owner);
        }
        result
    }

    /// Drops finished executions from memory and gives up their leases (serve mode).
    fn forget_finished(&mut self) {
        let finished: Vec<Arc<str>> = self
            .live
            .iter()
            .filter(|(_, l)| l.state.is_terminal())
            .map(|(k, _)| k.clone())
            .collect();
        for id in finished {
            if let Some(live) = self.live.remove(&id) {
                for task in live.tasks.values() {
                    task.abort();
                }
                let _ = self.engine.store.release(&id, &self.engine.owner);
            }
        }
    }

    /// Heartbeat, abort requests and (when watching) newly submitted executions.
    fn poll(
        &mut self,
        watching: bool,
        batch: &mut Batch,
        actions: &mut Vec<Action>,
    ) -> Result<(), EngineError> {
        let store = self.engine.store.clone();
        let now = self.clock.now_ms();
        store.heartbeat(&self.engine.owner, now)?;
        if watching {
            for id in store.unfinished_ids()? {
                if !self.live.contains_key(id.as_str()) && self.adopt(&id)? {
                    self.bootstrap(&id.as_str().into(), batch, actions);
                }
            }
        }
        let ids: Vec<Arc<str>> = self
            .live
            .iter()
            .filter(|(_, l)| !l.state.is_terminal())
            .map(|(k, _)| k.clone())
            .collect();
        for (id, stop) in store.abort_requests(&ids)? {
            self.abort(
                &id.as_str().into(),
                "aborted by request",
                stop,
                batch,
                actions,
            );
        }
        Ok(())
    }

    fn bootstrap_all(&mut self, batch: &mut Batch, actions: &mut Vec<Action>) {
        let ids: Vec<Arc<str>> = self.live.keys().cloned().collect();
        for id in ids {
            self.bootstrap(&id, batch, actions);
        }
    }

    /// First tick of an adopted execution: start it, or pick its running steps back up.
    fn bootstrap(&mut self, id: &Arc<str>, batch: &mut Batch, actions: &mut Vec<Action>) {
        let Some(live) = self.live.get_mut(id) else {
            return;
        };
        match live.state {
            ExecutionState::Pending => batch.push(exec_change(
                live,
                EventType::ExecutionStarted,
                ExecutionState::Running,
                None,
                json!({}),
            )),
            ExecutionState::Running => {
                batch.push(exec_change(
                    live,
                    EventType::ExecutionResumed,
                    ExecutionState::Running,
                    None,
                    json!({ "pid": std::process::id() }),
                ));
                for flat in live.stage_range(live.stage) {
                    let s = &live.steps[flat];
                    match (s.state, s.retry_at_ms) {
                        (StepState::Waiting, Some(at_ms)) => actions.push(Action::RetryTimer {
                            exec: id.clone(),
                            flat,
                            attempt: s.attempt,
                            at_ms,
                        }),
                        (StepState::Running | StepState::Waiting, _) => {
                            actions.push(Action::Spawn {
                                exec: id.clone(),
                                flat,
                            })
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        self.advance(id, batch, actions);
    }

    /// Starts stages and ends them (and the execution) as far as the current state allows.
    fn advance(&mut self, id: &Arc<str>, batch: &mut Batch, actions: &mut Vec<Action>) {
        let now = self.clock.now_ms();
        let Some(live) = self.live.get_mut(id) else {
            return;
        };
        while live.state == ExecutionState::Running {
            if live.plan.stages.is_empty() {
                batch.push(exec_change(
                    live,
                    EventType::ExecutionSucceeded,
                    ExecutionState::Succeeded,
                    None,
                    json!({}),
                ));
                break;
            }
            let range = live.stage_range(live.stage);
            if !live.stage_started {
                live.stage_started = true;
                let stage = live.stage;
                batch.push(exec_change(
                    live,
                    EventType::StageStarted,
                    ExecutionState::Running,
                    None,
                    json!({ "name": live.plan.stages[stage].name }),
                ));
                if let Some(c) = batch.changes.last_mut() {
                    c.stage = Some(stage);
                }
                for flat in range {
                    batch.push(start_attempt(live, flat, now, &self.engine.registry));
                    actions.push(Action::Spawn {
                        exec: id.clone(),
                        flat,
                    });
                }
                continue;
            }
            if !live.steps[range.clone()]
                .iter()
                .all(|s| s.state.is_terminal())
            {
                break;
            }
            let failed = range.clone().find(|&i| {
                let s = &live.steps[i];
                !matches!(s.state, StepState::Succeeded)
                    && !live.defs[i].options.continue_on_failure
            });
            let stage = live.stage;
            let name = live.plan.stages[stage].name.clone();
            batch.push(Change {
                execution_id: id.clone(),
                kind: EventType::StageEnded,
                stage: Some(stage),
                step: None,
                details: json!({ "name": name, "failed": failed.is_some() }),
                step_write: None,
                exec_write: None,
            });
            if let Some(i) = failed {
                let s = &live.steps[i];
                let reason = format!(
                    "step \"{}\" {}: {}",
                    s.name,
                    s.state.as_str().to_lowercase().replace('_', " "),
                    s.reason.clone().unwrap_or_default()
                );
                batch.push(exec_change(
                    live,
                    EventType::ExecutionFailed,
                    ExecutionState::Failed,
                    Some(reason),
                    json!({}),
                ));
            } else if stage + 1 == live.plan.stages.len() {
                batch.push(exec_change(
                    live,
                    EventType::ExecutionSucceeded,
                    ExecutionState::Succeeded,
                    None,
                    json!({}),
                ));
            } else {
                live.stage += 1;
                live.stage_started = false;
            }
        }
    }

    /// Aborts an execution: waiting and internal steps of the current stage are cancelled;
    /// running external jobs are left to finish unless `stop_running`.
    fn abort(
        &mut self,
        id: &Arc<str>,
        reason: &str,
        stop_running: bool,
        batch: &mut Batch,
        actions: &mut Vec<Action>,
    ) {
        let now = self.clock.now_ms();
        let Some(live) = self.live.get_mut(id) else {
            return;
        };
        if live.state.is_terminal() {
            return;
        }
        if live.state == ExecutionState::Running && live.stage_started {
            for flat in live.stage_range(live.stage) {
                let before = live.steps[flat].clone();
                if before.state.is_terminal() {
                    continue;
                }
                let external = self
                    .engine
                    .registry
                    .get(&before.kind)
                    .is_some_and(|e| e.is_external());
                let leave_running = external
                    && before.handle.is_some()
                    && !stop_running
                    && before.state == StepState::Running;
                let mut after = before.clone();
                after.ended_ms = Some(now);
                after.retry_at_ms = None;
                let kind = if leave_running {
                    after.state = StepState::Aborted;
                    after.reason =
                        Some("execution aborted; the external job was left running".into());
                    actions.push(Action::StopWatching {
                        exec: id.clone(),
                        flat,
                    });
                    EventType::StepAbandoned
                } else {
                    after.state = StepState::Cancelled;
                    after.reason = Some(reason.to_string());
                    if before.state != StepState::Pending {
                        actions.push(Action::Cancel {
                            exec: id.clone(),
                            flat,
                            handle: before.handle.clone(),
                            stop_external: stop_running,
                        });
                    }
                    EventType::StepCancelled
                };
                batch.push(step_change(
                    live,
                    flat,
                    before.state,
                    after,
                    kind,
                    json!({ "reason": reason }),
                ));
            }
        }
        batch.push(exec_change(
            live,
            EventType::ExecutionAborted,
            ExecutionState::Aborted,
            Some(reason.to_string()),
            json!({ "stopRunning": stop_running }),
        ));
    }

    fn on_report(&mut self, report: Report, batch: &mut Batch, actions: &mut Vec<Action>) {
        let now = self.clock.now_ms();
        let (exec, flat, attempt) = match &report {
            Report::Started {
                exec,
                flat,
                attempt,
                ..
            }
            | Report::Ended {
                exec,
                flat,
                attempt,
                ..
            }
            | Report::TimedOut {
                exec,
                flat,
                attempt,
            }
            | Report::RetryDue {
                exec,
                flat,
                attempt,
            } => (exec.clone(), *flat, *attempt),
        };
        let registry = self.engine.registry.clone();
        let Some(live) = self.live.get_mut(&exec) else {
            return;
        };
        let before = live.steps[flat].clone();
        // Reports about an attempt that is no longer current (cancelled, superseded) are stale.
        if live.state.is_terminal() || before.state.is_terminal() || before.attempt != attempt {
            return;
        }
        let def = live.defs[flat].clone();
        let mut after = before.clone();
        match report {
            Report::Started { handle, ack, .. } => {
                if before.state != StepState::Running || before.handle.is_some() {
                    return;
                }
                let waits = registry.get(&before.kind).is_some_and(|e| e.waits());
                after.state = if waits {
                    StepState::Waiting
                } else {
                    StepState::Running
                };
                after.handle = Some(handle.clone());
                batch.push(step_change(
                    live,
                    flat,
                    before.state,
                    after,
                    EventType::StepHandleRecorded,
                    json!({ "attempt": attempt, "handle": handle }),
                ));
                actions.push(Action::Ack(ack));
            }
            Report::RetryDue { .. } => {
                if before.state != StepState::Waiting || before.retry_at_ms.is_none() {
                    return;
                }
                batch.push(start_attempt(live, flat, now, &registry));
                actions.push(Action::Spawn {
                    exec: exec.clone(),
                    flat,
                });
            }
            Report::TimedOut { .. } => {
                live.tasks.remove(&flat);
                after.state = StepState::TimedOut;
                after.ended_ms = Some(now);
                after.reason = Some(format!(
                    "no outcome within {}s",
                    def.options.timeout_seconds.unwrap_or(0)
                ));
                batch.push(step_change(
                    live,
                    flat,
                    before.state,
                    after,
                    EventType::StepTimedOut,
                    json!({ "attempt": attempt }),
                ));
                actions.push(Action::Cancel {
                    exec: exec.clone(),
                    flat,
                    handle: before.handle.clone(),
                    stop_external: true,
                });
            }
            Report::Ended { result, .. } => {
                live.tasks.remove(&flat);
                let outcome = match result {
                    Ok(o) => o,
                    Err(e) => Outcome::Failed {
                        reason: e.0,
                        retryable: true,
                    },
                };
                match outcome {
                    Outcome::Succeeded(output) => {
                        after.state = StepState::Succeeded;
                        after.ended_ms = Some(now);
                        after.output = Some(output);
                        batch.push(step_change(
                            live,
                            flat,
                            before.state,
                            after,
                            EventType::StepSucceeded,
                            json!({ "attempt": attempt }),
                        ));
                    }
                    Outcome::Failed { reason, retryable } => {
                        let retry = def
                            .options
                            .retry
                            .filter(|r| retryable && attempt < r.max_attempts);
                        if let Some(r) = retry {
                            let at_ms = now + (r.delay_after(attempt) * 1000.0) as i64;
                            after.state = StepState::Waiting;
                            after.retry_at_ms = Some(at_ms);
                            after.reason = Some(reason.clone());
                            batch.push(step_change(
                                live,
                                flat,
                                before.state,
                                after,
                                EventType::StepRetryScheduled,
                                json!({ "attempt": attempt, "reason": reason, "retryAtMs": at_ms }),
                            ));
                            actions.push(Action::RetryTimer {
                                exec: exec.clone(),
                                flat,
                                attempt,
                                at_ms,
                            });
                        } else {
                            after.state = StepState::Failed;
                            after.ended_ms = Some(now);
                            after.reason = Some(reason.clone());
                            batch.push(step_change(live, flat, before.state, after, EventType::StepFailed,
                                json!({ "attempt": attempt, "reason": reason, "retryable": retryable })));
                        }
                    }
                    Outcome::Rejected { reason } => {
                        after.state = StepState::Failed;
                        after.ended_ms = Some(now);
                        after.reason = Some(reason.clone());
                        batch.push(step_change(
                            live,
                            flat,
                            before.state,
                            after,
                            EventType::StepFailed,
                            json!({ "attempt": attempt, "reason": reason, "rejected": true }),
                        ));
                        let why = format!("step \"{}\" was rejected: {reason}", def.name);
                        self.abort(&exec, &why, false, batch, actions);
                    }
                }
            }
        }
    }

    async fn commit_and_act(
        &mut self,
        batch: Batch,
        actions: Vec<Action>,
    ) -> Result<(), EngineError> {
        self.engine.store.apply(&batch, self.clock.now_ms())?;
        for change in &batch.changes {
            if let Some(live) = self.live.get(&change.execution_id) {
                self.engine.observer.committed(&live.plan, change);
                if change.kind == EventType::StageEnded {
                    if let Some(stage) = change.stage.and_then(|s| live.plan.stages.get(s)) {
                        fault::hit("stage-end", &stage.name);
                    }
                }
            }
        }
        for action in actions {
            self.act(action).await;
        }
        Ok(())
    }

    async fn act(&mut self, action: Action) {
        match action {
            Action::Ack(ack) => {
                let _ = ack.send(());
            }
            Action::Spawn { exec, flat } => self.spawn_attempt(&exec, flat),
            Action::RetryTimer {
                exec,
                flat,
                attempt,
                at_ms,
            } => {
                let tx = self.tx.clone();
                let clock = self.clock;
                let task = tokio::spawn(async move {
                    clock.sleep_until(at_ms).await;
                    let _ = tx.send(Report::RetryDue {
                        exec,
                        flat,
                        attempt,
                    });
                });
                drop(task);
            }
            Action::StopWatching { exec, flat } => {
                if let Some(t) = self.live.get_mut(&exec).and_then(|l| l.tasks.remove(&flat)) {
                    t.abort();
                }
            }
            Action::Cancel {
                exec,
                flat,
                handle,
                stop_external,
            } => {
                let Some(live) = self.live.get_mut(&exec) else {
                    return;
                };
                if let Some(t) = live.tasks.remove(&flat) {
                    t.abort();
                }
                let s = &live.steps[flat];
                if let (Some(handle), Some(executor)) = (handle, self.engine.registry.get(&s.kind))
                {
                    let ctx = context(&self.engine, self.clock, live, flat);
                    if let Err(e) = executor.cancel(&ctx, &handle, stop_external).await {
                        self.engine.notices.notice(
                            &live.id,
                            &s.name,
                            &format!("could not cancel: {e}"),
                        );
                    }
                }
            }
        }
    }

    fn spawn_attempt(&mut self, exec: &Arc<str>, flat: usize) {
        let Some(live) = self.live.get_mut(exec) else {
            return;
        };
        let s = &live.steps[flat];
        let ctx = context(&self.engine, self.clock, live, flat);
        let tx = self.tx.clone();
        let (attempt, handle, deadline) = (s.attempt, s.handle.clone(), s.deadline_ms);
        let Some(executor) = self.engine.registry.get(&s.kind).cloned() else {
            let _ = tx.send(Report::Ended {
                exec: exec.clone(),
                flat,
                attempt,
                result: Ok(Outcome::Failed {
                    reason: format!("no executor for step type {}", s.kind),
                    retryable: false,
                }),
            });
            return;
        };
        let clock = self.clock;
        let task = tokio::spawn(run_attempt(executor, ctx, handle, deadline, clock, tx));
        live.tasks.insert(flat, task.abort_handle());
    }
}

/// One attempt, as a task: start (unless a handle is recorded), report the handle and wait for
/// its commit, then resume until the outcome; bounded by the deadline if there is one.
async fn run_attempt(
    executor: Arc<dyn Executor>,
    ctx: StepContext,
    handle: Option<Handle>,
    deadline_ms: Option<i64>,
    clock: Clock,
    tx: mpsc::UnboundedSender<Report>,
) {
    let (exec, flat, attempt) = (ctx.execution_id.clone(), ctx.flat, ctx.attempt);
    let work = async {
        let handle = match handle {
            Some(h) => h,
            None => {
                fault::hit("intent", &ctx.step.name);
                let h = executor.start(&ctx).await?;
                fault::hit("start", &ctx.step.name);
                let (ack, acked) = oneshot::channel();
                let report = Report::Started {
                    exec: exec.clone(),
                    flat,
                    attempt,
                    handle: h.clone(),
                    ack,
                };
                if tx.send(report).is_err() || acked.await.is_err() {
                    return Ok(None); // the engine is gone or dropped this attempt
                }
                fault::hit("handle", &ctx.step.name);
                h
            }
        };
        executor.resume(&ctx, &handle).await.map(Some)
    };
    // A panicking executor fails its attempt instead of leaving the step running forever.
    let work = async {
        match CatchPanic(Box::pin(work)).await {
            Ok(r) => r,
            Err(message) => Err(ExecError::new(format!("the executor panicked: {message}"))),
        }
    };
    let result = match deadline_ms {
        Some(d) => match tokio::time::timeout_at(clock.instant_at(d), work).await {
            Ok(r) => r,
            Err(_) => {
                let _ = tx.send(Report::TimedOut {
                    exec,
                    flat,
                    attempt,
                });
                return;
            }
        },
        None => work.await,
    };
    let result = match result {
        Ok(Some(o)) => Ok(o),
        Ok(None) => return,
        Err(e) => Err(e),
    };
    let _ = tx.send(Report::Ended {
        exec,
        flat,
        attempt,
        result,
    });
}

/// Turns a panic while polling the inner future into `Err(message)`.
struct CatchPanic<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                std::task::Poll::Ready(Err(message))
            }
        }
    }
}

fn context(engine: &Engine, clock: Clock, live: &Live, flat: usize) -> StepContext {
    let s = &live.steps[flat];
    StepContext {
        execution_id: live.id.clone(),
        stage: s.stage,
        index: s.index,
        flat,
        attempt: s.attempt,
        attempt_started_ms: s.attempt_started_ms.unwrap_or_else(|| clock.now_ms()),
        idempotency_key: StepContext::key_for(&live.id, s.stage, s.index, s.attempt),
        step: live.defs[flat].clone(),
        clock,
        notices: engine.notices.clone(),
        store: engine.store.clone(),
    }
}

/// The change that starts the next attempt of step `flat`: the start intent, with its key.
fn start_attempt(live: &mut Live, flat: usize, now: i64, registry: &Registry) -> Change {
    let before = live.steps[flat].clone();
    let def = &live.defs[flat];
    let mut after = before.clone();
    after.state = StepState::Running;
    after.attempt = before.attempt + 1;
    after.handle = None;
    after.retry_at_ms = None;
    after.reason = None;
    after.started_ms = before.started_ms.or(Some(now));
    after.attempt_started_ms = Some(now);
    let owns_timeout = registry.get(&before.kind).is_some_and(|e| e.owns_timeout());
    after.deadline_ms = def
        .options
        .timeout_seconds
        .filter(|_| !owns_timeout)
        .map(|t| now + (t as i64) * 1000);
    let key = StepContext::key_for(&live.id, before.stage, before.index, after.attempt);
    let details = json!({ "attempt": after.attempt, "key": key, "deadlineMs": after.deadline_ms });
    step_change(
        live,
        flat,
        before.state,
        after,
        EventType::StepStarted,
        details,
    )
}

/// A change of step `flat` from `from` to `after`, applied to the in-memory state too.
fn step_change(
    live: &mut Live,
    flat: usize,
    from: StepState,
    after: StepRecord,
    kind: EventType,
    details: Value,
) -> Change {
    let change = Change {
        execution_id: live.id.clone(),
        kind,
        stage: Some(after.stage),
        step: Some(after.index),
        details,
        step_write: Some((from, after.clone())),
        exec_write: None,
    };
    live.steps[flat] = after;
    change
}

/// A change of the execution (state and current stage), applied to the in-memory state too.
fn exec_change(
    live: &mut Live,
    kind: EventType,
    to: ExecutionState,
    reason: Option<String>,
    details: Value,
) -> Change {
    let from = live.state;
    live.state = to;
    Change {
        execution_id: live.id.clone(),
        kind,
        stage: None,
        step: None,
        details,
        step_write: None,
        exec_write: Some(ExecWrite {
            from,
            to,
            current_stage: live.stage,
            reason,
        }),
    }
}
