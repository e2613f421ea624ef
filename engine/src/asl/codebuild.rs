//! `CodeBuild` and `CodeBuildNoWait`: CodeBuild's `startBuild` integration, `.sync` when the
//! step waits for the build to end.

use super::Ctx;
use super::task::{Ends, task};
use crate::plan::step_type::Completion;
use crate::plan::{CodeBuildStep, Step};
use serde_json::{Map, Value, json};

/// The `Task` state starting (and with [`Completion::WaitForEnd`] awaiting) the build.
pub fn start(ctx: &mut Ctx<'_>, step: &Step, b: &CodeBuildStep, completion: Completion, ends: &Ends) -> Value {
    let mut params = Map::new();
    params.insert("ProjectName".into(), json!(b.code_build_name));
    if let Some(v) = &b.source_version {
        params.insert("SourceVersion".into(), json!(v.to_codebuild()));
    }
    if !b.environment_variable_overrides.is_empty() {
        let vars: Vec<Value> = b
            .environment_variable_overrides
            .iter()
            .map(|v| json!({ "Name": v.name, "Value": v.value, "Type": serde_json::to_value(v.kind).unwrap_or(json!("PLAINTEXT")) }))
            .collect();
        params.insert("EnvironmentVariablesOverride".into(), Value::Array(vars));
    }
    let resource = if completion == Completion::WaitForEnd {
        "arn:aws:states:::codebuild:startBuild.sync"
    } else {
        "arn:aws:states:::codebuild:startBuild"
    };
    task(ctx, step, resource, Value::Object(params), ends, Vec::new(), &[])
}
