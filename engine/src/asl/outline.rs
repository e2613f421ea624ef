//! Reading a compiled definition back: which states are the stages, which are the steps, and
//! which state says that a step succeeded, failed or was rejected.
//!
//! `steppy status` and `steppy history` get a Step Functions execution's definition from AWS,
//! not the plan; [`Outline::of`] recovers the plan's shape from it, so that the execution's
//! history events (which name states) can be told as stage and step progress (see
//! [`super::replay`]). It relies only on what [`super::compile`] writes: each stage is a
//! `Parallel` commented `Stage '<name>'`, each branch starts at its step's state and ends in a
//! `Pass` whose result names the step and its status. A definition not made by Steppy has no
//! stages in its outline.

use super::REJECTED;
use serde_json::Value;
use std::collections::HashMap;

/// What one state stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The `Parallel` of stage `.0`.
    Stage(usize),
    /// The first state of step `.1` of stage `.0`: entering it starts the step.
    StepStart(usize, usize),
    /// The `Pass` recording that the step succeeded.
    StepSucceeded(usize, usize),
    /// The `Pass` an approval with `onTimeout: approve` goes to when nobody decided in time.
    StepApprovedOnTimeout(usize, usize),
    /// The `Pass` recording that the step failed (the failure is its input).
    StepFailed(usize, usize),
    /// The `Fail` state an approval's rejection (or rejecting timeout) goes to.
    StepRejected(usize, usize),
}

/// A step as the definition shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlineStep {
    pub name: String,
    /// The plan's step type, read from the state's resource (`Notify`, `Human`, `CodeBuild`…).
    pub kind: &'static str,
}

/// A stage as the definition shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlineStage {
    pub name: String,
    pub steps: Vec<OutlineStep>,
}

/// The plan's shape, recovered from a compiled definition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outline {
    pub stages: Vec<OutlineStage>,
    roles: HashMap<String, Role>,
}

impl Outline {
    /// The outline of `definition` (empty if it was not compiled by Steppy).
    pub fn of(definition: &Value) -> Outline {
        let mut outline = Outline::default();
        let Some(states) = definition.get("States").and_then(Value::as_object) else {
            return outline;
        };
        // Follow the top-level chain: stage Parallel → (Choice default) → next stage.
        let mut at = definition.get("StartAt").and_then(Value::as_str);
        let mut seen = std::collections::HashSet::new();
        while let Some(name) = at {
            if !seen.insert(name) {
                break;
            }
            let Some(state) = states.get(name) else { break };
            at = match state.get("Type").and_then(Value::as_str) {
                Some("Parallel") => {
                    if let Some(stage) = stage_name(state) {
                        outline.add_stage(name, stage, state);
                    }
                    state.get("Next").and_then(Value::as_str)
                }
                Some("Choice") => state.get("Default").and_then(Value::as_str),
                _ => state.get("Next").and_then(Value::as_str),
            };
        }
        outline
    }

    /// What the state called `name` stands for, if anything.
    pub fn role(&self, name: &str) -> Option<Role> {
        self.roles.get(name).copied()
    }

    /// The number of steps in all stages.
    pub fn step_count(&self) -> usize {
        self.stages.iter().map(|s| s.steps.len()).sum()
    }

    /// The step at (`stage`, `step`).
    pub fn step(&self, stage: usize, step: usize) -> Option<&OutlineStep> {
        self.stages.get(stage).and_then(|s| s.steps.get(step))
    }

    fn add_stage(&mut self, state_name: &str, stage_name: String, state: &Value) {
        let s = self.stages.len();
        self.roles.insert(state_name.to_string(), Role::Stage(s));
        let mut steps = Vec::new();
        for (k, branch) in state
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let head = branch.get("StartAt").and_then(Value::as_str).unwrap_or("");
            let branch_states = branch.get("States").and_then(Value::as_object);
            let head_state = branch_states.and_then(|b| b.get(head));
            let mut name = head.to_string();
            for (state_name, st) in branch_states.into_iter().flatten() {
                let result = st.get("Result").or_else(|| st.get("Parameters"));
                let status = result.and_then(|r| r.get("status")).and_then(Value::as_str);
                let on_timeout =
                    result.and_then(|r| r.get("decision")).and_then(Value::as_str) == Some("approved on timeout");
                let role = match (st.get("Type").and_then(Value::as_str), status) {
                    (Some("Pass"), Some("Succeeded")) if on_timeout => Some(Role::StepApprovedOnTimeout(s, k)),
                    (Some("Pass"), Some("Succeeded")) => Some(Role::StepSucceeded(s, k)),
                    (Some("Pass"), Some("Failed")) => Some(Role::StepFailed(s, k)),
                    (Some("Fail"), _) if st.get("Error").and_then(Value::as_str) == Some(REJECTED) => {
                        Some(Role::StepRejected(s, k))
                    }
                    _ => None,
                };
                if let Some(role) = role {
                    self.roles.insert(state_name.clone(), role);
                }
                if let Some(step) = result.and_then(|r| r.get("step")).and_then(Value::as_str) {
                    name = step.to_string();
                }
            }
            self.roles.insert(head.to_string(), Role::StepStart(s, k));
            steps.push(OutlineStep {
                name,
                kind: head_state.map(kind_of).unwrap_or("Unknown"),
            });
        }
        self.stages.push(OutlineStage {
            name: stage_name,
            steps,
        });
    }
}

