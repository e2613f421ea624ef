//! Wall-clock time that follows tokio's clock.
//!
//! Deadlines are stored as Unix epoch milliseconds so that they survive a restart. Sleeping uses
//! tokio's clock so that tests with paused time (`#[tokio::test(start_paused = true)]`) run
//! hours of waits instantly. [`Clock`] bridges the two: it reads the epoch once and then adds
//! the time tokio says has passed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Epoch milliseconds derived from tokio's clock. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch_ms_at_base: i64,
    base: Instant,
}

impl Clock {
    /// A clock anchored at the system time now. Must be called inside a tokio runtime.
    pub fn system() -> Self {
        let epoch_ms_at_base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock { epoch_ms_at_base, base: Instant::now() }
    }

    /// Milliseconds since the Unix epoch, now.
    pub fn now_ms(&self) -> i64 {
        self.epoch_ms_at_base + self.base.elapsed().as_millis() as i64
    }

    /// The tokio instant at which the wall clock reads `epoch_ms` (now, if that has passed).
    pub fn instant_at(&self, epoch_ms: i64) -> Instant {
        let ahead = (epoch_ms - self.now_ms()).max(0) as u64;
        Instant::now() + Duration::from_millis(ahead)
    }

    /// Sleeps until the wall clock reads `epoch_ms`.
    pub async fn sleep_until(&self, epoch_ms: i64) {
        tokio::time::sleep_until(self.instant_at(epoch_ms)).await
    }
}

/// Milliseconds since the Unix epoch by the system clock (for code outside a runtime).
pub fn system_now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
