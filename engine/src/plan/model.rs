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
    /// Declared parameters (the plan as written); a runnable plan has their values in
    /// [`Plan::resolved`] instead.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, Parameter>,
    /// Target sets (the plan as written); a runnable plan has them expanded into its stages.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, TargetSet>,
    /// The snapshot a runnable plan was made from: parameter values and where each target
    /// set came from ([`crate::resolve`]). Absent from plans without parameters or targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Resolved>,
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
    /// Fan-out (the plan as written): run every step once per target of a set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<ForEach>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerated_failure_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerated_failure_percentage: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Wave>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub between_waves: Vec<Step>,
    /// In a runnable plan: this stage is one part (a wave, or the steps between two waves) of
    /// a fan-out stage as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<FanOut>,
}

impl Stage {
    /// A plain stage of `steps`.
    pub fn new(name: impl Into<String>, steps: Vec<Step>) -> Stage {
        Stage {
            name: name.into(),
            description: None,
            steps,
            for_each: None,
            max_concurrency: None,
            tolerated_failure_count: None,
            tolerated_failure_percentage: None,
            waves: Vec::new(),
            between_waves: Vec::new(),
            fan_out: None,
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

/// One target: its fields by name, `id` among them.
pub type Target = BTreeMap<String, String>;

/// `FIELD: VALUE | [VALUES]`: the targets whose field is one of the values.
pub type Where = BTreeMap<String, OneOrMany>;

/// A `where` value: one string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// Whether `value` is (one of) this.
    pub fn admits(&self, value: &str) -> bool {
        match self {
            OneOrMany::One(v) => v == value,
            OneOrMany::Many(vs) => vs.iter().any(|v| v == value),
        }
    }
}

/// A target set as written: inline, or read from a source when the execution is submitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetSet {
    Inline(Vec<BTreeMap<String, serde_json::Value>>),
    From {
        from: String,
        #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
        filter: Where,
    },
}

/// `forEach`: a set's name, or `{ targets, where }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ForEach {
    Set(String),
    Select {
        targets: String,
        #[serde(default, rename = "where", skip_serializing_if = "BTreeMap::is_empty")]
        filter: Where,
    },
}

impl ForEach {
    /// The target set this fans out over.
    pub fn set(&self) -> &str {
        match self {
            ForEach::Set(name) | ForEach::Select { targets: name, .. } => name,
        }
    }

    /// The stage's own selection within the set (empty: all of it).
    pub fn filter(&self) -> Option<&Where> {
        match self {
            ForEach::Set(_) => None,
            ForEach::Select { filter, .. } => Some(filter),
        }
    }
}

/// One wave of a fan-out stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wave {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}

/// Where a stage of a runnable plan comes from in a fan-out stage as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOut {
    /// The stage as written (stages of one fan-out share it, and count failures together).
    pub stage: String,
    /// Targets selected for the whole fan-out stage.
    pub targets: u32,
    /// Failures the whole fan-out stage tolerates (from `toleratedFailureCount` and
    /// `toleratedFailurePercentage` of `targets`: the smaller of the two when both are set).
    pub tolerated_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Which part of it this stage is.
    pub part: FanOutPart,
    /// The wave's name (of the wave itself, or of the wave just before the between steps).
    pub wave: String,
    /// 1-based index of that wave.
    pub wave_index: u32,
}

/// A wave of targets, or the steps run after a wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FanOutPart {
    Wave,
    BetweenWaves,
}

/// The snapshot of a runnable plan: what it was resolved with, once, at submission.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    /// The execution id the plan was rendered for (`${execution.id}`).
    pub execution_id: String,
    /// Every parameter's value (given or default).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Each target set used: where it came from, when it was read and how many targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<SetSnapshot>,
}

/// Where one target set came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetSnapshot {
    pub name: String,
    /// `inline`, a file path, `s3://...` or `dynamodb://...`.
    pub source: String,
    /// When it was read (ms since the epoch).
    pub read_at_ms: i64,
    /// Targets in the set (before any `where` of a stage).
    pub targets: usize,
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
