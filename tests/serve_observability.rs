//! Issue 11, over real HTTP against the real `steppy serve --log-format json --access-log`:
//! an approval taken through its link leaves a JSON access line and a decision line in the log
//! (standard error) and never its token; `/metrics` then counts the decision and the request
//! by its route template; an internal error answers a code and a request id, never its detail,
//! which the log has under the same id. Nothing here talks to AWS.

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// A running `steppy serve --log-format json --access-log`: its stdout collected line by line
/// (the progress view, where approval tokens are shown on purpose), its stderr (the log) read
/// once it has stopped.
struct Served {
    child: Child,
    addr: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: ChildStderr,
}

impl Served {
    fn start(sb: &Sandbox) -> Served {
        let addr = format!("127.0.0.1:{}", loopback_port());
        let mut child = sb
            .steppy(&["serve", "--listen", &addr, "--access-log", "--log-format", "json"])
            .env_remove("RUST_LOG")
            .env_remove("STEPPY_TOPIC_ARN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped stdout");
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().expect("stdout lines").push(line);
            }
        });
        let stderr = child.stderr.take().expect("piped stderr");
        wait_until_serving(&addr);
        Served {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    /// The first stdout line `pick` finds something in (waits up to 20 s).
    fn wait_for_stdout<T>(&self, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(t) = self.stdout.lock().expect("stdout lines").iter().find_map(|l| pick(l)) {
                return t;
            }
            assert!(Instant::now() < deadline, "serve printed nothing expected");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops serve with SIGTERM and returns its whole log.
    fn stop(mut self) -> String {
        // SAFETY: sends SIGTERM to the child we spawned.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let mut log = String::new();
        self.stderr.read_to_string(&mut log).expect("read stderr");
        log
    }
}

/// Every line of `log` as JSON (panics on a line that is not: the log is JSON only).
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}\n{log}")))
        .collect()
}

