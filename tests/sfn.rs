//! The same plans on both engines: the local one (`steppy run`) and AWS Step Functions as
//! moto's interpreter runs it (`steppy run --engine sfn`; moto in server mode with
//! `stepfunctions.execute_state_machine` enabled through its `/moto-api/config` endpoint).
//!
//! Each case must end in the same state on both, with the same step states and the same
//! notifications (read from an SQS queue subscribed to the plan's SNS topic), and both must match
//! what the case expects. Approvals are decided the way a person does: the test follows the
//! approve or reject link the run prints, reads the page's form, and submits it over HTTP to
//! the approval pages the run serves; for Step Functions that redeems the task token.
//!
//! Also here: `steppy deploy` (create, unchanged, update), `status`/`history` of an execution
//! ARN, and crashes around StartExecution followed by `steppy resume` (one execution each).
//!
//! Everything runs against moto on 127.0.0.1 (see `executors/tests/support`); no test can reach
//! real AWS.

mod support;

use steppy_test_support::moto as aws_support;

use aws_support::{ACCOUNT, REGION, aws_config, moto, unique};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use support::Sandbox;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Mutex, OnceCell};

const ROLE: &str = "arn:aws:iam::123456789012:role/steppy-sfn";

/// moto's interpreter can trip over concurrent executions: Step Functions runs go one at a time.
static SFN_RUNS: Mutex<()> = Mutex::const_new(());

/// Turns on moto's Step Functions interpreter (once per test binary).
async fn interpreter() {
    static ON: OnceCell<()> = OnceCell::const_new();
    ON.get_or_init(|| async {
        let url = format!("{}/moto-api/config", moto().url);
        aws_support::assert_loopback(&url);
        let r = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(json!({ "stepfunctions": { "execute_state_machine": true } }).to_string())
            .send()
            .await
            .expect("configure moto");
        assert!(
            r.status().is_success(),
            "moto refused the configuration: {}",
            r.status()
        );
    })
    .await;
}

/// `steppy ARGS` in `sb`, talking to moto only.
fn steppy(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.steppy(args);
    support::talk_to(&mut c, &moto().url);
    c.env_remove("STEPPY_SFN_ROLE_ARN");
    c
}

/// A fresh SNS topic with an SQS queue subscribed to it: what was published.
struct Topic {
    arn: String,
    queue: String,
}

impl Topic {
    async fn new() -> Topic {
        let (arn, queue) = aws_support::topic_with_queue(&aws_config().await, &unique("release")).await;
        Topic { arn, queue }
    }

