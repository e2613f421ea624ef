//! The engine commands of the `steppy` binary: refusals and errors are clear sentences with the
//! documented exit codes; approvals are decided from another process, first decision wins.

mod support;

use serde_json::json;
use std::process::Stdio;
use support::*;

#[test]
fn the_quickstart_plan_runs_end_to_end() {
    let sb = Sandbox::new();
    let plan = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.json");
    let (status, out) = sb.drive(sb.steppy(&["run", plan]));
    assert!(status.success(), "{out}");
    assert!(out.contains("approved by tester"), "{out}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    assert!(!out.contains("still waiting"), "the token was shown in this run: {out}");
    assert_eq!(outbox_keys(&sb.outbox()).len(), 2);
}

#[test]
fn a_rejection_from_another_process_aborts_the_run() {
    let sb = Sandbox::new();
    let plan = sb.write_plan(&json!({ "stages": [
        { "name": "ask", "steps": [
            { "type": "Human", "name": "h", "message": "go?" },
            { "type": "Wait", "name": "w", "seconds": 3600 }
        ] },
        { "name": "never", "steps": [ { "type": "Notify", "name": "n", "message": "no" } ] }
    ] }));
    let mut child = sb
        .steppy(&["run", plan.to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut token = None;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    for line in lines.by_ref() {
        if let Some(t) = token_in(&line.expect("line")) {
            token = Some(t);
            break;
        }
    }
    let token = token.expect("token shown");
    let (status, out, err) = sb.output(&["reject", &token, "--comment", "not today", "--as", "ops"]);
    assert!(status.success(), "{out}{err}");
    assert!(out.starts_with("rejected"), "{out}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(child.wait().expect("wait").code(), Some(1));
    assert!(
        rest.iter().any(|l| l.contains("ABORTED") && l.contains("not today")),
        "{rest:?}"
    );
    assert!(rest.iter().any(|l| l.contains("Wait \"w\" cancelled")), "{rest:?}");

    // The decision is final: a second vote is refused with a sentence, exit 1.
    let (status, _, err) = sb.output(&["approve", &token]);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("already rejected by ops"), "{err}");
}

#[test]
fn unknown_ids_and_tokens_are_clear_errors() {
    let sb = Sandbox::new();
    // A database to look in (without one, each says there is no database: tests/database.rs).
    let plan = sb.write_plan(
        &json!({ "stages": [ { "name": "s", "steps": [ { "type": "Wait", "name": "w", "seconds": 0 } ] } ] }),
    );
    let (status, _, err) = sb.output(&["run", plan.to_str().expect("utf-8")]);
    assert!(status.success(), "{err}");
    for args in [["status", "nope"], ["history", "nope"], ["abort", "nope"]] {
        let (status, _, err) = sb.output(&args);
        assert_eq!(status.code(), Some(1), "{args:?}");
        assert!(err.contains("no execution with id nope"), "{args:?}: {err}");
    }
    for token in ["not-a-token", "-starts-with-a-dash"] {
        let (status, _, err) = sb.output(&["approve", token]);
        assert_eq!(status.code(), Some(1), "{err}");
        assert!(err.contains("no approval matches this token"), "{err}");
    }
}

#[test]
fn serve_refuses_a_watch_url_it_could_never_read_before_it_starts() {
    let sb = Sandbox::new();
    for (url, why) in [("/tmp/plans/", "is not an S3 URL"), ("s3:///plans/", "names no bucket")] {
        let (status, _, err) = sb.output(&["serve", "--listen", "127.0.0.1:0", "--watch", url]);
        assert_eq!(status.code(), Some(2), "{url}: {err}");
        assert!(err.contains("--watch") && err.contains(why), "{url}: {err}");
    }
    let (status, _, err) = sb.output(&["serve", "--listen", "127.0.0.1:0", "--poll-interval", "3 parsecs"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--poll-interval") && err.contains("3 parsecs"), "{err}");
}

#[test]
fn a_corrupt_database_is_reported_not_panicked_on() {
    let sb = Sandbox::new();
    std::fs::write(sb.db(), vec![b'x'; 4096]).expect("write junk");
    let (status, _, err) = sb.output(&["list"]);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("corrupt or is not a Steppy database"), "{err}");
}

#[test]
fn submit_then_abort_a_pending_execution() {
    let sb = Sandbox::new();
    let plan = sb.write_plan(
        &json!({ "stages": [ { "name": "s", "steps": [ { "type": "Wait", "name": "w", "seconds": 60 } ] } ] }),
    );
    let (status, out, _) = sb.output(&["submit", plan.to_str().expect("utf-8")]);
    assert!(status.success());
    let id = out.trim().to_string();
    let (status, _, err) = sb.output(&["abort", &id]);
    assert!(status.success(), "{err}");
    let s = sb.json(&["status", &id, "--format", "json"]);
    assert_eq!(s["execution"]["state"], "ABORTED");
    let (status, _, err) = sb.output(&["abort", &id]);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("already ended"), "{err}");
}

#[test]
fn the_link_run_prints_serves_the_approval_page() {
    let sb = Sandbox::new();
    let plan = sb.write_plan(&json!({ "stages": [ { "name": "sign-off", "steps": [
        { "type": "Human", "name": "go", "message": "Ship it? <b>really</b>" }
    ] } ] }));
    let mut child = sb
        .steppy(&["run", plan.to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut page = None;
    let out = sb.read_approving(&mut child, |line| {
        // Before the token is approved (read_approving approves on the `approve:` line, which
        // comes after the links), the page must answer at the printed address.
        if let Some(url) = line.split("open to approve: ").nth(1) {
            let rest = url.trim().strip_prefix("http://").expect("an http link");
            let (addr, path) = rest.split_at(rest.find('/').expect("a path"));
            page = get(addr, path);
        }
        false
    });
    assert!(child.wait().expect("wait").success(), "{out}");
    let (code, body) = page.expect("the printed link answered");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("Ship it? &lt;b&gt;really&lt;/b&gt;"),
        "the step message, escaped: {body}"
    );
    assert!(out.contains("SUCCEEDED"), "{out}");
}

/// `--param` and `--params-file` reach the plan; a malformed `--param` is a usage error (2), a
/// missing or unknown parameter an invalid plan (1), before anything is recorded.
#[test]
fn parameters_come_from_flags_and_files() {
    let sb = Sandbox::new();
    let plan = sb.write_plan(&json!({
        "parameters": { "version": { "pattern": "[0-9.]+" }, "env": { "default": "dev" } },
        "stages": [ { "name": "s", "steps": [
            { "type": "Notify", "name": "n", "message": "deploy ${params.version} to ${params.env}" }
        ] } ]
    }));
    let plan = plan.to_str().expect("utf-8");
    let (status, _, err) = sb.output(&["run", plan]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("parameter \"version\" has no default and was not given"),
        "{err}"
    );
    let (status, _, err) = sb.output(&["run", plan, "--param", "version"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("write NAME=VALUE"), "{err}");
    let (status, _, err) = sb.output(&["validate", plan, "--param", "version=1.0", "--param", "evn=prod"]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("its parameters: env, version"), "{err}");
    assert!(!sb.db().exists(), "nothing was recorded");

    let file = sb.db().with_file_name("params.yaml");
    std::fs::write(&file, "version: \"2.0\"\nenv: prod\n").expect("params file");
    let file = file.to_str().expect("utf-8");
    let (status, out, err) = sb.output(&["run", plan, "--params-file", file, "--param", "env=test"]);
    assert!(status.success(), "{out}{err}");
    let id = sb.only_execution_id();
    let status = sb.json(&["status", &id, "--format", "json"]);
    assert_eq!(status["resolved"]["params"], json!({ "version": "2.0", "env": "test" }));
    let outbox = std::fs::read_to_string(sb.outbox()).expect("outbox");
    assert!(outbox.contains("deploy 2.0 to test"), "{outbox}");
}
