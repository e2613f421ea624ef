//! Crash recovery of the `steppy` binary: kill it with SIGKILL at named points (fault injection)
//! and at moments chosen by timing, restart with `steppy resume`, and check the execution ends
//! with every step started exactly once.

mod support;

use serde_json::{Value, json};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use support::*;

/// Three stages: a notification; a wait, an approval and a notification together; a last
/// notification.
fn plan() -> Value {
    json!({
        "name": "crash test",
        "stages": [
            { "name": "first", "steps": [ { "type": "Notify", "name": "n1", "message": "one" } ] },
            { "name": "second", "steps": [
                { "type": "Wait", "name": "w1", "seconds": 1 },
                { "type": "Human", "name": "h1", "message": "go?" },
                { "type": "Notify", "name": "n2", "message": "two" }
            ] },
            { "name": "third", "steps": [ { "type": "Notify", "name": "n3", "message": "three" } ] }
        ]
    })
}

/// Checks the execution succeeded and every step started exactly once.
fn assert_finished_once(sb: &Sandbox) -> Value {
    let id = sb.only_execution_id();
    let status = sb.json(&["status", &id, "--format", "json"]);
    assert_eq!(status["execution"]["state"], "SUCCEEDED", "{status}");
    let history = sb.json(&["history", &id, "--format", "json"]);
    let intents = start_intents(&history);
    assert_eq!(intents.len(), 5, "one start intent per step: {intents:?}");
    assert!(
        intents.values().all(|&n| n == 1),
        "no intent recorded twice: {intents:?}"
    );
    assert!(
        intents.keys().all(|k| k.ends_with("/1")),
        "no second attempt: {intents:?}"
    );
    assert_eq!(count_events(&history, "ApprovalRequested"), 1, "one approval request");
    let outbox = outbox_keys(&sb.outbox());
    assert_eq!(outbox.len(), 3, "three notifications: {outbox:?}");
    assert!(
        outbox.values().all(|&n| n == 1),
        "no notification written twice: {outbox:?}"
    );
    history
}

/// Runs the plan with `STEPPY_FAULT=kill-after:<fault>`, expects SIGKILL, approves any token the
/// dead process showed, then finishes with `steppy resume`.
fn crash_and_resume(fault: &str) -> (Sandbox, Value, String) {
    let sb = Sandbox::new();
    let plan = sb.write_plan(&plan());
    let mut run = sb.steppy(&["run", plan.to_str().expect("utf-8 path")]);
    run.env("STEPPY_FAULT", format!("kill-after:{fault}"));
    let (status, out) = sb.drive(run);
    assert_eq!(status.signal(), Some(9), "expected SIGKILL at {fault}; output:\n{out}");
    let (status, out) = sb.drive(sb.steppy(&["resume"]));
    assert!(status.success(), "resume after {fault} failed:\n{out}");
    let history = assert_finished_once(&sb);
    (sb, history, out)
}

#[test]
fn killed_after_a_start_intent_is_recorded() {
    crash_and_resume("intent:n1");
}

#[test]
fn killed_after_a_notification_was_written_but_before_its_handle_was_recorded() {
    crash_and_resume("start:n1");
}

#[test]
fn killed_after_a_handle_was_recorded() {
    crash_and_resume("handle:n2");
}

#[test]
fn killed_after_an_approval_request_was_recorded_but_before_its_token_was_shown() {
    let (_, history, _) = crash_and_resume("approval-row:h1");
    assert_eq!(
        count_events(&history, "ApprovalTokenRotated"),
        1,
        "a new token was issued"
    );
}

#[test]
fn killed_after_the_approval_token_was_shown_but_before_its_handle_was_recorded() {
    let (_, history, _) = crash_and_resume("start:h1");
    assert_eq!(
        count_events(&history, "ApprovalTokenRotated"),
        0,
        "the shown token stays valid"
    );
}

#[test]
fn killed_mid_wait_after_its_deadline_was_recorded() {
    let (_, history, _) = crash_and_resume("handle:w1");
    assert_eq!(count_events(&history, "StepHandleRecorded"), 5);
}

