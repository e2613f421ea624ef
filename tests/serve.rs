//! `steppy serve`: picks up an execution submitted by another process, runs it, and shows it
//! through the read-only HTTP API.

mod support;

use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;


fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn serve_runs_submitted_executions_and_reports_them_over_http() {
    let sb = Sandbox::new();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = sb
        .steppy(&["serve", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&addr, "/healthz").map(|(c, _)| c) != Some(200) {
        assert!(Instant::now() < deadline, "serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let plan = sb.write_plan(&json!({ "stages": [ { "name": "s", "steps": [
        { "type": "Wait", "name": "w", "seconds": 1 },
        { "type": "Notify", "name": "n", "message": "from serve" }
    ] } ] }));
    let (status, out, err) = sb.output(&["submit", plan.to_str().expect("utf-8")]);
    assert!(status.success(), "{err}");
    let id = out.trim().to_string();
    let state = loop {
        let (code, body) = get(&addr, &format!("/api/executions/{id}")).expect("GET execution");
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        let state = v["execution"]["state"].as_str().unwrap_or("").to_string();
        if state == "SUCCEEDED"
            || state == "FAILED"
            || state == "ABORTED"
            || Instant::now() > deadline
        {
            break state;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // `steppy run` next to a running `serve` keeps its own execution (leased at submit).
    let (status, out) = sb.drive(sb.steppy(&["run", plan.to_str().expect("utf-8")]));
    assert!(status.success(), "{out}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    let (code, list) = get(&addr, "/api/executions").expect("GET list");
    let (missing, _) = get(&addr, "/api/executions/nope").expect("GET unknown");
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(state, "SUCCEEDED");
    assert_eq!(code, 200);
    assert!(list.contains(&id), "{list}");
    assert_eq!(missing, 404);
    assert_eq!(outbox_keys(&sb.outbox()).len(), 2);
}

#[test]
fn sigterm_stops_serve_cleanly_and_resume_finishes_its_execution() {
    let sb = Sandbox::new();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = sb.steppy(&["serve", "--listen", &addr]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&addr, "/healthz").map(|(c, _)| c) != Some(200) {
        assert!(Instant::now() < deadline, "serve did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let plan = sb.write_plan(&json!({ "stages": [ { "name": "s", "steps": [{ "type": "Wait", "name": "long", "seconds": 3 }] } ] }));
    let (status, out, err) = sb.output(&["submit", plan.to_str().expect("utf-8")]);
    assert!(status.success(), "{err}");
    let id = out.trim().to_string();
    // Wait until serve has taken the execution, then ask it to stop the way systemd does.
    while get(&addr, &format!("/api/executions/{id}")).map(|(_, b)| b.contains("RUNNING")) != Some(true) {
        assert!(Instant::now() < deadline, "serve did not start the execution");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: sends SIGTERM to the child we spawned.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let stopped_by = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = server.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < stopped_by, "serve ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "serve exits 0 on SIGTERM: {exit:?}");
    // It stopped at once, leaving the 3-second wait to whoever resumes it.
    assert_eq!(sb.json(&["status", &id, "--format", "json"])["execution"]["state"], "RUNNING");
    let (status, out) = sb.drive(sb.steppy(&["resume"]));
    assert!(status.success(), "{out}");
    assert_eq!(sb.json(&["status", &id, "--format", "json"])["execution"]["state"], "SUCCEEDED");
}
