//! The checks a JSON Schema cannot express: names that can be shown (not blank, no control
//! characters) and are unique, approvals against approvers, the shape of ARNs and regions, and
//! overall size. They read the raw JSON value, so they run (and report) even where the schema
//! found other problems.

use super::diagnostic::{Code, Diagnostic};
use super::names::{self, Sameness};
use crate::source::{SourceMap, Span};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// Most stages in one plan.
pub const MAX_STAGES: usize = 1_000;
/// Most steps in one stage (all of them start at once).
pub const MAX_STEPS_PER_STAGE: usize = 10_000;
/// Most steps in one plan.
pub const MAX_STEPS: usize = 100_000;

/// The stage fields that only a fan-out stage (`forEach`) may have.
const FAN_OUT_FIELDS: [&str; 5] = [
    "maxConcurrency",
    "toleratedFailureCount",
    "toleratedFailurePercentage",
    "waves",
    "betweenWaves",
];

pub fn check(root: &Value, map: &SourceMap) -> Vec<Diagnostic> {
    let mut c = Checker {
        root,
        map,
        out: Vec::new(),
    };
    c.name(root, "", "plan");
    if let Some(defaults) = root.get("defaults") {
        c.region(defaults, "/defaults", "region");
        c.role_arn(defaults, "/defaults", "roleArn");
        c.topic_arn(defaults, "/defaults", "notificationTopicArn");
    }
    let Some(stages) = root.get("stages").and_then(Value::as_array) else {
        return c.out;
    };
    if stages.len() > MAX_STAGES {
        c.push(
            Code::TooLarge,
            "/stages",
            format!("the plan has {} stages; Steppy runs at most {MAX_STAGES}", stages.len()),
            "split the release into several plans",
        );
    }
    let total: usize = stages
        .iter()
        .filter_map(|s| s.get("steps")?.as_array().map(Vec::len))
        .sum();
    if total > MAX_STEPS {
        c.push(
            Code::TooLarge,
            "/stages",
            format!("the plan has {total} steps; Steppy runs at most {MAX_STEPS}"),
            "split the release into several plans",
        );
    }
    for (i, stage) in stages.iter().enumerate() {
        c.name(stage, &format!("/stages/{i}"), "stage");
    }
    let names = stages.iter().map(|s| s.get("name").and_then(Value::as_str));
    c.unique_names(names, |i| format!("/stages/{i}/name"), "stage", "stage names are unique in a plan, ignoring case and Unicode normalization, so that progress and history can name them");
    for (i, stage) in stages.iter().enumerate() {
        let Some(steps) = stage.get("steps").and_then(Value::as_array) else {
            continue;
        };
        if steps.len() > MAX_STEPS_PER_STAGE {
            c.push(
                Code::TooLarge,
                &format!("/stages/{i}/steps"),
                format!(
                    "this stage has {} steps; a stage holds at most {MAX_STEPS_PER_STAGE}",
                    steps.len()
                ),
                "spread the steps over several stages",
            );
        }
        let names = steps.iter().map(|s| s.get("name").and_then(Value::as_str));
        c.unique_names(names, |j| format!("/stages/{i}/steps/{j}/name"), "step", "step names are unique within their stage, ignoring case and Unicode normalization (the same name may appear in another stage)");
        for (j, step) in steps.iter().enumerate() {
            c.name(step, &format!("/stages/{i}/steps/{j}"), "step");
            c.step(step, &format!("/stages/{i}/steps/{j}"));
        }
        if stage.get("forEach").is_none() {
            for field in FAN_OUT_FIELDS.into_iter().filter(|f| stage.get(f).is_some()) {
                c.push(
                    Code::InvalidValue,
                    &format!("/stages/{i}/{field}"),
                    format!("\"{field}\" is for a fan-out stage"),
                    "add \"forEach\": SET to the stage, or remove this field",
                );
            }
        }
        let between = stage.get("betweenWaves").and_then(Value::as_array);
        for (j, step) in between.into_iter().flatten().enumerate() {
            c.name(step, &format!("/stages/{i}/betweenWaves/{j}"), "step");
            c.step(step, &format!("/stages/{i}/betweenWaves/{j}"));
        }
        if let Some(between) = between {
            let names = between.iter().map(|s| s.get("name").and_then(Value::as_str));
            c.unique_names(
                names,
                |j| format!("/stages/{i}/betweenWaves/{j}/name"),
                "step",
                "step names are unique among the steps between waves",
            );
        }
    }
    c.out
}

