//! `steppy serve`: picks up an execution submitted by another process, runs it, and shows it
//! through the read-only HTTP API.
//!
//! Also the submit-then-serve regression (issue 10, finding 1): a database that already holds
//! submitted executions, then `serve` started on it, must start every step exactly once. Checked
//! where a double start shows, not only in the history (which records one `StepStarted` even
//! when the executor was started twice): approval tokens (a second start rotates the first
//! token, so the first mailed link answers 404) and CodeBuild builds counted in moto
//! (`ListBuildsForProject`). The start is a race, so each is repeated a few times (bounded).
//! These run against moto on 127.0.0.1 (the harness in `executors/tests/support`); nothing
//! reaches real AWS.

mod support;

use steppy_test_support::moto as aws_support;

use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn serve_runs_submitted_executions_and_reports_them_over_http() {
    let sb = Sandbox::new();
    let addr = format!("127.0.0.1:{}", loopback_port());
    let mut server = sb
        .steppy(&["serve", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    wait_until_serving(&addr);
    let deadline = Instant::now() + Duration::from_secs(20);
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
        if state == "SUCCEEDED" || state == "FAILED" || state == "ABORTED" || Instant::now() > deadline {
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
    let addr = format!("127.0.0.1:{}", loopback_port());
    let mut server = sb
        .steppy(&["serve", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    wait_until_serving(&addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    let plan = sb.write_plan(
        &json!({ "stages": [ { "name": "s", "steps": [{ "type": "Wait", "name": "long", "seconds": 3 }] } ] }),
    );
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
    assert_eq!(
        sb.json(&["status", &id, "--format", "json"])["execution"]["state"],
        "RUNNING"
    );
    let (status, out) = sb.drive(sb.steppy(&["resume"]));
    assert!(status.success(), "{out}");
    assert_eq!(
        sb.json(&["status", &id, "--format", "json"])["execution"]["state"],
        "SUCCEEDED"
    );
}

/// `steppy ARGS` in `sb`, talking to moto only (dummy credentials, loopback endpoint).
fn steppy_on_moto(sb: &Sandbox, args: &[&str]) -> std::process::Command {
    let mut c = sb.steppy(args);
    talk_to(&mut c, &aws_support::moto().url);
    c
}

/// Writes `plan` as `name.json` in the sandbox and submits it; returns the execution id.
fn submit(sb: &Sandbox, name: &str, plan: &Value) -> String {
    let path = sb.dir.path().join(format!("{name}.json"));
    std::fs::write(&path, plan.to_string()).expect("write plan");
    let o = steppy_on_moto(sb, &["submit", path.to_str().expect("utf-8")])
        .output()
        .expect("spawn submit");
    assert!(
        o.status.success(),
        "submit failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `steppy serve` on `addr` (stdout collected in the returned buffer, line by line).
fn spawn_serve(sb: &Sandbox, addr: &str) -> (std::process::Child, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::BufRead;
    let mut child = steppy_on_moto(sb, &["serve", "--listen", addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = child.stdout.take().expect("piped stdout");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().expect("serve output").push(line);
        }
    });
    (child, lines)
}

/// Waits (at most `secs`) until every execution in `ids` has ended; returns their states.
fn wait_ended(sb: &Sandbox, ids: &[String], secs: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let states: Vec<String> = ids
            .iter()
            .map(|id| {
                sb.json(&["status", id, "--format", "json"])["execution"]["state"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        if states
            .iter()
            .all(|s| matches!(s.as_str(), "SUCCEEDED" | "FAILED" | "ABORTED"))
            || Instant::now() > deadline
        {
            return states;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn kill(mut child: std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Issue 10, finding 1, with approvals mailed through SNS: three executions of a plan with two
/// Human steps are submitted, then `serve` starts on the database. Each execution must be
/// started once (one `ExecutionStarted`, no `ExecutionResumed`: nothing was running before),
/// each approval requested once with one token (no `ApprovalTokenRotated`, one mail), and the
/// first mailed link of each approval must decide it. Every link `serve` prints must work too.
/// On today's main the driver starts every fresh execution twice in its first tick, so each gets
/// an `ExecutionResumed` and some approvals a second token that makes the first mail dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_then_serve_requests_each_approval_once_and_its_first_mailed_link_works() {
    const TRIALS: usize = 4;
    const EXECUTIONS: usize = 3;
    let config = aws_support::aws_config().await;
    let mut problems: Vec<String> = Vec::new();
    let (mut approvals, mut dead_first_links, mut resumed, mut rotated) = (0, 0, 0, 0);
    for trial in 1..=TRIALS {
        let (topic, queue) = aws_support::topic_with_queue(&config, &aws_support::unique("serve-gate")).await;
        let sb = Sandbox::new();
        let plan = json!({ "name": "two gates", "defaults": { "notificationTopicArn": topic }, "stages": [{ "name": "s", "steps": [
            { "type": "Human", "name": "h1", "message": "first?", "timeoutSeconds": 600 },
            { "type": "Human", "name": "h2", "message": "second?", "timeoutSeconds": 600 }
        ] }] });
        let ids: Vec<String> = (0..EXECUTIONS).map(|i| submit(&sb, &format!("p{i}"), &plan)).collect();
        let addr = format!("127.0.0.1:{}", loopback_port());
        let (server, printed) = spawn_serve(&sb, &addr);
        // Mails arrive as the approvals are requested; keep reading a little after the last
        // expected one, so a second mail of the same approval is seen too.
        let want = EXECUTIONS * 2;
        let mut mails = aws_support::notifications(&config, &queue, want, 30).await;
        mails.extend(aws_support::notifications(&config, &queue, usize::MAX, 2).await);
        mails.sort_by_key(|m| aws_support::published_ms(m).unwrap_or(i64::MAX));
        // The first mailed link of each approval decides it.
        let mut last_links = Vec::new();
        for id in &ids {
            for step in ["h1", "h2"] {
                approvals += 1;
                let links: Vec<String> = mails
                    .iter()
                    .filter(|m| {
                        sns_attribute(m, "steppy.execution").as_deref() == Some(id.as_str())
                            && sns_attribute(m, "steppy.step").as_deref() == Some(step)
                    })
                    .filter_map(mailed_approve_link)
                    .collect();
                if links.len() != 1 {
                    problems.push(format!(
                        "trial {trial}: execution {id} step {step}: {} approval mails, expected 1",
                        links.len()
                    ));
                }
                let Some(first) = links.first() else { continue };
                let got = follow_approval_link(first, true, "release-manager").await;
                if got != Followed::Decided {
                    dead_first_links += 1;
                    problems.push(format!(
                        "trial {trial}: execution {id} step {step}: the first mailed link did not decide: {got:?}"
                    ));
                    if let Some(last) = links.last() {
                        last_links.push(last.clone());
                    }
                }
            }
        }
        // Finish what a dead first link left waiting, so the execution can end.
        for link in &last_links {
            let _ = follow_approval_link(link, true, "release-manager").await;
        }
        let ids2 = ids.clone();
        let sb = tokio::task::spawn_blocking(move || {
            let states = wait_ended(&sb, &ids2, 30);
            (sb, states)
        });
        let (sb, states) = sb.await.expect("join");
        // Every printed link must work as well (`serve` may print none when the request is
        // mailed); a 404 means the printed token was rotated away.
        let printed: Vec<String> = printed.lock().expect("serve output").clone();
        for line in &printed {
            if let Some(link) = line.split("open to approve: ").nth(1) {
                let path = link.trim().trim_start_matches(&format!("http://{addr}")).to_string();
                let code = get(&addr, &path).map(|(c, _)| c);
                if code != Some(200) {
                    problems.push(format!(
                        "trial {trial}: a printed approval link answers {code:?}: {}",
                        line.trim()
                    ));
                }
            }
        }
        kill(server);
        for (id, state) in ids.iter().zip(&states) {
            let history = sb.json(&["history", id, "--format", "json"]);
            let (s, r, t) = (
                count_events(&history, "ExecutionStarted"),
                count_events(&history, "ExecutionResumed"),
                count_events(&history, "ApprovalTokenRotated"),
            );
            resumed += r;
            rotated += t;
            if s != 1 || r != 0 {
                problems.push(format!("trial {trial}: execution {id}: {s} ExecutionStarted and {r} ExecutionResumed, expected 1 and 0 (nothing ran it before)"));
            }
            if t != 0 {
                problems.push(format!(
                    "trial {trial}: execution {id}: {t} ApprovalTokenRotated, expected 0 (no crash happened)"
                ));
            }
            if count_events(&history, "ApprovalRequested") != 2 {
                problems.push(format!(
                    "trial {trial}: execution {id}: {} ApprovalRequested, expected 2",
                    count_events(&history, "ApprovalRequested")
                ));
            }
            if state != "SUCCEEDED" {
                problems.push(format!(
                    "trial {trial}: execution {id} ended {state:?}, expected SUCCEEDED"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "submit-then-serve started approvals more than once ({approvals} approvals in {TRIALS} trials: {dead_first_links} first mailed links dead, \
         {rotated} token rotations, {resumed} ExecutionResumed on fresh executions):\n  {}",
        problems.join("\n  ")
    );
}

/// Issue 10, finding 1, with CodeBuild: a plan with three CodeBuild steps on three moto
/// projects is submitted, then `serve` starts on the database and runs it to the end. moto must
/// hold exactly one build per project (moto starts a build per StartBuild call; it ignores
/// `idempotencyToken`), and it must be the build the step recorded. On today's main every build
/// is started twice ([2, 2, 2]) while the history shows one `StepStarted` per step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_then_serve_starts_each_build_once() {
    const TRIALS: usize = 3;
    let config = aws_support::aws_config().await;
    let mut problems = Vec::new();
    let mut counts = Vec::new();
    for trial in 1..=TRIALS {
        let projects: Vec<String> = (0..3).map(|_| aws_support::unique("serve-build")).collect();
        for p in &projects {
            aws_support::create_project(&config, p).await;
        }
        let sb = Sandbox::new();
        let steps: Vec<Value> = projects
            .iter()
            .enumerate()
            .map(|(i, p)| json!({ "type": "CodeBuild", "name": format!("b{i}"), "codeBuildName": p }))
            .collect();
        let id = submit(
            &sb,
            "builds",
            &json!({ "stages": [{ "name": "build", "steps": steps }] }),
        );
        let addr = format!("127.0.0.1:{}", loopback_port());
        let (server, _) = spawn_serve(&sb, &addr);
        let (sb, states) = {
            let id = id.clone();
            tokio::task::spawn_blocking(move || {
                let states = wait_ended(&sb, std::slice::from_ref(&id), 60);
                (sb, states)
            })
            .await
            .expect("join")
        };
        kill(server);
        let history = sb.json(&["history", &id, "--format", "json"]);
        let mut per_project = Vec::new();
        for (i, p) in projects.iter().enumerate() {
            let builds = aws_support::builds_of(&config, p).await;
            per_project.push(builds.len());
            let recorded: Vec<String> = history
                .as_array()
                .expect("events")
                .iter()
                .filter(|e| e["type"] == "StepHandleRecorded" && e["step"] == json!(i))
                .filter_map(|e| e["details"]["handle"]["buildId"].as_str().map(str::to_string))
                .collect();
            if builds.len() != 1 || recorded.len() != 1 || builds.first().map(|b| &b.0) != recorded.first() {
                problems.push(format!(
                    "trial {trial}: step b{i}: moto holds builds {:?}, the history recorded {recorded:?}",
                    builds.iter().map(|b| &b.0).collect::<Vec<_>>()
                ));
            }
        }
        for (key, n) in start_intents(&history) {
            if n != 1 {
                problems.push(format!("trial {trial}: {n} StepStarted for {key}"));
            }
        }
        if states[0] != "SUCCEEDED" {
            problems.push(format!(
                "trial {trial}: the execution ended {:?}, expected SUCCEEDED",
                states[0]
            ));
        }
        counts.push(per_project);
    }
    assert!(
        problems.is_empty(),
        "builds per project in each trial: {counts:?} (expected [1, 1, 1] each):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_access_log_never_shows_a_token_however_the_path_is_spelled() {
    use std::io::Read;
    let sb = Sandbox::new();
    let addr = format!("127.0.0.1:{}", loopback_port());
    let mut server = sb
        .steppy(&["serve", "--listen", &addr, "--access-log"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    wait_until_serving(&addr);
    let secret = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";
    let token = format!("stp_{secret}");
    let paths = [
        format!("/approvals/{token}?action=approve"),
        format!("/APPROVALS/{token}"),
        format!("/%61pprovals/{token}"),
        format!("/%41PPROVALS/%73tp_{secret}"),
        format!("/humanConfirmation?taskToken%00={token}"),
        format!("/humanConfirmation?taskToken={token}&action=approve"),
        format!("/humanConfirmation?x=1&{token}"),
        format!("/api/approvals/{token}/decision"),
        format!("/somewhere/{token}/else"),
        "/api/executions?state=%1b%5b2J".to_string(),
    ];
    for p in &paths {
        assert!(get(&addr, p).is_some(), "GET {p} got no answer");
    }
    // SAFETY: sends SIGTERM to the child we spawned.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
    let mut log = String::new();
    server
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("read stderr");
    // One access line per request (the text log: `request{method=GET route=… request_id=…}:
    // steppy::access: request status=404 latency_ms=0.3`).
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("steppy::access") && l.contains("method=GET"))
        .collect();
    assert!(lines.len() > paths.len(), "one line per request:\n{log}");
    assert!(!log.contains(secret), "a token reached the access log:\n{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("route=/approvals/{token}?action=approve ") && l.contains("status=404")),
        "a matched route shows its template (an unknown token: 404):\n{log}"
    );
}

#[test]
fn readyz_reports_the_engine_of_serve() {
    let sb = Sandbox::new();
    let addr = format!("127.0.0.1:{}", loopback_port());
    let mut server = sb
        .steppy(&["serve", "--listen", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        if let Some((200, body)) = get(&addr, "/readyz") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "serve never became ready: {:?}",
            get(&addr, "/readyz")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = server.kill();
    let _ = server.wait();
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (v["ready"].as_bool(), v["engine"].as_str(), v["database"].as_str()),
        (Some(true), Some("running"), Some("writable")),
        "{v}"
    );
}
