//! Benchmark of the batched build poller (`cargo bench -p steppy-executors --bench poller`).
//!
//! N builds are in flight at once against a fake CodeBuild (aws-smithy-mocks; no network).
//! It shows:
//! - calls per interval: every registered build is read each tick in BatchGetBuilds calls of up
//!   to 100 ids, so 500 builds cost 5 calls per interval however many steps wait;
//! - completion latency: all builds end at one moment; each waiter hears within one interval.
//!
//! Set `POLLER_BENCH_INTERVAL_MS` (default 200) to change the interval.

use steppy_test_support::fakes;

use fakes::{FakeBuild, FakeCodeBuild};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use steppy_executors::aws::poller::{BuildPoller, Watch};

async fn measure(n: usize, interval: Duration) {
    let fake = FakeCodeBuild::new(0);
    let ids: Vec<String> = (0..n).map(|i| format!("bench:{i:05}")).collect();
    for id in &ids {
        let build = FakeBuild {
            project: "bench".into(),
            reads_left: u32::MAX,
            end: aws_sdk_codebuild::types::StatusType::Succeeded,
            stopped: false,
            env: vec![],
        };
        fake.add(id, build);
    }
    let poller = BuildPoller::new(fake.client(), interval, "bench".into());
    let waiters: Vec<_> = ids
        .iter()
        .map(|id| {
            let (p, id) = (poller.clone(), id.clone());
            tokio::spawn(async move { p.wait(&id).await })
        })
        .collect();

    // Let it tick for 5 intervals with everything in flight.
    let ticks_before = poller.stats().ticks.load(Ordering::SeqCst);
    let calls_before = fake.batch_calls.load(Ordering::SeqCst);
    tokio::time::sleep(interval * 5 + interval / 2).await;
    let ticks = poller.stats().ticks.load(Ordering::SeqCst) - ticks_before;
    let calls = fake.batch_calls.load(Ordering::SeqCst) - calls_before;

    // Every build ends now; time until each waiter hears.
    let ended = Instant::now();
    for id in &ids {
        fake.finish(id);
    }
    let mut worst = Duration::ZERO;
    let mut succeeded = 0;
    for w in waiters {
        if let Ok(Watch::Ended(state)) = w.await {
            succeeded += usize::from(state.status == "SUCCEEDED");
        }
        worst = worst.max(ended.elapsed());
    }
    let per_tick = calls as f64 / ticks.max(1) as f64;
    println!(
        "{n:>6} builds | {ticks} ticks, {calls} BatchGetBuilds calls = {per_tick:.1} calls/interval (expected {}) | all {succeeded} seen ended within {:.0} ms (interval {} ms)",
        n.div_ceil(100),
        worst.as_secs_f64() * 1000.0,
        interval.as_millis()
    );
    assert_eq!(succeeded, n);
    assert!(
        worst <= interval + interval / 2,
        "completion must be seen within about one interval"
    );
}

fn main() {
    let interval_ms = std::env::var("POLLER_BENCH_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200u64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for n in [100, 500, 2000] {
            measure(n, Duration::from_millis(interval_ms)).await;
        }
    });
}
