//! Chaos test of `steppy serve` (issue 10, "Show"): `serve` against moto is killed with SIGKILL
//! at [`KILLS`] random moments and restarted each time, while executions of a plan with
//! CodeBuild, Notify (SNS to an SQS queue), Wait and Human steps run; the approvals are mailed
//! through SNS and decided over HTTP by following the link read from the queue (GET the page,
//! then POST its form). It starts with the submit-then-serve case: the first `serve` starts on a
//! database that already holds submitted executions; later ones are submitted while a `serve`
//! runs. On top of the random kills, a few lives run with `STEPPY_FAULT` ([`FAULTS`]) so that
//! every run also kills inside the StartBuild window and the approval window described below
//! (random kills rarely land in those few milliseconds).
//!
//! Seeded and reproducible in its choices: the kill delays (and the decider's delays) come from
//! a xorshift generator seeded by `STEPPY_CHAOS_SEED` (default [`DEFAULT_SEED`]); the seed is
//! printed. Bounded: [`KILLS`] lives of at most [`LIFE_MAX_MS`] plus up to four fault lives of
//! at most [`FAULT_LIFE_MS`], then one last `serve` that must finish everything within
//! [`FINISH_WITHIN`] (about 30 s in all on a loaded 2-core machine). Time attribution: an event
//! or a moto record belongs to the life that was the last one spawned before its timestamp
//! (clocks are the same machine's; a [`RESTART_GAP`] separates lives).
//!
//! At the end every execution must have SUCCEEDED, and from the history, moto and the queue:
//!
//! - **Adopted once per life.** Each `serve` process (a *life*) starts or resumes an execution
//!   at most once (`ExecutionStarted`/`ExecutionResumed`, attributed to a life by `at_ms`).
//! - **Started once per attempt.** One `StepStarted` per idempotency key; no retries happen
//!   (moto builds succeed), so every step has exactly one attempt. Waits keep their deadline.
//! - **Builds once**, counted in moto (`ListBuildsForProject`, one project per step), except
//!   for kills inside the *StartBuild window*: between the commit of the `StepStarted` intent and
//!   the commit of `StepHandleRecorded`. A kill there leaves a build started with no handle, and
//!   moto ignores both of Steppy's guards (it ignores `idempotencyToken`, and it drops
//!   environment variable overrides, so the `STEPPY_IDEMPOTENCY_TOKEN` marker lookup finds
//!   nothing): the restart starts a second build. Each extra build must have been started in a
//!   life that was killed inside that window; two builds of a step in one life are a double
//!   start, never acceptable.
//! - **Notify messages once**, except for kills inside the *publish window*: between SNS
//!   accepting the message (the envelope's `Timestamp`) and the outbox record (its `atMs`; SNS
//!   standard topics have no idempotency). The outbox holds one record per key.
//! - **Approvals requested once** (one `ApprovalRequested`), with at most one token issued per
//!   life and at most one mail per life; a token rotation (`ApprovalTokenRotated`) is acceptable
//!   only when the life that issued the previous token was killed inside the *approval window*:
//!   between the approval row (or the previous rotation) and the token being marked delivered,
//!   which the test reads from the database after each kill, before the restart. The link
//!   mailed last for each approval works (its page answers 200); an earlier mailed link may be
//!   dead only because of such a rotation (mailed, then killed before the delivered mark).
//!
//! Every kill is listed with the windows it fell in (printed, and in the assertion message).
//! Everything runs on 127.0.0.1 against moto (`executors/tests/support`); nothing reaches AWS.

mod support;

use steppy_test_support::moto as aws_support;

use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Followed, Sandbox, follow_approval_link, get, loopback_port, mailed_approve_link, sns_attribute};

/// The seed when `STEPPY_CHAOS_SEED` is not set (CI runs this one).
const DEFAULT_SEED: u64 = 0x5EED_0010;
/// How many times `serve` is killed before the last life runs everything to the end.
const KILLS: usize = 20;
/// A life lasts a random time in this range (ms) before its SIGKILL (start-up included).
const LIFE_MIN_MS: u64 = 120;
const LIFE_MAX_MS: u64 = 1_400;
/// Executions: two submitted before the first `serve`, then one during each of these lives.
const EXECUTIONS: usize = 4;
const SUBMIT_DURING_LIFE: [(usize, usize); 2] = [(6, 2), (13, 3)];
/// How long the last `serve` may take to finish every execution.
const FINISH_WITHIN: Duration = Duration::from_secs(90);
/// The decider follows a mailed link after a random delay up to this (ms), so approvals wait
/// across kills.
const DECIDE_DELAY_MAX_MS: u64 = 1_500;
const WAIT_SECONDS: i64 = 1;
/// Pause between a kill and the restart.
const RESTART_GAP: Duration = Duration::from_millis(150);
/// Fault injections on top of the random kills, each armed for a range of lives until it fires
/// once: (first life, last life, `STEPPY_FAULT`). They make sure every run kills inside the
/// StartBuild window (`start`: the build was started, its handle not recorded; lives 6 and 13
/// are when executions 2 and 3 are submitted) and the approval window (`approval-row`: the row
/// is committed, nothing mailed yet). A life that fires its fault does not count among the
/// [`KILLS`] random kills.
const FAULTS: [(usize, usize, &str); 4] = [
    (2, 5, "kill-after:approval-row:approve"),
    (6, 6, "kill-after:start:b1"),
    (13, 13, "kill-after:start:b2"),
    (15, 18, "kill-after:approval-row:approve"),
];
/// A life armed with a `start` fault lasts at least this long (ms), so the fault can fire.
const FAULT_LIFE_MS: u64 = 3_000;

