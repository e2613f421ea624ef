//! `Human` with SNS: the approval request is also published to the topic as an email-friendly
//! message with the approve and reject links, the step's message and the expiry.
//!
//! The approval itself stays [`HumanExecutor`]'s: it creates the approval row, issues the token
//! and hands it to [`Notices::approval_token`] before marking it delivered. This executor wraps
//! the notices it is given, so the message is published **after** the row exists and **before**
//! the token counts as delivered: a crash before the publish completes leaves the request
//! undelivered, and the next start or resume rotates the token and publishes again. The token
//! appears only in the published message and on the terminal; it is never stored or logged.
//!
//! `approval_token` is synchronous while publishing is not, so the publish runs on a
//! [`Mailer`] thread with its own runtime and clients, and the caller waits for it (at most
//! [`MAIL_TIMEOUT`]). Approvals are rare, so holding one worker thread that long is fine.

use crate::aws::clients::{execution_session, Aws, Target};
use crate::aws::plan_info::PlanInfo;
use crate::human::HumanExecutor;
use crate::sns::{context_lines, publish, publish_target, topic_for, Message};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steppy_engine::executor::{BoxFuture, ExecError, Executor, Handle, Notices, Outcome, StepContext};
use steppy_engine::plan::{HumanStep, OnTimeout, StepKind};

/// Longest wait for one approval message to be published.
pub const MAIL_TIMEOUT: Duration = Duration::from_secs(60);

/// An approval request to mail, before its token is known.
#[derive(Clone)]
struct Request {
    topic: String,
    target: Target,
    subject: String,
    /// Everything but the links: `{links}` marks where they go.
    template: String,
    attributes: Vec<(String, String)>,
    dedup_key: String,
    group: String,
    session: String,
}

struct Job {
    request: Request,
    token: String,
    reply: mpsc::Sender<Result<String, String>>,
}

/// A thread with its own runtime that publishes approval messages.
#[derive(Default)]
pub struct Mailer {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Mailer {
    fn sender(&self, aws: &Arc<Aws>) -> Result<mpsc::Sender<Job>, String> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = jobs.as_ref() {
            return Ok(tx.clone());
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let aws = aws.clone();
        std::thread::Builder::new()
            .name("steppy-approval-mail".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                let own = rt.block_on(aws.detached());
                while let Ok(job) = rx.recv() {
                    let result = rt.block_on(async {
                        let client = own.sns(&job.request.target, &job.request.session).await;
                        publish(&client, &message(&job.request, &job.token, &own)).await.map_err(|e| e.0)
                    });
                    let _ = job.reply.send(result);
                }
            })
            .map_err(|e| format!("cannot start the approval mail thread: {e}"))?;
        *jobs = Some(tx.clone());
        Ok(tx)
    }

    fn send(&self, aws: &Arc<Aws>, request: Request, token: &str) -> Result<String, String> {
        let (reply, answer) = mpsc::channel();
        self.sender(aws)?
            .send(Job { request, token: token.to_string(), reply })
            .map_err(|_| "the approval mail thread stopped".to_string())?;
        answer.recv_timeout(MAIL_TIMEOUT).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => format!("publishing took longer than {}s", MAIL_TIMEOUT.as_secs()),
            mpsc::RecvTimeoutError::Disconnected => "the approval mail thread stopped".to_string(),
        })?
    }
}

fn message(request: &Request, token: &str, aws: &Aws) -> Message {
    let (approve, reject) = aws.approval_links(token);
    let links = format!("Approve: {approve}\nReject:  {reject}");
    Message {
        topic_arn: request.topic.clone(),
        subject: Some(request.subject.clone()),
        body: request.template.replace("{links}", &links),
        attributes: request.attributes.clone(),
        dedup_key: format!("{}#{}", request.dedup_key, crate::human::token_hash(token)),
        group: request.group.clone(),
    }
}

/// An instant (ms since the epoch) as `2026-11-23T10:00:00Z`.
fn utc(ms: i64) -> String {
    aws_smithy_types::DateTime::from_millis(ms)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| format!("{ms} ms after 1970"))
}

/// The email body (with a `{links}` placeholder) for an approval of `h`.
fn template(h: &HumanStep, info: &PlanInfo, ctx: &StepContext, deadline_ms: Option<i64>) -> String {
    let mut text = format!(
        "Approval needed for step \"{}\" in stage \"{}\" of plan \"{}\" (execution {}).\n\n{}\n\n{{links}}\n\n",
        ctx.step.name,
        info.stage_name(ctx.stage),
        info.plan_name.as_deref().unwrap_or("(unnamed)"),
        ctx.execution_id,
        h.message
    );
    match deadline_ms {
        Some(ms) => {
            let then = match h.on_timeout {
                OnTimeout::Approve => "approved",
                OnTimeout::Reject => "rejected",
            };
            text.push_str(&format!("This request expires at {} (it is then {then} automatically).\n", utc(ms)));
        }
        None => text.push_str("This request does not expire.\n"),
    }
    if !h.approvers.is_empty() {
        text.push_str(&format!("Approvers: {}\n", h.approvers.join(", ")));
    }
    if h.required_approvals > 1 {
        text.push_str(&format!("Approvals needed: {}\n", h.required_approvals));
    }
    text
}

