//! Load benchmark on loopback (not a test): the approval page (GET) and the decision (POST),
//! each at a fixed open-loop rate, against the real router and a SQLite store on disk
//! (synchronous=FULL by default). Every POST decides a distinct pending approval once.
//!
//! `cargo bench -p steppy-human-approval-api --bench load` (env: BENCH_RATE, default 2000/s;
//! BENCH_REQUESTS per phase, default 6000). Latency is measured from each request's scheduled
//! send time, so a stalled server shows up in the percentiles (no coordinated omission).
//! Bounded: BENCH_REQUESTS requests per phase, loopback only.

use std::sync::Arc;
use std::time::{Duration, Instant};
use steppy_engine::clock::system_now_ms;
use steppy_engine::store::{Durability, NewApproval, Store};
use steppy_executors::human::{new_token, token_hash};
use steppy_human_approval_api::{ApiConfig, AppState};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Records `count` pending approvals on one execution and returns their tokens.
fn seed(path: &std::path::Path, count: usize) -> Vec<String> {
    let store = Store::open_with(path, Durability::Normal).expect("open store for seeding");
    let plan: steppy_engine::Plan = serde_json::from_value(serde_json::json!({
        "name": "Load", "stages": [{ "name": "Sign-off", "steps": [{ "type": "Human", "name": "Go", "message": "Ship it?" }] }]
    }))
    .expect("plan");
    let now = system_now_ms();
    let exec = store.submit_as(&plan, now, Some("bench")).expect("submit");
    (0..count)
        .map(|i| {
            let token = new_token().expect("token");
            let new = NewApproval {
                execution_id: exec.clone(), stage: 0, index: 0, idempotency_key: format!("{exec}/bench/{i}"),
                token_sha256: token_hash(&token), message: format!("Approval {i}: ship release 1.2.{i}?"), approvers: vec![],
                required: 1, forbid_self: false, requested_by: "bench".into(), deadline_ms: None, on_timeout: "reject".into(),
            };
            store.create_approval(&new, now).expect("approval");
            token
        })
        .collect()
}

struct Phase {
    name: &'static str,
    latencies_ms: Vec<f64>,
    errors: usize,
    elapsed: Duration,
}

impl Phase {
    fn report(&mut self, target: u64) {
        self.latencies_ms.sort_by(|a, b| a.total_cmp(b));
        let n = self.latencies_ms.len();
        let pct = |p: f64| self.latencies_ms.get(((n as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
        let rate = (n + self.errors) as f64 / self.elapsed.as_secs_f64();
        println!(
            "{:<22} target {target:>5}/s  achieved {rate:>7.0}/s  requests {:>6}  errors {:>3}  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
            self.name, n + self.errors, self.errors, pct(0.50), pct(0.99), pct(1.0)
        );
    }
}

/// Sends `requests.len()` requests at `rate` per second, each built by `make(i)`.
async fn open_loop(
    name: &'static str,
    rate: u64,
    count: usize,
    expect: u16,
    make: Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync>,
) -> Phase {
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let at = start + Duration::from_secs_f64(i as f64 / rate as f64);
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let ok = match make(i).send().await {
                Ok(r) => r.status().as_u16() == expect && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            (ok, at.elapsed())
        }));
    }
    let mut phase = Phase { name, latencies_ms: Vec::with_capacity(count), errors: 0, elapsed: Duration::ZERO };
    for t in tasks {
        match t.await {
            Ok((true, took)) => phase.latencies_ms.push(took.as_secs_f64() * 1000.0),
            _ => phase.errors += 1,
        }
    }
    phase.elapsed = start.elapsed();
    phase
}

fn main() {
    let rate = env_or("BENCH_RATE", 2000);
    let count = env_or("BENCH_REQUESTS", 6000) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("steppy.db");
    let seeding = Instant::now();
    let tokens = Arc::new(seed(&db, count));
    println!("seeded {count} pending approvals in {:.1}s; loopback, {rate}/s open loop", seeding.elapsed().as_secs_f64());

    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("server runtime");
    let durability = if std::env::var("BENCH_SYNC").is_ok_and(|v| v.eq_ignore_ascii_case("normal")) { Durability::Normal } else { Durability::Full };
    let store = Store::open_with(&db, durability).expect("open store");
    let listener = server.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    println!("store durability: {durability:?} (BENCH_SYNC=normal for synchronous=NORMAL)");
    let state = AppState::new(store.clone(), ApiConfig::new(base.clone()));
    server.spawn(steppy_human_approval_api::serve(listener, state, std::future::pending()));

    let client_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("client runtime");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(512)
        .build()
        .expect("client");

    let (c, t, b) = (client.clone(), tokens.clone(), base.clone());
    let get: Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync> =
        Arc::new(move |i| c.get(format!("{b}/approvals/{}?action=approve", t[i % t.len()])));
    let (c, t, b) = (client.clone(), tokens.clone(), base.clone());
    let post: Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync> = Arc::new(move |i| {
        c.post(format!("{b}/approvals/{}", t[i]))
            .header("Sec-Fetch-Site", "same-origin")
            .form(&[("decision", "approve"), ("approver", "load@example.com"), ("comment", "bench")])
    });

    client_rt.block_on(async {
        // Warm the connection pool and the page path.
        let _ = open_loop("warm-up", rate, (rate as usize / 4).min(count), 200, get.clone()).await;
        open_loop("GET  /approvals/{t}", rate, count, 200, get).await.report(rate);
        open_loop("POST /approvals/{t}", rate, count, 303, post).await.report(rate);
    });
    let decided = store.count("approvals", "state = 'approved'").expect("count");
    println!("approvals decided: {decided} of {count} (each exactly once)");
    assert_eq!(decided as usize, count, "every POST decides its own approval");
}
