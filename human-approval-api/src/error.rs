//! [`ApiError`]: every way a request can fail, as a status code and a sentence. JSON routes
//! answer `{"error", "code", "approval"?, "requestId"?}`; page routes render the same as HTML.
//! An internal error never shows its detail to the client: it answers the code `internal` and
//! the request id (also in the `x-request-id` header), and the detail goes to the log, in an
//! `error` event with the same request id.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use steppy_engine::store::{ApprovalView, DecideError, Refusal, StoreError};

/// A failed request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Short machine-readable code, e.g. `already-decided`.
    pub code: &'static str,
    /// The sentence shown to people.
    pub message: String,
    /// The approval as it stands, for refusals on a known token.
    pub approval: Option<Box<ApprovalView>>,
    /// Seconds to wait (429).
    pub retry_after: Option<u64>,
    /// The request's id, shown with internal errors (the log has their detail under it).
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            approval: None,
            retry_after: None,
            request_id: None,
        }
    }

    pub fn unknown_token() -> ApiError {
        Self::from_refusal(Refusal::UnknownToken, None)
    }

    pub fn rate_limited(retry_after: u64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-guesses",
            "too many requests with unknown approval tokens from your address; try again later",
        );
        e.retry_after = Some(retry_after);
        e
    }

    pub fn too_many_admin_guesses(retry_after: u64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-admin-guesses",
            "too many wrong admin tokens from your address; try again later",
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// A failure of the service itself: `what` is logged (an `error` event, target
    /// `steppy::error`, with the request id of the request being handled) and never answered.
    pub fn internal(what: impl std::fmt::Display) -> ApiError {
        let request_id = crate::request_log::current();
        let detail = what.to_string();
        tracing::error!(
            target: "steppy::error",
            request_id = request_id.as_deref().unwrap_or("-"),
            detail = %steppy_engine::text::printable(&detail),
            "internal error"
        );
        let message = match &request_id {
            Some(id) => format!("the service failed; its log has the details under request id {id}"),
            None => "the service failed; its log has the details".to_string(),
        };
        let mut e = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message);
        e.request_id = request_id;
        e
    }

    /// The status code of each refusal.
    pub fn from_refusal(refusal: Refusal, approval: Option<Box<ApprovalView>>) -> ApiError {
        let status = match refusal {
            Refusal::UnknownToken | Refusal::NoApproval { .. } => StatusCode::NOT_FOUND,
            Refusal::Expired | Refusal::Cancelled => StatusCode::GONE,
            Refusal::AlreadyDecided { .. }
            | Refusal::AlreadyVoted { .. }
            | Refusal::ExecutionEnded { .. }
            | Refusal::LeaseLost { .. } => StatusCode::CONFLICT,
            Refusal::NotAnApprover { .. } | Refusal::SelfApproval { .. } | Refusal::CrossSite => StatusCode::FORBIDDEN,
        };
        ApiError {
            status,
            code: refusal.code(),
            message: refusal.to_string(),
            approval,
            retry_after: None,
            request_id: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::UnknownExecution(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown-execution", e.to_string()),
            StoreError::Refused(Refusal::UnknownToken) => ApiError::unknown_token(),
            StoreError::Refused(Refusal::LeaseLost { .. }) => ApiError::internal(e),
            StoreError::Locked(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
            StoreError::Illegal(_) | StoreError::Refused(_) => {
                ApiError::new(StatusCode::CONFLICT, "refused", e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<DecideError> for ApiError {
    fn from(e: DecideError) -> ApiError {
        match e {
            DecideError::Refused(r, view) => ApiError::from_refusal(r, view),
            DecideError::Store(s) => s.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message, "code": self.code });
        if let Some(a) = &self.approval {
            body["approval"] = json!(a);
        }
        if let Some(id) = &self.request_id {
            body["requestId"] = json!(id);
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// Runs a blocking store call off the async threads.
pub async fn blocking<T: Send + 'static, E: Into<ApiError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(ApiError::internal(e)),
    }
}