/// Notices that publish a freshly issued token's approval message before passing it on.
struct MailingNotices {
    inner: Arc<dyn Notices>,
    aws: Arc<Aws>,
    mailer: Arc<Mailer>,
    request: Request,
}

impl Notices for MailingNotices {
    fn notice(&self, execution_id: &str, step: &str, line: &str) {
        self.inner.notice(execution_id, step, line);
    }

    fn approval_token(&self, execution_id: &str, step: &str, token: &str) {
        match self.mailer.send(&self.aws, self.request.clone(), token) {
            Ok(id) => self.inner.notice(execution_id, step, &format!("approval request published to {} (message {id})", self.request.topic)),
            Err(why) => self.inner.notice(execution_id, step, &format!("could not publish the approval request to {}: {why}", self.request.topic)),
        }
        self.inner.approval_token(execution_id, step, token);
    }
}

/// `Human`, mailing the request through SNS when a topic is configured.
pub struct MailingHumanExecutor {
    aws: Arc<Aws>,
    inner: HumanExecutor,
    mailer: Arc<Mailer>,
}

impl MailingHumanExecutor {
    pub fn new(aws: Arc<Aws>) -> Self {
        MailingHumanExecutor { aws, inner: HumanExecutor::default(), mailer: Arc::new(Mailer::default()) }
    }

    /// `ctx` with notices that mail the approval, or `None` if no topic is configured.
    async fn mailing(&self, ctx: &StepContext, deadline_ms: Option<i64>) -> Result<Option<StepContext>, ExecError> {
        let StepKind::Human(h) = &ctx.step.kind else {
            return Err(ExecError::new("the Human executor was given another step type"));
        };
        let info = self.aws.plan_info(ctx)?;
        let Some(topic) = topic_for(h.topic_arn.as_deref(), &info, &self.aws) else { return Ok(None) };
        let target = publish_target(&self.aws, ctx, &topic).await?;
        let subject = h.subject.clone().unwrap_or_else(|| {
            format!("Approval needed: {} ({})", ctx.step.name, info.plan_name.as_deref().unwrap_or("release"))
        });
        let request = Request {
            topic,
            target,
            subject,
            template: template(h, &info, ctx, deadline_ms),
            attributes: context_lines(&info, ctx),
            dedup_key: ctx.idempotency_key.clone(),
            group: format!("steppy-{}", ctx.execution_id),
            session: execution_session(&ctx.execution_id),
        };
        let mut wrapped = ctx.clone();
        wrapped.notices = Arc::new(MailingNotices { inner: ctx.notices.clone(), aws: self.aws.clone(), mailer: self.mailer.clone(), request });
        Ok(Some(wrapped))
    }
}

impl Executor for MailingHumanExecutor {
    fn start<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Handle, ExecError>> {
        Box::pin(async move {
            // The deadline HumanExecutor records: counted from the recorded start of the attempt.
            let deadline = ctx.step.options.timeout_seconds.map(|t| ctx.attempt_started_ms.saturating_add((t as i64).saturating_mul(1000)));
            match self.mailing(ctx, deadline).await? {
                Some(wrapped) => self.inner.start(&wrapped).await,
                None => self.inner.start(ctx).await,
            }
        })
    }

    fn resume<'a>(&'a self, ctx: &'a StepContext, handle: &'a Handle) -> BoxFuture<'a, Result<Outcome, ExecError>> {
        Box::pin(async move {
            let id = handle.get("approvalId").and_then(|v| v.as_str()).unwrap_or_default();
            let deadline = ctx.store.approval(id).ok().and_then(|a| a.deadline_ms);
            match self.mailing(ctx, deadline).await? {
                Some(wrapped) => self.inner.resume(&wrapped, handle).await,
                None => self.inner.resume(ctx, handle).await,
            }
        })
    }

    fn cancel<'a>(&'a self, ctx: &'a StepContext, handle: &'a Handle, stop_external: bool) -> BoxFuture<'a, Result<(), ExecError>> {
        self.inner.cancel(ctx, handle, stop_external)
    }

    fn waits(&self) -> bool {
        true
    }

    fn owns_timeout(&self) -> bool {
        true
    }
}
