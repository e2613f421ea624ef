//! `CodeBuild` and `CodeBuildNoWait`: start a CodeBuild build; `CodeBuild` waits for it to end.
//!
//! Durability. The engine records the attempt's idempotency key before [`Executor::start`] and
//! the returned handle (the build id) after it; a restart with a recorded handle goes straight
//! to [`Executor::resume`], which re-attaches to the same build. For a crash between StartBuild
//! and the handle's commit, `start` runs again with the same key, and two things keep it from
//! starting a second build:
//!
//! 1. StartBuild's `idempotencyToken` is derived from the key ([`idempotency_token`]);
//!    CodeBuild honours it for 5 minutes;
//! 2. every build Steppy starts carries the same token in the environment variable
//!    [`MARKER_VARIABLE`]; before starting, `start` looks for it among the project's
//!    [`LOOKBACK`] newest builds and re-attaches to a build it finds.
//!
//! Ending. SUCCEEDED succeeds; FAILED, FAULT, TIMED_OUT and STOPPED fail the attempt (the old
//! Steppy looped forever on the last three). Builds are read by the shared
//! [`BuildPoller`](crate::aws::poller::BuildPoller) of the step's (role, region).

use crate::Completion;
use crate::aws::backoff;
use crate::aws::clients::{Aws, Target, execution_session};
use crate::aws::errors::{AwsError, classify};
use crate::aws::poller::{BuildState, Watch};
use aws_sdk_codebuild::types::{EnvironmentVariable, EnvironmentVariableType, SortOrderType};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use steppy_engine::executor::{BoxFuture, ExecError, Executor, Handle, Outcome, RunningWork, StepContext};
use steppy_engine::plan::{CodeBuildStep, EnvironmentVariableType as PlanVarType, StepKind};

/// The environment variable carrying the attempt's token on every build Steppy starts.
pub const MARKER_VARIABLE: &str = "STEPPY_IDEMPOTENCY_TOKEN";
/// How many of a project's newest builds `start` looks through for its marker.
pub const LOOKBACK: usize = 25;
/// Tries for the calls that start or stop work (throttling and transient errors only).
const TRIES: u32 = 5;
const RETRY_BASE: Duration = Duration::from_millis(500);

/// The `CodeBuild` (`wait = true`) or `CodeBuildNoWait` executor.
pub struct CodeBuildExecutor {
    aws: Arc<Aws>,
    completion: Completion,
}

impl CodeBuildExecutor {
    pub fn new(aws: Arc<Aws>, completion: Completion) -> Self {
        CodeBuildExecutor { aws, completion }
    }
}

/// The StartBuild `idempotencyToken` for an attempt: 32 hex digits of SHA-256 of its
/// idempotency key (short, and free of the `/` and `.` the key contains).
pub fn idempotency_token(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The CodeBuild console page of a build (its phases and logs).
pub fn console_link(region: &str, project: &str, build_id: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/{}/build/{}/?region={region}",
        url_encode(project),
        url_encode(build_id)
    )
}

/// Percent-encodes everything but unreserved URL characters.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn step_of(ctx: &StepContext) -> Result<&CodeBuildStep, ExecError> {
    match &ctx.step.kind {
        StepKind::CodeBuild(s) | StepKind::CodeBuildNoWait(s) => Ok(s),
        _ => Err(ExecError::new("the CodeBuild executor was given another step type")),
    }
}

fn aws_err(e: AwsError) -> ExecError {
    ExecError::new(e.message)
}

/// The target recorded in a handle (so a resumed attempt talks to the same region and role).
fn handle_target(handle: &Handle) -> Result<(Target, String), ExecError> {
    let build_id = handle
        .get("buildId")
        .and_then(Value::as_str)
        .ok_or_else(|| ExecError::new("the CodeBuild handle has no buildId"))?;
    let region = handle
        .get("region")
        .and_then(Value::as_str)
        .ok_or_else(|| ExecError::new("the CodeBuild handle has no region"))?;
    let role_arn = handle.get("roleArn").and_then(Value::as_str).map(str::to_string);
    Ok((
        Target {
            region: region.to_string(),
            role_arn,
        },
        build_id.to_string(),
    ))
}