/// xorshift64: a small seeded generator (no rand crate needed).
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform-ish in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn seed() -> u64 {
    match std::env::var("STEPPY_CHAOS_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("STEPPY_CHAOS_SEED={s:?} is not a number (decimal or 0x hex)"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// One `serve` process, from spawn to SIGKILL.
struct Life {
    pid: u32,
    spawned_ms: i64,
    /// When the SIGKILL was sent (the last life: when the test stopped it).
    ended_ms: i64,
    /// Killed by the chaos loop (false for the last life, stopped after the checks).
    chaos: bool,
    /// The `STEPPY_FAULT` this life ran with, and whether it fired (the process killed itself).
    fault: Option<String>,
    self_killed: bool,
    /// How the process ended if it ended by itself other than by its fault (never expected).
    unexpected_exit: Option<String>,
    /// The approvals left pending with an undelivered token when this life ended, read from
    /// the database before the next life: (execution, stage, index). A kill left these between
    /// the approval row (or a rotation) and the delivered mark.
    undelivered_after: Vec<(String, usize, usize)>,
}

/// The pending approvals whose current token is not marked delivered (read while no `serve`
/// runs): (execution, stage, index).
fn undelivered(db: &std::path::Path, ids: &[String]) -> Vec<(String, usize, usize)> {
    use steppy_engine::events::EventType;
    use steppy_engine::store::{ApprovalState, Store};
    let store = Store::open(db).expect("open the database between two lives");
    let mut out = Vec::new();
    for id in ids {
        for e in store.history(id).expect("read a history between two lives") {
            let Some(approval) = e.details["approvalId"]
                .as_str()
                .filter(|_| e.kind == EventType::ApprovalRequested)
            else {
                continue;
            };
            let a = store.approval(approval).expect("read an approval between two lives");
            if a.state == ApprovalState::Pending && !a.delivered {
                out.push((id.clone(), a.stage, a.index));
            }
        }
    }
    out
}

/// The life (index) that was running at `t`: the last one spawned at or before it. Something
/// sent by a life just before its kill and handled after it is still counted to that life.
fn life_at(lives: &[Life], t: i64) -> Option<usize> {
    lives.iter().rposition(|l| l.spawned_ms <= t)
}

/// A message read from the queue.
#[derive(Clone, Debug)]
struct Mail {
    published_ms: i64,
    message_id: String,
    execution: String,
    step: String,
    approve_link: Option<String>,
}

/// What the decider saw and did.
#[derive(Default)]
struct Seen {
    mails: Vec<Mail>,
    /// (execution, step, what following its link gave in the end).
    followed: Vec<(String, String, Followed)>,
}

fn record(seen: &Mutex<Seen>, envelope: &Value) -> Mail {
    let mail = Mail {
        published_ms: aws_support::published_ms(envelope).expect("an SNS envelope with a Timestamp"),
        message_id: envelope["MessageId"].as_str().unwrap_or_default().to_string(),
        execution: sns_attribute(envelope, "steppy.execution").unwrap_or_default(),
        step: sns_attribute(envelope, "steppy.step").unwrap_or_default(),
        approve_link: mailed_approve_link(envelope),
    };
    seen.lock().expect("seen").mails.push(mail.clone());
    mail
}

/// Follows `link` until something answers (the service may be down between a kill and a
/// restart), at most `within`.
async fn follow_until_answered(link: &str, within: Duration) -> Followed {
    let deadline = Instant::now() + within;
    loop {
        let got = follow_approval_link(link, true, "chaos-approver").await;
        let retry = match &got {
            Followed::Unreachable(_) => true,
            Followed::Page(code) | Followed::Refused(code, _) => *code >= 500,
            Followed::Decided => false,
        };
        if !retry || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// `steppy serve` in `sb` on `addr`, talking to moto only, output appended to `log`, with
/// `STEPPY_FAULT=fault` if given.
fn spawn_serve(sb: &Sandbox, addr: &str, log: &std::path::Path, fault: Option<&str>) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("serve log");
    let err = out.try_clone().expect("serve log");
    let mut c = sb.steppy(&["serve", "--listen", addr, "--poll-interval", "100ms"]);
    support::talk_to(&mut c, &aws_support::moto().url);
    if let Some(f) = fault {
        c.env("STEPPY_FAULT", f);
    }
    c.stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn serve")
}

fn submit_plan(sb: &Sandbox, path: &std::path::Path) -> String {
    let mut c = sb.steppy(&["submit", path.to_str().expect("utf-8")]);
    support::talk_to(&mut c, &aws_support::moto().url);
    let o = c.output().expect("spawn submit");
    assert!(
        o.status.success(),
        "submit failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn states(sb: &Sandbox) -> BTreeMap<String, String> {
    let (ok, out, _) = sb.output(&["list", "--format", "json"]);
    if !ok.success() {
        return BTreeMap::new();
    }
    let rows: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    rows.as_array()
        .map(|r| {
            r.iter()
                .map(|e| {
                    (
                        e["id"].as_str().unwrap_or("").to_string(),
                        e["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The steps of every execution's plan: (stage name, step name, type).
const STEPS: [(&str, &str, &str); 5] = [
    ("build", "b1", "CodeBuild"),
    ("build", "b2", "CodeBuild"),
    ("tell", "note", "Notify"),
    ("tell", "soak", "Wait"),
    ("gate", "approve", "Human"),
];

/// (stage index, index in stage) of `STEPS[i]`.
fn position(i: usize) -> (usize, usize) {
    [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)][i]
}

fn plan(e: usize, topic: &str, projects: &[String]) -> Value {
    json!({ "name": format!("chaos-{e}"), "defaults": { "notificationTopicArn": topic }, "stages": [
        { "name": "build", "steps": [
            { "type": "CodeBuild", "name": "b1", "codeBuildName": projects[0] },
            { "type": "CodeBuild", "name": "b2", "codeBuildName": projects[1] }
        ] },
        { "name": "tell", "steps": [
            { "type": "Notify", "name": "note", "subject": format!("chaos-{e}"), "message": format!("chaos-{e} built") },
            { "type": "Wait", "name": "soak", "seconds": WAIT_SECONDS }
        ] },
        { "name": "gate", "steps": [
            { "type": "Human", "name": "approve", "message": format!("ship chaos-{e}?"), "timeoutSeconds": 600 }
        ] }
    ] })
}

/// One event of a history.
struct Ev {
    at_ms: i64,
    kind: String,
    stage: Option<usize>,
    step: Option<usize>,
    details: Value,
}

fn events(history: &Value) -> Vec<Ev> {
    history
        .as_array()
        .expect("a history is an array of events")
        .iter()
        .map(|e| Ev {
            at_ms: e["at_ms"].as_i64().expect("at_ms"),
            kind: e["type"].as_str().unwrap_or("").to_string(),
            stage: e["stage"].as_u64().map(|v| v as usize),
            step: e["step"].as_u64().map(|v| v as usize),
            details: e["details"].clone(),
        })
        .collect()
}

/// Everything collected for the checks.
struct Observed {
    lives: Vec<Life>,
    /// Execution id -> index of its plan.
    executions: Vec<String>,
    states: BTreeMap<String, String>,
    histories: HashMap<String, Vec<Ev>>,
    /// (execution, flat step index) -> builds of its project (id, start ms), for CodeBuild steps.
    builds: HashMap<(String, usize), Vec<(String, i64)>>,
    mails: Vec<Mail>,
    /// Outbox records: (key, messageId, atMs).
    outbox: Vec<(String, String, i64)>,
    /// Approve link -> status of its page at the end.
    link_status: HashMap<String, Option<u16>>,
}

/// "published N ms before the kill" or, for a request still in flight, "... after".
fn relative(published_ms: i64, killed_ms: i64) -> String {
    if published_ms <= killed_ms {
        format!("published {} ms before the kill", killed_ms - published_ms)
    } else {
        format!(
            "in flight: SNS accepted it {} ms after the SIGKILL was sent",
            published_ms - killed_ms
        )
    }
}

fn describe_life(lives: &[Life], l: Option<usize>) -> String {
    match l {
        Some(i) => format!("life {i} (pid {})", lives[i].pid),
        None => "before any serve".into(),
    }
}

/// The checks: returns (violations, notes on kills inside windows, per-kill lines).
fn check(o: &Observed) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut bad = Vec::new();
    let mut explained = Vec::new();
    let lives = &o.lives;
    let life_of = |t: i64| life_at(lives, t);
    // A window per kill: kill index -> descriptions.
    let mut windows: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let killed_in = |l: Option<usize>| l.filter(|&i| lives[i].chaos).map(|i| lives[i].ended_ms);

    for id in &o.executions {
        let short = &id[id.len().saturating_sub(8)..];
        let state = o.states.get(id).map(String::as_str).unwrap_or("(missing)");
        if state != "SUCCEEDED" {
            bad.push(format!("execution {short}: ended {state}, expected SUCCEEDED"));
        }
        let Some(evs) = o.histories.get(id) else {
            bad.push(format!("execution {short}: no history"));
            continue;
        };
        // Adopted once per life.
        let started = evs.iter().filter(|e| e.kind == "ExecutionStarted").count();
        if started != 1 {
            bad.push(format!("execution {short}: {started} ExecutionStarted, expected 1"));
        }
        let mut adoptions: BTreeMap<Option<usize>, Vec<&str>> = BTreeMap::new();
        for e in evs
            .iter()
            .filter(|e| e.kind == "ExecutionStarted" || e.kind == "ExecutionResumed")
        {
            adoptions.entry(life_of(e.at_ms)).or_default().push(&e.kind);
        }
        for (l, kinds) in &adoptions {
            if kinds.len() > 1 {
                bad.push(format!(
                    "execution {short}: {} adopted it {} times: {kinds:?} (a double start in one process)",
                    describe_life(lives, *l),
                    kinds.len()
                ));
            }
        }
        for (i, (stage_name, name, kind)) in STEPS.iter().enumerate() {
            let (stage, idx) = position(i);
            let here: Vec<&Ev> = evs
                .iter()
                .filter(|e| e.stage == Some(stage) && e.step == Some(idx))
                .collect();
            let what = format!("execution {short} step {stage_name}.{name}");
            let intents: Vec<&Ev> = here.iter().copied().filter(|e| e.kind == "StepStarted").collect();
            let handles: Vec<&Ev> = here
                .iter()
                .copied()
                .filter(|e| e.kind == "StepHandleRecorded")
                .collect();
            let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
            for e in &intents {
                *keys.entry(e.details["key"].as_str().unwrap_or("")).or_default() += 1;
            }
            for (key, n) in &keys {
                if *n != 1 {
                    bad.push(format!("{what}: {n} StepStarted for key {key}, expected 1"));
                }
            }
            if intents.len() != 1 {
                let failures: Vec<String> = here
                    .iter()
                    .filter(|e| e.kind == "StepFailed")
                    .map(|e| e.details.to_string())
                    .collect();
                bad.push(format!(
                    "{what}: {} attempts, expected 1 (failures: {failures:?})",
                    intents.len()
                ));
            }
            let (Some(intent), Some(handle)) = (intents.first(), handles.last()) else {
                bad.push(format!("{what}: no intent or no handle recorded"));
                continue;
            };
            let window = (intent.at_ms, handle.at_ms);
            match *kind {
                "CodeBuild" => {
                    for (k, l) in lives.iter().enumerate().filter(|(_, l)| l.chaos) {
                        if window.0 <= l.ended_ms && l.ended_ms < window.1 {
                            windows.entry(k).or_default().push(format!(
                                "StartBuild window of {what} (intent +{} ms)",
                                l.ended_ms - window.0
                            ));
                        }
                    }
                    let builds = o.builds.get(&(id.clone(), i)).cloned().unwrap_or_default();
                    let recorded = handle.details["handle"]["buildId"].as_str().unwrap_or("").to_string();
                    if !builds.iter().any(|(b, _)| *b == recorded) {
                        bad.push(format!(
                            "{what}: the recorded build {recorded} is not among moto's builds {builds:?}"
                        ));
                    }
                    let mut per_life: BTreeMap<Option<usize>, usize> = BTreeMap::new();
                    for (_, at) in &builds {
                        *per_life.entry(life_of(*at)).or_default() += 1;
                    }
                    for (l, n) in &per_life {
                        if *n > 1 {
                            bad.push(format!(
                                "{what}: {n} builds started within {} (a double start: no kill in between)",
                                describe_life(lives, *l)
                            ));
                        }
                    }
                    for (b, at) in builds.iter().filter(|(b, _)| *b != recorded) {
                        let l = life_of(*at);
                        match killed_in(l) {
                            Some(k) if window.0 <= k && k < window.1 => explained.push(format!(
                                "{what}: extra build {b} from {}, killed inside the StartBuild window (intent +{} ms, before the handle's commit; the build {})",
                                describe_life(lives, l),
                                k - window.0,
                                relative(*at, k).replacen("published", "started", 1).replacen("SNS accepted it", "moto started it", 1)
                            )),
                            _ => bad.push(format!(
                                "{what}: extra build {b} (started in {}) not explained by a kill inside the StartBuild window [{}, {}) of its attempt; {} builds in all",
                                describe_life(lives, l),
                                window.0,
                                window.1,
                                builds.len()
                            )),
                        }
                    }
                }
                "Notify" => {
                    let key = intent.details["key"].as_str().unwrap_or("");
                    let records: Vec<&(String, String, i64)> = o.outbox.iter().filter(|r| r.0 == key).collect();
                    if records.len() != 1 {
                        bad.push(format!(
                            "{what}: {} outbox records for its key, expected 1",
                            records.len()
                        ));
                    }
                    let mut msgs: Vec<&Mail> = o
                        .mails
                        .iter()
                        .filter(|m| m.execution == *id && m.step == *name)
                        .collect();
                    msgs.sort_by_key(|m| m.published_ms);
                    // The recorded message (its id is in the outbox) and the life that wrote it.
                    let written = records.first().map(|r| (r.1.clone(), life_of(r.2)));
                    for (k, l) in lives.iter().enumerate().filter(|(_, l)| l.chaos) {
                        let published = msgs.iter().find(|m| life_of(m.published_ms) == Some(k));
                        if let Some(m) = published.filter(|_| written.as_ref().map(|w| w.1) != Some(Some(k))) {
                            windows.entry(k).or_default().push(format!(
                                "publish window of {what} ({}, outbox not written)",
                                relative(m.published_ms, l.ended_ms)
                            ));
                        }
                    }
                    if msgs.is_empty() {
                        bad.push(format!("{what}: no SNS message"));
                    }
                    let mut per_life: BTreeMap<Option<usize>, usize> = BTreeMap::new();
                    for m in &msgs {
                        *per_life.entry(life_of(m.published_ms)).or_default() += 1;
                    }
                    for (l, n) in &per_life {
                        if *n > 1 {
                            bad.push(format!(
                                "{what}: {n} SNS messages published within {}",
                                describe_life(lives, *l)
                            ));
                        }
                    }
                    // A message that is not the recorded one was published by a life that was
                    // killed before it wrote the outbox record: the publish window.
                    for m in msgs
                        .iter()
                        .filter(|m| written.as_ref().map(|w| &w.0) != Some(&m.message_id))
                    {
                        let l = life_of(m.published_ms);
                        match killed_in(l) {
                            Some(k) if written.as_ref().map(|w| w.1) != Some(l) => explained.push(format!(
                                "{what}: extra SNS message {} from {}, killed before its outbox record ({})",
                                m.message_id,
                                describe_life(lives, l),
                                relative(m.published_ms, k)
                            )),
                            _ => bad.push(format!(
                                "{what}: extra SNS message {} (published in {}) not explained by a kill between its publish and the outbox record (a double publish); {} messages in all",
                                m.message_id,
                                describe_life(lives, l),
                                msgs.len()
                            )),
                        }
                    }
                }
                "Wait" => {
                    let ended = here.iter().find(|e| e.kind == "StepSucceeded").map(|e| e.at_ms);
                    if let Some(end) = ended
                        && end < intent.at_ms + WAIT_SECONDS * 1000
                    {
                        bad.push(format!(
                            "{what}: ended {} ms after its intent, before its {WAIT_SECONDS}s deadline",
                            end - intent.at_ms
                        ));
                    }
                }
                "Human" => {
                    let requested = here.iter().filter(|e| e.kind == "ApprovalRequested").count();
                    if requested != 1 {
                        bad.push(format!("{what}: {requested} ApprovalRequested, expected 1"));
                    }
                    let decided = here.iter().filter(|e| e.kind == "ApprovalDecided").count();
                    if decided != 1 {
                        bad.push(format!("{what}: {decided} ApprovalDecided, expected 1"));
                    }
                    let issued: Vec<(i64, Option<usize>)> = here
                        .iter()
                        .filter(|e| e.kind == "ApprovalRequested" || e.kind == "ApprovalTokenRotated")
                        .map(|e| (e.at_ms, life_of(e.at_ms)))
                        .collect();
                    let mut mails: Vec<&Mail> = o
                        .mails
                        .iter()
                        .filter(|m| m.execution == *id && m.step == *name)
                        .collect();
                    mails.sort_by_key(|m| m.published_ms);
                    let mail_in = |l: Option<usize>| mails.iter().find(|m| life_of(m.published_ms) == l).copied();
                    let mut per_life: BTreeMap<Option<usize>, usize> = BTreeMap::new();
                    for (_, l) in &issued {
                        *per_life.entry(*l).or_default() += 1;
                    }
                    for (l, n) in &per_life {
                        if *n > 1 {
                            bad.push(format!("{what}: {n} tokens issued within {} (a rotation with no crash: the earlier token's link is dead)", describe_life(lives, *l)));
                        }
                    }
                    let mut mails_per_life: BTreeMap<Option<usize>, usize> = BTreeMap::new();
                    for m in &mails {
                        *mails_per_life.entry(life_of(m.published_ms)).or_default() += 1;
                    }
                    for (l, n) in &mails_per_life {
                        if *n > 1 {
                            bad.push(format!(
                                "{what}: {n} approval mails within {}",
                                describe_life(lives, *l)
                            ));
                        }
                    }
                    let undelivered_after = |l: usize| {
                        lives[l]
                            .undelivered_after
                            .iter()
                            .any(|(e, st, ix)| e == id && *st == stage && *ix == idx)
                    };
                    for (k, l) in lives.iter().enumerate().filter(|(_, l)| l.chaos) {
                        if undelivered_after(k) {
                            let mailed = match mail_in(Some(k)) {
                                Some(m) => {
                                    format!("mail {}, not marked delivered", relative(m.published_ms, l.ended_ms))
                                }
                                None => "nothing mailed".into(),
                            };
                            windows
                                .entry(k)
                                .or_default()
                                .push(format!("approval window of {what} (token issued, {mailed})"));
                        }
                    }
                    for pair in issued.windows(2) {
                        let ((_, prev), (at, this)) = (pair[0], pair[1]);
                        // Justified only if the issuing life was killed and left the token
                        // undelivered (read from the database before the next life began).
                        let justified =
                            prev != this && killed_in(prev).is_some() && prev.is_some_and(undelivered_after);
                        if justified {
                            explained.push(format!(
                                "{what}: token rotated in {} after {} was killed before the token was marked delivered{}",
                                describe_life(lives, this),
                                describe_life(lives, prev),
                                match (mail_in(prev), killed_in(prev)) {
                                    (Some(m), Some(k)) => format!(" (its mail was {}: that link is dead)", relative(m.published_ms, k)),
                                    _ => " (nothing was mailed)".into(),
                                }
                            ));
                        } else {
                            bad.push(format!(
                                "{what}: token rotated in {} at {at}, not justified: the previous token was issued in {}{}",
                                describe_life(lives, this),
                                describe_life(lives, prev),
                                match (killed_in(prev), mail_in(prev)) {
                                    _ if prev == this => " (the same process)".to_string(),
                                    (None, _) => " and that process was not killed".to_string(),
                                    (Some(k), Some(m)) => format!(", mailed {} and marked delivered before the next life", relative(m.published_ms, k)),
                                    (Some(_), None) => ", which left it delivered (shown, not mailed?)".to_string(),
                                }
                            ));
                        }
                    }
                    if let Some(last) = mails.last() {
                        let link = last.approve_link.clone().unwrap_or_default();
                        let status = o.link_status.get(&link).copied().flatten();
                        if status != Some(200) {
                            bad.push(format!(
                                "{what}: the link mailed last (in {}) answers {status:?}, expected 200",
                                describe_life(lives, life_of(last.published_ms))
                            ));
                        }
                        if let Some((_, l)) = issued.last()
                            && life_of(last.published_ms) != *l
                        {
                            bad.push(format!(
                                "{what}: the last token (issued in {}) was never mailed",
                                describe_life(lives, *l)
                            ));
                        }
                    } else {
                        bad.push(format!("{what}: no approval mail"));
                    }
                    let dead = mails
                        .iter()
                        .filter(|m| {
                            o.link_status
                                .get(m.approve_link.as_deref().unwrap_or(""))
                                .copied()
                                .flatten()
                                == Some(404)
                        })
                        .count();
                    if dead + 1 > issued.len().max(1) {
                        bad.push(format!(
                            "{what}: {dead} dead mailed links but only {} tokens issued",
                            issued.len()
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    for (k, l) in lives.iter().enumerate() {
        if let Some(exit) = &l.unexpected_exit {
            bad.push(format!(
                "life {k} (pid {}): serve exited by itself after {} ms: {exit}",
                l.pid,
                l.ended_ms - l.spawned_ms
            ));
        }
    }
    let kills: Vec<String> = lives
        .iter()
        .enumerate()
        .filter(|(_, l)| l.chaos)
        .map(|(k, l)| {
            let w = windows
                .get(&k)
                .map(|w| w.join("; "))
                .unwrap_or_else(|| "no window".into());
            let how = match &l.fault {
                Some(f) if l.self_killed => format!("{f} fired"),
                Some(f) => format!("SIGKILL ({f} did not fire)"),
                None => "SIGKILL".into(),
            };
            format!(
                "life {k:2} (pid {}) ended after {:4} ms by {how}: {w}",
                l.pid,
                l.ended_ms - l.spawned_ms
            )
        })
        .collect();
    (bad, explained, kills)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_at_random_moments_starts_everything_once() {
    let seed = seed();
    println!("chaos seed: {seed:#x} (set STEPPY_CHAOS_SEED to run another)");
    let began = Instant::now();
    let config = aws_support::aws_config().await;
    let (topic, queue) = aws_support::topic_with_queue(&config, &aws_support::unique("chaos")).await;
    let sb = Arc::new(Sandbox::new());
    let mut projects: Vec<Vec<String>> = Vec::new();
    let mut plans: Vec<PathBuf> = Vec::new();
    for e in 0..EXECUTIONS {
        let p: Vec<String> = (0..2).map(|b| aws_support::unique(&format!("chaos{e}b{b}"))).collect();
        for name in &p {
            aws_support::create_project(&config, name).await;
        }
        let path = sb.dir.path().join(format!("chaos-{e}.json"));
        std::fs::write(&path, plan(e, &topic, &p).to_string()).expect("write plan");
        projects.push(p);
        plans.push(path);
    }

    // The decider: reads the queue, follows every approval link after a random delay.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let decider = {
        let (seen, stop, config, queue) = (seen.clone(), stop.clone(), config.clone(), queue.clone());
        tokio::spawn(async move {
            let mut rng = XorShift::new(seed ^ 0xD1CE_D1CE);
            let mut follows = tokio::task::JoinSet::new();
            while !stop.load(Ordering::SeqCst) {
                for envelope in aws_support::notifications(&config, &queue, 1, 1).await {
                    let mail = record(&seen, &envelope);
                    if let Some(link) = mail.approve_link {
                        let delay = Duration::from_millis(rng.between(0, DECIDE_DELAY_MAX_MS));
                        let seen = seen.clone();
                        follows.spawn(async move {
                            tokio::time::sleep(delay).await;
                            let got = follow_until_answered(&link, Duration::from_secs(60)).await;
                            seen.lock()
                                .expect("seen")
                                .followed
                                .push((mail.execution, mail.step, got));
                        });
                    }
                }
            }
            follows.abort_all();
        })
    };

    // The kills, in a blocking task: spawn, wait a random time, SIGKILL, reap, restart.
    let addr = format!("127.0.0.1:{}", loopback_port());
    let log = sb.dir.path().join("serve.log");
    let orchestration = {
        let (sb, addr, log, plans) = (sb.clone(), addr.clone(), log.clone(), plans.clone());
        tokio::task::spawn_blocking(move || {
            let mut rng = XorShift::new(seed);
            let mut ids = vec![submit_plan(&sb, &plans[0]), submit_plan(&sb, &plans[1])];
            let mut lives: Vec<Life> = Vec::new();
            let mut fired = [false; FAULTS.len()];
            let mut random_kills = 0;
            while random_kills < KILLS {
                let k = lives.len();
                let armed = FAULTS
                    .iter()
                    .position(|&(from, to, _)| (from..=to).contains(&k))
                    .filter(|&f| !fired[f]);
                let fault = armed.map(|f| FAULTS[f].2);
                let mut child = spawn_serve(&sb, &addr, &log, fault);
                let (spawned, spawned_ms) = (Instant::now(), now_ms());
                let mut life_ms = rng.between(LIFE_MIN_MS, LIFE_MAX_MS);
                if fault.is_some_and(|f| f.contains(":start:")) {
                    life_ms = life_ms.max(FAULT_LIFE_MS); // time for the new execution's builds to start
                }
                let mut submit = SUBMIT_DURING_LIFE
                    .iter()
                    .find(|(life, _)| *life == k)
                    .map(|&(_, e)| (spawned + Duration::from_millis(life_ms / 2), e));
                let until = spawned + Duration::from_millis(life_ms);
                let (ended_ms, exit) = loop {
                    if let Some((_, e)) = submit.filter(|(at, _)| Instant::now() >= *at) {
                        ids.push(submit_plan(&sb, &plans[e]));
                        submit = None;
                    }
                    if let Some(status) = child.try_wait().expect("poll serve") {
                        break (now_ms(), Some(status));
                    }
                    if Instant::now() >= until {
                        let ended_ms = now_ms();
                        child.kill().expect("SIGKILL serve");
                        child.wait().expect("reap serve");
                        break (ended_ms, None);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                };
                if let Some((_, e)) = submit {
                    ids.push(submit_plan(&sb, &plans[e])); // the life ended before its submission
                }
                let self_killed = exit.is_some_and(|s| s.signal() == Some(9)) && fault.is_some();
                if let (Some(f), true) = (armed, self_killed) {
                    fired[f] = true;
                }
                if exit.is_none() {
                    random_kills += 1;
                }
                let unexpected_exit = exit.filter(|_| !self_killed).map(|s| format!("{s:?}"));
                let undelivered_after = undelivered(&sb.db(), &ids);
                lives.push(Life {
                    pid: child.id(),
                    spawned_ms,
                    ended_ms,
                    chaos: true,
                    fault: fault.map(str::to_string),
                    self_killed,
                    unexpected_exit,
                    undelivered_after,
                });
                // Like a supervisor's restart delay; also lets requests the killed process left
                // in flight reach moto before the next life begins (they count to this life).
                std::thread::sleep(RESTART_GAP);
            }
            // The last life runs everything to its end.
            let last = spawn_serve(&sb, &addr, &log, None);
            lives.push(Life {
                pid: last.id(),
                spawned_ms: now_ms(),
                ended_ms: i64::MAX,
                chaos: false,
                fault: None,
                self_killed: false,
                unexpected_exit: None,
                undelivered_after: Vec::new(),
            });
            let deadline = Instant::now() + FINISH_WITHIN;
            let finished = loop {
                let s = states(&sb);
                let done = ids.iter().all(|id| {
                    s.get(id)
                        .is_some_and(|st| matches!(st.as_str(), "SUCCEEDED" | "FAILED" | "ABORTED"))
                });
                if done || Instant::now() > deadline {
                    break s;
                }
                std::thread::sleep(Duration::from_millis(250));
            };
            (ids, lives, last, finished)
        })
    };
    let (ids, mut lives, mut last, finished) = orchestration.await.expect("the chaos loop panicked");
    println!(
        "chaos: {KILLS} kills done, everything ended after {:.1}s: {finished:?}",
        began.elapsed().as_secs_f64()
    );

    // Stop the decider, read what is left in the queue, and check every mailed link while the
    // last `serve` still answers.
    stop.store(true, Ordering::SeqCst);
    decider.await.expect("the decider panicked");
    for envelope in aws_support::notifications(&config, &queue, usize::MAX, 2).await {
        record(&seen, &envelope);
    }
    let mails = seen.lock().expect("seen").mails.clone();
    // The link mailed last for each approval first: dead links count toward the service's
    // per-address guess limit, which must not get in the way of the live ones.
    let mut links: Vec<(bool, i64, String)> = Vec::new();
    for m in mails.iter().filter(|m| m.approve_link.is_some()) {
        let newest = !mails.iter().any(|n| {
            n.approve_link.is_some()
                && n.execution == m.execution
                && n.step == m.step
                && n.published_ms > m.published_ms
        });
        links.push((!newest, m.published_ms, m.approve_link.clone().unwrap_or_default()));
    }
    links.sort();
    let mut link_status = HashMap::new();
    for (_, _, link) in links {
        let path = link.trim_start_matches(&format!("http://{addr}")).to_string();
        link_status.insert(link, get(&addr, &path).map(|(c, _)| c));
    }
    let _ = last.kill();
    let _ = last.wait();
    lives.last_mut().expect("the last life").ended_ms = now_ms();

    let mut histories = HashMap::new();
    for id in &ids {
        histories.insert(id.clone(), events(&sb.json(&["history", id, "--format", "json"])));
    }
    let mut builds = HashMap::new();
    for (e, id) in ids.iter().enumerate() {
        for (b, project) in projects[e].iter().enumerate() {
            builds.insert((id.clone(), b), aws_support::builds_of(&config, project).await);
        }
    }
    let outbox_text = std::fs::read_to_string(sb.dir.path().join("outbox.jsonl")).unwrap_or_default();
    let outbox = outbox_text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("an outbox line is JSON");
            (
                v["key"].as_str().unwrap_or("").to_string(),
                v["messageId"].as_str().unwrap_or("").to_string(),
                v["atMs"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let followed: Vec<String> = seen
        .lock()
        .expect("seen")
        .followed
        .iter()
        .map(|(e, step, f)| {
            let f = format!("{f:?}");
            format!(
                "execution {} {step}: {}",
                &e[e.len().saturating_sub(8)..],
                f.chars().take(100).collect::<String>()
            )
        })
        .collect();
    let observed = Observed {
        lives,
        executions: ids,
        states: finished,
        histories,
        builds,
        mails,
        outbox,
        link_status,
    };
    let (bad, explained, kills) = check(&observed);
    let total_builds: usize = observed.builds.values().map(Vec::len).sum();
    let summary = format!(
        "seed {seed:#x}: {KILLS} random kills, {} faults fired, {} executions, {total_builds} builds for {} CodeBuild steps, {} SNS messages ({} approval mails), {:.1}s\n\
         kills:\n  {}\nexplained by a kill inside a window:\n  {}\ndecider (each approval link followed):\n  {}",
        observed.lives.iter().filter(|l| l.self_killed).count(),
        observed.executions.len(),
        observed.executions.len() * 2,
        observed.mails.len(),
        observed.mails.iter().filter(|m| m.approve_link.is_some()).count(),
        began.elapsed().as_secs_f64(),
        kills.join("\n  "),
        if explained.is_empty() {
            "(none)".to_string()
        } else {
            explained.join("\n  ")
        },
        followed.join("\n  "),
    );
    if bad.is_empty() {
        println!("{summary}");
    }
    assert!(
        bad.is_empty(),
        "{} violations of serve's promises under SIGKILL:\n  {}\n\n{summary}",
        bad.len(),
        bad.join("\n  ")
    );
}