struct Checker<'a> {
    root: &'a Value,
    map: &'a SourceMap,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn span(&self, pointer: &str) -> Span {
        self.map.locate(self.root, pointer)
    }

    fn push(&mut self, code: Code, pointer: &str, message: String, help: &str) {
        let d = Diagnostic::new(code, pointer, self.span(pointer), message).with_help(help);
        self.out.push(d);
    }

    /// The `name` of `object` (at `at`) must be something a person can read on one line: not
    /// only whitespace (an empty one is the schema's to report), no control characters.
    fn name(&mut self, object: &Value, at: &str, what: &str) {
        let Some(name) = object.get("name").and_then(Value::as_str) else {
            return;
        };
        let pointer = format!("{at}/name");
        if !name.is_empty() && name.trim().is_empty() {
            self.push(
                Code::InvalidValue,
                &pointer,
                format!("the {what} name is only whitespace"),
                "write a name people can read: it appears in progress, history and notifications",
            );
        } else if let Some(c) = name.chars().find(|&c| crate::text::needs_escape(c)) {
            let message = format!("the {what} name contains the control character U+{:04X}", c as u32);
            self.push(Code::InvalidValue, &pointer, message, "names are shown on one line in progress, history and notifications: remove line breaks, tabs and other control characters");
        }
    }

    /// Reports each name that an earlier item already used; `pointer(i)` names item `i`.
    fn unique<'v>(
        &mut self,
        names: impl Iterator<Item = Option<&'v str>>,
        pointer: impl Fn(usize) -> String,
        what: &str,
        help: &str,
    ) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, name) in names.enumerate() {
            let Some(name) = name else { continue };
            match seen.get(name) {
                Some(&first) => {
                    let message = format!("{what} name \"{name}\" is already used at {}", pointer(first));
                    self.push(Code::DuplicateName, &pointer(i), message, help);
                }
                None => {
                    seen.insert(name, i);
                }
            }
        }
    }

    /// Like [`Checker::unique`] for stage and step names, which must also differ by more than
    /// case or Unicode normalization (`"Deploy"` and `"deploy"`, a composed `"é"` and `"e"` with
    /// a combining accent): people cannot tell such names apart in progress and history.
    fn unique_names<'v>(
        &mut self,
        names: impl Iterator<Item = Option<&'v str>>,
        pointer: impl Fn(usize) -> String,
        what: &str,
        help: &str,
    ) {
        let mut seen: HashMap<Cow<'v, str>, (usize, &'v str)> = HashMap::new();
        for (i, name) in names.enumerate() {
            let Some(name) = name else { continue };
            let key = names::folded(name);
            match seen.get(&key) {
                Some(&(first, first_name)) => {
                    let message = match names::sameness(first_name, name) {
                        Sameness::Identical => format!("{what} name \"{name}\" is already used at {}", pointer(first)),
                        how => format!(
                            "{what} name \"{name}\" differs from \"{first_name}\" at {} only by {}",
                            pointer(first),
                            how.describe()
                        ),
                    };
                    self.push(Code::DuplicateName, &pointer(i), message, help);
                }
                None => {
                    seen.insert(key, (i, name));
                }
            }
        }
    }

    fn step(&mut self, step: &Value, at: &str) {
        self.region(step, at, "region");
        self.role_arn(step, at, "roleArn");
        self.topic_arn(step, at, "topicArn");
        if let Some(subject) = step.get("subject").and_then(Value::as_str)
            && (subject.chars().any(char::is_control) || !subject.is_ascii())
        {
            self.push(
                Code::InvalidValue,
                &format!("{at}/subject"),
                "an email subject must be one line of ASCII text".into(),
                "remove line breaks, tabs and non-ASCII characters (SNS refuses them)",
            );
        }
        use crate::plan::StepType;
        let Some(step_type) = step.get("type").and_then(Value::as_str).and_then(StepType::from_name) else {
            return; // an unknown type is the schema's to report
        };
        // Every type is listed: a new one must say here whether it has rules beyond the schema.
        match step_type {
            StepType::Human => self.approvals(step, at),
            StepType::Wait => {
                let (Some(seconds), Some(timeout)) = (
                    step.get("seconds").and_then(Value::as_u64),
                    step.get("timeoutSeconds").and_then(Value::as_u64),
                ) else {
                    return;
                };
                if timeout <= seconds {
                    self.push(
                        Code::InvalidValue,
                        &format!("{at}/timeoutSeconds"),
                        format!("this Wait of {seconds} s would always time out after {timeout} s"),
                        "remove \"timeoutSeconds\" or make it longer than the wait",
                    );
                }
            }
            StepType::CodeBuild | StepType::CodeBuildNoWait => {
                let Some(vars) = step.get("environmentVariableOverrides").and_then(Value::as_array) else {
                    return;
                };
                let names = vars.iter().map(|v| v.get("name").and_then(Value::as_str));
                self.unique(
                    names,
                    |k| format!("{at}/environmentVariableOverrides/{k}/name"),
                    "environment variable",
                    "each variable is set once per build",
                );
            }
            StepType::CodePipeline | StepType::CodePipelineNoWait => {
                let Some(vars) = step.get("variables").and_then(Value::as_object) else {
                    return;
                };
                for name in vars.keys() {
                    let ok = !name.is_empty()
                        && name.len() <= 128
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || "@-_".contains(c));
                    if !ok {
                        let pointer = crate::source::pointer_push(&format!("{at}/variables"), name);
                        let span = self.map.key(self.root, &pointer).unwrap_or_else(|| self.span(&pointer));
                        let d = Diagnostic::new(
                            Code::InvalidValue,
                            &pointer,
                            span,
                            format!("\"{name}\" is not a valid pipeline variable name"),
                        )
                        .with_help("pipeline variable names use letters, digits, @, - and _ (at most 128)");
                        self.out.push(d);
                    }
                }
            }
            StepType::Notify => {}
        }
    }

    fn approvals(&mut self, step: &Value, at: &str) {
        let approvers: Vec<&str> = step
            .get("approvers")
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect());
        self.unique(
            approvers.iter().map(|a| Some(*a)),
            |k| format!("{at}/approvers/{k}"),
            "approver",
            "list each approver once",
        );
        let Some(required) = step.get("requiredApprovals").and_then(Value::as_u64) else {
            return;
        };
        if !approvers.is_empty() && required > approvers.len() as u64 {
            let listed = match approvers.len() {
                1 => "only 1 approver is listed".to_owned(),
                n => format!("only {n} approvers are listed"),
            };
            let message = format!("{required} approvals are required but {listed}");
            self.push(
                Code::InvalidValue,
                &format!("{at}/requiredApprovals"),
                message,
                "lower \"requiredApprovals\" or add approvers",
            );
        }
    }

    fn region(&mut self, object: &Value, at: &str, field: &str) {
        self.shape(object, at, field, Shape::Region);
    }

    fn role_arn(&mut self, object: &Value, at: &str, field: &str) {
        self.shape(object, at, field, Shape::RoleArn);
    }

    fn topic_arn(&mut self, object: &Value, at: &str, field: &str) {
        self.shape(object, at, field, Shape::TopicArn);
    }

    /// A value with a reference (`${target.region}`) is checked once rendered, for each
    /// target ([`crate::resolve`]).
    fn shape(&mut self, object: &Value, at: &str, field: &str, shape: Shape) {
        let Some(value) = object.get(field).and_then(Value::as_str) else {
            return;
        };
        if crate::resolve::is_template(value) {
            return;
        }
        if let Some((message, help)) = shape.problem(value) {
            self.push(Code::InvalidValue, &format!("{at}/{field}"), message, help);
        }
    }
}

