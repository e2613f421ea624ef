//! A scriptable executor for tests and benchmarks (not used by the `steppy` program).
//!
//! [`Scripted`] reads what to do from the step's name (text after `#` is ignored, so names can
//! stay unique): `ok` succeeds at once, `sleep:N` succeeds after N seconds, `fail` fails for
//! good, `flaky:K` fails (retryably) on its first K attempts, `hang` never ends, `reject:N` is
//! rejected after N seconds, `panic` panics, `machinery:K` reports Steppy's own machinery failing
//! ([`ExecError::machinery`]) on its first K resumes of an attempt, then succeeds. It counts starts per idempotency key, resumes, cancels and the
//! most attempts ever running at once, and logs (name, "start"/"end", epoch ms).

use crate::executor::{BoxFuture, ExecError, Executor, Handle, Outcome, Registry, RunningWork, StepContext};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a [`Scripted`] executor saw.
#[derive(Default)]
pub struct Stats {
    pub starts: AtomicUsize,
    pub resumes: AtomicUsize,
    pub cancels: AtomicUsize,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
    pub starts_by_key: Mutex<HashMap<String, usize>>,
    pub resumes_by_key: Mutex<HashMap<String, u64>>,
    pub log: Mutex<Vec<(String, &'static str, i64)>>,
}

impl Stats {
    /// The `(name, what)` pairs of the log, in order.
    pub fn events(&self) -> Vec<(String, &'static str)> {
        self.log
            .lock()
            .map(|l| l.iter().map(|(n, w, _)| (n.clone(), *w)).collect())
            .unwrap_or_default()
    }
    fn note(&self, name: &str, what: &'static str, at: i64) {
        if let Ok(mut l) = self.log.lock() {
            l.push((name.to_string(), what, at));
        }
    }
}

/// See the module docs.
#[derive(Default)]
pub struct Scripted {
    pub stats: Arc<Stats>,
    /// Whether it plays an external job (left running on abort) or an internal wait.
    pub external: bool,
    /// Keeps no log (benchmarks).
    pub quiet: bool,
}

impl Scripted {
    /// One that plays an external job (a build): left running on abort.
    pub fn external() -> Arc<Scripted> {
        Arc::new(Scripted {
            external: true,
            ..Scripted::default()
        })
    }

    /// One that plays an internal wait: cancelled on abort.
    pub fn internal() -> Arc<Scripted> {
        Arc::new(Scripted::default())
    }

    /// A registry with `external` registered for the build/pipeline types and `internal` for
    /// `Wait`, `Notify` and `Human`.
    pub fn registry(external: Arc<Scripted>, internal: Arc<Scripted>) -> Registry {
        use crate::plan::StepType;
        use crate::plan::step_type::Needs;
        let mut r = Registry::new();
        for t in StepType::ALL {
            let executor = match t.describe().needs {
                Needs::Aws => external.clone(),
                Needs::Nothing => internal.clone(),
            };
            r.register(t.name(), executor);
        }
        r
    }
}

struct RunningGuard<'a>(&'a Stats);
impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

fn script(name: &str) -> (&str, u64) {
    let name = name.split('#').next().unwrap_or("");
    let (verb, n) = name.split_once(':').unwrap_or((name, "0"));
    (verb, n.parse().unwrap_or(0))
}

impl Executor for Scripted {
    fn start<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Handle, ExecError>> {
        Box::pin(async move {
            self.stats.starts.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut m) = self.stats.starts_by_key.lock() {
                *m.entry(ctx.idempotency_key.clone()).or_default() += 1;
            }
            if !self.quiet {
                self.stats.note(&ctx.step.name, "start", ctx.clock.now_ms());
            }
            Ok(json!({ "key": ctx.idempotency_key }))
        })
    }

    fn resume<'a>(&'a self, ctx: &'a StepContext, _handle: &'a Handle) -> BoxFuture<'a, Result<Outcome, ExecError>> {
        Box::pin(async move {
            self.stats.resumes.fetch_add(1, Ordering::SeqCst);
            let resumed = match self.stats.resumes_by_key.lock() {
                Ok(mut m) => {
                    let n = m.entry(ctx.idempotency_key.clone()).or_default();
                    *n += 1;
                    *n
                }
                Err(_) => 0,
            };
            let now = self.stats.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.stats.max_running.fetch_max(now, Ordering::SeqCst);
            let _guard = RunningGuard(&self.stats);
            let (verb, n) = script(&ctx.step.name);
            let secs = std::time::Duration::from_secs(n);
            let outcome = match verb {
                "sleep" => {
                    tokio::time::sleep(secs).await;
                    Outcome::Succeeded(json!({}))
                }
                "fail" => {
                    tokio::time::sleep(secs).await;
                    Outcome::Failed {
                        reason: "scripted failure".into(),
                        retryable: false,
                    }
                }
                "flaky" if u64::from(ctx.attempt) <= n => Outcome::Failed {
                    reason: format!("flaky attempt {}", ctx.attempt),
                    retryable: true,
                },
                "hang" => std::future::pending().await,
                "machinery" if resumed <= n => {
                    return Err(ExecError::machinery(format!("scripted machinery failure {resumed}")));
                }
                "panic" => panic!("scripted panic"),
                "reject" => {
                    tokio::time::sleep(secs).await;
                    Outcome::Rejected {
                        reason: "scripted rejection".into(),
                    }
                }
                _ => Outcome::Succeeded(json!({})),
            };
            if !self.quiet {
                self.stats.note(&ctx.step.name, "end", ctx.clock.now_ms());
            }
            Ok(outcome)
        })
    }

    fn cancel<'a>(
        &'a self,
        _ctx: &'a StepContext,
        _handle: &'a Handle,
        _running: RunningWork,
    ) -> BoxFuture<'a, Result<(), ExecError>> {
        Box::pin(async move {
            self.stats.cancels.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    fn is_external(&self) -> bool {
        self.external
    }

    fn waits(&self) -> bool {
        !self.external
    }
}
