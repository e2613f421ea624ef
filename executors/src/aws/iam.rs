//! `steppy iam-policy PLAN`: the least-privilege IAM policy a plan needs.
//!
//! Steps that name no role run as Steppy's own identity; steps with a `roleArn` (their own or
//! the plan default) run as that role, and Steppy's identity only needs `sts:AssumeRole` on it.
//! [`policy`] builds Steppy's policy (`for_role = None`) or the one a role needs
//! (`for_role = Some(arn)`). Resource ARNs use the step's region (else the plan default, else
//! the configured region) and the account of the role the step runs as; where either is
//! unknown the ARN says `*` there.

use super::arn;
use super::s3::S3Location;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use steppy_engine::plan::{Plan, StepKind};

/// What the policy is for, besides the plan itself.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    /// The region used when neither the step nor the plan names one.
    pub region: Option<String>,
    /// The configured topic (`--topic-arn`), used when the plan names none.
    pub topic_arn: Option<String>,
    /// The plan's own S3 object, if it is read from S3.
    pub plan_object: Option<S3Location>,
    /// The watched `s3://bucket/prefix/`, if any.
    pub watch: Option<S3Location>,
    /// The policy of a Step Functions execution role (`iam-policy --engine sfn`): the same
    /// service actions, plus the EventBridge rule the `codebuild:startBuild.sync` integration
    /// manages.
    pub step_functions: bool,
}

/// One `Allow` statement being collected.
#[derive(Default)]
struct Statement {
    actions: BTreeSet<String>,
    resources: BTreeSet<String>,
    condition: Option<Value>,
}

/// Statements by sid, collecting actions and resources.
#[derive(Default)]
struct Statements {
    by_sid: BTreeMap<String, Statement>,
}

impl Statements {
    fn allow(&mut self, sid: &str, actions: &[&str], resource: String) {
        let entry = self.by_sid.entry(sid.to_string()).or_default();
        entry.actions.extend(actions.iter().map(|a| a.to_string()));
        entry.resources.insert(resource);
    }

    fn into_policy(self) -> Value {
        let statements: Vec<Value> = self
            .by_sid
            .into_iter()
            .map(|(sid, st)| {
                let mut s = json!({ "Sid": sid, "Effect": "Allow", "Action": st.actions, "Resource": st.resources });
                if let (Some(c), Some(obj)) = (st.condition, s.as_object_mut()) {
                    obj.insert("Condition".into(), c);
                }
                s
            })
            .collect();
        json!({ "Version": "2012-10-17", "Statement": statements })
    }
}

