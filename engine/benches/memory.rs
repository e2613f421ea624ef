//! Benchmark 2: memory for 10,000 steps waiting at once (one stage of 10,000 hour-long waits,
//! durable store). Counts bytes the Rust allocator holds (SQLite's own page cache uses the C
//! allocator and is reported separately through the resident set size). Goal: under 10 KB each.
//!
//! Run: `cargo bench -p steppy-engine --bench memory`

#[path = "common.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

/// Counts bytes currently allocated through Rust's global allocator.
struct Counting;
static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed straight to `System`, which upholds `GlobalAlloc`'s contract;
// the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's `layout` obligations are forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this `layout` (every allocation goes through us).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; `new_size` obligations are the caller's, forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const STEPS: usize = 10_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = steppy_engine::store::Store::open(&dir.path().join("bench.db")).expect("store");
    let plan = common::plan(1, STEPS, "Wait", "sleep:3600");
    let id = store.submit(&plan, 0, Default::default()).expect("submit");
    drop(plan);
    let (engine, ex) = common::engine(&store);
    let stats = ex.stats.clone();
    let (before, rss_before) = (ALLOCATED.load(Ordering::SeqCst), common::rss_bytes().unwrap_or(0));
    runtime.block_on(async {
        let ids = vec![id.clone()];
        let task = tokio::spawn(async move { engine.run(&ids).await });
        while stats.resumes.load(Ordering::SeqCst) < STEPS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await; // let the last commits land
        let after = ALLOCATED.load(Ordering::SeqCst);
        let rss_after = common::rss_bytes().unwrap_or(0);
        let waiting = store
            .count("steps", &format!("execution_id = '{id}' AND state = 'WAITING'"))
            .expect("count");
        println!(
            "memory: {waiting} steps waiting at once; Rust heap {:.2} MB = {:.0} bytes per waiting step; \
             resident set grew {:.2} MB = {:.0} bytes per step (includes SQLite's cache)",
            (after - before) as f64 / 1e6,
            (after - before) as f64 / STEPS as f64,
            rss_after.saturating_sub(rss_before) as f64 / 1e6,
            rss_after.saturating_sub(rss_before) as f64 / STEPS as f64
        );
        task.abort();
    });
}
