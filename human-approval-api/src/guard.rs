//! Per-address limit on token guesses: unknown-token answers are counted per IP address in a
//! fixed window; past the limit every approval request from that address is answered 429.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts unknown-token answers per address.
pub struct GuessLimiter {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// The number of addresses tracked before expired windows are swept.
const SWEEP_AT: usize = 10_000;

impl GuessLimiter {
    pub fn new(max: u32, window: Duration) -> GuessLimiter {
        GuessLimiter {
            max,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds to wait)` if `ip` used up its guesses in the current window.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get(&ip) {
            Some((start, n)) if *n >= self.max && start.elapsed() < self.window => {
                Err(self.window.saturating_sub(start.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Records one unknown-token answer to `ip`.
    pub fn record_miss(&self, ip: IpAddr) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SWEEP_AT {
            let window = self.window;
            seen.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = seen.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_misses_per_address_only() {
        let g = GuessLimiter::new(3, Duration::from_secs(3600));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        for _ in 0..3 {
            assert!(g.check(a).is_ok());
            g.record_miss(a);
        }
        assert!(g.check(a).is_err());
        assert!(g.check(b).is_ok());
    }
}
