//! What `GET /readyz` reports. With the engine's [`Health`] attached
//! ([`AppState::with_health`](crate::AppState::with_health)) it is a copy of that, read from
//! memory: it never waits for the database, so it answers at once even while the database is
//! locked or the disk is full. Without an engine (an embedding that only serves approvals),
//! the service is ready when it can read its store: [`StoreProbe`] reads it at most once per
//! second, never more than one read at a time, and gives up waiting after a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use steppy_engine::health::Readiness;
use steppy_engine::store::{ApprovalState, Store};

/// A store read younger than this is reused.
const FRESH: Duration = Duration::from_secs(1);
/// The longest a readiness request waits for a store read.
const PATIENCE: Duration = Duration::from_secs(1);

/// The outcome of reading the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreCheck {
    Readable,
    Failing(String),
    /// The read did not finish within [`PATIENCE`] (a lock held elsewhere, a stuck disk).
    Unresponsive,
}

/// Reads the store for readiness, cached and one at a time.
#[derive(Debug, Default)]
pub struct StoreProbe {
    last: tokio::sync::Mutex<Option<(Instant, StoreCheck)>>,
    /// A read is running (possibly one that outlived its caller's patience).
    reading: Arc<AtomicBool>,
}

impl StoreProbe {
    /// Whether `store` can be read now (or was, less than a second ago).
    pub async fn check(&self, store: &Store) -> StoreCheck {
        let Ok(mut last) = tokio::time::timeout(PATIENCE, self.last.lock()).await else {
            return StoreCheck::Unresponsive;
        };
        if let Some((_, check)) = last.as_ref().filter(|(at, _)| at.elapsed() < FRESH) {
            return check.clone();
        }
        if self.reading.swap(true, Ordering::SeqCst) {
            return StoreCheck::Unresponsive; // the previous read still hangs
        }
        let (store, reading) = (store.clone(), self.reading.clone());
        let read = tokio::task::spawn_blocking(move || {
            let r = store.approval_views(Some(ApprovalState::Pending), 1);
            reading.store(false, Ordering::SeqCst);
            r
        });
        let check = match tokio::time::timeout(PATIENCE, read).await {
            Ok(Ok(Ok(_))) => StoreCheck::Readable,
            Ok(Ok(Err(e))) => StoreCheck::Failing(e.to_string()),
            Ok(Err(e)) => StoreCheck::Failing(format!("the read failed: {e}")),
            Err(_) => StoreCheck::Unresponsive,
        };
        *last = Some((Instant::now(), check.clone()));
        check
    }
}

/// The readiness of a service without an engine, given how its store read went.
pub fn without_engine(check: &StoreCheck) -> Readiness {
    let (database, problems) = match check {
        StoreCheck::Readable => ("readable", vec![]),
        StoreCheck::Failing(why) => ("failing", vec![format!("the database cannot be read: {why}")]),
        StoreCheck::Unresponsive => (
            "unresponsive",
            vec![format!(
                "the database did not answer a read within {} ms",
                PATIENCE.as_millis()
            )],
        ),
    };
    Readiness {
        ready: problems.is_empty(),
        engine: "absent",
        database,
        last_tick_age_ms: None,
        held_back_attempts: 0,
        problems,
    }
}
