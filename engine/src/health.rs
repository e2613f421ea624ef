//! Whether the engine can do its work right now: the one place the driver reports its own
//! liveness and the database's writability, and where `/readyz` (and a log line) read them.
//!
//! The driver calls [`Health::tick`] on every pass of its loop (at least once per poll
//! interval), [`Health::store_ok`] after every successful commit or heartbeat and
//! [`Health::store_failing`] when one fails; [`Health::stopped`] when it ends for good. Reading
//! a [`Readiness`] takes one short lock and never touches the database, so a readiness probe
//! answers at once even while the database is locked or the disk is full.

use std::sync::Mutex;

/// A driver that has not ticked for this long is reported as stuck.
pub const STALE_TICK_MS: i64 = 5_000;

#[derive(Debug, Default)]
struct State {
    /// When the driver last went round its loop (epoch ms); `None` before it started.
    last_tick_ms: Option<i64>,
    /// The latest store failure and since when, until a write succeeds again.
    store_problem: Option<(String, i64)>,
    /// Why the engine stopped for good.
    stopped: Option<String>,
    /// Step attempts held back by trouble in Steppy's own machinery (not the step's work).
    held_back: usize,
}

/// The engine's health, shared between the driver and whoever reports it.
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

/// A snapshot of [`Health`] at one instant.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// True if the engine is running and its last write succeeded.
    pub ready: bool,
    /// `running`, `starting`, `stuck` or `stopped`.
    pub engine: &'static str,
    /// `writable` or `failing`.
    pub database: &'static str,
    /// Milliseconds since the driver last went round its loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_tick_age_ms: Option<i64>,
    /// Step attempts waiting for Steppy's own machinery (store, disk, descriptors) to recover.
    pub held_back_attempts: usize,
    /// What is wrong, one sentence each (empty when ready).
    pub problems: Vec<String>,
}

impl Health {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The driver went round its loop at `now_ms`.
    pub fn tick(&self, now_ms: i64) {
        self.state().last_tick_ms = Some(now_ms);
    }

    /// A write to the store succeeded: the database is writable.
    pub fn store_ok(&self) {
        self.state().store_problem = None;
    }

    /// A write to the store failed with `why` at `now_ms` (kept until a write succeeds).
    pub fn store_failing(&self, why: &str, now_ms: i64) {
        let mut s = self.state();
        let since = s.store_problem.as_ref().map_or(now_ms, |(_, since)| *since);
        s.store_problem = Some((why.to_string(), since));
    }

    /// How many attempts are held back by infrastructure trouble (see [`Readiness`]).
    pub fn set_held_back(&self, count: usize) {
        self.state().held_back = count;
    }

    /// The engine stopped for good because of `why`.
    pub fn stopped(&self, why: &str) {
        self.state().stopped = Some(why.to_string());
    }

    /// The state at `now_ms`.
    pub fn readiness(&self, now_ms: i64) -> Readiness {
        let s = self.state();
        let age = s.last_tick_ms.map(|t| (now_ms - t).max(0));
        let mut problems = Vec::new();
        let engine = if let Some(why) = &s.stopped {
            problems.push(format!("the engine stopped: {why}"));
            "stopped"
        } else {
            match age {
                None => {
                    problems.push("the engine has not started yet".to_string());
                    "starting"
                }
                Some(a) if a > STALE_TICK_MS => {
                    problems.push(format!("the engine has not made progress for {} ms", a));
                    "stuck"
                }
                Some(_) => "running",
            }
        };
        let database = match &s.store_problem {
            Some((why, since)) => {
                problems.push(format!(
                    "the database is failing since {} ms: {why}",
                    (now_ms - since).max(0)
                ));
                "failing"
            }
            None => "writable",
        };
        if s.held_back > 0 {
            problems.push(format!(
                "{} step attempt(s) wait for Steppy's own machinery to recover",
                s.held_back
            ));
        }
        Readiness {
            ready: problems.is_empty(),
            engine,
            database,
            last_tick_age_ms: age,
            held_back_attempts: s.held_back,
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_ticking_and_writable() {
        let h = Health::default();
        assert_eq!(h.readiness(0).engine, "starting");
        assert!(!h.readiness(0).ready);
        h.tick(1_000);
        assert!(h.readiness(1_500).ready, "{:?}", h.readiness(1_500));
        assert_eq!(h.readiness(1_000 + STALE_TICK_MS + 1).engine, "stuck");
        h.store_failing("database is locked", 2_000);
        h.store_failing("database is locked", 2_500);
        h.tick(3_000);
        let r = h.readiness(3_000);
        assert!(!r.ready);
        assert_eq!(r.database, "failing");
        assert!(r.problems[0].contains("since 1000 ms"), "{r:?}");
        h.store_ok();
        assert!(h.readiness(3_000).ready);
        h.set_held_back(2);
        assert!(!h.readiness(3_000).ready);
        h.set_held_back(0);
        h.stopped("illegal transition");
        assert_eq!(h.readiness(3_000).engine, "stopped");
    }
}