/// The value of the series `name{labels}` in the metrics `text` (labels exactly as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn wait_succeeded(addr: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = get(addr, &format!("/api/executions/{id}")).expect("GET execution");
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        if v["execution"]["state"] == "SUCCEEDED" {
            return;
        }
        assert!(Instant::now() < deadline, "the execution did not succeed: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_is_logged_as_json_without_its_token_and_counted_in_metrics() {
    let sb = Sandbox::new();
    let server = Served::start(&sb);
    let plan = sb.write_plan(&json!({ "name": "observed", "stages": [ { "name": "s", "steps": [
        { "type": "Human", "name": "gate", "message": "ship it?", "timeoutSeconds": 600 }
    ] } ] }));
    let (status, out, err) = sb.output(&["submit", plan.to_str().expect("utf-8")]);
    assert!(status.success(), "{err}");
    let id = out.trim().to_string();
    let token = server.wait_for_stdout(token_in);
    let link = server.wait_for_stdout(|l| l.split("open to approve: ").nth(1).map(|s| s.trim().to_string()));
    assert!(link.contains(&token), "the printed link carries the token: {link}");

    // The whole flow a person goes through: the page (GET), then its form (POST).
    let followed = follow_approval_link(&link, true, "release-manager").await;
    assert_eq!(followed, Followed::Decided);
    wait_succeeded(&server.addr, &id);
    let (code, metrics) = get(&server.addr, "/metrics").expect("GET /metrics");
    assert_eq!(code, 200, "{metrics}");
    let (_, again) = get(&server.addr, "/metrics").expect("GET /metrics again");
    let log = server.stop();

    // The log: JSON only, and not a trace of the token (nor of its secret part).
    let secret = token.trim_start_matches("stp_");
    assert!(!log.contains(secret), "the approval token reached the log:\n{log}");
    let lines = json_lines(&log);
    let access: Vec<&Value> = lines.iter().filter(|l| l["target"] == "steppy::access").collect();
    let posted = access
        .iter()
        .find(|l| l["span"]["method"] == "POST" && l["span"]["route"] == "/approvals/{token}")
        .unwrap_or_else(|| panic!("no access line for the decision POST:\n{log}"));
    assert_eq!(
        posted["status"], 303,
        "the form answers with a redirect to the page: {posted}"
    );
    assert_eq!(posted["level"], "INFO", "{posted}");
    assert!(posted["latency_ms"].is_number(), "{posted}");
    let request_id = posted["span"]["request_id"].as_str().expect("a request id");
    assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
    assert!(
        access
            .iter()
            .any(|l| l["span"]["method"] == "GET" && l["span"]["route"] == "/approvals/{token}"),
        "the page's GET is logged by its route template:\n{log}"
    );
    let decisions: Vec<&Value> = lines.iter().filter(|l| l["target"] == "steppy::decision").collect();
    assert_eq!(decisions.len(), 1, "one decision line:\n{log}");
    let d = decisions[0];
    assert_eq!(d["execution"], id.as_str(), "{d}");
    assert_eq!(d["step"], "gate", "{d}");
    assert_eq!(d["decision"], "approve", "{d}");
    assert_eq!(d["approver"], "release-manager", "{d}");
    assert_eq!(
        d["span"]["request_id"], request_id,
        "the decision is logged under its request: {d}"
    );

    // The metrics: the decision, its commit, the request by route template, the store's counts.
    assert!(!metrics.contains(secret), "the token reached /metrics:\n{metrics}");
    assert_eq!(
        sample(&metrics, "steppy_approval_decisions_total{decision=\"approve\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "steppy_decision_commit_seconds_count"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "steppy_http_requests_total{method=\"POST\",route=\"/approvals/{token}\",status=\"303\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "steppy_executions{state=\"SUCCEEDED\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "steppy_step_outcomes_total{step_type=\"Human\",outcome=\"SUCCEEDED\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "steppy_step_attempts_total{step_type=\"Human\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
    // A scrape changes nothing but the request counter.
    assert_eq!(
        sample(&again, "steppy_approval_decisions_total{decision=\"approve\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&again, "steppy_executions{state=\"SUCCEEDED\"}"), Some(1.0));
    assert_eq!(
        sample(
            &again,
            "steppy_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"200\"}"
        ),
        Some(1.0),
        "{again}"
    );
    let history = sb.json(&["history", &id, "--format", "json"]);
    assert_eq!(count_events(&history, "ApprovalDecided"), 1, "{history}");
}

#[test]
fn an_internal_error_answers_a_request_id_and_logs_its_detail() {
    let sb = Sandbox::new();
    let server = Served::start(&sb);
    // An execution whose stored plan cannot be read: loading it fails inside the service.
    let db = rusqlite::Connection::open(sb.db()).expect("second connection");
    db.execute_batch(
        "INSERT INTO executions (id, name, state, created_ms, updated_ms) VALUES ('broken', 'b', 'SUCCEEDED', 0, 0);
         INSERT INTO plans (execution_id, plan_json) VALUES ('broken', '{oops');",
    )
    .expect("insert the broken execution");
    drop(db);
    let (head, body) = get_with_headers(&server.addr, "/api/executions/broken");
    let log = server.stop();
    assert!(head.starts_with("HTTP/1.1 500"), "{head}\n{body}");
    let answer: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(answer["code"], "internal", "{answer}");
    let request_id = answer["requestId"].as_str().expect("a request id in the body");
    assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("x-request-id: {request_id}")),
        "the same id in the x-request-id header:\n{head}"
    );
    // No internal detail: not the failing record, not the parser's words.
    for detail in ["malformed", "JSON", "database error", "oops", "plan_json"] {
        assert!(
            !body.contains(detail),
            "the answer shows internal detail {detail:?}: {body}"
        );
    }
    // The log has the detail, under the same request id.
    let lines = json_lines(&log);
    let error = lines
        .iter()
        .find(|l| l["target"] == "steppy::error")
        .unwrap_or_else(|| panic!("no error event:\n{log}"));
    assert_eq!(error["level"], "ERROR", "{error}");
    assert_eq!(error["request_id"], request_id, "{error}");
    assert!(
        error["detail"]
            .as_str()
            .is_some_and(|d| d.contains("plans.plan_json") && d.contains("is not the JSON it should be")),
        "{error}"
    );
    assert!(
        lines.iter().any(|l| l["target"] == "steppy::access"
            && l["status"] == 500
            && l["span"]["request_id"] == request_id
            && l["span"]["route"] == "/api/executions/{id}"),
        "the 500 has its access line:\n{log}"
    );
}

/// A bare HTTP/1.1 GET; returns (status line and headers, body).
fn get_with_headers(addr: &str, path: &str) -> (String, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}
