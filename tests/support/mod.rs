//! Helpers shared by the `steppy` binary's integration tests.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("steppy.db")
    }
    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox.jsonl")
    }
    pub fn write_plan(&self, plan: &Value) -> PathBuf {
        let p = self.dir.path().join("plan.json");
        std::fs::write(&p, plan.to_string()).expect("write plan");
        p
    }
    /// `steppy ARGS` against this sandbox's database, with no fault injection.
    pub fn steppy(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_steppy"));
        c.args(args)
            .env("STEPPY_DB", self.db())
            .env_remove("STEPPY_FAULT")
            .stdin(Stdio::null());
        c
    }
    /// Runs `steppy ARGS` to completion; returns (status, stdout, stderr).
    pub fn output(&self, args: &[&str]) -> (ExitStatus, String, String) {
        let o = self.steppy(args).output().expect("spawn steppy");
        (
            o.status,
            String::from_utf8_lossy(&o.stdout).into(),
            String::from_utf8_lossy(&o.stderr).into(),
        )
    }
    pub fn json(&self, args: &[&str]) -> Value {
        let (status, out, err) = self.output(args);
        assert!(status.success(), "steppy {args:?} failed: {err}");
        serde_json::from_str(&out).expect("json output")
    }
    pub fn only_execution_id(&self) -> String {
        let list = self.json(&["list", "--format", "json"]);
        let rows = list.as_array().expect("array");
        assert_eq!(rows.len(), 1, "{list}");
        rows[0]["id"].as_str().expect("id").to_string()
    }
    pub fn approve(&self, token: &str) {
        let (status, out, err) = self.output(&["approve", token, "--as", "tester"]);
        assert!(status.success(), "approve failed: {out}{err}");
    }
    /// Spawns `cmd` and reads its stdout to the end, approving every approval token it prints.
    /// Returns the exit status and the whole output.
    pub fn drive(&self, mut cmd: Command) -> (ExitStatus, String) {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let out = self.read_approving(&mut child, |_| false);
        let status = child.wait().expect("wait");
        (status, out)
    }
    /// Reads `child`'s stdout line by line, approving tokens, until EOF or `stop(line)`.
    pub fn read_approving(&self, child: &mut Child, mut stop: impl FnMut(&str) -> bool) -> String {
        let stdout = child.stdout.take().expect("piped stdout");
        let mut all = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            all.push_str(&line);
            all.push('\n');
            if let Some(token) = token_in(&line) {
                self.approve(&token);
            }
            if stop(&line) {
                break;
            }
        }
        all
    }
}

/// The token of an `approve: steppy approve TOKEN` line.
pub fn token_in(line: &str) -> Option<String> {
    let rest = line.split("approve: steppy approve ").nth(1)?;
    rest.split_whitespace().next().map(str::to_string)
}

/// How many times each start intent (stage.step/attempt) occurs in the history.
pub fn start_intents(history: &Value) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for e in history.as_array().expect("events") {
        if e["type"] == "StepStarted" {
            *m.entry(e["details"]["key"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
    }
    m
}

pub fn count_events(history: &Value, kind: &str) -> usize {
    history
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == kind)
        .count()
}

/// Outbox lines per idempotency key.
pub fn outbox_keys(path: &Path) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut m = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).expect("outbox line is JSON");
        *m.entry(v["key"].as_str().unwrap_or("").to_string()).or_default() += 1;
    }
    m
}

