//! The driver: the tick loop that gathers attempt reports, group-commits the resulting batch
//! and then acts on it; leases, polling and spawning attempts; and what happens when Steppy's
//! own machinery fails under it.
//!
//! **Store trouble is waited out, never fatal.** A commit that fails because the database is
//! locked, the disk is full, I/O fails or a page is corrupt is tried again with backoff (the
//! batch is kept and nothing of it is acted on before it commits); a poll that fails is skipped
//! until the next one. Both are logged and show on [`crate::health::Health`] (`/readyz`).
//!
//! **A lost lease means letting go.** If another process took over an execution's lease (this
//! one was stopped, or cut off from the database, for longer than [`crate::store::LEASE_STALE_MS`]),
//! the heartbeat or the commit's fence notices, and this process drops the execution from
//! memory (its attempt tasks are stopped, its uncommitted changes discarded). `serve` adopts it
//! again, from what is recorded, once its lease is free.
//!
//! Only a refused transition (a bug) stops the driver for good.

use super::attempt::{context, run_attempt};
use super::live::{Action, AttemptRef, Live, Report};
use super::{Engine, EngineError};
use crate::clock::Clock;
use crate::events::EventType;
use crate::executor::Outcome;
use crate::fault;
use crate::store::{Batch, StoreError};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Which executions a driver takes on: only those adopted before it started (`run`,
/// `resume`), or also each one submitted while it runs (`serve`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Intake {
    AdoptedOnly,
    Watching,
}

/// What ends a watching driver (`serve`); `None` for one that ends when its work is done.
pub(super) type Shutdown<'a> = Option<Pin<Box<dyn Future<Output = ()> + Send + 'a>>>;

/// Resolves when `shutdown` does (never, for `None`).
async fn stopped(shutdown: &mut Shutdown<'_>) {
    match shutdown.as_mut() {
        Some(s) => s.await,
        None => std::future::pending().await,
    }
}

/// The wait before trying again after `failures` consecutive failures of Steppy's machinery:
/// 100 ms doubling up to `cap`.
pub(super) fn backoff(failures: u32, cap: Duration) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.saturating_sub(1).min(10))).min(cap)
}

/// True for the failures worth a log line: the first, then every 20th.
fn worth_a_line(failures: u32) -> bool {
    failures == 1 || failures.is_multiple_of(20)
}

/// An attempt that Steppy's own machinery failed (see [`crate::executor::ErrorKind`]).
#[derive(Debug, Default)]
pub(super) struct HeldBack {
    /// Consecutive machinery failures of this step's attempts (sets the backoff).
    pub(super) failures: u32,
    /// True while the attempt waits to run again.
    pub(super) waiting: bool,
}

