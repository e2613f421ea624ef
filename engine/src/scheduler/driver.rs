//! The driver: the tick loop that gathers attempt reports, group-commits the resulting batch
//! and then acts on it; plus leases, polling and spawning attempts.

use super::attempt::{context, run_attempt};
use super::{Engine, EngineError};
use crate::clock::Clock;
use crate::events::EventType;
use crate::executor::{ExecError, Handle, Outcome};
use crate::fault;
use crate::plan::{Plan, Step};
use crate::state::{ExecutionState, StepState};
use crate::store::{Batch, StepRecord, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

/// What an attempt task reports.
pub(super) enum Report {
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
pub(super) enum Action {
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
pub(super) struct Live {
    pub(super) id: Arc<str>,
    pub(super) plan: Arc<Plan>,
    pub(super) state: ExecutionState,
    pub(super) stage: usize,
    pub(super) stage_started: bool,
    /// Steps of all stages, flat; `offsets[s]..offsets[s+1]` are stage `s`'s.
    pub(super) steps: Vec<StepRecord>,
    pub(super) defs: Vec<Arc<Step>>,
    pub(super) offsets: Vec<usize>,
    pub(super) tasks: HashMap<usize, AbortHandle>,
}

impl Live {
    pub(super) fn stage_range(&self, stage: usize) -> std::ops::Range<usize> {
        self.offsets[stage]..self.offsets[stage + 1]
    }
}

pub(super) struct Driver {
    pub(super) engine: Engine,
    pub(super) clock: Clock,
    pub(super) live: HashMap<Arc<str>, Live>,
    pub(super) tx: mpsc::UnboundedSender<Report>,
    pub(super) rx: mpsc::UnboundedReceiver<Report>,
}

impl Driver {
    pub(super) fn new(engine: Engine) -> Driver {
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
    pub(super) fn adopt(&mut self, id: &str) -> Result<bool, EngineError> {
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

    pub(super) async fn drive<'a>(
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
    pub(super) fn forget_finished(&mut self) {
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
    pub(super) fn poll(
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

    pub(super) async fn commit_and_act(
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

    pub(super) async fn act(&mut self, action: Action) {
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

    pub(super) fn spawn_attempt(&mut self, exec: &Arc<str>, flat: usize) {
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
