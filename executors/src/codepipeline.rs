//! `CodePipeline` and `CodePipelineNoWait`: start a CodePipeline execution; `CodePipeline`
//! waits for it to end, approving its pending manual approvals when the step says
//! `autoApprove`.
//!
//! Durability: StartPipelineExecution's `clientRequestToken` is derived from the attempt's
//! idempotency key, so starting again after a crash returns the same execution instead of a
//! second one. The handle records the execution id, region and role; a restart resumes it.
//!
//! Ending: Succeeded succeeds; Failed, Stopped, Superseded and Cancelled fail. The execution is
//! read every poll interval (one GetPipelineExecution per waiting step: pipelines are few and
//! slow; builds are the ones that need batching). Throttling and transient errors back off and
//! never fail the step; a permanent error repeated [`MAX_PERMANENT`] times does.

use crate::Completion;
use crate::aws::backoff;
use crate::aws::clients::{Aws, Target, execution_session};
use crate::aws::errors::{Kind, classify};
use aws_sdk_codepipeline::types::{
    ActionExecutionStatus, ApprovalResult, ApprovalStatus, PipelineExecutionStatus, PipelineVariable,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use steppy_engine::executor::{BoxFuture, ExecError, Executor, Handle, Outcome, RunningWork, StepContext};
use steppy_engine::plan::{CodePipelineStep, StepKind};

/// Consecutive permanent read errors before the step fails.
pub const MAX_PERMANENT: u32 = 5;
const TRIES: u32 = 5;
const RETRY_BASE: Duration = Duration::from_millis(500);

/// The `CodePipeline` (`wait = true`) or `CodePipelineNoWait` executor.
pub struct CodePipelineExecutor {
    aws: Arc<Aws>,
    completion: Completion,
}

impl CodePipelineExecutor {
    pub fn new(aws: Arc<Aws>, completion: Completion) -> Self {
        CodePipelineExecutor { aws, completion }
    }
}

/// The `clientRequestToken` for an attempt: SHA-256 of its key, hex (CodePipeline accepts
/// 1–128 characters of `[A-Za-z0-9-]`).
pub fn client_request_token(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The CodePipeline console page of an execution.
pub fn console_link(region: &str, pipeline: &str, execution_id: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{}/executions/{}/timeline?region={region}",
        crate::codebuild::url_encode(pipeline),
        crate::codebuild::url_encode(execution_id)
    )
}

fn step_of(ctx: &StepContext) -> Result<&CodePipelineStep, ExecError> {
    match &ctx.step.kind {
        StepKind::CodePipeline(s) | StepKind::CodePipelineNoWait(s) => Ok(s),
        _ => Err(ExecError::new("the CodePipeline executor was given another step type")),
    }
}

struct Running {
    target: Target,
    pipeline: String,
    execution_id: String,
}

fn running(handle: &Handle) -> Result<Running, ExecError> {
    let field = |name: &str| {
        handle
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ExecError::new(format!("the CodePipeline handle has no {name}")))
    };
    Ok(Running {
        target: Target {
            region: field("region")?,
            role_arn: handle.get("roleArn").and_then(Value::as_str).map(str::to_string),
        },
        pipeline: field("pipeline")?,
        execution_id: field("executionId")?,
    })
}

/// What one read of an execution found.
enum Seen {
    Running,
    Ended(Outcome),
}

fn judge(status: &PipelineExecutionStatus, summary: Option<&str>, r: &Running) -> Seen {
    let link = console_link(&r.target.region, &r.pipeline, &r.execution_id);
    let output =
        json!({ "executionId": r.execution_id, "pipeline": r.pipeline, "status": status.as_str(), "link": link });
    let why = summary.map(|s| format!(": {s}")).unwrap_or_default();
    match status {
        PipelineExecutionStatus::Succeeded => Seen::Ended(Outcome::Succeeded(output)),
        PipelineExecutionStatus::Failed
        | PipelineExecutionStatus::Stopped
        | PipelineExecutionStatus::Superseded
        | PipelineExecutionStatus::Cancelled => Seen::Ended(Outcome::Failed {
            reason: format!(
                "execution {} of pipeline {} ended {}{why} ({link})",
                r.execution_id,
                r.pipeline,
                status.as_str()
            ),
            retryable: matches!(status, PipelineExecutionStatus::Failed),
        }),
        _ => Seen::Running,
    }
}

