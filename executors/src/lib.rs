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
use steppy_engine::executor::Registry;

/// What a build or pipeline step waits for: its end (`CodeBuild`, `CodePipeline`) or only its
/// start (the `…NoWait` types, which succeed once AWS has accepted the start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    WaitForEnd,
    StartOnly,
}

/// The registry of the executors that need no cloud account. `outbox` is the file Notify
/// appends to.
pub fn local_registry(outbox: PathBuf) -> Registry {
    let mut registry = Registry::new();
    registry.register("Wait", Arc::new(wait::WaitExecutor));
    registry.register("Notify", Arc::new(notify::NotifyExecutor::new(outbox)));
    registry.register("Human", Arc::new(human::HumanExecutor::new()));
    registry
}

/// Every executor: the local ones, with `Notify` and `Human` going through SNS when a topic is
/// configured, plus the AWS step types.
pub fn aws_registry(outbox: PathBuf, aws: Arc<aws::Aws>) -> Registry {
    let mut registry = local_registry(outbox.clone());
    registry.register(
        "Notify",
        Arc::new(sns::SnsNotifyExecutor::new(
            aws.clone(),
            notify::NotifyExecutor::new(outbox),
        )),
    );
    let courier = Arc::new(approval_mail::SnsCourier::new(aws.clone()));
    registry.register("Human", Arc::new(human::HumanExecutor::with_courier(courier)));
    registry.register(
        "CodeBuild",
        Arc::new(codebuild::CodeBuildExecutor::new(aws.clone(), Completion::WaitForEnd)),
    );
    registry.register(
        "CodeBuildNoWait",
        Arc::new(codebuild::CodeBuildExecutor::new(aws.clone(), Completion::StartOnly)),
    );
    registry.register(
        "CodePipeline",
        Arc::new(codepipeline::CodePipelineExecutor::new(
            aws.clone(),
            Completion::WaitForEnd,
        )),
    );
    registry.register(
        "CodePipelineNoWait",
        Arc::new(codepipeline::CodePipelineExecutor::new(aws, Completion::StartOnly)),
    );
    registry
}
