//! In-memory fakes of CodeBuild and CodePipeline built on aws-smithy-mocks, for what moto
//! cannot do: builds that end FAULT, TIMED_OUT or STOPPED, throttling and server errors,
//! environment variables kept on builds (the re-start lookup), pipeline executions and their
//! manual approvals, Superseded/Cancelled executions. Used by `aws_mocked.rs` and the poller
//! benchmark. No network is involved: the mocked clients never send a request.

use aws_sdk_codebuild::operation::batch_get_builds::{BatchGetBuildsError, BatchGetBuildsOutput};
use aws_sdk_codebuild::operation::list_builds_for_project::ListBuildsForProjectOutput;
use aws_sdk_codebuild::operation::start_build::StartBuildOutput;
use aws_sdk_codebuild::operation::stop_build::StopBuildOutput;
use aws_sdk_codebuild::types::{
    Build, ComputeType, EnvironmentType, EnvironmentVariable, ProjectEnvironment, StatusType,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One fake build: IN_PROGRESS for `reads_left` more reads, then `end`.
#[derive(Debug, Clone)]
pub struct FakeBuild {
    pub project: String,
    pub reads_left: u32,
    pub end: StatusType,
    pub stopped: bool,
    pub env: Vec<(String, String)>,
}

/// The end status a build of `project` reaches: the project's name says it
/// (`fault-…` → FAULT, `timeout-…` → TIMED_OUT, `stopped-…` → STOPPED, `failed-…` → FAILED,
/// anything else SUCCEEDED).
pub fn end_for(project: &str) -> StatusType {
    match project.split('-').next().unwrap_or("") {
        "fault" => StatusType::Fault,
        "timeout" => StatusType::TimedOut,
        "stopped" => StatusType::Stopped,
        "failed" => StatusType::Failed,
        _ => StatusType::Succeeded,
    }
}

/// A fake CodeBuild; `client()` gives an SDK client backed by it.
#[derive(Clone, Default)]
pub struct FakeCodeBuild {
    pub builds: Arc<Mutex<HashMap<String, FakeBuild>>>,
    pub order: Arc<Mutex<Vec<String>>>,
    pub start_calls: Arc<AtomicUsize>,
    pub batch_calls: Arc<AtomicUsize>,
    pub batch_ids: Arc<AtomicUsize>,
    /// Reads a new build stays IN_PROGRESS for.
    pub reads_before_end: Arc<AtomicUsize>,
    /// The next this-many BatchGetBuilds calls fail with this error code.
    pub failures: Arc<Mutex<(usize, &'static str)>>,
}

impl FakeCodeBuild {
    pub fn new(reads_before_end: usize) -> Self {
        let f = FakeCodeBuild::default();
        f.reads_before_end.store(reads_before_end, Ordering::SeqCst);
        f
    }

    /// Makes the next `n` BatchGetBuilds calls fail with error `code`.
    pub fn fail_next_reads(&self, n: usize, code: &'static str) {
        *self.failures.lock().expect("lock") = (n, code);
    }

    /// Adds a build directly (as if started earlier).
    pub fn add(&self, id: &str, build: FakeBuild) {
        self.builds.lock().expect("lock").insert(id.to_string(), build);
        self.order.lock().expect("lock").push(id.to_string());
    }

    /// Ends build `id` at the next read.
    pub fn finish(&self, id: &str) {
        if let Some(b) = self.builds.lock().expect("lock").get_mut(id) {
            b.reads_left = 0;
        }
    }

    fn read(&self, id: &str) -> Option<Build> {
        let mut builds = self.builds.lock().expect("lock");
        let b = builds.get_mut(id)?;
        let status = if b.stopped {
            StatusType::Stopped
        } else if b.reads_left > 0 {
            b.reads_left -= 1;
            StatusType::InProgress
        } else {
            b.end.clone()
        };
        let vars = b
            .env
            .iter()
            .map(|(k, v)| EnvironmentVariable::builder().name(k).value(v).build().expect("var"))
            .collect();
        let env = ProjectEnvironment::builder()
            .r#type(EnvironmentType::LinuxContainer)
            .image("fake")
            .compute_type(ComputeType::BuildGeneral1Small)
            .set_environment_variables(Some(vars))
            .build()
            .expect("environment");
        Some(
            Build::builder()
                .id(id)
                .build_status(status)
                .project_name(&b.project)
                .environment(env)
                .build(),
        )
    }

    pub fn rules(&self) -> Vec<Rule> {
        let me = self.clone();
        let start = mock!(aws_sdk_codebuild::Client::start_build).then_compute_output(move |req| {
            let n = me.start_calls.fetch_add(1, Ordering::SeqCst) + 1;
            let project = req.project_name().unwrap_or("p").to_string();
            let id = format!("{project}:{n:06}");
            let env = req
                .environment_variables_override()
                .iter()
                .map(|v| (v.name().to_string(), v.value().to_string()))
                .collect();
            let reads = me.reads_before_end.load(Ordering::SeqCst) as u32;
            me.add(
                &id,
                FakeBuild {
                    end: end_for(&project),
                    project,
                    reads_left: reads,
                    stopped: false,
                    env,
                },
            );
            StartBuildOutput::builder()
                .build_value(Build::builder().id(id).build_status(StatusType::InProgress).build())
                .build()
        });
        let me = self.clone();
        let batch = mock!(aws_sdk_codebuild::Client::batch_get_builds).then_compute_response(move |req| {
            me.batch_calls.fetch_add(1, Ordering::SeqCst);
            me.batch_ids.fetch_add(req.ids().len(), Ordering::SeqCst);
            {
                let mut f = me.failures.lock().expect("lock");
                if f.0 > 0 {
                    f.0 -= 1;
                    let err = ErrorMetadata::builder()
                        .code(f.1)
                        .message("injected by the fake")
                        .build();
                    return aws_smithy_mocks::MockResponse::Error(BatchGetBuildsError::generic(err));
                }
            }
            let mut out = BatchGetBuildsOutput::builder();
            for id in req.ids() {
                match me.read(id) {
                    Some(b) => out = out.builds(b),
                    None => out = out.builds_not_found(id),
                }
            }
            aws_smithy_mocks::MockResponse::Output(out.build())
        });
        let me = self.clone();
        let list = mock!(aws_sdk_codebuild::Client::list_builds_for_project).then_compute_output(move |req| {
            let project = req.project_name().unwrap_or_default().to_string();
            let builds = me.builds.lock().expect("lock");
            let ids: Vec<String> = me
                .order
                .lock()
                .expect("lock")
                .iter()
                .rev()
                .filter(|id| builds.get(*id).map(|b| b.project == project).unwrap_or(false))
                .cloned()
                .collect();
            ListBuildsForProjectOutput::builder().set_ids(Some(ids)).build()
        });
        let me = self.clone();
        let stop = mock!(aws_sdk_codebuild::Client::stop_build).then_compute_output(move |req| {
            if let Some(b) = me.builds.lock().expect("lock").get_mut(req.id().unwrap_or_default()) {
                b.stopped = true;
            }
            StopBuildOutput::builder().build()
        });
        vec![start, batch, list, stop]
    }

    pub fn client(&self) -> aws_sdk_codebuild::Client {
        let rules = self.rules();
        mock_client!(aws_sdk_codebuild, RuleMode::MatchAny, rules.iter(), |c| c
            .retry_config(aws_sdk_codebuild::config::retry::RetryConfig::disabled()))
    }
}

/// A fake CodePipeline. Pipelines behave as their name says: `approve-…` waits at a manual
/// approval until it is approved, then succeeds; `superseded-…`, `stopped-…`, `cancelled-…`,
/// `failed-…` end that way after one read; anything else succeeds after one read.
#[derive(Clone, Default)]
pub struct FakeCodePipeline {
    pub start_calls: Arc<AtomicUsize>,
    pub executions: Arc<Mutex<HashMap<String, (String, u32)>>>, // token -> (execution id, reads)
    pub approvals: Arc<Mutex<Vec<(String, String, String)>>>,   // (stage, action, token)
    pub reads: Arc<AtomicUsize>,
    pub throttle_reads: Arc<AtomicUsize>,
}

impl FakeCodePipeline {
    pub fn client(&self) -> aws_sdk_codepipeline::Client {
        use aws_sdk_codepipeline::operation::get_pipeline_execution::{
            GetPipelineExecutionError, GetPipelineExecutionOutput,
        };
        use aws_sdk_codepipeline::operation::get_pipeline_state::GetPipelineStateOutput;
        use aws_sdk_codepipeline::operation::put_approval_result::PutApprovalResultOutput;
        use aws_sdk_codepipeline::operation::start_pipeline_execution::StartPipelineExecutionOutput;
        use aws_sdk_codepipeline::types::*;
        let me = self.clone();
        let start = mock!(aws_sdk_codepipeline::Client::start_pipeline_execution).then_compute_output(move |req| {
            me.start_calls.fetch_add(1, Ordering::SeqCst);
            let token = req.client_request_token().unwrap_or_default().to_string();
            let mut ex = me.executions.lock().expect("lock");
            let n = ex.len() + 1;
            let id = ex
                .entry(token)
                .or_insert_with(|| (format!("{}-exec-{n}", req.name().unwrap_or("p")), 0))
                .0
                .clone();
            StartPipelineExecutionOutput::builder()
                .pipeline_execution_id(id)
                .build()
        });
        let me = self.clone();
        let get = mock!(aws_sdk_codepipeline::Client::get_pipeline_execution).then_compute_response(move |req| {
            me.reads.fetch_add(1, Ordering::SeqCst);
            if me.throttle_reads.load(Ordering::SeqCst) > 0 {
                me.throttle_reads.fetch_sub(1, Ordering::SeqCst);
                let err = ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build();
                return aws_smithy_mocks::MockResponse::Error(GetPipelineExecutionError::generic(err));
            }
            let name = req.pipeline_name().unwrap_or_default();
            let id = req.pipeline_execution_id().unwrap_or_default();
            let approved = !me.approvals.lock().expect("lock").is_empty();
            let status = match name.split('-').next().unwrap_or("") {
                "approve" if approved => PipelineExecutionStatus::Succeeded,
                "approve" => PipelineExecutionStatus::InProgress,
                "superseded" => PipelineExecutionStatus::Superseded,
                "stopped" => PipelineExecutionStatus::Stopped,
                "cancelled" => PipelineExecutionStatus::Cancelled,
                "failed" => PipelineExecutionStatus::Failed,
                _ => PipelineExecutionStatus::Succeeded,
            };
            let exec = PipelineExecution::builder()
                .pipeline_name(name)
                .pipeline_execution_id(id)
                .status(status)
                .status_summary("as the fake says")
                .build();
            aws_smithy_mocks::MockResponse::Output(
                GetPipelineExecutionOutput::builder().pipeline_execution(exec).build(),
            )
        });
        let me = self.clone();
        let state = mock!(aws_sdk_codepipeline::Client::get_pipeline_state).then_compute_output(move |req| {
            let name = req.name().unwrap_or_default();
            let ex = me.executions.lock().expect("lock");
            let id = ex.values().next().map(|v| v.0.clone()).unwrap_or_default();
            let approved = !me.approvals.lock().expect("lock").is_empty();
            let source = StageState::builder()
                .stage_name("Source")
                .latest_execution(
                    StageExecution::builder()
                        .pipeline_execution_id(&id)
                        .status(StageExecutionStatus::Succeeded)
                        .build()
                        .expect("stage"),
                )
                .action_states(
                    ActionState::builder()
                        .action_name("Checkout")
                        .latest_execution(
                            ActionExecution::builder()
                                .status(ActionExecutionStatus::Succeeded)
                                .build(),
                        )
                        .build(),
                )
                .build();
            let gate_status = if approved {
                ActionExecutionStatus::Succeeded
            } else {
                ActionExecutionStatus::InProgress
            };
            let mut action = ActionExecution::builder().status(gate_status);
            if !approved {
                action = action.token("approval-token-1");
            }
            let gate = StageState::builder()
                .stage_name("Gate")
                .latest_execution(
                    StageExecution::builder()
                        .pipeline_execution_id(&id)
                        .status(StageExecutionStatus::InProgress)
                        .build()
                        .expect("stage"),
                )
                .action_states(
                    ActionState::builder()
                        .action_name("Manual")
                        .latest_execution(action.build())
                        .build(),
                )
                .build();
            GetPipelineStateOutput::builder()
                .pipeline_name(name)
                .stage_states(source)
                .stage_states(gate)
                .build()
        });
        let me = self.clone();
        let put = mock!(aws_sdk_codepipeline::Client::put_approval_result).then_compute_output(move |req| {
            me.approvals.lock().expect("lock").push((
                req.stage_name().unwrap_or_default().to_string(),
                req.action_name().unwrap_or_default().to_string(),
                req.token().unwrap_or_default().to_string(),
            ));
            PutApprovalResultOutput::builder().build()
        });
        let rules = [start, get, state, put];
        mock_client!(aws_sdk_codepipeline, RuleMode::MatchAny, rules.iter(), |c| c
            .retry_config(aws_sdk_codepipeline::config::retry::RetryConfig::disabled()))
    }
}
