//! SDK errors as clear sentences, sorted by what the caller should do about them.
//!
//! - [`Kind::Throttled`]: slow down and try again (the poller doubles its interval).
//! - [`Kind::Transient`]: a network problem, a timeout or a 5xx: try again later; a step is
//!   never failed by one of these.
//! - [`Kind::Permanent`]: the request itself is wrong (no such project, access denied): trying
//!   again will not help; say so.

use aws_sdk_codebuild::config::http::HttpResponse;
use aws_sdk_codebuild::error::{ProvideErrorMetadata, SdkError};

/// What to do about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Throttled,
    Transient,
    Permanent,
}

/// A failed AWS call: what it was, why, and what to do.
#[derive(Debug, Clone)]
pub struct AwsError {
    pub kind: Kind,
    /// The error code AWS sent, if any (`ThrottlingException`, `ResourceNotFoundException`).
    pub code: Option<String>,
    pub message: String,
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AwsError {}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "AccountLimitExceededException",
];

const TRANSIENT_CODES: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Classifies `err` from the call described by `what` ("StartBuild of project app").
pub fn classify<E>(what: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_string);
    let detail = match (err.message(), &code) {
        (Some(m), _) => format!("{}: {m}", code.as_deref().unwrap_or("error")),
        (None, Some(c)) => c.clone(),
        (None, None) => chain(err),
    };
    let kind = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Kind::Transient,
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            match code.as_deref() {
                Some(c) if THROTTLING_CODES.contains(&c) => Kind::Throttled,
                _ if status == 429 => Kind::Throttled,
                Some(c) if TRANSIENT_CODES.contains(&c) => Kind::Transient,
                _ if status >= 500 => Kind::Transient,
                _ => Kind::Permanent,
            }
        }
        _ => Kind::Permanent,
    };
    AwsError {
        kind,
        code,
        message: format!("{what} failed: {detail}"),
    }
}

/// An error and its sources as one line (`dispatch failure: io error: … Connection refused`),
/// skipping a source whose text the previous level already shows.
fn chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