pub(super) struct Driver {
    pub(super) engine: Engine,
    pub(super) clock: Clock,
    pub(super) live: HashMap<Arc<str>, Live>,
    pub(super) tx: mpsc::UnboundedSender<Report>,
    pub(super) rx: mpsc::UnboundedReceiver<Report>,
    /// Steps whose attempts the machinery failed, by (execution, flat index).
    pub(super) held_back: HashMap<(Arc<str>, usize), HeldBack>,
    /// Consecutive polls that failed on the store (log throttling).
    poll_failures: u32,
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
            held_back: HashMap::new(),
            poll_failures: 0,
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
        let id: Arc<str> = id.into();
        let live = Live::new(
            id.clone(),
            Arc::new(record.plan),
            record.summary.state,
            record.summary.current_stage,
            record.steps,
        )
        .map_err(StoreError::Conflict)?;
        self.live.insert(id, live);
        Ok(true)
    }

    /// Drives until the work is done (`shutdown` is `None`) or `shutdown` resolves; then stops
    /// every attempt task and gives up the leases. An error means the engine stopped for good.
    pub(super) async fn drive(&mut self, mut shutdown: Shutdown<'_>) -> Result<(), EngineError> {
        let result = self.drive_until(&mut shutdown).await;
        for live in self.live.values() {
            live.stop_tasks();
            let _ = self.engine.store.release(&live.id, &self.engine.owner);
        }
        if let Err(e) = &result {
            self.engine.health.stopped(&e.to_string());
        }
        result
    }

    async fn drive_until(&mut self, shutdown: &mut Shutdown<'_>) -> Result<(), EngineError> {
        let intake = if shutdown.is_some() {
            Intake::Watching
        } else {
            Intake::AdoptedOnly
        };
        // The first tick: start or resume what was adopted before driving (`run`, `resume`),
        // then look for more (`serve`). Each adopted execution is bootstrapped exactly once.
        let mut batch = Batch::default();
        let mut actions = Vec::new();
        self.bootstrap_all(&mut batch, &mut actions);
        self.poll(intake, &mut batch, &mut actions);
        if !self.commit_and_act(batch, actions, shutdown).await? {
            return Ok(());
        }
        let mut next_poll = tokio::time::Instant::now() + self.engine.options.poll;
        loop {
            self.engine.health.tick(self.clock.now_ms());
            if intake == Intake::AdoptedOnly && self.live.values().all(|l| l.state.is_terminal()) {
                return Ok(());
            }
            let mut reports = Vec::new();
            let tick = tokio::time::sleep_until(next_poll);
            tokio::select! {
                r = self.rx.recv() => if let Some(r) = r { reports.push(r) },
                _ = tick => {},
                _ = stopped(shutdown) => return Ok(()),
            }
            self.gather(&mut reports).await;
            let mut batch = Batch::default();
            let mut actions = Vec::new();
            for r in reports {
                self.on_report(r, &mut batch, &mut actions);
            }
            if tokio::time::Instant::now() >= next_poll {
                next_poll = tokio::time::Instant::now() + self.engine.options.poll;
                self.poll(intake, &mut batch, &mut actions);
            }
            let ids: Vec<Arc<str>> = self.live.keys().cloned().collect();
            for id in ids {
                self.advance(&id, &mut batch, &mut actions);
            }
            if !self.commit_and_act(batch, actions, shutdown).await? {
                return Ok(());
            }
            if intake == Intake::Watching {
                self.forget_finished();
            }
            self.report_held_back();
        }
    }

    /// Group commit: attempts spawned together report together, so while reports keep
    /// arriving less than `gather` apart, keep gathering (up to `max_batch`). A lone report (a
    /// wait ending) is committed at once.
    async fn gather(&mut self, reports: &mut Vec<Report>) {
        let (gather, max) = (self.engine.options.gather, self.engine.options.max_batch);
        let single_threaded =
            tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread;
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
                // On a current-thread runtime the yield above already ran every task that was
                // ready: nothing more is coming right now.
                if single_threaded {
                    break;
                }
                match tokio::time::timeout(gather, self.rx.recv()).await {
                    Ok(Some(r)) => reports.push(r),
                    _ => break,
                }
            }
        }
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
                live.stop_tasks();
                let _ = self.engine.store.release(&id, &self.engine.owner);
            }
        }
    }

    /// Drops `id` from memory without touching what is recorded: its tasks stop, its changes
    /// and actions of this tick are discarded. Its lease is left as it is (another process
    /// holds it, or this one takes it back through `adopt` when `serve` next polls).
    fn let_go(&mut self, id: &Arc<str>, why: &str, batch: &mut Batch, actions: &mut Vec<Action>) {
        if let Some(live) = self.live.remove(id) {
            live.stop_tasks();
        }
        batch.changes.retain(|c| c.execution_id != *id);
        actions.retain(|a| a.execution() != &**id);
        self.held_back.retain(|(e, _), _| e != id);
        self.engine.notices.engine(&format!(
            "{why}; this process lets go of execution {id} and takes it back only when its lease is free"
        ));
    }

    /// Records a failed store call of a poll: shown on the health, logged now and then.
    fn poll_trouble(&mut self, what: &str, e: &StoreError) {
        self.poll_failures += 1;
        self.engine.health.store_failing(&e.to_string(), self.clock.now_ms());
        if worth_a_line(self.poll_failures) {
            self.engine
                .notices
                .engine(&format!("cannot {what}: {e} (trying again at the next poll)"));
        }
    }

    /// Heartbeat (noticing leases taken over), abort requests and (when watching) newly
    /// submitted executions. Store trouble skips the rest of this poll; the next one tries again.
    pub(super) fn poll(&mut self, intake: Intake, batch: &mut Batch, actions: &mut Vec<Action>) {
        let store = self.engine.store.clone();
        let now = self.clock.now_ms();
        match store.heartbeat(&self.engine.owner, now) {
            Ok(held) => {
                let lost: Vec<Arc<str>> = self.live.keys().filter(|id| !held.contains(&***id)).cloned().collect();
                for id in lost {
                    self.let_go(
                        &id,
                        &format!("another process took over the lease of execution {id}"),
                        batch,
                        actions,
                    );
                }
            }
            Err(e) => return self.poll_trouble("refresh the leases", &e),
        }
        if intake == Intake::Watching {
            let ids = match store.unfinished_ids() {
                Ok(ids) => ids,
                Err(e) => return self.poll_trouble("look for submitted executions", &e),
            };
            for id in ids {
                if self.live.contains_key(id.as_str()) {
                    continue;
                }
                match self.adopt(&id) {
                    Ok(true) => self.bootstrap(&id.as_str().into(), batch, actions),
                    Ok(false) => {}
                    Err(EngineError::Store(e)) => return self.poll_trouble(&format!("take up execution {id}"), &e),
                    Err(EngineError::Injected) => {}
                }
            }
        }
        let ids: Vec<Arc<str>> = self
            .live
            .iter()
            .filter(|(_, l)| !l.state.is_terminal())
            .map(|(k, _)| k.clone())
            .collect();
        match store.abort_requests(&ids) {
            Ok(requests) => {
                for (id, stop) in requests {
                    self.abort(&id.as_str().into(), "aborted by request", stop, batch, actions);
                }
            }
            Err(e) => return self.poll_trouble("read abort requests", &e),
        }
        if self.poll_failures > 0 {
            self.engine.notices.engine(&format!(
                "the database answers again (after {} failed poll(s))",
                self.poll_failures
            ));
            self.poll_failures = 0;
        }
        self.engine.health.store_ok();
    }

    /// Commits `batch` (retrying store trouble with backoff, letting go of executions this
    /// process lost), then acts. Returns false if `shutdown` resolved while waiting.
    pub(super) async fn commit_and_act(
        &mut self,
        mut batch: Batch,
        mut actions: Vec<Action>,
        shutdown: &mut Shutdown<'_>,
    ) -> Result<bool, EngineError> {
        let mut failures = 0u32;
        loop {
            let now = self.clock.now_ms();
            let Err(e) = self.engine.store.apply_leased(&batch, now, &self.engine.owner) else {
                break;
            };
            if let Some(id) = e.lost_execution() {
                let id: Arc<str> = id.into();
                self.let_go(&id, &e.to_string(), &mut batch, &mut actions);
                continue;
            }
            if !e.is_transient() {
                return Err(e.into());
            }
            failures += 1;
            self.engine.health.store_failing(&e.to_string(), now);
            self.engine.health.tick(now);
            let wait = backoff(failures, Duration::from_secs(5));
            if worth_a_line(failures) {
                self.engine.notices.engine(&format!(
                    "cannot record {} change(s): {e}; nothing is acted on until they are recorded (trying again in {} ms)",
                    batch.len(),
                    wait.as_millis()
                ));
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped(shutdown) => return Ok(false),
            }
        }
        if failures > 0 {
            self.engine.notices.engine(&format!(
                "recorded {} change(s) after {failures} failed attempt(s)",
                batch.len()
            ));
        }
        if !batch.is_empty() {
            self.engine.health.store_ok();
        }
        for change in &batch.changes {
            if let Some(live) = self.live.get(&change.execution_id) {
                self.engine.observer.committed(&live.plan, change);
                if change.kind == EventType::StageEnded
                    && let Some(stage) = change.stage.and_then(|s| live.plan.stages.get(s))
                {
                    fault::hit("stage-end", &stage.name);
                    if fault::stops_engine("stage-end", &stage.name) {
                        self.engine.observer.batch_done();
                        return Err(EngineError::Injected);
                    }
                }
            }
        }
        if !batch.is_empty() {
            self.engine.observer.batch_done();
        }
        for action in actions {
            self.act(action).await;
        }
        Ok(true)
    }

    /// Forgets held-back attempts of steps that ended meanwhile and tells the health how many
    /// are still waiting for the machinery.
    fn report_held_back(&mut self) {
        let live = &self.live;
        self.held_back.retain(|(exec, flat), _| {
            live.get(exec)
                .and_then(|l| l.steps().get(*flat))
                .is_some_and(|s| !s.state.is_terminal())
        });
        let waiting = self.held_back.values().filter(|h| h.waiting).count();
        self.engine.health.set_held_back(waiting);
    }

    pub(super) async fn act(&mut self, action: Action) {
        match action {
            Action::Ack { ack, .. } => {
                let _ = ack.send(());
            }
            Action::Spawn { exec, flat } => self.spawn_attempt(&exec, flat),
            Action::RetryTimer { at, at_ms } => {
                let tx = self.tx.clone();
                let clock = self.clock;
                drop(tokio::spawn(async move {
                    clock.sleep_until(at_ms).await;
                    let _ = tx.send(Report::RetryDue { at });
                }));
            }
            Action::RunAgainTimer { at, after } => {
                let tx = self.tx.clone();
                drop(tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = tx.send(Report::RunAgain { at });
                }));
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
                running,
            } => {
                let Some(live) = self.live.get_mut(&exec) else {
                    return;
                };
                if let Some(t) = live.tasks.remove(&flat) {
                    t.abort();
                }
                let s = live.step(flat);
                if let (Some(handle), Some(executor)) = (handle, self.engine.registry.get(&s.kind)) {
                    let ctx = context(&self.engine, self.clock, live, flat);
                    if let Err(e) = executor.cancel(&ctx, &handle, running).await {
                        self.engine
                            .notices
                            .notice(&live.id, &s.name, &format!("could not cancel: {e}"));
                    }
                }
            }
        }
    }

    pub(super) fn spawn_attempt(&mut self, exec: &Arc<str>, flat: usize) {
        let Some(live) = self.live.get_mut(exec) else {
            return;
        };
        let s = live.step(flat);
        let ctx = context(&self.engine, self.clock, live, flat);
        let tx = self.tx.clone();
        let at = AttemptRef {
            exec: exec.clone(),
            flat,
            attempt: s.attempt,
        };
        let (handle, deadline) = (s.handle.clone(), s.deadline_ms);
        let Some(executor) = self.engine.registry.get(&s.kind).cloned() else {
            let reason = format!("no executor for step type {}", s.kind);
            let _ = tx.send(Report::Ended {
                at,
                result: Ok(Outcome::Failed {
                    reason,
                    retryable: false,
                }),
            });
            return;
        };
        let clock = self.clock;
        let task = tokio::spawn(run_attempt(executor, ctx, at, handle, deadline, clock, tx));
        if let Some(old) = live.tasks.insert(flat, task.abort_handle()) {
            // Never two tasks for one step: a second spawn replaces (and stops) the first.
            old.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100_ms_up_to_its_cap() {
        let cap = Duration::from_secs(5);
        let waits: Vec<u128> = (1..=8).map(|f| backoff(f, cap).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff(u32::MAX, cap), cap);
        assert!(worth_a_line(1) && !worth_a_line(2) && worth_a_line(40));
    }
}
