//! Steppy's step executors, one module per step type, and the registries mapping each plan
//! `type` to its executor.
//!
//! - [`wait`], [`notify`] (terminal + outbox) and [`human`] (approvals decided with
//!   `steppy approve` / `steppy reject`) need no cloud account: [`local_registry`].
//! - [`codebuild`], [`codepipeline`], [`sns`] (Notify through SNS) and [`approval_mail`]
//!   (approval requests mailed through SNS) use AWS, through the shared plumbing in [`aws`]:
//!   [`aws_registry`] has every executor.

pub mod approval_mail;
pub mod aws;
pub mod codebuild;
pub mod codepipeline;
pub mod human;
pub mod notify;
pub mod sns;
pub mod wait;

use std::path::PathBuf;
use std::sync::Arc;
use steppy_engine::executor::{Executor, Registry};
use steppy_engine::plan::StepType;
pub use steppy_engine::plan::step_type::Completion;

/// The registry of the executors that need no cloud account (the types whose description says
/// [`Needs::Nothing`]). `outbox` is the file Notify appends to.
pub fn local_registry(outbox: PathBuf) -> Registry {
    let mut registry = Registry::new();
    for t in StepType::ALL {
        let executor: Arc<dyn Executor> = match t {
            StepType::Wait => Arc::new(wait::WaitExecutor),
            StepType::Notify => Arc::new(notify::NotifyExecutor::new(outbox.clone())),
            StepType::Human => Arc::new(human::HumanExecutor::new()),
            StepType::CodeBuild | StepType::CodeBuildNoWait | StepType::CodePipeline | StepType::CodePipelineNoWait => {
                continue;
            }
        };
        registry.register(t.name(), executor);
    }
    registry
}

/// Every executor: each step type's, with `Notify` and `Human` going through SNS when a topic
/// is configured.
pub fn aws_registry(outbox: PathBuf, aws: Arc<aws::Aws>) -> Registry {
    let mut registry = Registry::new();
    for t in StepType::ALL {
        let executor: Arc<dyn Executor> = match t {
            StepType::Wait => Arc::new(wait::WaitExecutor),
            StepType::Notify => Arc::new(sns::SnsNotifyExecutor::new(
                aws.clone(),
                notify::NotifyExecutor::new(outbox.clone()),
            )),
            StepType::Human => {
                let courier = Arc::new(approval_mail::SnsCourier::new(aws.clone()));
                Arc::new(human::HumanExecutor::with_courier(courier))
            }
            StepType::CodeBuild => Arc::new(codebuild::CodeBuildExecutor::new(aws.clone(), Completion::WaitForEnd)),
            StepType::CodeBuildNoWait => {
                Arc::new(codebuild::CodeBuildExecutor::new(aws.clone(), Completion::StartOnly))
            }
            StepType::CodePipeline => Arc::new(codepipeline::CodePipelineExecutor::new(
                aws.clone(),
                Completion::WaitForEnd,
            )),
            StepType::CodePipelineNoWait => Arc::new(codepipeline::CodePipelineExecutor::new(
                aws.clone(),
                Completion::StartOnly,
            )),
        };
        registry.register(t.name(), executor);
    }
    registry
}

#[cfg(test)]
mod tests {
    use super::*;
    use steppy_engine::plan::step_type::Needs;

    #[test]
    fn the_local_registry_has_exactly_the_types_that_need_nothing() {
        let local = local_registry(PathBuf::from("/nonexistent/outbox.jsonl"));
        for t in StepType::ALL {
            assert_eq!(
                local.get(t.name()).is_some(),
                t.describe().needs == Needs::Nothing,
                "{t}"
            );
        }
    }

    #[test]
    fn the_aws_registry_has_every_type() {
        let aws = aws::Aws::from_environment(aws::AwsSettings::default());
        let all = aws_registry(PathBuf::from("/nonexistent/outbox.jsonl"), aws);
        for t in StepType::ALL {
            assert!(all.get(t.name()).is_some(), "{t} has no executor");
        }
    }
}
