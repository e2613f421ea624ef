//! Steppy's step executors, one module per step type, and [`local_registry`] which maps each
//! plan `type` to its executor.
//!
//! This crate ships the executors that need no cloud account: [`wait`], [`notify`] (an outbox
//! file instead of SNS for now) and [`human`] (approvals decided with `steppy approve` /
//! `steppy reject`). The AWS executors (CodeBuild, CodePipeline) come later, as more modules
//! here and one more `register` line each; until then `steppy run` refuses plans that use them.

pub mod human;
pub mod notify;
pub mod wait;

use std::path::PathBuf;
use std::sync::Arc;
use steppy_engine::executor::Registry;

/// The registry of every executor this build has. `outbox` is the file Notify appends to.
pub fn local_registry(outbox: PathBuf) -> Registry {
    let mut registry = Registry::new();
    registry.register("Wait", Arc::new(wait::WaitExecutor));
    registry.register("Notify", Arc::new(notify::NotifyExecutor::new(outbox)));
    registry.register("Human", Arc::new(human::HumanExecutor::default()));
    registry
}
