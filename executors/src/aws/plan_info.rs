//! The plan-level facts an attempt needs but [`StepContext`] does not carry: the plan's
//! `defaults` (region, role, topic), its name and the stage names. Read once per execution
//! from the store and cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use steppy_engine::executor::{ExecError, StepContext};
use steppy_engine::plan::Defaults;

/// What an AWS executor needs to know about the plan a step belongs to.
#[derive(Debug, Clone, Default)]
pub struct PlanInfo {
    pub plan_name: Option<String>,
    pub defaults: Defaults,
    pub stage_names: Vec<String>,
}

impl PlanInfo {
    /// The name of stage `stage`, or `stage N` if the plan has no such stage.
    pub fn stage_name(&self, stage: usize) -> String {
        self.stage_names
            .get(stage)
            .cloned()
            .unwrap_or_else(|| format!("stage {}", stage + 1))
    }
}

/// Plan facts by execution id.
#[derive(Default)]
pub struct PlanInfoCache {
    cache: Mutex<HashMap<String, Arc<PlanInfo>>>,
}

impl PlanInfoCache {
    /// The facts for the execution `ctx` belongs to.
    pub fn get(&self, ctx: &StepContext) -> Result<Arc<PlanInfo>, ExecError> {
        let id = ctx.execution_id.to_string();
        if let Some(info) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(info.clone());
        }
        let record = ctx
            .store
            .load(&id)
            .map_err(|e| ExecError::new(format!("cannot read the plan of execution {id}: {e}")))?;
        let info = Arc::new(PlanInfo {
            plan_name: record.plan.name.clone(),
            defaults: record.plan.defaults.clone(),
            stage_names: record.plan.stages.iter().map(|s| s.name.clone()).collect(),
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Executions end; keep the cache from growing without bound in a long `serve`.
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(id, info.clone());
        Ok(info)
    }
}