/// `Stage 'X'` → `X`.
fn stage_name(state: &Value) -> Option<String> {
    let comment = state.get("Comment")?.as_str()?;
    let inner = comment.strip_prefix("Stage '")?.strip_suffix('\'')?;
    Some(inner.to_string())
}

/// The plan's step type of a step's first state (each type's
/// [`FirstState`](crate::plan::step_type::FirstState) says how it is recognised).
fn kind_of(state: &Value) -> &'static str {
    crate::plan::StepType::of_first_state(state).map_or("Unknown", crate::plan::StepType::name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asl::{Options, compile};

    fn outline(plan: &str) -> (crate::plan::Plan, Outline) {
        let plan = crate::validate::validate_text("plan.json", plan, None).expect("valid plan");
        let options = Options {
            topic_arn: Some("arn:aws:sns:us-east-1:123456789012:t".into()),
            ..Options::default()
        };
        let compiled = compile(&plan, &options).expect("compiles");
        let o = Outline::of(&compiled.definition);
        (plan, o)
    }

    #[test]
    fn recovers_every_stage_and_step_with_its_type() {
        let (plan, o) = outline(
            r#"{"stages":[
              {"name":"Build","steps":[{"type":"CodeBuild","name":"b","codeBuildName":"proj"},{"type":"Wait","name":"soak","seconds":5}]},
              {"name":"Ship it?","steps":[{"type":"Human","name":"ok","message":"m","timeoutSeconds":60,"onTimeout":"approve"}]},
              {"name":"Deploy","steps":[{"type":"CodePipeline","name":"p","codePipelineName":"pipe","continueOnFailure":true},{"type":"Notify","name":"n","message":"m"}]}
            ]}"#,
        );
        assert_eq!(o.stages.len(), plan.stages.len());
        for (stage, got) in plan.stages.iter().zip(&o.stages) {
            assert_eq!(got.name, stage.name);
            let names: Vec<&str> = got.steps.iter().map(|s| s.name.as_str()).collect();
            let kinds: Vec<&str> = got.steps.iter().map(|s| s.kind).collect();
            assert_eq!(names, stage.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>());
            assert_eq!(
                kinds,
                stage.steps.iter().map(|s| s.kind.type_name()).collect::<Vec<_>>()
            );
        }
        assert_eq!(o.step_count(), 5);
        // The approval approves itself on timeout through its own Pass state.
        assert_eq!(
            o.role("ok approved on timeout"),
            Some(Role::StepApprovedOnTimeout(1, 0))
        );
    }

    #[test]
    fn names_the_states_that_end_a_step() {
        let (_, o) = outline(r#"{"stages":[{"name":"S","steps":[{"type":"Human","name":"Go?","message":"m"}]}]}"#);
        assert_eq!(o.role("S"), Some(Role::Stage(0)));
        // State names are sanitised ("?" becomes "_"); the step keeps the plan's name.
        assert_eq!(o.role("Go_"), Some(Role::StepStart(0, 0)));
        assert_eq!(o.role("Go_ succeeded"), Some(Role::StepSucceeded(0, 0)));
        assert_eq!(o.role("Go_ failed"), Some(Role::StepFailed(0, 0)));
        assert_eq!(o.role("Go_ rejected"), Some(Role::StepRejected(0, 0)));
        assert_eq!(o.stages[0].steps[0].name, "Go?");
        assert_eq!(o.role("S check"), None);
    }

    #[test]
    fn a_foreign_definition_has_no_stages() {
        let def = serde_json::json!({"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}});
        assert!(Outline::of(&def).stages.is_empty());
        assert!(Outline::of(&serde_json::json!("not a definition")).stages.is_empty());
        // A loop in a hand-written definition does not hang the reader.
        let looped = serde_json::json!({"StartAt":"A","States":{"A":{"Type":"Choice","Default":"A"}}});
        assert!(Outline::of(&looped).stages.is_empty());
    }
}
