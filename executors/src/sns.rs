//! `Notify` through SNS, and the publishing helper the approval mail uses.
//!
//! The topic is the step's `topicArn`, else the plan's `defaults.notificationTopicArn`, else
//! the configured one (`--topic-arn` / `STEPPY_TOPIC_ARN`). With no topic anywhere the step
//! stays local: [`NotifyExecutor`] shows it and appends it to the outbox.
//!
//! The message carries its context (plan, execution, stage, step) in the body and as message
//! attributes (`steppy.plan`, `steppy.execution`, `steppy.stage`, `steppy.step`) for
//! subscription filters. It is published in the topic's region (read from its ARN), under the
//! step's role if it has one.
//!
//! Delivery is at least once: the sent message is recorded in the outbox under the attempt's
//! idempotency key and a restart does not publish it again, but a crash between Publish and
//! that record would (SNS has no idempotency for standard topics; on a FIFO topic the
//! deduplication id is derived from the key and SNS drops the duplicate).

use crate::aws::backoff;
use crate::aws::clients::{Aws, Target, execution_session};
use crate::aws::errors::classify;
use crate::aws::plan_info::PlanInfo;
use crate::notify::NotifyExecutor;
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use steppy_engine::executor::{BoxFuture, ExecError, Executor, Handle, Outcome, RunningWork, StepContext};
use steppy_engine::plan::StepKind;

/// SNS's limit on a subject.
pub const SUBJECT_LIMIT: usize = 100;

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic_arn: String,
    pub subject: Option<String>,
    pub body: String,
    /// Attributes as (name, value) strings.
    pub attributes: Vec<(String, String)>,
    /// For FIFO topics: the deduplication source (an idempotency key).
    pub dedup_key: String,
    pub group: String,
}

/// Where a step's messages go: its own topic, the plan default, or the configured one.
pub fn topic_for(step_topic: Option<&str>, info: &PlanInfo, aws: &Aws) -> Option<String> {
    step_topic
        .map(str::to_string)
        .or_else(|| info.defaults.notification_topic_arn.clone())
        .or_else(|| aws.settings.topic_arn.clone())
        .filter(|t| !t.is_empty())
}

/// The target to publish to `topic` with: the topic's region, the step's role.
pub async fn publish_target(aws: &Aws, ctx: &StepContext, topic: &str) -> Result<Target, ExecError> {
    let step_target = aws.target_for(ctx).await;
    let role = step_target.as_ref().ok().and_then(|t| t.role_arn.clone());
    match crate::aws::arn::region(topic) {
        Some(region) => Ok(Target {
            region: region.to_string(),
            role_arn: role,
        }),
        None => step_target,
    }
}

/// An SNS subject: printable ASCII on one line, at most [`SUBJECT_LIMIT`] characters.
pub fn clean_subject(subject: &str) -> String {
    let one_line: String = subject
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { ' ' })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.len() <= SUBJECT_LIMIT {
        trimmed.to_string()
    } else {
        format!("{}...", &trimmed[..SUBJECT_LIMIT - 3])
    }
}

/// The context lines appended to every message.
pub fn context_lines(info: &PlanInfo, ctx: &StepContext) -> Vec<(String, String)> {
    vec![
        (
            "plan".into(),
            info.plan_name.clone().unwrap_or_else(|| "(unnamed)".into()),
        ),
        ("execution".into(), ctx.execution_id.to_string()),
        ("stage".into(), info.stage_name(ctx.stage)),
        ("step".into(), ctx.step.name.clone()),
    ]
}

/// Publishes `message` with `client`, retrying throttling and transient errors; returns the
/// SNS message id.
pub async fn publish(client: &aws_sdk_sns::Client, message: &Message) -> Result<String, ExecError> {
    let what = format!("Publish to {}", message.topic_arn);
    let fifo = message.topic_arn.ends_with(".fifo");
    let dedup: String = Sha256::digest(message.dedup_key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let out = backoff::retry(5, Duration::from_millis(500), || async {
        let mut req = client.publish().topic_arn(&message.topic_arn).message(&message.body);
        if let Some(s) = message.subject.as_deref().map(clean_subject).filter(|s| !s.is_empty()) {
            req = req.subject(s);
        }
        for (name, value) in &message.attributes {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build();
            if let Ok(attr) = attr {
                req = req.message_attributes(format!("steppy.{name}"), attr);
            }
        }
        if fifo {
            req = req.message_group_id(&message.group).message_deduplication_id(&dedup);
        }
        req.send().await.map_err(|e| classify(&what, &e))
    })
    .await
    .map_err(|e| ExecError::new(e.message))?;
    Ok(out.message_id().unwrap_or_default().to_string())
}

/// `Notify`: SNS when a topic is configured, else the local outbox.
pub struct SnsNotifyExecutor {
    aws: Arc<Aws>,
    local: NotifyExecutor,
    lock: tokio::sync::Mutex<()>,
}

impl SnsNotifyExecutor {
    pub fn new(aws: Arc<Aws>, local: NotifyExecutor) -> Self {
        SnsNotifyExecutor {
            aws,
            local,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

impl Executor for SnsNotifyExecutor {
    fn start<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Handle, ExecError>> {
        Box::pin(async move {
            let StepKind::Notify(n) = &ctx.step.kind else {
                return Err(ExecError::new("the Notify executor was given another step type"));
            };
            let info = self.aws.plan_info(ctx)?;
            let Some(topic) = topic_for(n.topic_arn.as_deref(), &info, &self.aws) else {
                return self.local.start(ctx).await;
            };
            let key = &ctx.idempotency_key;
            let io = |e: std::io::Error| ExecError::io("outbox", &e);
            let _guard = self.lock.lock().await;
            if self.local.already_sent(key).map_err(io)? {
                return Ok(json!({ "topicArn": topic }));
            }
            let context = context_lines(&info, ctx);
            let mut body = n.message.clone();
            body.push_str("\n\n");
            for (name, value) in &context {
                body.push_str(&format!("{}{}: {value}\n", name[..1].to_uppercase(), &name[1..]));
            }
            let message = Message {
                topic_arn: topic.clone(),
                subject: n.subject.clone(),
                body,
                attributes: context,
                dedup_key: key.clone(),
                group: format!("steppy-{}", ctx.execution_id),
            };
            let target = publish_target(&self.aws, ctx, &topic).await?;
            let client = self.aws.sns(&target, &execution_session(&ctx.execution_id)).await;
            let message_id = publish(&client, &message).await?;
            let line = crate::notify::outbox_record(ctx, n, Some((&topic, &message_id)));
            self.local.append(&line.to_string()).map_err(io)?;
            ctx.notices.notice(
                &ctx.execution_id,
                &ctx.step.name,
                &format!("notify: published to {topic} (message {message_id})"),
            );
            Ok(json!({ "topicArn": topic, "messageId": message_id }))
        })
    }

    fn resume<'a>(&'a self, _: &'a StepContext, handle: &'a Handle) -> BoxFuture<'a, Result<Outcome, ExecError>> {
        Box::pin(async move { Ok(Outcome::Succeeded(handle.clone())) })
    }

    fn cancel<'a>(&'a self, _: &'a StepContext, _: &'a Handle, _: RunningWork) -> BoxFuture<'a, Result<(), ExecError>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_fit_sns() {
        assert_eq!(clean_subject("Release\nv1.2 ✓"), "Release v1.2");
        assert_eq!(clean_subject(&"x".repeat(150)).len(), SUBJECT_LIMIT);
    }
}
