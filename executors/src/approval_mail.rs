//! Approval requests mailed through SNS: [`SnsCourier`] publishes an email-friendly message
//! with the approve and reject links, the step's message and the expiry, to the step's topic.
//!
//! The approval itself stays [`crate::human::HumanExecutor`]'s: it creates the approval row,
//! issues the token, asks this courier to send it and only then marks it delivered. A publish
//! that fails or takes longer than [`MAIL_TIMEOUT`] is an error the executor tries again later,
//! with the same token; a crash before the delivery is recorded leads to a rotated token and a
//! new mail, never to a silently lost one. The publish is an ordinary async call: a slow or
//! silent SNS endpoint holds only its own attempt, never a runtime thread. The token appears
//! only in the published message; it is never stored or logged.

use crate::aws::clients::{Aws, execution_session};
use crate::aws::plan_info::PlanInfo;
use crate::human::{Courier, Sent};
use crate::sns::{Message, context_lines, publish, publish_target, topic_for};
use std::sync::Arc;
use std::time::Duration;
use steppy_engine::executor::{BoxFuture, ExecError, StepContext};
use steppy_engine::plan::{HumanStep, OnTimeout, StepKind};
use steppy_engine::store::Approval;

/// Longest wait for one approval message to be published (all of the publish's own retries).
pub const MAIL_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends approval requests to the step's SNS topic (`topicArn`, the plan's default, or
/// `--topic-arn`); steps with no topic anywhere are not mailed.
pub struct SnsCourier {
    aws: Arc<Aws>,
}

impl SnsCourier {
    pub fn new(aws: Arc<Aws>) -> Self {
        SnsCourier { aws }
    }

    async fn publish(&self, ctx: &StepContext, approval: &Approval, token: &str) -> Result<Option<Sent>, ExecError> {
        let StepKind::Human(h) = &ctx.step.kind else {
            return Err(ExecError::new("the Human executor was given another step type"));
        };
        let info = self.aws.plan_info(ctx)?;
        let Some(topic) = topic_for(h.topic_arn.as_deref(), &info, &self.aws) else {
            return Ok(None);
        };
        let target = publish_target(&self.aws, ctx, &topic).await?;
        let subject = h.subject.clone().unwrap_or_else(|| {
            format!(
                "Approval needed: {} ({})",
                ctx.step.name,
                info.plan_name.as_deref().unwrap_or("release")
            )
        });
        let (approve, reject) = self.aws.approval_links(token);
        let links = format!("Approve: {approve}\nReject:  {reject}");
        let message = Message {
            topic_arn: topic.clone(),
            subject: Some(subject),
            body: template(h, &info, ctx, approval.deadline_ms).replace("{links}", &links),
            attributes: context_lines(&info, ctx),
            dedup_key: format!("{}#{}", ctx.idempotency_key, crate::human::token_hash(token)),
            group: format!("steppy-{}", ctx.execution_id),
        };
        let client = self.aws.sns(&target, &execution_session(&ctx.execution_id)).await;
        let id = tokio::time::timeout(MAIL_TIMEOUT, publish(&client, &message))
            .await
            .map_err(|_| {
                ExecError::new(format!(
                    "publishing to {topic} took longer than {} s",
                    MAIL_TIMEOUT.as_secs()
                ))
            })??;
        Ok(Some(Sent { to: topic, id }))
    }
}

impl Courier for SnsCourier {
    fn send<'a>(
        &'a self,
        ctx: &'a StepContext,
        approval: &'a Approval,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Sent>, ExecError>> {
        Box::pin(self.publish(ctx, approval, token))
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
            text.push_str(&format!(
                "This request expires at {} (it is then {then} automatically).\n",
                utc(ms)
            ));
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
