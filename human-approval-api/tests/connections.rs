//! The accept loop's limits over real TCP on loopback (issue 10 §3): idle connections beyond
//! the cap do not exhaust descriptors or keep requests out, a slowloris head and a slow body
//! are cut at their timeouts, a kept-alive connection is closed once idle, and when every
//! connection is busy a new one is turned away at once. Small limits keep each test short;
//! every loop is bounded and every wait generous enough for a loaded 2-core machine.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use steppy_engine::store::Store;
use steppy_human_approval_api::{ApiConfig, AppState, ServeLimits, serve_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The service (no engine) on 127.0.0.1 under `limits`.
async fn start(limits: ServeLimits) -> (SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("steppy.db")).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let state = AppState::new(store, ApiConfig::new(format!("http://{addr}")));
    tokio::spawn(serve_with(listener, state, limits, std::future::pending()));
    (addr, dir)
}

/// Limits that never fire during a test unless it says otherwise.
fn patient() -> ServeLimits {
    ServeLimits {
        header_read_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        body_read_timeout: Duration::from_secs(60),
        max_connections: 1000,
        fd_reserve: 64,
        shutdown_grace: Duration::from_secs(1),
    }
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// True once the server has closed `s` (end of stream or reset); reads and drops any answer.
fn closed_by_server(s: &TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match s.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Polls until the server closed `s`, for at most `within`; the time it took.
async fn time_to_close(s: &TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if closed_by_server(s) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Sends a GET of `/healthz` on `s` and reads its answer (the whole answer is small).
async fn healthz_on(s: &mut TcpStream) -> String {
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !got.ends_with(b"\r\n\r\nok") {
        assert!(
            Instant::now() < deadline,
            "no complete answer: {}",
            String::from_utf8_lossy(&got)
        );
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            other => panic!("the answer broke off ({other:?}): {}", String::from_utf8_lossy(&got)),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_cap_neither_exhaust_descriptors_nor_keep_requests_out() {
    let cap = 8;
    let (addr, _dir) = start(ServeLimits {
        max_connections: cap,
        ..patient()
    })
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let url = format!("http://{addr}/healthz");
    assert_eq!(client.get(&url).send().await.expect("warm-up").status(), 200);
    let baseline = open_descriptors();

    // Forty connections that never send a byte, as in the flood (1,100 of them).
    let flood = 40;
    let mut idle = Vec::new();
    for _ in 0..flood {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let r = client
        .get(&url)
        .send()
        .await
        .expect("a request while the flood holds its connections");
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered in {:?}",
        started.elapsed()
    );

    // This process holds both ends: the flood's own sockets, plus at most `cap` on the server's
    // side (and a few for the client's pooled connection and the runtime).
    let extra = open_descriptors().saturating_sub(baseline);
    assert!(
        extra <= flood + cap + 4,
        "{extra} more descriptors for {flood} idle connections with a cap of {cap}"
    );
    let mut closed = 0;
    for s in &idle {
        if time_to_close(s, Duration::from_millis(100)).await.is_some() {
            closed += 1;
        }
    }
    assert!(
        closed >= flood - cap,
        "only {closed} of {flood} idle connections were closed to make room"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_head_is_cut_at_the_header_timeout() {
    let (addr, _dir) = start(ServeLimits {
        header_read_timeout: Duration::from_secs(1),
        ..patient()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut cut = None;
    // A header line every 200 ms, for at most 8 s.
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if closed_by_server(&s) || s.write_all(format!("X-Slow-{i}: y\r\n").as_bytes()).await.is_err() {
            cut = Some(started.elapsed());
            break;
        }
    }
    let cut = cut.expect("the server kept a connection open that sent a header line every 200 ms for 8 s");
    assert!(
        cut < Duration::from_secs(6),
        "cut after {cut:?} with a 1 s header timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_is_closed_once_idle() {
    let (addr, _dir) = start(ServeLimits {
        idle_timeout: Duration::from_secs(1),
        ..patient()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    assert!(healthz_on(&mut s).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        healthz_on(&mut s).await.starts_with("HTTP/1.1 200"),
        "the connection is kept alive between requests"
    );
    let closed = time_to_close(&s, Duration::from_secs(8)).await;
    assert!(
        closed.is_some(),
        "an idle kept-alive connection was still open 8 s after its last answer (idle timeout 1 s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_cut_at_the_body_timeout() {
    let (addr, _dir) = start(ServeLimits {
        body_read_timeout: Duration::from_secs(1),
        ..patient()
    })
    .await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let token = format!("stp_{}", "A".repeat(43));
    let head = format!(
        "POST /api/approvals/{token}/decision HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"deci"
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let closed = time_to_close(&s, Duration::from_secs(8)).await;
    assert!(
        closed.is_some_and(|t| t < Duration::from_secs(6)),
        "a body that stopped arriving held its connection ({closed:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_connection_is_busy_a_new_one_is_turned_away_at_once() {
    let (addr, _dir) = start(ServeLimits {
        max_connections: 2,
        ..patient()
    })
    .await;
    // Two requests whose bodies never come: busy, so never closed to make room.
    let token = format!("stp_{}", "A".repeat(43));
    let head = format!(
        "POST /api/approvals/{token}/decision HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(head.as_bytes()).await.expect("write");
        busy.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let mut s = TcpStream::connect(addr)
        .await
        .expect("the backlog takes the connection");
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "a connection beyond the cap was left hanging");
    let answer = String::from_utf8_lossy(&answer);
    // Answered 503, or (if the 503 raced the request) reset: refused either way, and at once.
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));

    drop(busy);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    assert!(
        healthz_on(&mut s).await.starts_with("HTTP/1.1 200"),
        "room again once the busy connections are gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_and_returns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("steppy.db")).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let state = AppState::new(store, ApiConfig::new(format!("http://{addr}")));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(listener, state, patient(), async move {
        let _ = stopped.await;
    }));
    let mut s = TcpStream::connect(addr).await.expect("connect");
    assert!(healthz_on(&mut s).await.starts_with("HTTP/1.1 200"));
    let _ = stop.send(());
    let ended = tokio::time::timeout(Duration::from_secs(5), server).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    assert!(
        time_to_close(&s, Duration::from_secs(2)).await.is_some(),
        "an idle connection outlived the shutdown"
    );
}
