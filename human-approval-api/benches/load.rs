//! Load benchmark on loopback (not a test): the approval page (GET) and the decision (POST),
//! each at a fixed open-loop rate, against the real router and a SQLite store on disk
//! (synchronous=FULL by default). Every POST decides a distinct pending approval once.
//!
//! `cargo bench -p steppy-human-approval-api --bench load` (env: BENCH_RATE, default 2000/s;
//! BENCH_REQUESTS per phase, default 6000; BENCH_CLIENT_THREADS for the load generator's
//! runtime, default 1; BENCH_SYNC=normal for `synchronous=NORMAL`). Latency is measured from
//! each request's scheduled send time, so a stalled server shows up in the percentiles (no
//! coordinated omission); the scheduler's 1 ms timer tick adds up to 1 ms to each figure.
//! Beside each phase it prints the time spent inside the server's router, and before and
//! after the run what an fsync costs on the disk the database is on, since that bounds the
//! decision's latency. Bounded: BENCH_REQUESTS requests per phase, loopback only.

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::{Arc, Mutex};
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
    let exec = store
        .submit(
            &plan,
            now,
            steppy_engine::store::SubmitOptions {
                started_by: Some("bench"),
                ..Default::default()
            },
        )
        .expect("submit");
    (0..count)
        .map(|i| {
            let token = new_token().expect("token");
            let new = NewApproval {
                execution_id: exec.clone(),
                stage: 0,
                index: 0,
                idempotency_key: format!("{exec}/bench/{i}"),
                token_sha256: token_hash(&token),
                message: format!("Approval {i}: ship release 1.2.{i}?"),
                approvers: vec![],
                required: 1,
                forbid_self: false,
                requested_by: "bench".into(),
                deadline_ms: None,
                on_timeout: steppy_engine::plan::OnTimeout::Reject,
            };
            store.create_approval(&new, now).expect("approval");
            token
        })
        .collect()
}

/// Time spent inside the server per request (router in, response out), for telling the
/// server's share of the latency from the loopback's and the load generator's.
#[derive(Clone, Default)]
struct ServerTimes(Arc<Mutex<Vec<f64>>>);

impl ServerTimes {
    /// Empties the record, returning what it held (milliseconds, sorted).
    fn take(&self) -> Vec<f64> {
        let mut times = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        times.sort_by(|a, b| a.total_cmp(b));
        times
    }
}

async fn time_request(State(times): State<ServerTimes>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(req).await;
    times
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(started.elapsed().as_secs_f64() * 1000.0);
    response
}

/// The `p` quantile of sorted `values` (NaN if empty).
fn pct(values: &[f64], p: f64) -> f64 {
    values
        .get(((values.len() as f64 * p).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(f64::NAN)
}

/// What one fsync costs on the disk under `dir` right now: 200 small appends, each synced, as
/// a commit in WAL mode does. Printed beside the results, since it bounds the POST latency.
fn fsync_probe(dir: &std::path::Path) -> String {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let Ok(mut file) = std::fs::File::create(&path) else {
        return "fsync probe: cannot create a file".into();
    };
    let mut times: Vec<f64> = (0..200)
        .filter_map(|_| {
            file.write_all(&[7u8; 3 * 4096]).ok()?;
            let started = Instant::now();
            file.sync_all().ok()?;
            Some(started.elapsed().as_secs_f64() * 1000.0)
        })
        .collect();
    let _ = std::fs::remove_file(&path);
    times.sort_by(|a, b| a.total_cmp(b));
    format!(
        "fsync on this disk: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&times, 0.5),
        pct(&times, 0.99),
        pct(&times, 1.0)
    )
}

struct Phase {
    name: &'static str,
    latencies_ms: Vec<f64>,
    errors: usize,
    elapsed: Duration,
    server_ms: Vec<f64>,
}

impl Phase {
    fn report(&mut self, target: u64) {
        self.latencies_ms.sort_by(|a, b| a.total_cmp(b));
        let (lat, n) = (&self.latencies_ms, self.latencies_ms.len());
        let rate = (n + self.errors) as f64 / self.elapsed.as_secs_f64();
        println!(
            "{:<22} target {target:>5}/s  achieved {rate:>7.0}/s  requests {:>6}  errors {:>3}  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
            self.name,
            n + self.errors,
            self.errors,
            pct(lat, 0.50),
            pct(lat, 0.99),
            pct(lat, 1.0)
        );
        let srv = &self.server_ms;
        println!(
            "{:<22} of which inside the server: p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
            "",
            pct(srv, 0.50),
            pct(srv, 0.99),
            pct(srv, 1.0)
        );
    }
}

/// Prints the first few failed requests (stderr) and counts the failure.
fn report_error(i: usize, what: &str) -> bool {
    static SHOWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if SHOWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 {
        eprintln!("request {i} failed: {what}");
    }
    false
}

/// Sends `count` requests at `rate` per second, each built by `make(i)`, and times each from
/// its scheduled send time.
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
                Ok(r) if r.status().as_u16() == expect => r.bytes().await.is_ok(),
                Ok(r) => report_error(i, &r.status().to_string()),
                Err(e) => report_error(i, &e.to_string()),
            };
            (ok, at.elapsed())
        }));
    }
    let mut phase = Phase {
        name,
        latencies_ms: Vec::with_capacity(count),
        errors: 0,
        elapsed: Duration::ZERO,
        server_ms: Vec::new(),
    };
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
    println!(
        "seeded {count} pending approvals in {:.1}s; loopback, {rate}/s open loop",
        seeding.elapsed().as_secs_f64()
    );

    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let durability = if std::env::var("BENCH_SYNC").is_ok_and(|v| v.eq_ignore_ascii_case("normal")) {
        Durability::Normal
    } else {
        Durability::Full
    };
    let store = Store::open_with(&db, durability).expect("open store");
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    println!("store durability: {durability:?} (BENCH_SYNC=normal for synchronous=NORMAL)");
    let state = AppState::new(store.clone(), ApiConfig::new(base.clone()));
    let times = ServerTimes::default();
    let app =
        steppy_human_approval_api::router(state).layer(middleware::from_fn_with_state(times.clone(), time_request));
    server.spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    println!("{}", fsync_probe(dir.path()));

    // One thread is plenty for 2,000 requests/s, and leaves more of a small machine to the
    // server; a generator that fell behind would show as latency, measured from the schedule.
    let client_threads = env_or("BENCH_CLIENT_THREADS", 1) as usize;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads.max(1))
        .enable_all()
        .build()
        .expect("client runtime");
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
            .form(&[
                ("decision", "approve"),
                ("approver", "load@example.com"),
                ("comment", "bench"),
            ])
    });

    client_rt.block_on(async {
        // Warm the connection pool and the page path.
        let _ = open_loop("warm-up", rate, (rate as usize / 4).min(count), 200, get.clone()).await;
        times.take();
        let mut phase = open_loop("GET  /approvals/{t}", rate, count, 200, get).await;
        phase.server_ms = times.take();
        phase.report(rate);
        let mut phase = open_loop("POST /approvals/{t}", rate, count, 303, post).await;
        phase.server_ms = times.take();
        phase.report(rate);
    });
    println!("{}", fsync_probe(dir.path()));
    let decided = store.count("approvals", "state = 'approved'").expect("count");
    println!("approvals decided: {decided} of {count} (each exactly once)");
    assert_eq!(decided as usize, count, "every POST decides its own approval");
}
