//! AWS Step Functions calls for the `sfn` engine: deploying a compiled definition (create, or
//! update when it changed), starting an execution under a name chosen in advance, and reading
//! an execution's description and history.
//!
//! Starting is idempotent by name: the caller records the name durably first, then calls
//! [`StepFunctions::start`]; after a crash the same call finds the execution already there
//! (`ExecutionAlreadyExists`) and returns its ARN instead of starting a second release.

use super::errors::{AwsError, Kind, classify};
use aws_config::SdkConfig;
use aws_sdk_sfn::types::{HistoryEvent as SdkEvent, StateMachineType};
use serde_json::Value;
use steppy_engine::asl::replay::HistoryEvent;

/// What [`StepFunctions::deploy`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployAction {
    Created,
    Updated,
    /// The state machine already had this definition (and role).
    Unchanged,
}

impl DeployAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployAction::Created => "created",
            DeployAction::Updated => "updated",
            DeployAction::Unchanged => "unchanged",
        }
    }
}

/// A deployed state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub arn: String,
    pub action: DeployAction,
}

/// An execution as `DescribeExecution` tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionInfo {
    pub arn: String,
    pub name: String,
    pub state_machine_arn: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`…
    pub status: String,
    pub start_ms: i64,
    pub stop_ms: Option<i64>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// Why a Step Functions call failed, as a sentence.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SfnError {
    #[error("state machine '{0}' does not exist; creating it needs --role-arn (the role Step Functions runs it as)")]
    RoleNeeded(String),
    #[error("{message}")]
    Aws { message: String, retryable: bool },
}

impl SfnError {
    fn other(message: String) -> SfnError {
        SfnError::Aws {
            message,
            retryable: false,
        }
    }

    /// A throttled or transient failure: the same call may work later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SfnError::Aws { retryable: true, .. })
    }
}

impl From<AwsError> for SfnError {
    fn from(e: AwsError) -> Self {
        SfnError::Aws {
            retryable: e.kind != Kind::Permanent,
            message: e.message,
        }
    }
}

/// The Step Functions calls Steppy makes.
#[derive(Clone)]
pub struct StepFunctions {
    client: aws_sdk_sfn::Client,
}

/// `true` if `text` is a Step Functions execution ARN (`arn:aws:states:…:execution:…`).
pub fn is_execution_arn(text: &str) -> bool {
    text.starts_with("arn:") && text.split(':').nth(2) == Some("states") && text.split(':').nth(5) == Some("execution")
}

/// The ARN of execution `name` of state machine `state_machine_arn`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// A state machine name from a plan name: letters, digits, `-` and `_`, at most 80 characters.
pub fn machine_name(plan_name: &str) -> String {
    let mut out = String::new();
    for c in plan_name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(80).collect();
    if trimmed.is_empty() {
        "steppy-release".to_string()
    } else {
        trimmed
    }
}

impl StepFunctions {
    pub fn new(config: &SdkConfig) -> StepFunctions {
        StepFunctions {
            client: aws_sdk_sfn::Client::new(config),
        }
    }

    /// Creates state machine `name` with `definition`, or updates it if it exists with another
    /// definition or role. Creating needs `role_arn`.
    pub async fn deploy(&self, name: &str, role_arn: Option<&str>, definition: &Value) -> Result<Deployed, SfnError> {
        let text = serde_json::to_string(definition).map_err(|e| SfnError::other(e.to_string()))?;
        if let Some(arn) = self.find(name).await? {
            let current = self
                .client
                .describe_state_machine()
                .state_machine_arn(&arn)
                .send()
                .await
                .map_err(|e| classify(&format!("DescribeStateMachine of {arn}"), &e))?;
            let same_definition = serde_json::from_str::<Value>(current.definition()).ok().as_ref() == Some(definition);
            let same_role = role_arn.is_none_or(|r| r == current.role_arn());
            if same_definition && same_role {
                return Ok(Deployed {
                    arn,
                    action: DeployAction::Unchanged,
                });
            }
            self.client
                .update_state_machine()
                .state_machine_arn(&arn)
                .definition(&text)
                .set_role_arn(role_arn.map(String::from))
                .send()
                .await
                .map_err(|e| classify(&format!("UpdateStateMachine of {arn}"), &e))?;
            return Ok(Deployed {
                arn,
                action: DeployAction::Updated,
            });
        }
        let role = role_arn.ok_or_else(|| SfnError::RoleNeeded(name.to_string()))?;
        let created = self
            .client
            .create_state_machine()
            .name(name)
            .definition(&text)
            .role_arn(role)
            .r#type(StateMachineType::Standard)
            .send()
            .await
            .map_err(|e| classify(&format!("CreateStateMachine {name}"), &e))?;
        Ok(Deployed {
            arn: created.state_machine_arn().to_string(),
            action: DeployAction::Created,
        })
    }

    /// The ARN of the state machine called `name`, if there is one.
    pub async fn find(&self, name: &str) -> Result<Option<String>, SfnError> {
        let mut pages = self.client.list_state_machines().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListStateMachines", &e))?;
            if let Some(m) = page.state_machines().iter().find(|m| m.name() == name) {
                return Ok(Some(m.state_machine_arn().to_string()));
            }
        }
        Ok(None)
    }

    /// Starts execution `name` of `state_machine_arn` with `input`, or finds it if it was
    /// started already (so that calling this again after a crash starts nothing twice).
    pub async fn start(&self, state_machine_arn: &str, name: &str, input: &str) -> Result<String, SfnError> {
        let sent = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await;
        match sent {
            Ok(out) => Ok(out.execution_arn().to_string()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_already_exists()) => {
                Ok(execution_arn(state_machine_arn, name))
            }
            Err(e) => Err(classify(&format!("StartExecution {name} of {state_machine_arn}"), &e).into()),
        }
    }

    /// `DescribeExecution`.
    pub async fn describe(&self, execution_arn: &str) -> Result<ExecutionInfo, SfnError> {
        let d = self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| classify(&format!("DescribeExecution of {execution_arn}"), &e))?;
        Ok(ExecutionInfo {
            arn: d.execution_arn().to_string(),
            name: d.name().unwrap_or_default().to_string(),
            state_machine_arn: d.state_machine_arn().to_string(),
            status: d.status().as_str().to_string(),
            start_ms: millis(d.start_date()),
            stop_ms: d.stop_date().map(millis),
            error: d.error().map(String::from),
            cause: d.cause().map(String::from),
        })
    }

    /// The definition the execution runs (`DescribeStateMachineForExecution`).
    pub async fn definition_of(&self, execution_arn: &str) -> Result<Value, SfnError> {
        let d = self
            .client
            .describe_state_machine_for_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| classify(&format!("DescribeStateMachineForExecution of {execution_arn}"), &e))?;
        serde_json::from_str(d.definition())
            .map_err(|e| SfnError::other(format!("the definition of {execution_arn} is not JSON: {e}")))
    }

    /// One page of the history, oldest first, from `next_token`; the token of the next page.
    pub async fn history_page(
        &self,
        execution_arn: &str,
        next_token: Option<String>,
    ) -> Result<(Vec<HistoryEvent>, Option<String>), SfnError> {
        let page = self
            .client
            .get_execution_history()
            .execution_arn(execution_arn)
            .set_next_token(next_token)
            .max_results(1000)
            .send()
            .await
            .map_err(|e| classify(&format!("GetExecutionHistory of {execution_arn}"), &e))?;
        Ok((
            page.events().iter().map(event).collect(),
            page.next_token().map(String::from),
        ))
    }

    /// The whole history, oldest first.
    pub async fn history(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, SfnError> {
        let mut all = Vec::new();
        let mut token = None;
        loop {
            let (events, next) = self.history_page(execution_arn, token).await?;
            all.extend(events);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    /// The events after event `after_id`, oldest first: what a follower polls for. Reads newest
    /// first (`reverseOrder`) and stops at the first page reaching `after_id`, so a poll costs
    /// one call however long the history is. Events are sorted and filtered by id, so a service
    /// that ignores `reverseOrder` or paging gives the same answer.
    pub async fn history_since(&self, execution_arn: &str, after_id: i64) -> Result<Vec<HistoryEvent>, SfnError> {
        let mut fresh = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .get_execution_history()
                .execution_arn(execution_arn)
                .reverse_order(true)
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| classify(&format!("GetExecutionHistory of {execution_arn}"), &e))?;
            let reached = page.events().iter().any(|e| e.id() <= after_id);
            fresh.extend(page.events().iter().filter(|e| e.id() > after_id).map(event));
            match page.next_token() {
                Some(t) if !reached => token = Some(t.to_string()),
                _ => break,
            }
        }
        fresh.sort_by_key(|e| e.id);
        fresh.dedup_by_key(|e| e.id);
        Ok(fresh)
    }
}

fn millis(t: &aws_smithy_types::DateTime) -> i64 {
    t.to_millis().unwrap_or(0)
}

/// An SDK history event, reduced to what [`steppy_engine::asl::replay`] reads.
fn event(e: &SdkEvent) -> HistoryEvent {
    let mut out = HistoryEvent {
        id: e.id(),
        previous: e.previous_event_id(),
        kind: e.r#type().as_str().to_string(),
        at_ms: millis(e.timestamp()),
        ..HistoryEvent::default()
    };
    if let Some(d) = e.state_entered_event_details() {
        out.state = Some(d.name().to_string());
        out.data = d.input().map(String::from);
    } else if let Some(d) = e.state_exited_event_details() {
        out.state = Some(d.name().to_string());
        out.data = d.output().map(String::from);
    } else if let Some(d) = e.task_scheduled_event_details() {
        out.data = Some(d.parameters().to_string());
    } else if let Some(d) = e.task_succeeded_event_details() {
        out.data = d.output().map(String::from);
    } else if let Some(d) = e.task_failed_event_details() {
        (out.error, out.cause) = (d.error().map(String::from), d.cause().map(String::from));
    } else if let Some(d) = e.task_timed_out_event_details() {
        (out.error, out.cause) = (d.error().map(String::from), d.cause().map(String::from));
    } else if let Some(d) = e.execution_failed_event_details() {
        (out.error, out.cause) = (d.error().map(String::from), d.cause().map(String::from));
    } else if let Some(d) = e.execution_aborted_event_details() {
        (out.error, out.cause) = (d.error().map(String::from), d.cause().map(String::from));
    } else if let Some(d) = e.execution_timed_out_event_details() {
        (out.error, out.cause) = (d.error().map(String::from), d.cause().map(String::from));
    } else if let Some(d) = e.execution_started_event_details() {
        out.data = d.input().map(String::from);
    } else if let Some(d) = e.execution_succeeded_event_details() {
        out.data = d.output().map(String::from);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_arns_are_recognised_and_built() {
        let sm = "arn:aws:states:us-east-1:123456789012:stateMachine:release";
        let ex = execution_arn(sm, "run-1");
        assert_eq!(ex, "arn:aws:states:us-east-1:123456789012:execution:release:run-1");
        assert!(is_execution_arn(&ex));
        assert!(!is_execution_arn(sm));
        assert!(!is_execution_arn("0192f0c3-7d7e-7000-8000-000000000000"));
    }

    #[test]
    fn plan_names_become_valid_state_machine_names() {
        assert_eq!(
            machine_name("Quickstart: the whole flow, no AWS account needed"),
            "Quickstart-the-whole-flow-no-AWS-account-needed"
        );
        assert_eq!(machine_name("???"), "steppy-release");
        assert_eq!(machine_name(&"x".repeat(200)).len(), 80);
        assert_eq!(machine_name("été"), "t");
    }
}
