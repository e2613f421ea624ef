//! Typed plan, stage and step structures, deserialized from a validated JSON value.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A release plan: an ordered list of stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Defaults::is_empty")]
    pub defaults: Defaults,
    pub stages: Vec<Stage>,
}

impl Plan {
    /// Every step of the plan with its stage index, in plan order.
    pub fn steps(&self) -> impl Iterator<Item = (usize, &Stage, &Step)> {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(i, stage)| stage.steps.iter().map(move |step| (i, stage, step)))
    }

    /// Number of steps in all stages.
    pub fn step_count(&self) -> usize {
        self.stages.iter().map(|s| s.steps.len()).sum()
    }
}

/// Values that steps inherit unless they set their own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Defaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_topic_arn: Option<String>,
}

impl Defaults {
    fn is_empty(&self) -> bool {
        self == &Defaults::default()
    }
}

/// A set of steps that start together; the stage ends when all of them have ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub steps: Vec<Step>,
}

/// One unit of work: what it does ([`StepKind`]) and how it is run ([`StepOptions`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    #[serde(flatten)]
    pub kind: StepKind,
    #[serde(flatten)]
    pub options: StepOptions,
}

/// What a step does; the `type` field of the plan selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StepKind {
    /// Start a CodeBuild build and wait for it to end.
    CodeBuild(CodeBuildStep),
    /// Start a CodeBuild build and succeed once it has started.
    CodeBuildNoWait(CodeBuildStep),
    /// Start a CodePipeline execution and wait for it to end.
    CodePipeline(CodePipelineStep),
    /// Start a CodePipeline execution and succeed once it has started.
    CodePipelineNoWait(CodePipelineStep),
    /// Wait a number of seconds.
    Wait(WaitStep),
    /// Publish a message.
    Notify(NotifyStep),
    /// Ask people to approve or reject.
    Human(HumanStep),
}

impl StepKind {
    /// This step's type (see [`super::step_type`] for what each type is).
    pub fn step_type(&self) -> super::StepType {
        use super::StepType;
        match self {
            StepKind::CodeBuild(_) => StepType::CodeBuild,
            StepKind::CodeBuildNoWait(_) => StepType::CodeBuildNoWait,
            StepKind::CodePipeline(_) => StepType::CodePipeline,
            StepKind::CodePipelineNoWait(_) => StepType::CodePipelineNoWait,
            StepKind::Wait(_) => StepType::Wait,
            StepKind::Notify(_) => StepType::Notify,
            StepKind::Human(_) => StepType::Human,
        }
    }

    /// The plan's name for this step type, as written in `type`.
    pub fn type_name(&self) -> &'static str {
        self.step_type().name()
    }

    /// Whether a step of this kind can end in failure ([`super::step_type::CanFail`]).
    pub fn can_fail(&self) -> bool {
        self.step_type().describe().can_fail == super::step_type::CanFail::Yes
    }
}

/// Options every step type accepts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_failure: bool,
}

/// How a failed attempt is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Attempts in all, the first included.
    #[serde(default = "Retry::default_max_attempts")]
    pub max_attempts: u32,
    /// Seconds before the second attempt.
    #[serde(default = "Retry::default_interval_seconds")]
    pub interval_seconds: u64,
    /// Each later interval is the previous one times this.
    #[serde(default = "Retry::default_backoff_rate")]
    pub backoff_rate: f64,
}

impl Retry {
    fn default_max_attempts() -> u32 {
        3
    }
    fn default_interval_seconds() -> u64 {
        5
    }
    fn default_backoff_rate() -> f64 {
        2.0
    }

    /// Seconds to wait after failed attempt number `attempt` (1-based) before the next one.
    pub fn delay_after(&self, attempt: u32) -> f64 {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        (self.interval_seconds as f64) * self.backoff_rate.powi(exponent)
    }
}

/// `CodeBuild` and `CodeBuildNoWait`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeBuildStep {
    pub code_build_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<SourceVersion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_variable_overrides: Vec<EnvironmentVariable>,
}

/// A branch, tag or commit to build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SourceVersion {
    /// Passed to CodeBuild as written (`main`, `v1.2`, a commit id, `refs/heads/x`).
    Plain(String),
    /// An explicit kind of reference.
    Typed {
        #[serde(rename = "type")]
        kind: RefKind,
        value: String,
    },
}

impl SourceVersion {
    /// The `sourceVersion` string CodeBuild expects.
    pub fn to_codebuild(&self) -> String {
        match self {
            SourceVersion::Plain(s) => s.clone(),
            SourceVersion::Typed {
                kind: RefKind::Branch,
                value,
            } => format!("refs/heads/{value}"),
            SourceVersion::Typed {
                kind: RefKind::Tag,
                value,
            } => format!("refs/tags/{value}"),
            SourceVersion::Typed {
                kind: RefKind::Commit,
                value,
            } => value.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefKind {
    Branch,
    Tag,
    Commit,
}

/// One environment variable override for a build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: String,
    #[serde(default, rename = "type")]
    pub kind: EnvironmentVariableType,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnvironmentVariableType {
    #[default]
    Plaintext,
    ParameterStore,
    SecretsManager,
}

/// `CodePipeline` and `CodePipelineNoWait`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodePipelineStep {
    pub code_pipeline_name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_approve: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
}

/// `Wait`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitStep {
    pub seconds: u64,
}

/// `Notify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyStep {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
}

/// `Human`: an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HumanStep {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    #[serde(default = "HumanStep::default_required_approvals")]
    pub required_approvals: u32,
    #[serde(default)]
    pub on_timeout: OnTimeout,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forbid_self_approval: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
}

impl HumanStep {
    fn default_required_approvals() -> u32 {
        1
    }
}

/// What a timed-out approval decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    #[default]
    Reject,
    Approve,
}
