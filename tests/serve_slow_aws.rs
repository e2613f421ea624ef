//! `steppy serve` when SNS is slow or down (issue 10 §4): a silent endpoint holds only the
//! approval that waits for it, never the engine or the HTTP service; and an approval mail that
//! could not be sent is not marked delivered, so a restart against a working SNS mails it, with
//! a link that works.
//!
//! The silent endpoint is a loopback TCP listener that accepts and never answers (what moto
//! cannot play); the working SNS is moto, through the shared harness.

mod support;

use steppy_test_support::moto as aws_support;

use aws_support::{aws_config, moto, notifications, topic_with_queue, unique};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use support::{Sandbox, get};

/// `steppy serve` on `addr`, talking to the AWS API at `endpoint`, its stdout lines sent to
/// the returned channel.
fn serve(sb: &Sandbox, addr: &str, endpoint: &str, topic: &str) -> (Child, mpsc::Receiver<String>) {
    let mut c: Command = sb.steppy(&["--topic-arn", topic, "serve", "--listen", addr]);
    support::talk_to(&mut c, endpoint);
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    support::wait_until_serving(addr);
    (child, rx)
}

/// Waits up to `secs` for a line containing `needle`.
fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            if line.contains(needle) {
                return line;
            }
            seen.push(line);
        }
    }
    panic!("no line with {needle:?} within {secs} s; saw:\n{}", seen.join("\n"));
}

fn submit(sb: &Sandbox, plan: &Value) -> String {
    let path = sb.write_plan(plan);
    let (status, out, err) = sb.output(&["submit", path.to_str().expect("utf-8")]);
    assert!(status.success(), "{err}");
    out.trim().to_string()
}

/// An endpoint that accepts connections and never answers, until dropped.
struct Silent {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::SeqCst) && held.len() < 1_000 {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Silent { port, stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_silent_sns_holds_only_its_approval_never_the_engine_or_the_http_service() {
    let silent = Silent::start();
    let sb = Sandbox::new();
    let id = submit(
        &sb,
        &json!({ "stages": [ { "name": "s", "steps": [
        { "type": "Human", "name": "sign-off", "message": "go?" },
        { "type": "Human", "name": "security", "message": "go?" },
        { "type": "Wait", "name": "soak", "seconds": 2 }
    ] } ] }),
    );
    let addr = format!("127.0.0.1:{}", support::loopback_port());
    let endpoint = format!("http://127.0.0.1:{}", silent.port);
    let started = Instant::now();
    let (mut server, rx) = serve(&sb, &addr, &endpoint, "arn:aws:sns:us-east-1:123456789012:silent");
    // While the publishes hang, the service answers at once and the Wait ends on time (before
    // the fix, each hanging publish held one of serve's two runtime threads for 60 s: two
    // approvals froze the whole process).
    let mut slowest = Duration::ZERO;
    let soaked = loop {
        let asked = Instant::now();
        assert_eq!(get(&addr, "/healthz").map(|(c, _)| c), Some(200));
        slowest = slowest.max(asked.elapsed());
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100))
            && line.contains("Wait \"soak\" succeeded")
        {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the 2 s Wait did not end while SNS hung"
        );
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(soaked < Duration::from_secs(12), "the 2 s Wait took {soaked:?}");
    assert!(
        slowest < Duration::from_secs(2),
        "a /healthz took {slowest:?} while SNS hung"
    );
    let (_, status, _) = sb.output(&["status", &id, "--format", "json"]);
    let status: Value = serde_json::from_str(&status).expect("status json");
    let human = status["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "sign-off"))
        .expect("step");
    // Its start is still waiting for the publish: in progress, neither failed nor delivered.
    assert!(
        human["state"] == "RUNNING" || human["state"] == "WAITING",
        "the approval still waits for its mail: {human}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_mail_that_failed_is_sent_after_a_restart_with_a_link_that_works() {
    let config = aws_config().await;
    let (topic, queue) = topic_with_queue(&config, &unique("approvals")).await;
    let sb = Sandbox::new();
    let id = submit(
        &sb,
        &json!({ "stages": [ { "name": "s", "steps": [
        { "type": "Human", "name": "sign-off", "message": "ship it?" }
    ] } ] }),
    );
    let addr = format!("127.0.0.1:{}", support::loopback_port());
    // First SNS refuses every connection: the publish fails.
    let refused = format!("http://127.0.0.1:{}", support::loopback_port());
    let (mut server, rx) = serve(&sb, &addr, &refused, &topic);
    let line = wait_line(&rx, "could not publish the approval request", 60);
    assert!(!line.contains("stp_"), "no token in serve's output: {line}");
    let _ = server.kill();
    let _ = server.wait();
    // Then a working SNS: the request is mailed once (before the fix, the failed mail counted
    // as delivered, so nobody ever got a link), and its link opens the approval page.
    let (mut server, rx) = serve(&sb, &addr, &moto().url, &topic);
    wait_line(&rx, "approval request published", 60);
    let mails = notifications(&config, &queue, 2, 5).await;
    assert_eq!(mails.len(), 1, "one approval mail: {mails:?}");
    let body = mails[0]["Message"].as_str().expect("message").to_string();
    let link = body
        .lines()
        .find_map(|l| l.strip_prefix("Approve: "))
        .expect("an approve link")
        .trim()
        .to_string();
    let path = link
        .split_once(&addr)
        .map(|(_, p)| p.to_string())
        .expect("the link points at this serve");
    assert_eq!(
        get(&addr, &path).map(|(c, _)| c),
        Some(200),
        "the mailed link works: {link}"
    );
    let token = link
        .split("/approvals/")
        .nth(1)
        .and_then(|t| t.split('?').next())
        .expect("token in link")
        .to_string();
    let (status, _, err) = sb.output(&["approve", &token, "--as", "ana"]);
    assert!(status.success(), "{err}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out, _) = sb.output(&["status", &id, "--format", "json"]);
        let v: Value = serde_json::from_str(&out).expect("status json");
        if v["execution"]["state"] == "SUCCEEDED" {
            break;
        }
        assert!(Instant::now() < deadline, "not approved: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    // Serve printed no token: the approvers have it in their mail.
    while let Ok(line) = rx.try_recv() {
        assert!(!line.contains("stp_"), "serve printed a token: {line}");
    }
}
