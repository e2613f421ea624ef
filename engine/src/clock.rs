//! Wall-clock time that follows tokio's clock.
//!
//! Deadlines are stored as Unix epoch milliseconds so that they survive a restart. Sleeping uses
//! tokio's clock so that tests with paused time (`#[tokio::test(start_paused = true)]`) run
//! hours of waits instantly. [`Clock`] bridges the two: it reads the epoch once and then adds
//! the time tokio says has passed. [`format_utc`] shows such a time to people.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Epoch milliseconds derived from tokio's clock. Cheap to copy.
///
/// Every clock of a process shares one anchor (read once), so two engines in one process (or
/// one test) agree on the time even when tokio's time is paused and advanced.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch_ms_at_base: i64,
    base: std::time::Instant,
}

impl Clock {
    /// The process's clock. Reads tokio's time, so call it inside a tokio runtime.
    pub fn system() -> Self {
        static ANCHOR: std::sync::OnceLock<(i64, std::time::Instant)> = std::sync::OnceLock::new();
        let (epoch_ms_at_base, base) = *ANCHOR.get_or_init(|| (system_now_ms(), Instant::now().into_std()));
        Clock { epoch_ms_at_base, base }
    }

    /// Milliseconds since the Unix epoch, now.
    pub fn now_ms(&self) -> i64 {
        let now = Instant::now().into_std();
        let offset = match now.checked_duration_since(self.base) {
            Some(ahead) => ahead.as_millis() as i64,
            None => -(self.base.duration_since(now).as_millis() as i64),
        };
        self.epoch_ms_at_base + offset
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
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Epoch milliseconds `ms` as UTC through a jiff `strftime` pattern (`"%Y-%m-%d %H:%M UTC"`). An
/// instant no calendar can show (beyond the year 9999, say, from a damaged row) prints as its
/// raw number of milliseconds rather than failing the page or the listing.
pub fn format_utc(ms: i64, pattern: &str) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(at) => at.strftime(pattern).to_string(),
        Err(_) => format!("{ms} ms after the epoch"),
    }
}