/// The policy for Steppy's identity (`for_role = None`) or for the role `for_role`.
pub fn policy(plan: &Plan, input: &PolicyInput, for_role: Option<&str>) -> Value {
    let mut st = Statements::default();
    let mut roles = BTreeSet::new();
    for (_, _, step) in plan.steps() {
        let role = step
            .options
            .role_arn
            .clone()
            .or_else(|| plan.defaults.role_arn.clone())
            .filter(|r| !r.is_empty());
        if let Some(r) = &role {
            roles.insert(r.clone());
        }
        if role.as_deref() != for_role {
            continue;
        }
        let region = step
            .options
            .region
            .clone()
            .or_else(|| plan.defaults.region.clone())
            .or_else(|| input.region.clone())
            .unwrap_or_else(|| "*".into());
        let account = role.as_deref().and_then(arn::account).unwrap_or("*").to_string();
        let partition = role
            .as_deref()
            .and_then(arn::parse)
            .map(|a| a.partition.to_string())
            .unwrap_or_else(|| "aws".into());
        let topic = |own: Option<&String>| {
            own.cloned()
                .or_else(|| plan.defaults.notification_topic_arn.clone())
                .or_else(|| input.topic_arn.clone())
        };
        match &step.kind {
            StepKind::CodeBuild(b) | StepKind::CodeBuildNoWait(b) => {
                st.allow(
                    "CodeBuildProjects",
                    &[
                        "codebuild:StartBuild",
                        "codebuild:BatchGetBuilds",
                        "codebuild:StopBuild",
                        "codebuild:ListBuildsForProject",
                    ],
                    format!(
                        "arn:{partition}:codebuild:{region}:{account}:project/{}",
                        b.code_build_name
                    ),
                );
                if input.step_functions && matches!(step.kind, StepKind::CodeBuild(_)) {
                    st.allow(
                        "CodeBuildSyncRule",
                        &["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                        format!("arn:{partition}:events:{region}:{account}:rule/StepFunctionsGetEventForCodeBuildStartBuildRule"),
                    );
                }
            }
            StepKind::CodePipeline(p) | StepKind::CodePipelineNoWait(p) => {
                let pipeline = format!(
                    "arn:{partition}:codepipeline:{region}:{account}:{}",
                    p.code_pipeline_name
                );
                st.allow(
                    "CodePipelineExecutions",
                    &[
                        "codepipeline:StartPipelineExecution",
                        "codepipeline:GetPipelineExecution",
                        "codepipeline:StopPipelineExecution",
                    ],
                    pipeline.clone(),
                );
                if p.auto_approve {
                    st.allow(
                        "CodePipelineReadState",
                        &["codepipeline:GetPipelineState"],
                        pipeline.clone(),
                    );
                    st.allow(
                        "CodePipelineApprovals",
                        &["codepipeline:PutApprovalResult"],
                        format!("{pipeline}/*"),
                    );
                }
            }
            StepKind::Notify(n) => {
                if let Some(t) = topic(n.topic_arn.as_ref()) {
                    st.allow("PublishNotifications", &["sns:Publish"], t);
                }
            }
            StepKind::Human(h) => {
                if let Some(t) = topic(h.topic_arn.as_ref()) {
                    st.allow("PublishNotifications", &["sns:Publish"], t);
                }
            }
            StepKind::Wait(_) => {}
        }
    }
    if for_role.is_none() {
        for r in &roles {
            st.allow("AssumeStepRoles", &["sts:AssumeRole"], r.clone());
        }
        if let Some(obj) = &input.plan_object {
            st.allow(
                "ReadPlan",
                &["s3:GetObject", "s3:GetObjectVersion"],
                format!("arn:aws:s3:::{}/{}", obj.bucket, obj.key),
            );
        }
        if let Some(w) = &input.watch {
            st.allow(
                "WatchPlans",
                &["s3:ListBucketVersions"],
                format!("arn:aws:s3:::{}", w.bucket),
            );
            if let Some(entry) = st.by_sid.get_mut("WatchPlans") {
                entry.condition = Some(json!({ "StringLike": { "s3:prefix": [format!("{}*", w.key)] } }));
            }
            st.allow(
                "ReadWatchedPlans",
                &["s3:GetObject", "s3:GetObjectVersion"],
                format!("arn:aws:s3:::{}/{}*", w.bucket, w.key),
            );
            st.allow(
                "WritePlanErrors",
                &["s3:PutObject"],
                format!("arn:aws:s3:::{}/{}*.errors.json", w.bucket, w.key),
            );
            if let Some(t) = &input.topic_arn {
                st.allow("PublishNotifications", &["sns:Publish"], t.clone());
            }
        }
    }
    st.into_policy()
}

/// Every role the plan assumes.
pub fn roles(plan: &Plan) -> BTreeSet<String> {
    plan.steps()
        .filter_map(|(_, _, s)| s.options.role_arn.clone().or_else(|| plan.defaults.role_arn.clone()))
        .filter(|r| !r.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        serde_json::from_value(json!({
            "name": "release",
            "defaults": { "region": "eu-west-1", "notificationTopicArn": "arn:aws:sns:eu-west-1:111111111111:releases" },
            "stages": [{ "name": "build", "steps": [
                { "name": "app", "type": "CodeBuild", "codeBuildName": "app" },
                { "name": "infra", "type": "CodeBuild", "codeBuildName": "infra", "roleArn": "arn:aws:iam::222222222222:role/deployer", "region": "us-east-1" },
                { "name": "ship", "type": "CodePipeline", "codePipelineName": "ship", "autoApprove": true },
                { "name": "tell", "type": "Notify", "message": "done" }
            ]}]
        }))
        .expect("plan")
    }

    #[test]
    fn steppy_policy_names_projects_pipelines_topics_and_roles() {
        let p = policy(&plan(), &PolicyInput::default(), None);
        let text = p.to_string();
        assert!(text.contains("arn:aws:codebuild:eu-west-1:*:project/app"));
        assert!(!text.contains("project/infra"), "runs as the role, not as Steppy");
        assert!(text.contains("\"sts:AssumeRole\""));
        assert!(text.contains("arn:aws:iam::222222222222:role/deployer"));
        assert!(text.contains("arn:aws:codepipeline:eu-west-1:*:ship/*"));
        assert!(text.contains("arn:aws:sns:eu-west-1:111111111111:releases"));
    }

    #[test]
    fn role_policy_uses_the_roles_account() {
        let p = policy(
            &plan(),
            &PolicyInput::default(),
            Some("arn:aws:iam::222222222222:role/deployer"),
        );
        let text = p.to_string();
        assert!(text.contains("arn:aws:codebuild:us-east-1:222222222222:project/infra"));
        assert!(!text.contains("project/app"));
    }

    #[test]
    fn watching_adds_the_bucket() {
        let input = PolicyInput {
            watch: Some(S3Location {
                bucket: "plans".into(),
                key: "releases/".into(),
            }),
            ..Default::default()
        };
        let text = policy(&plan(), &input, None).to_string();
        assert!(text.contains("arn:aws:s3:::plans/releases/*.errors.json"));
        assert!(text.contains("\"s3:prefix\":[\"releases/*\"]"));
    }

    #[test]
    fn a_step_functions_role_also_manages_the_codebuild_sync_rule() {
        let local = policy(&plan(), &PolicyInput::default(), None).to_string();
        assert!(!local.contains("events:PutRule"));
        let input = PolicyInput {
            step_functions: true,
            ..Default::default()
        };
        let sfn = policy(&plan(), &input, None).to_string();
        assert!(sfn.contains("arn:aws:events:eu-west-1:*:rule/StepFunctionsGetEventForCodeBuildStartBuildRule"));
        assert!(
            sfn.contains("\"sts:AssumeRole\""),
            "Credentials.RoleArn needs the execution role to assume it"
        );
        // The assumed role gets the rule in its own account and region.
        let role = policy(&plan(), &input, Some("arn:aws:iam::222222222222:role/deployer")).to_string();
        assert!(
            role.contains("arn:aws:events:us-east-1:222222222222:rule/StepFunctionsGetEventForCodeBuildStartBuildRule")
        );
    }
}