/// The shapes of AWS names the rules check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Region,
    RoleArn,
    TopicArn,
}

impl Shape {
    /// The shape a plan field has: `region`, `roleArn`, `topicArn`, `notificationTopicArn`.
    pub fn of_field(field: &str) -> Option<Shape> {
        match field {
            "region" => Some(Shape::Region),
            "roleArn" => Some(Shape::RoleArn),
            "topicArn" | "notificationTopicArn" => Some(Shape::TopicArn),
            _ => None,
        }
    }

    /// What is wrong with `value` in this shape (a message quoting it, and a help line).
    pub fn problem(self, value: &str) -> Option<(String, &'static str)> {
        match self {
            Shape::Region if !is_region(value) => Some((
                format!("\"{value}\" is not an AWS region name"),
                "regions look like us-east-1, eu-west-2 or ap-southeast-1",
            )),
            Shape::Region => None,
            Shape::RoleArn => check_arn(value, "iam", |resource| {
                resource.strip_prefix("role/").is_some_and(|r| !r.is_empty())
            })
            .err()
            .map(|why| {
                (
                    format!("\"{value}\" is not an IAM role ARN: {why}"),
                    "role ARNs look like arn:aws:iam::123456789012:role/Deployer",
                )
            }),
            Shape::TopicArn => {
                let topic_name = |r: &str| {
                    !r.is_empty()
                        && r.len() <= 256
                        && r.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                };
                check_arn(value, "sns", topic_name).err().map(|why| {
                    (
                        format!("\"{value}\" is not an SNS topic ARN: {why}"),
                        "topic ARNs look like arn:aws:sns:us-east-1:123456789012:releases",
                    )
                })
            }
        }
    }
}

