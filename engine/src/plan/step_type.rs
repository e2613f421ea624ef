//! The step types as one table: [`StepType`] names each type a plan's `type` field can hold,
//! and [`StepType::describe`] gives the one [`Description`] the rest of Steppy derives from:
//! which executor registry serves it, whether it can fail, how a compiled state machine's
//! outline recognises it, and a minimal example step.
//!
//! Adding a type starts here: a variant of [`StepType`] (and of
//! [`StepKind`](super::StepKind), with its fields) makes the compiler stop at every `match`
//! that must learn it: [`StepKind::step_type`](super::StepKind::step_type), [`StepType::describe`],
//! the semantic rules of validation, the ASL compiler, the IAM policy and the executor
//! registries. What the compiler cannot see is held by tests over [`StepType::ALL`]: the JSON
//! Schema lists exactly these types, each [`Description::example`] validates and compiles and
//! its outline recognises it again, the README's table and an example plan mention it.
//! `ARCHITECTURE.md` ("Adding a step type") has the whole recipe.

/// A step type, as written in a plan's `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StepType {
    CodeBuild,
    CodeBuildNoWait,
    CodePipeline,
    CodePipelineNoWait,
    Wait,
    Notify,
    Human,
}

/// Which executor registry serves a type: every build has the local ones; the AWS registry
/// adds the rest (and may replace a local executor with one that goes through AWS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Runs with no cloud account (`Wait`, `Notify` to the outbox, `Human` by link).
    Nothing,
    /// Calls AWS to do its work.
    Aws,
}

/// What a build or pipeline step waits for: its end (`CodeBuild`, `CodePipeline`) or only its
/// start (the `…NoWait` types, which succeed once AWS has accepted the start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    WaitForEnd,
    StartOnly,
}

/// Whether a step of this type can end in failure (a `Wait` cannot: its compiled state has no
/// `Catch`, and Amazon States Language refuses unreachable failure states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CanFail {
    Yes,
    No,
}

/// How the outline of a compiled state machine (`asl::outline`) tells a step's type from its
/// first state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstState {
    /// A state of this `Type` (`Wait`, `Parallel`).
    OfType(&'static str),
    /// A task whose `Resource` ends with this.
    ResourceEndsWith(&'static str),
}

impl FirstState {
    /// True if `state` (an ASL state object) is the first state of a step of this kind.
    pub fn matches(self, state: &serde_json::Value) -> bool {
        match self {
            FirstState::OfType(t) => state.get("Type").and_then(|v| v.as_str()) == Some(t),
            FirstState::ResourceEndsWith(suffix) => state
                .get("Resource")
                .and_then(|v| v.as_str())
                .is_some_and(|r| r.ends_with(suffix)),
        }
    }
}

/// Everything Steppy knows of a step type outside its own modules.
#[derive(Clone, Copy, Debug)]
pub struct Description {
    /// The plan's name for it.
    pub name: &'static str,
    /// One line for people: what a step of this type does.
    pub summary: &'static str,
    pub needs: Needs,
    pub can_fail: CanFail,
    pub first_state: FirstState,
    /// A minimal step of this type, as a plan writes it (valid by the schema).
    pub example: &'static str,
}

impl StepType {
    /// Every type, in the order the schema and the README list them.
    pub const ALL: [StepType; 7] = [
        StepType::CodeBuild,
        StepType::CodeBuildNoWait,
        StepType::CodePipeline,
        StepType::CodePipelineNoWait,
        StepType::Wait,
        StepType::Notify,
        StepType::Human,
    ];

    /// The one description of this type.
    pub fn describe(self) -> Description {
        match self {
            StepType::CodeBuild => Description {
                name: "CodeBuild",
                summary: "starts a CodeBuild build and waits for it to end",
                needs: Needs::Aws,
                can_fail: CanFail::Yes,
                first_state: FirstState::ResourceEndsWith("codebuild:startBuild.sync"),
                example: r#"{ "type": "CodeBuild", "name": "Build", "codeBuildName": "app-build" }"#,
            },
            StepType::CodeBuildNoWait => Description {
                name: "CodeBuildNoWait",
                summary: "starts a CodeBuild build and succeeds once it has started",
                needs: Needs::Aws,
                can_fail: CanFail::Yes,
                first_state: FirstState::ResourceEndsWith("codebuild:startBuild"),
                example: r#"{ "type": "CodeBuildNoWait", "name": "Kick off", "codeBuildName": "app-build" }"#,
            },
            StepType::CodePipeline => Description {
                name: "CodePipeline",
                summary: "starts a CodePipeline execution and waits for it to end",
                needs: Needs::Aws,
                can_fail: CanFail::Yes,
                first_state: FirstState::OfType("Parallel"),
                example: r#"{ "type": "CodePipeline", "name": "Deploy", "codePipelineName": "app-deploy" }"#,
            },
            StepType::CodePipelineNoWait => Description {
                name: "CodePipelineNoWait",
                summary: "starts a CodePipeline execution and succeeds once it has started",
                needs: Needs::Aws,
                can_fail: CanFail::Yes,
                first_state: FirstState::ResourceEndsWith("codepipeline:startPipelineExecution"),
                example: r#"{ "type": "CodePipelineNoWait", "name": "Trigger", "codePipelineName": "app-deploy" }"#,
            },
            StepType::Wait => Description {
                name: "Wait",
                summary: "waits a number of seconds",
                needs: Needs::Nothing,
                can_fail: CanFail::No,
                first_state: FirstState::OfType("Wait"),
                example: r#"{ "type": "Wait", "name": "Soak", "seconds": 60 }"#,
            },
            StepType::Notify => Description {
                name: "Notify",
                summary: "publishes a message (SNS, or the outbox without a topic)",
                needs: Needs::Nothing,
                can_fail: CanFail::Yes,
                first_state: FirstState::ResourceEndsWith("sns:publish"),
                example: r#"{ "type": "Notify", "name": "Announce", "message": "Release started" }"#,
            },
            StepType::Human => Description {
                name: "Human",
                summary: "asks people to approve or reject, by link or command",
                needs: Needs::Nothing,
                can_fail: CanFail::Yes,
                first_state: FirstState::ResourceEndsWith("sns:publish.waitForTaskToken"),
                example: r#"{ "type": "Human", "name": "Sign-off", "message": "Ship it?" }"#,
            },
        }
    }

    /// The plan's name for this type.
    pub fn name(self) -> &'static str {
        self.describe().name
    }

    /// The type a plan's `type` names, if any (exact, case-sensitive: plans say `CodeBuild`).
    pub fn from_name(name: &str) -> Option<StepType> {
        StepType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Every type's name, in [`StepType::ALL`]'s order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        StepType::ALL.into_iter().map(StepType::name)
    }

    /// The type whose compiled first state is `state`, if one is.
    pub fn of_first_state(state: &serde_json::Value) -> Option<StepType> {
        StepType::ALL
            .into_iter()
            .find(|t| t.describe().first_state.matches(state))
    }
}

impl std::fmt::Display for StepType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_round_trip() {
        for t in StepType::ALL {
            assert_eq!(StepType::from_name(t.name()), Some(t));
        }
        let mut names: Vec<_> = StepType::names().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), StepType::ALL.len());
        assert_eq!(StepType::from_name("codebuild"), None);
    }

    #[test]
    fn no_two_types_claim_the_same_first_state() {
        for a in StepType::ALL {
            for b in StepType::ALL {
                if a != b {
                    assert_ne!(a.describe().first_state, b.describe().first_state, "{a} and {b}");
                }
            }
        }
    }
}
