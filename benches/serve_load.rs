//! Load benchmark of `steppy serve` (issue 10), on loopback, against the release binary. Not a
//! test: run it with `cargo bench --bench serve_load -- N` (N executions, default 1000).
//!
//! What it does, in order:
//! 1. Raises this process's soft `RLIMIT_NOFILE` to the hard limit, makes a temporary directory
//!    with the database and an admin token file, and starts
//!    `steppy serve --listen 127.0.0.1:PORT --admin-token-file F --max-connections CAP` with its
//!    stdout piped (no AWS: Notify appends to `outbox.jsonl` beside the database, and each
//!    Human approval's links are printed on stdout, which a reader thread parses for tokens).
//!    CAP (default 2048, `BENCH_MAX_CONNECTIONS`) fits the idle connections, the probes and the
//!    clients, so that the default cap of 1,024 does not decide the outcome.
//! 2. Waits for `GET /readyz` 200, then opens `BENCH_IDLE` (default 1000) TCP connections that
//!    never send a byte, and holds that many open for the whole run: the server closes a
//!    connection that sends no request head within its header timeout (10 s), so a monitor
//!    thread notices every close (EOF, reset, or a 503 written at the cap), records the
//!    connection's age, and opens a new one in its place.
//! 3. A probe thread sends `GET /readyz` on a fresh connection every 20 ms and records each
//!    latency (connect to the end of the response) and status until the end.
//! 4. Four client threads submit N executions with `POST /api/executions` (Bearer token); each
//!    plan is stage 1 = a `Wait` of 1 s and a `Notify`, stage 2 = a `Human`. Four approver
//!    threads post `{"decision":"approve","approver":"bench"}` to
//!    `POST /api/approvals/{token}/decision` for every token serve prints.
//! 5. The main thread polls `GET /api/executions` every 250 ms until all N are SUCCEEDED
//!    (bounded: 120 s + 0.2 s per execution; any FAILED or ABORTED ends the run at once).
//! 6. It stops serve (SIGTERM) and checks the database (`Store::history`): per execution one
//!    `ExecutionStarted`, no `ExecutionResumed`, one `StepStarted` per step key and one per
//!    step, one `ApprovalRequested` and no rotated token; and the outbox: one line per Notify
//!    key, and nothing else.
//!
//! It prints one summary (what a synced append costs on the database's disk before and after
//! the run, N, wall time from the first submit to the last `ExecutionSucceeded`
//! in the database, executions/s, when the first, median and last execution reached each
//! milestone of its history, `/readyz` probes and their p50/p99/max latency and non-200
//! count, the idle connections open at the end and closed by the server, decisions posted) and
//! exits 1 if an execution did not succeed, anything was started or sent twice, a decision or a
//! probe was not answered 200, or the run hit a bound. The `/readyz` latency goal (< 100 ms)
//! is reported, not enforced. Exit 2: the run could not be set up or measured (serve did not
//! start, a submit was refused, the database or the outbox could not be read). Every HTTP request here is a tiny HTTP/1.1 client over
//! `std::net::TcpStream` (`Connection: close`), with timeouts on every read and write.
//!
//! Settings (environment): `BENCH_IDLE` (idle connections, default 1000),
//! `BENCH_MAX_CONNECTIONS` (serve's cap, default 2048), `BENCH_ECHO=1` (echo serve's stdout),
//! `BENCH_KEEP=1` (keep the temporary directory: database, outbox, serve's stderr),
//! `BENCH_OUTBOX_LINES` (earlier notifications in the outbox before serve starts, as a
//! long-running serve leaves it; default 0).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use steppy_engine::events::EventType;
use steppy_engine::store::Store;

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef0123456789abcdef";
const CLIENT_THREADS: usize = 4;
const APPROVER_THREADS: usize = 4;
const PROBE_EVERY: Duration = Duration::from_millis(20);
const POLL_EVERY: Duration = Duration::from_millis(250);
/// Timeout of each read or write of one HTTP exchange.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Events whose times the summary shows (first, median and last execution to reach each):
/// where an execution's time goes. The stage, when it matters.
const MILESTONES: [(&str, EventType, Option<usize>); 8] = [
    ("submitted", EventType::ExecutionSubmitted, None),
    ("started", EventType::ExecutionStarted, None),
    ("Wait + Notify started", EventType::StepStarted, Some(0)),
    ("stage 1 ended", EventType::StageEnded, Some(0)),
    ("Human started", EventType::StepStarted, Some(1)),
    ("approval requested", EventType::ApprovalRequested, None),
    ("approval decided", EventType::ApprovalDecided, None),
    ("succeeded", EventType::ExecutionSucceeded, None),
];
/// The `/readyz` latency goal.
const READYZ_GOAL: Duration = Duration::from_millis(100);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; the first number is N.
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1000);
    let idle_target = env_or("BENCH_IDLE", 1000);
    let max_connections = env_or("BENCH_MAX_CONNECTIONS", 2048);
    match run(n, idle_target, max_connections) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(why) => {
            eprintln!("serve_load: {why}");
            ExitCode::from(2)
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one; returns the soft limit in force.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux and macOS, i64 on some BSDs
fn raise_nofile() -> Result<u64, String> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    if rl.rlim_cur < rl.rlim_max {
        let want = libc::rlimit {
            rlim_cur: rl.rlim_max,
            rlim_max: rl.rlim_max,
        };
        // SAFETY: `want` is a valid rlimit; setrlimit only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } != 0 {
            return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
        }
        rl = want;
    }
    Ok(rl.rlim_cur as u64)
}