/// Approves every manual approval of execution `r` that is waiting (GetPipelineState, then
/// PutApprovalResult for each in-progress action of one of its stages that has a token).
/// Returns the approved `stage/action` names.
async fn approve_pending(
    client: &aws_sdk_codepipeline::Client,
    r: &Running,
    by: &str,
) -> Result<Vec<String>, crate::aws::errors::AwsError> {
    let what = format!("GetPipelineState of pipeline {} in {}", r.pipeline, r.target.describe());
    let state = client
        .get_pipeline_state()
        .name(&r.pipeline)
        .send()
        .await
        .map_err(|e| classify(&what, &e))?;
    let mut approved = Vec::new();
    for stage in state.stage_states() {
        let ours = stage
            .latest_execution()
            .map(|e| e.pipeline_execution_id() == r.execution_id)
            .unwrap_or(false);
        if !ours {
            continue;
        }
        let stage_name = stage.stage_name().unwrap_or_default();
        for action in stage.action_states() {
            let Some(exec) = action.latest_execution() else {
                continue;
            };
            let (Some(ActionExecutionStatus::InProgress), Some(token)) = (exec.status(), exec.token()) else {
                continue;
            };
            let action_name = action.action_name().unwrap_or_default();
            let result = ApprovalResult::builder()
                .status(ApprovalStatus::Approved)
                .summary(format!("Approved by Steppy ({by})"))
                .build()
                .map_err(|e| crate::aws::errors::AwsError {
                    kind: Kind::Permanent,
                    code: None,
                    message: e.to_string(),
                })?;
            let what = format!(
                "PutApprovalResult for {stage_name}/{action_name} of pipeline {}",
                r.pipeline
            );
            client
                .put_approval_result()
                .pipeline_name(&r.pipeline)
                .stage_name(stage_name)
                .action_name(action_name)
                .result(result)
                .token(token)
                .send()
                .await
                .map_err(|e| classify(&what, &e))?;
            approved.push(format!("{stage_name}/{action_name}"));
        }
    }
    Ok(approved)
}

impl Executor for CodePipelineExecutor {
    fn start<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Handle, ExecError>> {
        Box::pin(async move {
            let step = step_of(ctx)?;
            let target = self.aws.target_for(ctx).await?;
            let client = self
                .aws
                .codepipeline(&target, &execution_session(&ctx.execution_id))
                .await;
            let name = &step.code_pipeline_name;
            let mut variables = Vec::with_capacity(step.variables.len());
            for (k, v) in &step.variables {
                let var = PipelineVariable::builder().name(k).value(v).build();
                variables.push(var.map_err(|e| ExecError::new(format!("pipeline variable {k}: {e}")))?);
            }
            let token = client_request_token(&ctx.idempotency_key);
            let what = format!("StartPipelineExecution of pipeline {name} in {}", target.describe());
            let started = backoff::retry(TRIES, RETRY_BASE, || async {
                let mut req = client
                    .start_pipeline_execution()
                    .name(name)
                    .client_request_token(&token);
                if !variables.is_empty() {
                    req = req.set_variables(Some(variables.clone()));
                }
                req.send().await.map_err(|e| classify(&what, &e))
            })
            .await
            .map_err(|e| ExecError::new(e.message))?;
            let id = started
                .pipeline_execution_id()
                .ok_or_else(|| ExecError::new(format!("{what} returned no execution id")))?;
            let link = console_link(&target.region, name, id);
            ctx.notices.notice(
                &ctx.execution_id,
                &ctx.step.name,
                &format!("started pipeline execution {id}: {link}"),
            );
            Ok(
                json!({ "executionId": id, "pipeline": name, "region": target.region, "roleArn": target.role_arn, "link": link }),
            )
        })
    }