/// A bare HTTP/1.1 GET; returns (status code, body).
pub fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// Points `steppy` at the AWS API stand-in at `url` (moto) with dummy credentials and no AWS
/// profile or config file, so that nothing can reach real AWS; polls every 100 ms.
pub fn talk_to(c: &mut Command, url: &str) {
    let rest = url.strip_prefix("http://").unwrap_or("");
    let host = rest.split([':', '/']).next().unwrap_or("");
    assert!(
        host == "127.0.0.1" || host == "localhost",
        "refusing to point steppy at {url}: not a loopback address"
    );
    c.env("AWS_ENDPOINT_URL", url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("STEPPY_POLL_INTERVAL", "100ms")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("STEPPY_TOPIC_ARN");
}

/// A free TCP port on 127.0.0.1: bound, then released for the caller to bind (e.g. `serve
/// --listen 127.0.0.1:PORT`, which can then be restarted on the same port).
pub fn loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits (up to 20 s) until a `steppy serve` on `addr` answers `/healthz`.
pub fn wait_until_serving(addr: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while get(addr, "/healthz").map(|(c, _)| c) != Some(200) {
        assert!(std::time::Instant::now() < deadline, "serve on {addr} did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What following an approval link the way a person does gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// The page showed a form, and posting it decided (the service accepted the vote).
    Decided,
    /// The page itself answered this status (404: the token is not valid, e.g. rotated).
    Page(u16),
    /// The page showed a form but the decision was refused with this status (409: already
    /// decided, 410: closed) and body.
    Refused(u16, String),
    /// Nothing answered (the service is down, e.g. between a kill and a restart).
    Unreachable(String),
}

/// Follows an approval `link` like a person: GET the page (which never decides), then submit
/// its form with `approve` as `voter`, from the page's own origin (`Origin` and
/// `Sec-Fetch-Site: same-origin`, as a browser sends). Refuses any link that is not on
/// 127.0.0.1.
pub async fn follow_approval_link(link: &str, approve: bool, voter: &str) -> Followed {
    let rest = link
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("refusing to follow {link}: not a loopback link"));
    let port = rest.split('/').next().unwrap_or("");
    let origin = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let page = match http.get(link).send().await {
        Ok(p) => p,
        Err(e) => return Followed::Unreachable(e.to_string()),
    };
    let status = page.status().as_u16();
    if status != 200 {
        return Followed::Page(status);
    }
    let Ok(html) = page.text().await else {
        return Followed::Unreachable("the page's body was cut off".into());
    };
    let Some((action, mut fields)) = approval_form(&html) else {
        return Followed::Refused(200, format!("no decision form on the page:\n{html}"));
    };
    fields.push(("decision".into(), if approve { "approve" } else { "reject" }.into()));
    fields.push(("approver".into(), voter.into()));
    // The form's action is relative to the page (`../approvals/TOKEN`).
    let url = reqwest::Url::parse(link)
        .and_then(|base| base.join(&action))
        .expect("the form's action resolves against the link");
    let posted = http
        .post(url)
        .header("origin", &origin)
        .header("sec-fetch-site", "same-origin")
        .form(&fields)
        .send()
        .await;
    match posted {
        Ok(r) if r.status().is_success() => Followed::Decided,
        Ok(r) => {
            let code = r.status().as_u16();
            Followed::Refused(code, r.text().await.unwrap_or_default())
        }
        Err(e) => Followed::Unreachable(e.to_string()),
    }
}

/// The decision form of an approval page: its action and hidden fields.
pub fn approval_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = start + html[start..].find("</form>")?;
    let tag_end = start + html[start..].find('>')?;
    let action = html_attr(&html[start..tag_end], "action")?;
    let mut hidden = Vec::new();
    let mut rest = &html[tag_end..end];
    while let Some(i) = rest.find("<input") {
        let j = rest[i..].find('>').map(|j| i + j).unwrap_or(rest.len());
        let tag = &rest[i..j];
        if html_attr(tag, "type").as_deref() == Some("hidden")
            && let (Some(n), Some(v)) = (html_attr(tag, "name"), html_attr(tag, "value"))
        {
            hidden.push((n, v));
        }
        rest = &rest[j..];
    }
    Some((action, hidden))
}

/// The value of attribute `name` in an HTML start tag (entities for `&`, `"`, `'` decoded).
fn html_attr(tag: &str, name: &str) -> Option<String> {
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

/// The approve link (`Approve: URL` line) of an approval request mailed through SNS.
pub fn mailed_approve_link(envelope: &Value) -> Option<String> {
    let body = envelope["Message"].as_str()?;
    body.lines()
        .find_map(|l| l.strip_prefix("Approve: "))
        .map(|l| l.trim().to_string())
}

/// The value of SNS message attribute `name` (e.g. `steppy.execution`) in an envelope.
pub fn sns_attribute(envelope: &Value, name: &str) -> Option<String> {
    envelope["MessageAttributes"][name]["Value"]
        .as_str()
        .map(str::to_string)
}
