//! `Notify`: shows the message and appends it as one JSON line to an outbox file.
//!
//! Each line carries the attempt's idempotency key. `start` first looks for its key in the
//! outbox and writes nothing if it is there, so a restart never sends a notification twice.
//! (SNS delivery comes with the AWS executors.)

use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use steppy_engine::executor::{BoxFuture, ExecError, Executor, Handle, Outcome, RunningWork, StepContext};
use steppy_engine::plan::{NotifyStep, StepKind};

/// The `Notify` executor, writing to `outbox`.
pub struct NotifyExecutor {
    outbox: PathBuf,
    /// Serializes the check-then-append within this process (the lease covers other processes).
    lock: Mutex<()>,
}

impl NotifyExecutor {
    pub fn new(outbox: PathBuf) -> Self {
        NotifyExecutor {
            outbox,
            lock: Mutex::new(()),
        }
    }

    /// True if a line with this idempotency key is already in the outbox.
    pub(crate) fn already_sent(&self, key: &str) -> std::io::Result<bool> {
        let file = match std::fs::File::open(&self.outbox) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).lines() {
            let line = line?;
            // A line cut short by a crash is not valid JSON and does not count as sent.
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v.get("key").and_then(|k| k.as_str()) == Some(key)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(crate) fn append(&self, line: &str) -> std::io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        if let Some(dir) = self.outbox.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.outbox)?;
        // Start on a fresh line even if a crash left a partial one behind.
        let mut text = String::with_capacity(line.len() + 2);
        if f.metadata()?.len() > 0 {
            let mut last = [0u8; 1];
            f.seek(SeekFrom::End(-1))?;
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                text.push('\n');
            }
        }
        text.push_str(line);
        text.push('\n');
        f.write_all(text.as_bytes())?;
        f.sync_data()
    }
}

impl Executor for NotifyExecutor {
    fn start<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Handle, ExecError>> {
        Box::pin(async move {
            let StepKind::Notify(n) = &ctx.step.kind else {
                return Err(ExecError::new("the Notify executor was given another step type"));
            };
            let key = &ctx.idempotency_key;
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            let outbox = self.outbox.display().to_string();
            let io = |e: std::io::Error| ExecError::io(&format!("outbox {outbox}"), &e);
            if !self.already_sent(key).map_err(io)? {
                self.append(&outbox_record(ctx, n, None).to_string()).map_err(io)?;
                let subject = n.subject.as_deref().map(|s| format!("[{s}] ")).unwrap_or_default();
                ctx.notices.notice(
                    &ctx.execution_id,
                    &ctx.step.name,
                    &format!("notify: {subject}{}", n.message),
                );
            }
            Ok(json!({ "outbox": outbox }))
        })
    }

    fn resume<'a>(&'a self, _: &'a StepContext, _: &'a Handle) -> BoxFuture<'a, Result<Outcome, ExecError>> {
        Box::pin(async { Ok(Outcome::Succeeded(json!({}))) })
    }

    fn cancel<'a>(&'a self, _: &'a StepContext, _: &'a Handle, _: RunningWork) -> BoxFuture<'a, Result<(), ExecError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The outbox line of a notification, keyed by the attempt's idempotency key: what was sent for
/// which step, and where it went (`(topic ARN, SNS message id)`) when it was published.
pub fn outbox_record(ctx: &StepContext, n: &NotifyStep, published: Option<(&str, &str)>) -> serde_json::Value {
    let mut line = json!({
        "key": ctx.idempotency_key,
        "executionId": &*ctx.execution_id,
        "step": ctx.step.name,
        "subject": n.subject,
        "message": n.message,
        "atMs": ctx.clock.now_ms(),
    });
    if let (Some((topic, id)), Some(obj)) = (published, line.as_object_mut()) {
        obj.insert("topicArn".into(), json!(topic));
        obj.insert("messageId".into(), json!(id));
    }
    line
}