    fn resume<'a>(&'a self, ctx: &'a StepContext, handle: &'a Handle) -> BoxFuture<'a, Result<Outcome, ExecError>> {
        Box::pin(async move {
            let r = running(handle)?;
            if self.completion == Completion::StartOnly {
                return Ok(Outcome::Succeeded(
                    json!({ "executionId": r.execution_id, "pipeline": r.pipeline }),
                ));
            }
            let auto_approve = step_of(ctx).map(|s| s.auto_approve).unwrap_or(false);
            let client = self
                .aws
                .codepipeline(&r.target, &execution_session(&ctx.execution_id))
                .await;
            let interval = self.aws.settings.poll_interval;
            let (mut failures, mut permanent) = (0u32, 0u32);
            loop {
                let what = format!(
                    "GetPipelineExecution {} of pipeline {} in {}",
                    r.execution_id,
                    r.pipeline,
                    r.target.describe()
                );
                let read = client
                    .get_pipeline_execution()
                    .pipeline_name(&r.pipeline)
                    .pipeline_execution_id(&r.execution_id)
                    .send()
                    .await;
                let result = match read {
                    Ok(out) => {
                        let exec = out.pipeline_execution();
                        match exec.and_then(|e| e.status()) {
                            Some(status) => match judge(status, exec.and_then(|e| e.status_summary()), &r) {
                                Seen::Ended(outcome) => return Ok(outcome),
                                Seen::Running if auto_approve => {
                                    approve_pending(&client, &r, &ctx.execution_id).await.map(|names| {
                                        for n in names {
                                            ctx.notices.notice(
                                                &ctx.execution_id,
                                                &ctx.step.name,
                                                &format!("approved {n} of pipeline {}", r.pipeline),
                                            );
                                        }
                                    })
                                }
                                Seen::Running => Ok(()),
                            },
                            None => Ok(()),
                        }
                    }
                    Err(e) => Err(classify(&what, &e)),
                };
                match result {
                    Ok(()) => (failures, permanent) = (0, 0),
                    Err(e) if e.kind == Kind::Permanent => {
                        permanent += 1;
                        failures += 1;
                        if permanent >= MAX_PERMANENT {
                            return Ok(Outcome::Failed {
                                reason: e.message,
                                retryable: false,
                            });
                        }
                    }
                    Err(_) => failures += 1,
                }
                let delay = if failures == 0 {
                    interval
                } else {
                    backoff::delay(interval, failures)
                };
                tokio::time::sleep(delay).await;
            }
        })
    }

    fn cancel<'a>(
        &'a self,
        ctx: &'a StepContext,
        handle: &'a Handle,
        running_work: RunningWork,
    ) -> BoxFuture<'a, Result<(), ExecError>> {
        Box::pin(async move {
            if running_work == RunningWork::LetFinish {
                return Ok(());
            }
            let r = running(handle)?;
            let client = self
                .aws
                .codepipeline(&r.target, &execution_session(&ctx.execution_id))
                .await;
            let what = format!("StopPipelineExecution {} of pipeline {}", r.execution_id, r.pipeline);
            backoff::retry(TRIES, RETRY_BASE, || async {
                client
                    .stop_pipeline_execution()
                    .pipeline_name(&r.pipeline)
                    .pipeline_execution_id(&r.execution_id)
                    .reason(format!("aborted from Steppy execution {}", ctx.execution_id))
                    .send()
                    .await
                    .map_err(|e| classify(&what, &e))
            })
            .await
            .map_err(|e| ExecError::new(e.message))?;
            Ok(())
        })
    }

    fn is_external(&self) -> bool {
        true
    }
}