#[test]
fn killed_before_a_wait_started_keeps_the_deadline_counted_from_the_intent() {
    let sb = Sandbox::new();
    let plan = sb.write_plan(&plan());
    let mut run = sb.steppy(&["run", plan.to_str().expect("utf-8 path")]);
    run.env("STEPPY_FAULT", "kill-after:intent:w1");
    let (status, out) = sb.drive(run);
    assert_eq!(status.signal(), Some(9), "{out}");
    let id = sb.only_execution_id();
    let wait = |v: &Value| {
        v["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["name"] == "w1")
            .cloned()
            .expect("w1")
    };
    let before = wait(&sb.json(&["status", &id, "--format", "json"]));
    assert!(before["handle"].is_null(), "killed before the handle: {before}");
    let intent = before["attempt_started_ms"].as_i64().expect("intent time");
    let (status, out) = sb.drive(sb.steppy(&["resume"]));
    assert!(status.success(), "{out}");
    assert_finished_once(&sb);
    let after = wait(&sb.json(&["status", &id, "--format", "json"]));
    assert_eq!(
        after["handle"]["untilMs"].as_i64(),
        Some(intent + 1000),
        "deadline from the intent: {after}"
    );
}

#[test]
fn killed_between_stages() {
    crash_and_resume("stage-end:second");
}

#[test]
fn killed_by_timing_mid_wait_keeps_the_deadline() {
    let sb = Sandbox::new();
    let plan = sb.write_plan(&json!({ "stages": [
        { "name": "only", "steps": [ { "type": "Wait", "name": "w", "seconds": 2 } ] },
        { "name": "after", "steps": [ { "type": "Notify", "name": "n", "message": "done" } ] }
    ] }));
    let mut child = sb
        .steppy(&["run", plan.to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    sb.read_approving(&mut child, |l| l.contains("Wait \"w\" waiting"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(9));
    let id = sb.only_execution_id();
    let before = sb.json(&["status", &id, "--format", "json"]);
    assert_eq!(before["execution"]["state"], "RUNNING");
    let until = before["steps"][0]["handle"]["untilMs"]
        .as_i64()
        .expect("recorded deadline");

    let (status, out) = sb.drive(sb.steppy(&["resume"]));
    assert!(status.success(), "{out}");
    let history = sb.json(&["history", &id, "--format", "json"]);
    let events = history.as_array().expect("events");
    let handles: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "StepHandleRecorded" && e["stage"] == 0)
        .collect();
    assert_eq!(handles.len(), 1, "the wait was not started again");
    assert_eq!(
        handles[0]["details"]["handle"]["untilMs"].as_i64(),
        Some(until),
        "same deadline"
    );
    let done = events
        .iter()
        .find(|e| e["type"] == "StepSucceeded" && e["stage"] == 0)
        .expect("wait succeeded");
    assert!(
        done["at_ms"].as_i64().expect("at") >= until,
        "the wait did not end early"
    );
    assert_eq!(outbox_keys(&sb.outbox()).len(), 1);
}

#[test]
fn killed_by_timing_mid_approval_keeps_the_approval_pending() {
    let sb = Sandbox::new();
    let plan = sb.write_plan(&json!({ "stages": [
        { "name": "only", "steps": [ { "type": "Human", "name": "h", "message": "go?" } ] }
    ] }));
    let mut child = sb
        .steppy(&["run", plan.to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read until the token appears, but do not approve yet.
    let stdout = child.stdout.take().expect("stdout");
    let mut token = None;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.expect("line");
        if let Some(t) = token_in(&line) {
            token = Some(t);
            break;
        }
    }
    let token = token.expect("a token was shown");
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().expect("SIGKILL");
    assert_eq!(child.wait().expect("wait").signal(), Some(9));

    // The approval outlives the process: the resumed run waits for it, and the token shown
    // before the crash still decides it.
    let mut resumed = sb.steppy(&["resume"]).stdout(Stdio::piped()).spawn().expect("resume");
    let out = sb.read_approving(&mut resumed, |l| l.contains("still waiting for a decision"));
    assert!(out.contains("still waiting for a decision"), "{out}");
    sb.approve(&token);
    assert!(resumed.wait().expect("wait").success());
    let id = sb.only_execution_id();
    let history = sb.json(&["history", &id, "--format", "json"]);
    assert_eq!(count_events(&history, "ApprovalRequested"), 1);
    assert_eq!(count_events(&history, "ApprovalTokenRotated"), 0);
    assert_eq!(
        sb.json(&["status", &id, "--format", "json"])["execution"]["state"],
        "SUCCEEDED"
    );
}

/// A fan-out stage of six targets, two at a time, killed when the fourth target's
/// notification has been written: `resume` finishes the wave and the stage after it, and no
/// target's notification is written twice.
#[test]
fn killed_mid_wave_resumes_without_running_finished_targets_again() {
    let sb = Sandbox::new();
    let plan = sb.write_plan(&json!({
        "targets": { "t": [
            { "id": "t-1" }, { "id": "t-2" }, { "id": "t-3" }, { "id": "t-4" }, { "id": "t-5" }, { "id": "t-6" }
        ] },
        "stages": [
            { "name": "deploy", "forEach": "t", "maxConcurrency": 2,
              "waves": [ { "name": "canary", "count": 1 }, { "name": "rest" } ],
              "steps": [ { "type": "Notify", "name": "n", "message": "deploy ${target.id}" } ] },
            { "name": "after", "steps": [ { "type": "Notify", "name": "done", "message": "done" } ] }
        ]
    }));
    let mut run = sb.steppy(&["run", plan.to_str().expect("utf-8 path")]);
    run.env("STEPPY_FAULT", "kill-after:handle:n [t-4]");
    let (status, out) = sb.drive(run);
    assert_eq!(status.signal(), Some(9), "expected SIGKILL mid-wave; output:\n{out}");
    let id = sb.only_execution_id();
    let before = sb.json(&["status", &id, "--format", "json"]);
    let pending = before["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["state"] == "PENDING")
        .count();
    assert!(pending >= 2, "the kill came mid-wave: {before}");
    let (status, out) = sb.drive(sb.steppy(&["resume"]));
    assert!(status.success(), "resume failed:\n{out}");
    let after = sb.json(&["status", &id, "--format", "json"]);
    assert_eq!(after["execution"]["state"], "SUCCEEDED", "{after}");
    let history = sb.json(&["history", &id, "--format", "json"]);
    let intents = start_intents(&history);
    assert_eq!(
        intents.len(),
        7,
        "one start intent per instance and the last step: {intents:?}"
    );
    assert!(
        intents.values().all(|&n| n == 1),
        "no instance started twice: {intents:?}"
    );
    let outbox = outbox_keys(&sb.outbox());
    assert_eq!(outbox.len(), 7, "one notification per target and the last: {outbox:?}");
    assert!(
        outbox.values().all(|&n| n == 1),
        "no notification written twice: {outbox:?}"
    );
}