fn variables(step: &CodeBuildStep, token: &str) -> Result<Vec<EnvironmentVariable>, ExecError> {
    let mut out = Vec::with_capacity(step.environment_variable_overrides.len() + 1);
    for v in &step.environment_variable_overrides {
        let kind = match v.kind {
            PlanVarType::Plaintext => EnvironmentVariableType::Plaintext,
            PlanVarType::ParameterStore => EnvironmentVariableType::ParameterStore,
            PlanVarType::SecretsManager => EnvironmentVariableType::SecretsManager,
        };
        let built = EnvironmentVariable::builder()
            .name(&v.name)
            .value(&v.value)
            .r#type(kind)
            .build();
        out.push(built.map_err(|e| ExecError::new(format!("environment variable {}: {e}", v.name)))?);
    }
    let marker = EnvironmentVariable::builder()
        .name(MARKER_VARIABLE)
        .value(token)
        .r#type(EnvironmentVariableType::Plaintext)
        .build();
    out.push(marker.map_err(|e| ExecError::new(format!("environment variable {MARKER_VARIABLE}: {e}")))?);
    Ok(out)
}

/// The id of a build of `project` carrying `token`, among its newest [`LOOKBACK`] builds.
async fn find_started(
    client: &aws_sdk_codebuild::Client,
    project: &str,
    token: &str,
    target: &Target,
) -> Result<Option<String>, AwsError> {
    let listed = client
        .list_builds_for_project()
        .project_name(project)
        .sort_order(SortOrderType::Descending)
        .send()
        .await
        .map_err(|e| {
            classify(
                &format!("ListBuildsForProject of project {project} in {}", target.describe()),
                &e,
            )
        })?;
    let ids: Vec<String> = listed.ids().iter().take(LOOKBACK).cloned().collect();
    if ids.is_empty() {
        return Ok(None);
    }
    let read = client.batch_get_builds().set_ids(Some(ids)).send().await.map_err(|e| {
        classify(
            &format!("BatchGetBuilds of project {project} in {}", target.describe()),
            &e,
        )
    })?;
    let carries = |b: &&aws_sdk_codebuild::types::Build| {
        b.environment()
            .map(|env| {
                env.environment_variables()
                    .iter()
                    .any(|v| v.name() == MARKER_VARIABLE && v.value() == token)
            })
            .unwrap_or(false)
    };
    Ok(read
        .builds()
        .iter()
        .find(carries)
        .and_then(|b| b.id())
        .map(str::to_string))
}

fn outcome(state: &BuildState, region: &str, project: &str) -> Outcome {
    let link = console_link(region, project, &state.id);
    let output = json!({
        "buildId": state.id,
        "status": state.status,
        "logs": link,
        "logsDeepLink": state.logs_deep_link,
    });
    match state.status.as_str() {
        "SUCCEEDED" => Outcome::Succeeded(output),
        status => Outcome::Failed {
            reason: format!("build {} of project {project} ended {status} (logs: {link})", state.id),
            // A stopped build was stopped on purpose; failed, faulted and timed-out builds are
            // tried again if the step has a `retry` policy.
            retryable: status != "STOPPED",
        },
    }
}