/// A free loopback port (bound and released; serve binds it right after).
fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("local_addr: {e}"))
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`): the status and the body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    s.set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| format!("set_write_timeout: {e}"))?;
    let _ = s.set_nodelay(true);
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = bearer {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if method != "GET" {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    s.write_all(&out).map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16384];
    let mut head: Option<(usize, u16, Option<usize>)> = None;
    // Bounded by IO_TIMEOUT per read and by the response's end (Content-Length or EOF).
    loop {
        if let Some((end, status, Some(len))) = head
            && buf.len() >= end + len
        {
            return Ok((status, buf[end..end + len].to_vec()));
        }
        let got = s.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if got == 0 {
            return match head {
                Some((end, status, _)) => Ok((status, buf[end..].to_vec())),
                None => Err(format!(
                    "connection closed before a response head ({} bytes)",
                    buf.len()
                )),
            };
        }
        buf.extend_from_slice(&chunk[..got]);
        if head.is_none()
            && let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n")
        {
            let text = String::from_utf8_lossy(&buf[..pos]).to_string();
            let status = text
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("bad status line: {:?}", text.lines().next()))?;
            let len = text.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())
                    .flatten()
            });
            head = Some((pos + 4, status, len));
        }
    }
}

fn json(body: &[u8]) -> Result<serde_json::Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// The plan of execution `i`: stage 1 = Wait 1 s + Notify, stage 2 = Human.
fn plan(i: usize) -> Vec<u8> {
    serde_json::json!({
        "name": format!("bench {i}"),
        "stages": [
            { "name": "one", "steps": [
                { "type": "Wait", "name": "wait", "seconds": 1 },
                { "type": "Notify", "name": "notify", "message": format!("bench {i} passed its wait") }
            ]},
            { "name": "two", "steps": [
                { "type": "Human", "name": "sign-off", "message": format!("ship bench {i}?") }
            ]}
        ]
    })
    .to_string()
    .into_bytes()
}

/// `steppy serve`, stopped (SIGTERM, then SIGKILL) when dropped.
struct Serve {
    child: Child,
}

impl Serve {
    /// SIGTERM, then waits up to 20 s; SIGKILL after that. The exit status, if it exited.
    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What serve's stdout told us.
#[derive(Default)]
struct Stdout {
    lines: AtomicUsize,
    tokens: AtomicUsize,
}

/// Reads serve's stdout until it closes: every `open to approve:` link's token goes to
/// `tokens`; with `BENCH_ECHO=1` every line is echoed.
fn read_stdout(out: std::process::ChildStdout, stats: Arc<Stdout>, tokens: mpsc::Sender<String>) {
    let echo = std::env::var("BENCH_ECHO").is_ok_and(|v| v == "1");
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        stats.lines.fetch_add(1, Ordering::Relaxed);
        if echo {
            println!("serve| {line}");
        }
        if let Some(url) = line.split("open to approve: ").nth(1)
            && let Some(token) = url.split("/approvals/").nth(1).and_then(|t| t.split('?').next())
        {
            stats.tokens.fetch_add(1, Ordering::Relaxed);
            let _ = tokens.send(token.trim().to_string());
        }
    }
}

/// One `/readyz` probe: when it was sent (since the start), how long it took, its status
/// (0: no answer).
struct Probe {
    at: Duration,
    took: Duration,
    status: u16,
}

fn probe_loop(
    addr: SocketAddr,
    start: Instant,
    stop: Arc<AtomicBool>,
    problems: Arc<Mutex<Vec<String>>>,
) -> Vec<Probe> {
    let mut probes = Vec::new();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let status = match http(addr, "GET", "/readyz", None, b"") {
            Ok((200, _)) => 200,
            Ok((status, body)) => {
                note(
                    &problems,
                    format!(
                        "/readyz {status} at {:.1}s: {}",
                        (sent - start).as_secs_f64(),
                        String::from_utf8_lossy(&body)
                    ),
                );
                status
            }
            Err(e) => {
                note(
                    &problems,
                    format!("/readyz unanswered at {:.1}s: {e}", (sent - start).as_secs_f64()),
                );
                0
            }
        };
        probes.push(Probe {
            at: sent - start,
            took: sent.elapsed(),
            status,
        });
        next += PROBE_EVERY;
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        } else {
            next = now; // fell behind (a slow answer): no burst to catch up
        }
    }
    probes
}

/// Keeps the first 20 problems of a kind, counts the rest.
fn note(problems: &Mutex<Vec<String>>, what: String) {
    let mut p = problems.lock().expect("problems lock");
    if p.len() < 20 {
        p.push(what);
    } else if p.len() == 20 {
        p.push("(more left out)".into());
    }
}

/// The idle connections and what happened to them.
#[derive(Default)]
struct IdleStats {
    opened: usize,
    open_failures: usize,
    /// Closed by the server (EOF or reset), with the connection's age at the close.
    closed_ages: Vec<Duration>,
    /// Answered (a 503 at the cap) and closed.
    answered: usize,
    open_at_end: usize,
}

/// Holds `target` idle connections open until `stop`: checks each every 100 ms (a
/// non-blocking peek) and replaces any the server closed. `ready` is sent once all are open.
fn hold_idle(addr: SocketAddr, target: usize, stop: Arc<AtomicBool>, ready: mpsc::Sender<usize>) -> IdleStats {
    let mut stats = IdleStats::default();
    let open = |stats: &mut IdleStats| -> Option<(TcpStream, Instant)> {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) if s.set_nonblocking(true).is_ok() => {
                stats.opened += 1;
                Some((s, Instant::now()))
            }
            _ => {
                stats.open_failures += 1;
                None
            }
        }
    };
    let mut conns: Vec<Option<(TcpStream, Instant)>> = (0..target).map(|_| open(&mut stats)).collect();
    let _ = ready.send(conns.iter().filter(|c| c.is_some()).count());
    // One look at every connection: closes are counted, and replaced unless this is the last.
    let look = |conns: &mut Vec<Option<(TcpStream, Instant)>>, stats: &mut IdleStats, replace: bool| {
        let mut byte = [0u8; 1];
        for slot in conns.iter_mut() {
            let closed = match slot {
                Some((s, opened)) => match s.peek(&mut byte) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
                    Ok(0) | Err(_) => {
                        stats.closed_ages.push(opened.elapsed());
                        true
                    }
                    Ok(_) => {
                        stats.answered += 1;
                        true
                    }
                },
                None => true,
            };
            if closed {
                *slot = if replace { open(stats) } else { None };
            }
        }
    };
    while !stop.load(Ordering::Relaxed) {
        look(&mut conns, &mut stats, true);
        thread::sleep(Duration::from_millis(100));
    }
    look(&mut conns, &mut stats, false);
    stats.open_at_end = conns.iter().filter(|c| c.is_some()).count();
    stats
}

/// What a synced append costs on the disk of `dir` (the database's): p50 and p99 of 200
/// appends of 100 bytes, each followed by `sync_data`. Every durable step of the engine waits
/// for at least one such sync, so it explains much of a run's time.
fn fsync_cost(dir: &Path) -> Result<(Duration, Duration), String> {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("fsync probe: {e}"))?;
    let mut took = Vec::with_capacity(200);
    for _ in 0..200 {
        let t = Instant::now();
        f.write_all(&[b'x'; 100])
            .map_err(|e| format!("fsync probe write: {e}"))?;
        f.sync_data().map_err(|e| format!("fsync probe sync: {e}"))?;
        took.push(t.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    took.sort();
    Ok((percentile(&took, 0.5), percentile(&took, 0.99)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn run(n: usize, idle_target: usize, max_connections: usize) -> Result<bool, String> {
    let nofile = raise_nofile()?;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let db = dir.path().join("steppy.db");
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, ADMIN_TOKEN).map_err(|e| format!("admin token file: {e}"))?;
    let stderr_path = dir.path().join("serve.stderr");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| format!("stderr file: {e}"))?;
    // An outbox as a long-running serve leaves it (`BENCH_OUTBOX_LINES` earlier notifications).
    let prefill = env_or("BENCH_OUTBOX_LINES", 0);
    if prefill > 0 {
        let mut text = String::with_capacity(prefill * 200);
        for i in 0..prefill {
            text.push_str(&serde_json::json!({ "key": format!("earlier/{i}/0.1/1"), "executionId": "earlier", "step": "notify", "subject": null, "message": "an earlier notification", "atMs": 0 }).to_string());
            text.push('\n');
        }
        std::fs::write(dir.path().join("outbox.jsonl"), text).map_err(|e| format!("outbox prefill: {e}"))?;
    }
    let sync_before = fsync_cost(dir.path())?;
    let port = free_port()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}")
        .parse()
        .map_err(|e| format!("address: {e}"))?;
    println!(
        "serve_load: N={n}, {idle_target} idle connections, --max-connections {max_connections}, RLIMIT_NOFILE {nofile}, database {}",
        db.display()
    );

    let child = Command::new(env!("CARGO_BIN_EXE_steppy"))
        .arg("--db")
        .arg(&db)
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--max-connections",
            &max_connections.to_string(),
            "--admin-token-file",
        ])
        .arg(&token_file)
        .env_remove("STEPPY_TOPIC_ARN")
        .env_remove("STEPPY_PUBLIC_URL")
        .env_remove("STEPPY_ADMIN_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start steppy serve: {e}"))?;
    let mut serve = Serve { child };
    println!("serve_load: steppy serve is pid {}", serve.child.id());
    let stdout = serve.child.stdout.take().ok_or("serve has no stdout")?;
    let out_stats = Arc::new(Stdout::default());
    let (token_tx, token_rx) = mpsc::channel::<String>();
    let reader = {
        let out_stats = out_stats.clone();
        thread::spawn(move || read_stdout(stdout, out_stats, token_tx))
    };

    // Ready?
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = http(addr, "GET", "/readyz", None, b"") {
            break;
        }
        if let Ok(Some(status)) = serve.child.try_wait() {
            return Err(format!(
                "steppy serve exited ({status}) before it was ready: {}",
                tail(&stderr_path)
            ));
        }
        if Instant::now() > until {
            return Err(format!(
                "steppy serve was not ready within 30 s: {}",
                tail(&stderr_path)
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let problems = Arc::new(Mutex::new(Vec::<String>::new()));

    let (idle_ready_tx, idle_ready_rx) = mpsc::channel();
    let idle = {
        let stop = stop.clone();
        thread::spawn(move || hold_idle(addr, idle_target, stop, idle_ready_tx))
    };
    let idle_open = idle_ready_rx
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "the idle connections did not open within 60 s")?;
    println!(
        "serve_load: {idle_open} idle connections open after {:.2} s",
        start.elapsed().as_secs_f64()
    );

    let prober = {
        let (stop, problems) = (stop.clone(), problems.clone());
        thread::spawn(move || probe_loop(addr, start, stop, problems))
    };

    // Approvers: every token shown is approved once.
    let token_rx = Arc::new(Mutex::new(token_rx));
    let decided = Arc::new(AtomicUsize::new(0));
    let decision_failures = Arc::new(AtomicUsize::new(0));
    let approvers: Vec<_> = (0..APPROVER_THREADS)
        .map(|_| {
            let (rx, stop, decided, failures, problems) = (
                token_rx.clone(),
                stop.clone(),
                decided.clone(),
                decision_failures.clone(),
                problems.clone(),
            );
            thread::spawn(move || {
                let body = br#"{"decision":"approve","approver":"bench"}"#;
                while !stop.load(Ordering::Relaxed) {
                    let next = rx
                        .lock()
                        .expect("token queue lock")
                        .recv_timeout(Duration::from_millis(100));
                    let token = match next {
                        Ok(t) => t,
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    };
                    match http(addr, "POST", &format!("/api/approvals/{token}/decision"), None, body) {
                        Ok((200, _)) => {
                            decided.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((status, body)) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            note(
                                &problems,
                                format!("decision {status}: {}", String::from_utf8_lossy(&body)),
                            );
                        }
                        Err(e) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            note(&problems, format!("decision unanswered: {e}"));
                        }
                    }
                }
            })
        })
        .collect();

    // Submit.
    let first_submit_ms = now_ms();
    let submit_start = Instant::now();
    let submitters: Vec<_> = (0..CLIENT_THREADS)
        .map(|t| {
            thread::spawn(move || -> Result<Vec<String>, String> {
                let mut ids = Vec::new();
                for i in (t..n).step_by(CLIENT_THREADS) {
                    let (status, body) = http(addr, "POST", "/api/executions", Some(ADMIN_TOKEN), &plan(i))?;
                    if status != 201 {
                        return Err(format!(
                            "POST /api/executions {status}: {}",
                            String::from_utf8_lossy(&body)
                        ));
                    }
                    let id = json(&body)?
                        .get("id")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                        .ok_or("no id in the answer")?;
                    ids.push(id);
                }
                Ok(ids)
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(n);
    for s in submitters {
        ids.extend(s.join().map_err(|_| "a submitter panicked")??);
    }
    let submitted_in = submit_start.elapsed();
    println!(
        "serve_load: {n} executions submitted in {:.2} s",
        submitted_in.as_secs_f64()
    );

    // Wait for every execution to succeed.
    let ours: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let bound = Duration::from_secs(120) + Duration::from_millis(200 * n as u64);
    let mut outcome: Result<Duration, String> = Err(String::new());
    let mut last_report = Instant::now();
    while submit_start.elapsed() < bound {
        match http(addr, "GET", "/api/executions", None, b"").and_then(|(status, body)| {
            if status != 200 {
                return Err(format!("GET /api/executions {status}"));
            }
            json(&body)
        }) {
            Ok(v) => {
                let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
                let mut bad = Vec::new();
                for e in v.get("executions").and_then(|e| e.as_array()).into_iter().flatten() {
                    let (Some(id), Some(state)) = (
                        e.get("id").and_then(|x| x.as_str()),
                        e.get("state").and_then(|x| x.as_str()),
                    ) else {
                        continue;
                    };
                    if !ours.contains(id) {
                        continue;
                    }
                    *by_state.entry(state.to_string()).or_default() += 1;
                    if state == "FAILED" || state == "ABORTED" {
                        bad.push(format!(
                            "{id} {state}: {}",
                            e.get("reason").and_then(|r| r.as_str()).unwrap_or("")
                        ));
                    }
                }
                if !bad.is_empty() {
                    outcome = Err(format!(
                        "{} execution(s) did not succeed: {}",
                        bad.len(),
                        bad.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
                    ));
                    break;
                }
                if by_state.get("SUCCEEDED") == Some(&n) {
                    outcome = Ok(submit_start.elapsed());
                    break;
                }
                if last_report.elapsed() > Duration::from_secs(5) {
                    last_report = Instant::now();
                    println!(
                        "serve_load: {:.0} s: {by_state:?}, {} tokens seen, {} decisions posted",
                        submit_start.elapsed().as_secs_f64(),
                        out_stats.tokens.load(Ordering::Relaxed),
                        decided.load(Ordering::Relaxed)
                    );
                }
            }
            Err(e) => note(&problems, format!("poll: {e}")),
        }
        if let Ok(Some(status)) = serve.child.try_wait() {
            outcome = Err(format!(
                "steppy serve exited ({status}) during the run: {}",
                tail(&stderr_path)
            ));
            break;
        }
        thread::sleep(POLL_EVERY);
    }
    if let Err(e) = &outcome
        && e.is_empty()
    {
        outcome = Err(format!("not all executions succeeded within {} s", bound.as_secs()));
    }
    let polled = outcome.clone();

    // The end: stop the load, collect, stop serve.
    stop.store(true, Ordering::Relaxed);
    let probes = prober.join().map_err(|_| "the prober panicked")?;
    let idle = idle.join().map_err(|_| "the idle holder panicked")?;
    for a in approvers {
        a.join().map_err(|_| "an approver panicked")?;
    }
    let exit = serve.stop();
    let _ = reader.join();

    let mut violations: Vec<String> = Vec::new();
    if let Err(e) = &polled {
        violations.push(e.clone());
    }
    match exit {
        Some(status) if status.success() => {}
        Some(status) => violations.push(format!(
            "steppy serve ended with {status} after SIGTERM: {}",
            tail(&stderr_path)
        )),
        None => violations.push("steppy serve did not end within 20 s of SIGTERM (killed)".into()),
    }

    let sync_after = fsync_cost(dir.path())?;

    // The database: nothing started twice.
    let store = Store::open(&db).map_err(|e| format!("open {}: {e}", db.display()))?;
    let mut last_success_ms = first_submit_ms;
    let mut durations = Vec::with_capacity(n);
    // When each milestone of each execution happened, in ms after the first submit.
    let mut milestones: Vec<Vec<i64>> = vec![Vec::with_capacity(n); MILESTONES.len()];
    let mut notify_keys: HashSet<String> = HashSet::new();
    for id in &ids {
        let history = store.history(id).map_err(|e| format!("history of {id}: {e}"))?;
        let count = |k: EventType| history.iter().filter(|e| e.kind == k).count();
        for (kind, want) in [
            (EventType::ExecutionStarted, 1),
            (EventType::ExecutionResumed, 0),
            (EventType::ApprovalRequested, 1),
            (EventType::ApprovalTokenRotated, 0),
            (EventType::ExecutionSucceeded, 1),
        ] {
            let got = count(kind);
            if got != want {
                violations.push(format!("{id}: {got} {} (want {want})", kind.as_str()));
            }
        }
        let mut by_key: HashMap<String, usize> = HashMap::new();
        let mut by_step: HashMap<(usize, usize), usize> = HashMap::new();
        for e in history.iter().filter(|e| e.kind == EventType::StepStarted) {
            let key = e
                .details
                .get("key")
                .and_then(|k| k.as_str())
                .unwrap_or("(no key)")
                .to_string();
            *by_key.entry(key).or_default() += 1;
            *by_step
                .entry((e.stage.unwrap_or(usize::MAX), e.step.unwrap_or(usize::MAX)))
                .or_default() += 1;
            if e.stage == Some(0)
                && e.step == Some(1)
                && let Some(k) = e.details.get("key").and_then(|k| k.as_str())
            {
                notify_keys.insert(k.to_string());
            }
        }
        for (key, c) in by_key.iter().filter(|(_, c)| **c != 1) {
            violations.push(format!("{id}: {c} StepStarted for key {key}"));
        }
        for step in [(0, 0), (0, 1), (1, 0)] {
            let c = by_step.get(&step).copied().unwrap_or(0);
            if c != 1 {
                violations.push(format!("{id}: {c} StepStarted for stage {} step {}", step.0, step.1));
            }
        }
        if by_step.len() != 3 {
            violations.push(format!(
                "{id}: StepStarted for {} distinct steps (want 3)",
                by_step.len()
            ));
        }
        let at = |k: EventType| history.iter().find(|e| e.kind == k).map(|e| e.at_ms);
        for (i, (_, kind, stage)) in MILESTONES.iter().enumerate() {
            if let Some(e) = history
                .iter()
                .find(|e| e.kind == *kind && (stage.is_none() || e.stage == *stage))
            {
                milestones[i].push(e.at_ms - first_submit_ms);
            }
        }
        if let (Some(sub), Some(done)) = (at(EventType::ExecutionSubmitted), at(EventType::ExecutionSucceeded)) {
            durations.push(Duration::from_millis(u64::try_from(done - sub).unwrap_or(0)));
            last_success_ms = last_success_ms.max(done);
        }
    }

    // The outbox: one line per Notify key, nothing else.
    let outbox = dir.path().join("outbox.jsonl");
    let text = std::fs::read_to_string(&outbox).map_err(|e| format!("read {}: {e}", outbox.display()))?;
    let mut lines_by_key: HashMap<String, usize> = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let key = json(line.as_bytes())?
            .get("key")
            .and_then(|k| k.as_str())
            .unwrap_or("(no key)")
            .to_string();
        *lines_by_key.entry(key).or_default() += 1;
    }
    for key in &notify_keys {
        match lines_by_key.get(key) {
            Some(1) => {}
            Some(c) => violations.push(format!("outbox: {c} lines for {key}")),
            None => violations.push(format!("outbox: no line for {key}")),
        }
    }
    let foreign = lines_by_key
        .keys()
        .filter(|k| !notify_keys.contains(*k) && !k.starts_with("earlier/"))
        .count();
    if foreign > 0 {
        violations.push(format!("outbox: {foreign} key(s) of no Notify step started"));
    }
    if notify_keys.len() != n {
        violations.push(format!("{} Notify keys started for {n} executions", notify_keys.len()));
    }

    // Probes and decisions.
    let mut latencies: Vec<Duration> = probes.iter().map(|p| p.took).collect();
    latencies.sort();
    let non_200 = probes.iter().filter(|p| p.status != 200).count();
    if non_200 > 0 {
        violations.push(format!("{non_200} /readyz probe(s) not answered 200"));
    }
    let slow: Vec<&Probe> = probes.iter().filter(|p| p.took >= READYZ_GOAL).collect();
    let decisions = decided.load(Ordering::Relaxed);
    let failed_decisions = decision_failures.load(Ordering::Relaxed);
    if failed_decisions > 0 {
        violations.push(format!("{failed_decisions} decision(s) not answered 200"));
    }
    if probes.is_empty() {
        violations.push("no /readyz probe was made".into());
    }

    // Summary.
    let wall = Duration::from_millis(u64::try_from(last_success_ms - first_submit_ms).unwrap_or(0));
    durations.sort();
    let mut ages = idle.closed_ages.clone();
    ages.sort();
    let stderr_text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    println!();
    println!("serve_load summary (N = {n})");
    println!(
        "  executions      {n} submitted in {:.2} s; all succeeded: {}",
        submitted_in.as_secs_f64(),
        polled.is_ok()
    );
    println!(
        "  wall time       {:.2} s from the first submit to the last ExecutionSucceeded ({:.1} executions/s); seen by polling after {:.2} s",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64().max(1e-9),
        polled.as_ref().map(|d| d.as_secs_f64()).unwrap_or(f64::NAN)
    );
    println!(
        "  per execution   submit to SUCCEEDED: p50 {:.2} s, p99 {:.2} s, max {:.2} s (Wait 1 s + approval)",
        percentile(&durations, 0.5).as_secs_f64(),
        percentile(&durations, 0.99).as_secs_f64(),
        durations.last().copied().unwrap_or_default().as_secs_f64()
    );
    println!("  milestones      ms after the first submit: first / p50 / last (of {n} executions)");
    for (i, (name, _, _)) in MILESTONES.iter().enumerate() {
        let mut t = milestones[i].clone();
        t.sort();
        let pick = |p: f64| {
            t.get(((t.len().max(1) - 1) as f64 * p).round() as usize)
                .copied()
                .unwrap_or(-1)
        };
        println!(
            "                    {name:<28} {:>6} / {:>6} / {:>6}{}",
            pick(0.0),
            pick(0.5),
            pick(1.0),
            if t.len() == n {
                String::new()
            } else {
                format!(" ({} seen)", t.len())
            }
        );
    }
    println!(
        "  /readyz         {} probes over {:.1} s: p50 {}, p99 {}, max {}; {} at or over {}; {non_200} not 200",
        probes.len(),
        probes.last().map(|p| p.at.as_secs_f64()).unwrap_or(0.0),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
        slow.len(),
        ms(READYZ_GOAL),
    );
    for p in slow.iter().take(10) {
        println!(
            "                    slow probe at {:.2} s: {} (status {})",
            p.at.as_secs_f64(),
            ms(p.took),
            p.status
        );
    }
    println!(
        "  idle conns      {idle_target} held: {} open at the end; {} closed by the server (age at close: min {:.1} s, p50 {:.1} s, max {:.1} s), {} answered (503) and closed; {} opened in all, {} failed to open",
        idle.open_at_end,
        idle.closed_ages.len(),
        ages.first().copied().unwrap_or_default().as_secs_f64(),
        percentile(&ages, 0.5).as_secs_f64(),
        ages.last().copied().unwrap_or_default().as_secs_f64(),
        idle.answered,
        idle.opened,
        idle.open_failures,
    );
    println!(
        "  decisions       {decisions} posted and answered 200 ({failed_decisions} not); {} approval links seen on serve's stdout ({} lines)",
        out_stats.tokens.load(Ordering::Relaxed),
        out_stats.lines.load(Ordering::Relaxed)
    );
    println!(
        "  outbox          {} lines for {} Notify keys ({prefill} earlier lines before the run)",
        lines_by_key.values().sum::<usize>() - prefill,
        notify_keys.len()
    );
    println!(
        "  disk            a synced 100-byte append: p50 {}, p99 {} before the run; p50 {}, p99 {} after",
        ms(sync_before.0),
        ms(sync_before.1),
        ms(sync_after.0),
        ms(sync_after.1)
    );
    let cap_notes = stderr_text.lines().filter(|l| l.contains("reached its cap")).count();
    println!(
        "  serve stderr    {} lines ({cap_notes} about reaching the connection cap)",
        stderr_text.lines().count()
    );
    for line in stderr_text.lines().take(10) {
        println!("                    {line}");
    }
    let max = latencies.last().copied().unwrap_or_default();
    println!(
        "  goal            all succeed: {}; /readyz < {} throughout: {}; nothing started twice: {}",
        if polled.is_ok() { "met" } else { "NOT met" },
        ms(READYZ_GOAL),
        if max < READYZ_GOAL && non_200 == 0 {
            "met"
        } else {
            "NOT met"
        },
        if violations.iter().any(|v| v.contains("StepStarted")
            || v.contains("ExecutionResumed")
            || v.contains("outbox")
            || v.contains("ExecutionStarted"))
        {
            "NOT met"
        } else {
            "met"
        },
    );
    for p in problems.lock().expect("problems lock").iter() {
        println!("  problem         {p}");
    }
    for v in violations.iter().take(50) {
        println!("  VIOLATION       {v}");
    }
    if violations.len() > 50 {
        println!("  VIOLATION       ... and {} more", violations.len() - 50);
    }
    if std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1") {
        println!(
            "  kept            {} (database, outbox, serve.stderr)",
            dir.keep().display()
        );
    }
    Ok(violations.is_empty())
}

/// The last lines of serve's stderr, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(10);
    format!("stderr: {}", lines[from..].join(" | "))
}
