//! Retry delays for AWS calls that were throttled or failed transiently.
//!
//! Doubling from a base, capped, with ±20 % jitter so that many waiters do not retry in step.

use std::time::Duration;

/// Longest delay between two tries.
pub const MAX_DELAY: Duration = Duration::from_secs(300);

/// The delay before try number `failures + 1`, after `failures` consecutive failures.
pub fn delay(base: Duration, failures: u32) -> Duration {
    let factor = 2f64.powi(failures.min(16) as i32);
    let raw = (base.as_secs_f64() * factor).min(MAX_DELAY.as_secs_f64().max(base.as_secs_f64()));
    let mut byte = [0u8; 1];
    let jitter = if getrandom::fill(&mut byte).is_ok() {
        0.8 + 0.4 * (byte[0] as f64 / 255.0)
    } else {
        1.0
    };
    Duration::from_secs_f64(raw * jitter)
}

/// Calls `call` until it succeeds, fails permanently, or has been tried `tries` times;
/// throttled and transient failures are retried after [`delay`]. (The SDK retries a few times
/// itself; this covers longer trouble around the calls that start work.)
pub async fn retry<T, F, Fut>(tries: u32, base: Duration, mut call: F) -> Result<T, super::errors::AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, super::errors::AwsError>>,
{
    let mut failures = 0;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if e.kind != super::errors::Kind::Permanent && failures + 1 < tries => {
                tokio::time::sleep(delay(base, failures)).await;
                failures += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_caps() {
        let base = Duration::from_secs(1);
        assert!(delay(base, 0) <= Duration::from_millis(1200));
        assert!(delay(base, 3) >= Duration::from_millis(6400));
        assert!(delay(base, 30) <= Duration::from_secs(360));
    }
}
