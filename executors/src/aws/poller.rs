//! One poller per (role, region) that reads the state of every in-flight build in batches.
//!
//! Each `CodeBuild` attempt registers its build id and awaits a one-shot answer. Every
//! `interval` the poller takes all registered ids and reads them with `BatchGetBuilds`, up to
//! [`BATCH`] ids per call: 500 builds in flight cost 5 calls per interval, however many steps
//! wait on them, and a build that ended is seen at the next tick (within one interval).
//!
//! Errors never fail a step by themselves: on throttling or a transient error the poller backs
//! off (doubling its interval, with jitter) and tries again; only a build CodeBuild keeps saying
//! it does not know ([`MAX_MISSES`] reads in a row), or a permanent error repeated
//! [`MAX_PERMANENT`] ticks in a row (access denied), ends the wait with [`Watch::Lost`].
//!
//! The poller's task runs only while someone waits: it stops when the last waiter is gone
//! (answered, or its step cancelled — a dropped receiver counts as gone) and is started again
//! by the next registration, so it never outlives the runtime that needs it.

use super::backoff;
use super::errors::{Kind, classify};
use aws_sdk_codebuild::types::{Build, StatusType};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Most ids per `BatchGetBuilds` call (CodeBuild's limit).
pub const BATCH: usize = 100;
/// Consecutive "not found" answers before a build is given up as unknown.
pub const MAX_MISSES: u32 = 3;
/// Consecutive ticks with a permanent error before the waiters are told.
pub const MAX_PERMANENT: u32 = 5;

/// The last state read of a build that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildState {
    pub id: String,
    /// `SUCCEEDED`, `FAILED`, `FAULT`, `TIMED_OUT` or `STOPPED`.
    pub status: String,
    pub phase: Option<String>,
    pub arn: Option<String>,
    /// CodeBuild's link to the build's CloudWatch logs, if it has one.
    pub logs_deep_link: Option<String>,
}

/// How a wait for a build ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Watch {
    Ended(BuildState),
    /// The build's state cannot be read (unknown build, access denied): why.
    Lost(String),
}

/// Counters, for tests and the benchmark.
#[derive(Debug, Default)]
pub struct PollerStats {
    /// `BatchGetBuilds` calls made.
    pub calls: AtomicU64,
    /// Ticks (one per interval while builds are in flight).
    pub ticks: AtomicU64,
    pub throttled: AtomicU64,
    pub transient: AtomicU64,
}

struct Waiter {
    senders: Vec<oneshot::Sender<Watch>>,
    misses: u32,
}

#[derive(Default)]
struct Inner {
    waiting: HashMap<String, Waiter>,
    running: bool,
}

/// The poller of one (role, region).
pub struct BuildPoller {
    client: aws_sdk_codebuild::Client,
    interval: Duration,
    name: String,
    inner: Mutex<Inner>,
    stats: PollerStats,
}