/// What is wrong with an ARN ([`check_arn`]), as the end of "… is not an X ARN: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ArnProblem {
    #[error("an ARN has six parts separated by ':'")]
    Parts,
    #[error("it must start with arn:aws: (or another AWS partition)")]
    Partition,
    #[error("the service is \"{found}\", not \"{wanted}\"")]
    Service { found: String, wanted: String },
    #[error("the region part \"{0}\" is wrong")]
    Region(String),
    #[error("the account \"{0}\" is not 12 digits")]
    Account(String),
    #[error("the resource \"{0}\" is not valid")]
    Resource(String),
}

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, with the region empty for IAM.
fn check_arn(arn: &str, service: &str, resource_ok: impl Fn(&str) -> bool) -> Result<(), ArnProblem> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, svc, region, account, resource] = parts.as_slice() else {
        return Err(ArnProblem::Parts);
    };
    if *prefix != "arn" || !matches!(*partition, "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b") {
        return Err(ArnProblem::Partition);
    }
    if *svc != service {
        return Err(ArnProblem::Service {
            found: svc.to_string(),
            wanted: service.to_string(),
        });
    }
    let region_ok = if service == "iam" {
        region.is_empty()
    } else {
        is_region(region)
    };
    if !region_ok {
        return Err(ArnProblem::Region(region.to_string()));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ArnProblem::Account(account.to_string()));
    }
    if !resource_ok(resource) {
        return Err(ArnProblem::Resource(resource.to_string()));
    }
    Ok(())
}

/// `us-east-1`, `us-gov-west-1`, `ap-southeast-2`, `cn-north-1`, `eu-central-2`…
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts
            .iter()
            .take(parts.len() - 1)
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-2",
            "cn-north-1",
            "eu-central-2",
            "ca-central-1",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "us-east",
            "US-EAST-1",
            "useast1",
            "us-east-1a",
            "",
            "-east-1",
            "u-east-1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn arns() {
        let role = |r: &str| r.strip_prefix("role/").is_some_and(|r| !r.is_empty());
        assert!(check_arn("arn:aws:iam::123456789012:role/Deployer", "iam", role).is_ok());
        assert!(check_arn("arn:aws:iam::123456789012:role/path/Deployer", "iam", role).is_ok());
        assert!(
            check_arn("arn:aws:iam::12345678901:role/x", "iam", role)
                .unwrap_err()
                .to_string()
                .contains("12 digits")
        );
        assert!(
            check_arn("arn:aws:s3:::bucket", "iam", role)
                .unwrap_err()
                .to_string()
                .contains("service")
        );
        assert!(
            check_arn("arn:aws:iam::123456789012:user/bob", "iam", role)
                .unwrap_err()
                .to_string()
                .contains("resource")
        );
    }
}