    /// The `Message` of every notification published so far (moto delivers on publish).
    async fn messages(&self) -> Vec<String> {
        let sqs = aws_sdk_sqs::Client::new(&aws_config().await);
        let mut all = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(&self.queue)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            if got.messages().is_empty() {
                return all;
            }
            for m in got.messages() {
                let envelope: Value = serde_json::from_str(m.body().unwrap_or_default()).expect("an SNS envelope");
                all.push(envelope["Message"].as_str().unwrap_or_default().to_string());
                sqs.delete_message()
                    .queue_url(&self.queue)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

/// How a run ended, in terms both engines share.
#[derive(Debug, PartialEq)]
struct Ending {
    state: String,
    /// (step name, state) in plan order.
    steps: Vec<(String, String)>,
    /// Which of the plan's messages (Notify and Human) were published.
    notified: BTreeSet<String>,
    /// Who the live view says approved (`… approved by NAME after …`).
    approved_by: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Local,
    Sfn,
}

/// What the test does when an approval link appears.
#[derive(Clone, Copy)]
enum Decide {
    Approve,
    Reject,
    /// Nobody clicks: the approval's `onTimeout` decides.
    Nobody,
}

/// Follows `link` like a person: GET the page (which must not decide), then submit its form.
async fn decide(link: &str, how: Decide) {
    aws_support::assert_loopback(link);
    let http = reqwest::Client::new();
    let page = http.get(link).send().await.expect("GET the approval page");
    assert_eq!(page.status(), 200, "the approval page answers");
    let html = page.text().await.expect("page");
    let (action, mut fields) = form(&html).unwrap_or_else(|| panic!("no decision form on the page:\n{html}"));
    fields.push((
        "decision".into(),
        if matches!(how, Decide::Reject) {
            "reject"
        } else {
            "approve"
        }
        .into(),
    ));
    fields.push(("approver".into(), "ana@example.com".into()));
    fields.push(("comment".into(), "checked by the differential test".into()));
    let base = link.split("/humanConfirmation").next().unwrap_or(link);
    let base = base.split("/approvals/").next().unwrap_or(base);
    let url = if action.starts_with("http") {
        action
    } else {
        format!("{base}/{}", action.trim_start_matches('/'))
    };
    let posted = http.post(&url).form(&fields).send().await.expect("POST the decision");
    let status = posted.status();
    assert!(
        status.is_success(),
        "the decision was refused ({status}): {}",
        posted.text().await.unwrap_or_default()
    );
}

/// The decision form's action and hidden fields.
fn form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = start + html[start..].find("</form>")?;
    let tag_end = start + html[start..].find('>')?;
    let action = attr(&html[start..tag_end], "action")?;
    let mut hidden = Vec::new();
    let mut rest = &html[tag_end..end];
    while let Some(i) = rest.find("<input") {
        let j = rest[i..].find('>').map(|j| i + j).unwrap_or(rest.len());
        let tag = &rest[i..j];
        if attr(tag, "type").as_deref() == Some("hidden")
            && let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value"))
        {
            hidden.push((n, v));
        }
        rest = &rest[j..];
    }
    Some((action, hidden))
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    let j = tag[i..].find('"')? + i;
    Some(
        tag[i..j]
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#39;", "'"),
    )
}

/// Runs `plan` to its end on `engine`, deciding approvals with `how`.
async fn run(engine: Engine, plan: &Value, how: Decide) -> Ending {
    let sb = Sandbox::new();
    let topic = Topic::new().await;
    let mut plan = plan.clone();
    plan["defaults"] = json!({ "notificationTopicArn": topic.arn });
    let path = sb.write_plan(&plan);
    let path = path.to_str().expect("utf-8");
    let name = unique("differential");
    let mut args = vec!["run", path];
    if engine == Engine::Sfn {
        args.extend(["--engine", "sfn", "--name", &name, "--role-arn", ROLE]);
    }
    let mut cmd = steppy(&sb, &args);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn steppy run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut transcript = String::new();
    let mut execution = None;
    let reading = async {
        while let Some(line) = lines.next_line().await.expect("read") {
            transcript.push_str(&line);
            transcript.push('\n');
            if execution.is_none() {
                execution = line
                    .split("execution ")
                    .nth(1)
                    .and_then(|r| r.split([' ', ':']).next())
                    .map(String::from);
            }
            let label = match how {
                Decide::Approve => "open to approve: ",
                Decide::Reject => "open to reject:  ",
                Decide::Nobody => continue,
            };
            if let Some(link) = line.split(label).nth(1) {
                decide(link.trim(), how).await;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), reading)
        .await
        .expect("the run ended within 2 minutes");
    let out = child.wait_with_output().await.expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let status_of = match engine {
        Engine::Local => execution.clone().unwrap_or_default(),
        Engine::Sfn => aws_support_arn(&name, execution.as_deref().unwrap_or_default()),
    };
    let (ok, shown, err) = output(steppy(&sb, &["status", &status_of, "--format", "json"]));
    assert!(ok, "status of {status_of} failed: {err}\nrun:\n{transcript}{stderr}");
    let shown: Value = serde_json::from_str(&shown).expect("status json");
    let steps = shown["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_string(),
                s["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let messages = topic.messages().await;
    let plan_messages = plan["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["steps"].as_array().into_iter().flatten())
        .filter_map(|s| s["message"].as_str());
    let notified = plan_messages
        .filter(|m| messages.iter().any(|body| body.contains(m)))
        .map(String::from)
        .collect();
    let approved_by = transcript
        .lines()
        .find_map(|l| l.split(" approved by ").nth(1))
        .and_then(|r| r.split(" after").next())
        .map(String::from);
    Ending {
        state: shown["execution"]["state"].as_str().unwrap_or("").to_string(),
        steps,
        notified,
        approved_by,
    }
}

/// The execution ARN of execution `name` of state machine `machine`.
fn aws_support_arn(machine: &str, name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine}:{name}")
}

fn output(mut c: Command) -> (bool, String, String) {
    let o = c.output().expect("spawn steppy");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// Runs `plan` on both engines and checks both against `expected` (and so each other).
async fn differential(plan: Value, how: Decide, expected: Ending) {
    interpreter().await;
    let local = run(Engine::Local, &plan, how).await;
    let sfn = {
        let _one_at_a_time = SFN_RUNS.lock().await;
        run(Engine::Sfn, &plan, how).await
    };
    assert_eq!(local, expected, "the local engine");
    assert_eq!(sfn, expected, "Step Functions (moto's interpreter)");
}

fn steps(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A topic nobody created: publishing to it fails on both engines.
fn missing_topic() -> String {
    format!("arn:aws:sns:{REGION}:{ACCOUNT}:{}", unique("missing"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_and_notifications_end_alike() {
    let plan = json!({ "name": "waits", "stages": [
        { "name": "start", "steps": [
            { "type": "Notify", "name": "hello", "message": "release is starting" },
            { "type": "Wait", "name": "soak", "seconds": 1 }
        ]},
        { "name": "end", "steps": [{ "type": "Notify", "name": "bye", "message": "release is done" }] }
    ]});
    let expected = Ending {
        state: "SUCCEEDED".into(),
        steps: steps(&[("hello", "SUCCEEDED"), ("soak", "SUCCEEDED"), ("bye", "SUCCEEDED")]),
        notified: set(&["release is starting", "release is done"]),
        approved_by: None,
    };
    differential(plan, Decide::Approve, expected).await;
}

fn approval_plan() -> Value {
    json!({ "name": "approval", "stages": [
        { "name": "announce", "steps": [{ "type": "Notify", "name": "hello", "message": "about to ask" }] },
        { "name": "sign-off", "steps": [{ "type": "Human", "name": "go", "message": "Ship build 42?" }] },
        { "name": "after", "steps": [{ "type": "Notify", "name": "shipped", "message": "build 42 shipped" }] }
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_approval_lets_the_release_go_on_alike() {
    let expected = Ending {
        state: "SUCCEEDED".into(),
        steps: steps(&[("hello", "SUCCEEDED"), ("go", "SUCCEEDED"), ("shipped", "SUCCEEDED")]),
        notified: set(&["about to ask", "Ship build 42?", "build 42 shipped"]),
        approved_by: Some("ana@example.com".into()),
    };
    differential(approval_plan(), Decide::Approve, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_approval_aborts_alike() {
    let expected = Ending {
        state: "ABORTED".into(),
        steps: steps(&[("hello", "SUCCEEDED"), ("go", "FAILED"), ("shipped", "PENDING")]),
        notified: set(&["about to ask", "Ship build 42?"]),
        approved_by: None,
    };
    differential(approval_plan(), Decide::Reject, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_nobody_decides_follows_on_timeout_alike() {
    let plan = json!({ "name": "timeout", "stages": [
        { "name": "sign-off", "steps": [{ "type": "Human", "name": "go", "message": "Anyone?", "timeoutSeconds": 2, "onTimeout": "approve" }] },
        { "name": "after", "steps": [{ "type": "Notify", "name": "shipped", "message": "shipped unattended" }] }
    ]});
    let expected = Ending {
        state: "SUCCEEDED".into(),
        steps: steps(&[("go", "SUCCEEDED"), ("shipped", "SUCCEEDED")]),
        notified: set(&["Anyone?", "shipped unattended"]),
        approved_by: Some("timeout".into()),
    };
    differential(plan, Decide::Nobody, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_with_continue_on_failure_lets_the_release_go_on_alike() {
    let plan = json!({ "name": "continue", "stages": [
        { "name": "try", "steps": [
            { "type": "Notify", "name": "broken", "message": "to nowhere", "topicArn": missing_topic(), "continueOnFailure": true },
            { "type": "Notify", "name": "fine", "message": "this one arrives" }
        ]},
        { "name": "after", "steps": [{ "type": "Notify", "name": "after", "message": "went on anyway" }] }
    ]});
    let expected = Ending {
        state: "SUCCEEDED".into(),
        steps: steps(&[("broken", "FAILED"), ("fine", "SUCCEEDED"), ("after", "SUCCEEDED")]),
        notified: set(&["this one arrives", "went on anyway"]),
        approved_by: None,
    };
    differential(plan, Decide::Approve, expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_halts_the_release_after_its_stage_alike() {
    let plan = json!({ "name": "halt", "stages": [
        { "name": "try", "steps": [
            { "type": "Notify", "name": "broken", "message": "to nowhere", "topicArn": missing_topic() },
            { "type": "Wait", "name": "soak", "seconds": 1 }
        ]},
        { "name": "after", "steps": [{ "type": "Notify", "name": "after", "message": "must not be sent" }] }
    ]});
    let expected = Ending {
        state: "FAILED".into(),
        // The failed step's stage still finishes its other steps; the next stage never starts.
        steps: steps(&[("broken", "FAILED"), ("soak", "SUCCEEDED"), ("after", "PENDING")]),
        notified: set(&[]),
        approved_by: None,
    };
    differential(plan, Decide::Approve, expected).await;
}

/// The executions moto has of state machine `name`.
async fn executions_of(name: &str) -> Vec<String> {
    let sfn = aws_sdk_sfn::Client::new(&aws_config().await);
    let arn = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}");
    sfn.list_executions()
        .state_machine_arn(arn)
        .send()
        .await
        .expect("list executions")
        .executions()
        .iter()
        .map(|e| e.execution_arn().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_creates_then_leaves_alone_then_updates() {
    interpreter().await;
    let sb = Sandbox::new();
    let name = unique("deployed");
    let topic = format!("arn:aws:sns:{REGION}:{ACCOUNT}:releases");
    let plan = sb.write_plan(&json!({ "defaults": { "notificationTopicArn": topic }, "stages": [{ "name": "s", "steps": [{ "type": "Human", "name": "ok", "message": "Ship?" }] }] }));
    let plan = plan.to_str().expect("utf-8");

    let mut no_role = steppy(&sb, &["deploy", "--engine", "sfn", "--name", &name, plan]);
    let o = no_role.output().expect("deploy");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("needs --role-arn"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let deploy = |extra: &[&str]| {
        let mut args = vec!["deploy", "--engine", "sfn", "--name", &name, "--role-arn", ROLE];
        args.extend(extra);
        args.push(plan);
        let o = steppy(&sb, &args).output().expect("deploy");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8_lossy(&o.stdout).trim().to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (arn, said) = deploy(&[]);
    assert_eq!(arn, format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"));
    assert!(said.contains("created"), "{said}");
    let (again, said) = deploy(&[]);
    assert_eq!(again, arn);
    assert!(said.contains("unchanged"), "{said}");
    let (_, said) = deploy(&["--public-url", "https://approvals.example.com"]);
    assert!(
        said.contains("updated"),
        "a new approval URL changes the definition: {said}"
    );
    let sfn = aws_sdk_sfn::Client::new(&aws_config().await);
    let _ = sfn
        .describe_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
        .expect("deployed state machine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_history_read_a_step_functions_execution() {
    interpreter().await;
    let _one_at_a_time = SFN_RUNS.lock().await;
    let sb = Sandbox::new();
    let name = unique("inspected");
    let plan = sb.write_plan(&json!({ "name": "inspected", "stages": [{ "name": "only", "steps": [{ "type": "Wait", "name": "tick", "seconds": 1 }] }] }));
    let o = steppy(
        &sb,
        &[
            "run",
            "--engine",
            "sfn",
            "--name",
            &name,
            "--role-arn",
            ROLE,
            plan.to_str().expect("utf-8"),
        ],
    )
    .stdin(Stdio::null())
    .output()
    .expect("run");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    for expected in [
        "started on Step Functions (1 stages, 1 steps)",
        "stage 1/1 \"only\" started",
        "Wait \"tick\" running",
        "Wait \"tick\" succeeded after",
        "SUCCEEDED in",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    let arns = executions_of(&name).await;
    assert_eq!(arns.len(), 1);
    let (ok, text, _) = output(steppy(&sb, &["status", &arns[0]]));
    assert!(ok);
    assert!(
        text.contains("succeeded (SUCCEEDED)")
            && text.contains("stage 1/1 \"only\"")
            && text.contains("succeeded  Wait         tick"),
        "{text}"
    );
    let (ok, history, _) = output(steppy(&sb, &["history", &arns[0], "--format", "json"]));
    assert!(ok);
    let events: Value = serde_json::from_str(&history).expect("json");
    let kinds: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"ExecutionStarted"));
    assert_eq!(kinds.last(), Some(&"ExecutionSucceeded"));
    assert!(kinds.contains(&"WaitStateEntered"));
    // `list` shows it next to local executions.
    let (_, list, _) = output(steppy(&sb, &["list"]));
    assert!(list.contains(&arns[0]) && list.contains("succeeded"), "{list}");
    // An ARN moto does not know is a clear error, not a panic.
    let (ok, _, err) = output(steppy(
        &sb,
        &[
            "status",
            &format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{name}:nope"),
        ],
    ));
    assert!(!ok && err.contains("cannot read"), "{err}");
}

/// Kills `run --engine sfn` at `point`, then checks that `steppy resume` ends the release with
/// exactly one execution in Step Functions.
async fn crash_then_resume(point: &str) {
    interpreter().await;
    let _one_at_a_time = SFN_RUNS.lock().await;
    let sb = Sandbox::new();
    let name = unique("crashed");
    let plan = sb.write_plan(
        &json!({ "stages": [{ "name": "only", "steps": [{ "type": "Wait", "name": "tick", "seconds": 1 }] }] }),
    );
    let mut run = steppy(
        &sb,
        &[
            "run",
            "--engine",
            "sfn",
            "--name",
            &name,
            "--role-arn",
            ROLE,
            plan.to_str().expect("utf-8"),
        ],
    );
    run.env("STEPPY_FAULT", format!("kill-after:{point}:{name}"))
        .stdin(Stdio::null());
    let o = run.output().expect("run");
    assert_eq!(
        o.status.signal(),
        Some(9),
        "expected SIGKILL at {point}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let before = executions_of(&name).await.len();
    assert_eq!(
        before,
        usize::from(point == "sfn-started"),
        "executions started before the kill at {point}"
    );

    let (ok, out, err) = output(steppy(&sb, &["resume"]));
    assert!(ok, "resume failed:\n{out}{err}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    assert_eq!(
        executions_of(&name).await.len(),
        1,
        "exactly one execution after resume"
    );
    let (_, again, _) = output(steppy(&sb, &["resume"]));
    assert!(again.contains("no unfinished executions"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_start_execution_is_started_once_by_resume() {
    crash_then_resume("sfn-recorded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_start_execution_is_not_started_again_by_resume() {
    crash_then_resume("sfn-started").await;
}