impl BuildPoller {
    /// A poller reading with `client` every `interval`; `name` (the target) appears in messages.
    pub fn new(client: aws_sdk_codebuild::Client, interval: Duration, name: String) -> Arc<BuildPoller> {
        Arc::new(BuildPoller {
            client,
            interval,
            name,
            inner: Mutex::new(Inner::default()),
            stats: PollerStats::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until build `id` ends (or cannot be read). Dropping the future unregisters it.
    pub async fn wait(self: &Arc<Self>, id: &str) -> Watch {
        let rx = self.register(id);
        rx.await
            .unwrap_or_else(|_| Watch::Lost(format!("the build poller for {} stopped", self.name)))
    }

    /// Registers interest in build `id`; the answer comes on the returned receiver.
    pub fn register(self: &Arc<Self>, id: &str) -> oneshot::Receiver<Watch> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        inner
            .waiting
            .entry(id.to_string())
            .or_insert_with(|| Waiter {
                senders: Vec::new(),
                misses: 0,
            })
            .senders
            .push(tx);
        if !inner.running {
            inner.running = true;
            tokio::spawn(self.clone().run());
        }
        rx
    }

    /// Builds currently waited on.
    pub fn in_flight(&self) -> usize {
        self.lock().waiting.len()
    }

    pub fn stats(&self) -> &PollerStats {
        &self.stats
    }

    /// The ids to read this tick, after dropping waiters nobody listens to any more; `None`
    /// (and the task stops) when nothing is left to wait for.
    fn due(&self) -> Option<Vec<String>> {
        let mut inner = self.lock();
        inner.waiting.retain(|_, w| {
            w.senders.retain(|s| !s.is_closed());
            !w.senders.is_empty()
        });
        if inner.waiting.is_empty() {
            inner.running = false;
            return None;
        }
        Some(inner.waiting.keys().cloned().collect())
    }

    fn answer(&self, id: &str, watch: Watch) {
        if let Some(w) = self.lock().waiting.remove(id) {
            for s in w.senders {
                let _ = s.send(watch.clone());
            }
        }
    }

    fn settle(&self, asked: &[String], builds: &[Build], not_found: &[String]) {
        for b in builds {
            let Some(id) = b.id() else { continue };
            match b.build_status() {
                Some(StatusType::InProgress) | None => {
                    if let Some(w) = self.lock().waiting.get_mut(id) {
                        w.misses = 0;
                    }
                }
                Some(status) => self.answer(id, Watch::Ended(state_of(b, status))),
            }
        }
        for id in not_found.iter().filter(|id| asked.contains(id)) {
            let lost = {
                let mut inner = self.lock();
                match inner.waiting.get_mut(id) {
                    Some(w) => {
                        w.misses += 1;
                        w.misses >= MAX_MISSES
                    }
                    None => false,
                }
            };
            if lost {
                self.answer(
                    id,
                    Watch::Lost(format!("CodeBuild in {} does not know build {id}", self.name)),
                );
            }
        }
    }

    async fn run(self: Arc<Self>) {
        let mut failures = 0u32;
        let mut permanent = 0u32;
        loop {
            let delay = if failures == 0 {
                self.interval
            } else {
                backoff::delay(self.interval, failures)
            };
            tokio::time::sleep(delay).await;
            let Some(ids) = self.due() else { return };
            self.stats.ticks.fetch_add(1, Ordering::Relaxed);
            let mut trouble: Option<Kind> = None;
            let mut last_error = String::new();
            for chunk in ids.chunks(BATCH) {
                self.stats.calls.fetch_add(1, Ordering::Relaxed);
                match self
                    .client
                    .batch_get_builds()
                    .set_ids(Some(chunk.to_vec()))
                    .send()
                    .await
                {
                    Ok(out) => self.settle(chunk, out.builds(), out.builds_not_found()),
                    Err(e) => {
                        let err = classify(&format!("BatchGetBuilds in {}", self.name), &e);
                        last_error = err.message.clone();
                        match err.kind {
                            Kind::Throttled => self.stats.throttled.fetch_add(1, Ordering::Relaxed),
                            _ => self.stats.transient.fetch_add(1, Ordering::Relaxed),
                        };
                        trouble = Some(err.kind);
                        if err.kind == Kind::Throttled {
                            break; // slow down now rather than throttle the other batches too
                        }
                    }
                }
            }
            match trouble {
                None => {
                    failures = 0;
                    permanent = 0;
                }
                Some(Kind::Permanent) => {
                    permanent += 1;
                    failures = failures.saturating_add(1);
                    if permanent >= MAX_PERMANENT {
                        for id in ids {
                            self.answer(&id, Watch::Lost(last_error.clone()));
                        }
                        permanent = 0;
                    }
                }
                Some(_) => failures = failures.saturating_add(1),
            }
        }
    }
}

fn state_of(b: &Build, status: &StatusType) -> BuildState {
    BuildState {
        id: b.id().unwrap_or_default().to_string(),
        status: status.as_str().to_string(),
        phase: b.current_phase().map(str::to_string),
        arn: b.arn().map(str::to_string),
        logs_deep_link: b.logs().and_then(|l| l.deep_link()).map(str::to_string),
    }
}
