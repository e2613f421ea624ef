//! `GET /readyz` over real HTTP: the engine's [`Health`] when one is attached (from memory, so
//! it answers at once while the database is locked), and a store read when no engine runs.

use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use steppy_engine::clock::system_now_ms;
use steppy_engine::health::Health;
use steppy_engine::store::Store;
use steppy_human_approval_api::{ApiConfig, AppState};

struct Service {
    base: String,
    store: Store,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

async fn start(health: Option<Arc<Health>>) -> Service {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("steppy.db")).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut state = AppState::new(store.clone(), ApiConfig::new(base.clone()));
    if let Some(h) = health {
        state = state.with_health(h);
    }
    tokio::spawn(steppy_human_approval_api::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    Service {
        base,
        store,
        client,
        dir,
    }
}

impl Service {
    async fn readyz(&self) -> (StatusCode, Value, Duration) {
        let started = Instant::now();
        let r = self
            .client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .expect("GET /readyz");
        let status = r.status();
        (status, r.json().await.expect("json"), started.elapsed())
    }

    /// Takes the database's write lock from another connection and makes the service's own
    /// connection wait for it: a decision POST blocks in the busy timeout while holding it.
    async fn jam_the_database(&self) -> rusqlite::Connection {
        self.store
            .set_busy_timeout(Duration::from_secs(4))
            .expect("busy timeout");
        let other = rusqlite::Connection::open(self.dir.path().join("steppy.db")).expect("second connection");
        other.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
        let (client, url) = (
            self.client.clone(),
            format!("{}/api/approvals/stp_{}/decision", self.base, "A".repeat(43)),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .json(&serde_json::json!({ "decision": "approve", "approver": "a" }))
                .send()
                .await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        other
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_engine_health() {
    let health = Arc::new(Health::default());
    let s = start(Some(health.clone())).await;
    let (status, body, _) = s.readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["engine"], "starting");

    health.tick(system_now_ms());
    let (status, body, _) = s.readyz().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["ready"].as_bool(),
            body["engine"].as_str(),
            body["database"].as_str()
        ),
        (Some(true), Some("running"), Some("writable"))
    );

    health.store_failing("disk I/O error", system_now_ms());
    let (status, body, _) = s.readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["database"], "failing");
    assert!(
        body["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("disk I/O error")),
        "{body}"
    );

    health.store_ok();
    health.stopped("the record changed under us");
    let (status, body, _) = s.readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["engine"], "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_with_an_engine_answers_at_once_while_the_database_is_locked() {
    let health = Arc::new(Health::default());
    let s = start(Some(health.clone())).await;
    let _lock = s.jam_the_database().await;
    for _ in 0..5 {
        health.tick(system_now_ms());
        let (status, _, took) = s.readyz().await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            took < Duration::from_millis(1000),
            "/readyz took {took:?} while the database was locked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_engine_readiness_is_a_store_read() {
    let s = start(None).await;
    let (status, body, _) = s.readyz().await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["ready"].as_bool(),
            body["engine"].as_str(),
            body["database"].as_str()
        ),
        (Some(true), Some("absent"), Some("readable"))
    );

    // A store that does not answer is reported within about a second, not waited for.
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the cached read
    let _lock = s.jam_the_database().await;
    let (status, body, took) = s.readyz().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["database"], "unresponsive");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}
