//! The two Step Functions calls that redeem a task token, behind the object-safe [`TaskTokens`]
//! (tests count calls and script answers), with [`SfnTaskTokens`] the real client, and how an
//! SDK error is classified: the task will never take the token, or try again later.

use super::BoxFuture;

/// Why a task token could not be redeemed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedeemError {
    /// The task is no longer waiting for this token (Step Functions' `InvalidToken`,
    /// `TaskTimedOut`, `TaskDoesNotExist`): nothing will ever redeem it.
    #[error("the task is no longer waiting: {0}")]
    NoLongerWaiting(String),
    /// Anything else (network, throttling, credentials, a 5xx): worth trying again.
    #[error("Step Functions could not be reached: {0}")]
    Unavailable(String),
}

/// Redeems task tokens: `SendTaskSuccess` and `SendTaskFailure`.
pub trait TaskTokens: Send + Sync {
    /// Completes the task with `output_json` (a JSON document) as its output.
    fn succeed<'a>(&'a self, token: &'a str, output_json: &'a str) -> BoxFuture<'a, Result<(), RedeemError>>;
    /// Fails the task with `error` and `cause`.
    fn fail<'a>(&'a self, token: &'a str, error: &'a str, cause: &'a str) -> BoxFuture<'a, Result<(), RedeemError>>;
}

/// [`TaskTokens`] on AWS Step Functions.
#[derive(Clone, Debug)]
pub struct SfnTaskTokens {
    client: aws_sdk_sfn::Client,
}

/// The error codes that mean the task will never take this token.
const NO_LONGER_WAITING: [&str; 3] = ["InvalidToken", "TaskTimedOut", "TaskDoesNotExist"];

impl SfnTaskTokens {
    pub fn new(client: aws_sdk_sfn::Client) -> SfnTaskTokens {
        SfnTaskTokens { client }
    }

    /// A Step Functions client from the standard AWS configuration (region, credentials):
    /// `state.with_task_tokens(Arc::new(SfnTaskTokens::from_config(&sdk_config)))`.
    pub fn from_config(config: &aws_config::SdkConfig) -> SfnTaskTokens {
        SfnTaskTokens::new(aws_sdk_sfn::Client::new(config))
    }
}

fn classify<E, R>(e: aws_sdk_sfn::error::SdkError<E, R>) -> RedeemError
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let Some(service) = e.as_service_error()
        && let Some(code) = service.code().filter(|c| NO_LONGER_WAITING.contains(c))
    {
        return RedeemError::NoLongerWaiting(format!("{code}: {}", service.message().unwrap_or("no message")));
    }
    RedeemError::Unavailable(aws_sdk_sfn::error::DisplayErrorContext(&e).to_string())
}

impl TaskTokens for SfnTaskTokens {
    fn succeed<'a>(&'a self, token: &'a str, output_json: &'a str) -> BoxFuture<'a, Result<(), RedeemError>> {
        Box::pin(async move {
            self.client
                .send_task_success()
                .task_token(token)
                .output(output_json)
                .send()
                .await
                .map(|_| ())
                .map_err(classify)
        })
    }

    fn fail<'a>(&'a self, token: &'a str, error: &'a str, cause: &'a str) -> BoxFuture<'a, Result<(), RedeemError>> {
        Box::pin(async move {
            self.client
                .send_task_failure()
                .task_token(token)
                .error(error)
                .cause(cause)
                .send()
                .await
                .map(|_| ())
                .map_err(classify)
        })
    }
}