impl Executor for CodeBuildExecutor {
    fn start<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Handle, ExecError>> {
        Box::pin(async move {
            let step = step_of(ctx)?;
            let target = self.aws.target_for(ctx).await?;
            let client = self.aws.codebuild(&target, &execution_session(&ctx.execution_id)).await;
            let project = &step.code_build_name;
            let token = idempotency_token(&ctx.idempotency_key);
            let found = backoff::retry(TRIES, RETRY_BASE, || find_started(&client, project, &token, &target))
                .await
                .map_err(aws_err)?;
            let (build_id, reattached) = match found {
                Some(id) => (id, true),
                None => {
                    let vars = variables(step, &token)?;
                    let what = format!("StartBuild of project {project} in {}", target.describe());
                    let started = backoff::retry(TRIES, RETRY_BASE, || async {
                        let mut req = client
                            .start_build()
                            .project_name(project)
                            .idempotency_token(&token)
                            .set_environment_variables_override(Some(vars.clone()));
                        if let Some(v) = &step.source_version {
                            req = req.source_version(v.to_codebuild());
                        }
                        req.send().await.map_err(|e| classify(&what, &e))
                    })
                    .await
                    .map_err(aws_err)?;
                    let id = started
                        .build_value()
                        .and_then(|b| b.id())
                        .ok_or_else(|| ExecError::new(format!("{what} returned no build id")))?;
                    (id.to_string(), false)
                }
            };
            let link = console_link(&target.region, project, &build_id);
            let verb = if reattached { "re-attached to" } else { "started" };
            ctx.notices.notice(
                &ctx.execution_id,
                &ctx.step.name,
                &format!("{verb} build {build_id}: {link}"),
            );
            Ok(json!({
                "buildId": build_id,
                "project": project,
                "region": target.region,
                "roleArn": target.role_arn,
                "logs": link,
            }))
        })
    }

    fn resume<'a>(&'a self, _ctx: &'a StepContext, handle: &'a Handle) -> BoxFuture<'a, Result<Outcome, ExecError>> {
        Box::pin(async move {
            let (target, build_id) = handle_target(handle)?;
            let project = handle
                .get("project")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if self.completion == Completion::StartOnly {
                return Ok(Outcome::Succeeded(json!({
                    "buildId": build_id,
                    "logs": console_link(&target.region, &project, &build_id),
                })));
            }
            let poller = self.aws.build_poller(&target).await;
            Ok(match poller.wait(&build_id).await {
                Watch::Ended(state) => outcome(&state, &target.region, &project),
                Watch::Lost(why) => Outcome::Failed {
                    reason: why,
                    retryable: false,
                },
            })
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
                return Ok(()); // the build is left to finish; the poller forgets it with its waiter
            }
            let (target, build_id) = handle_target(handle)?;
            let client = self.aws.codebuild(&target, &execution_session(&ctx.execution_id)).await;
            let what = format!("StopBuild of build {build_id} in {}", target.describe());
            backoff::retry(TRIES, RETRY_BASE, || async {
                client
                    .stop_build()
                    .id(&build_id)
                    .send()
                    .await
                    .map_err(|e| classify(&what, &e))
            })
            .await
            .map_err(aws_err)?;
            Ok(())
        })
    }

    fn is_external(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_links() {
        let t = idempotency_token("0196-exec/0.1/1");
        assert_eq!(t.len(), 32);
        assert_eq!(t, idempotency_token("0196-exec/0.1/1"));
        assert_ne!(t, idempotency_token("0196-exec/0.1/2"));
        assert_eq!(
            console_link("eu-west-1", "app", "app:1234-abcd"),
            "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/projects/app/build/app%3A1234-abcd/?region=eu-west-1"
        );
    }

    #[test]
    fn every_end_state_ends_the_step() {
        let state = |s: &str| BuildState {
            id: "p:1".into(),
            status: s.into(),
            phase: None,
            arn: None,
            logs_deep_link: None,
        };
        assert!(matches!(outcome(&state("SUCCEEDED"), "r", "p"), Outcome::Succeeded(_)));
        for s in ["FAILED", "FAULT", "TIMED_OUT"] {
            assert!(
                matches!(outcome(&state(s), "r", "p"), Outcome::Failed { retryable: true, .. }),
                "{s}"
            );
        }
        assert!(matches!(
            outcome(&state("STOPPED"), "r", "p"),
            Outcome::Failed { retryable: false, .. }
        ));
    }
}
