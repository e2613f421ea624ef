//! The JSON API: decisions for scripts, chat bots and `steppy approve --server`, and read-only
//! views of executions and approvals. No answer ever carries a token or a token hash.

use super::{Asked, Peer, check_same_origin, clean_comment, decide};
use crate::error::{ApiError, blocking};
use crate::identity;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use steppy_engine::store::{ApprovalState, Attempt};

/// `POST /api/approvals/{token}/decision` body.
#[derive(Debug, Deserialize)]
pub struct DecisionBody {
    decision: String,
    comment: Option<String>,
    approver: Option<String>,
}

/// `POST /api/approvals/{token}/decision`: approve or reject; 200 with the approval.
pub async fn decision(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    Json(body): Json<DecisionBody>,
) -> Result<Response, ApiError> {
    let asked = Asked {
        decision: &body.decision,
        typed_name: body.approver.as_deref(),
        comment: body.comment.as_deref(),
    };
    check_same_origin(&state, peer, &headers, &token, asked).await?;
    let approve = match body.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad-decision",
                "decision must be \"approve\" or \"reject\"",
            ));
        }
    };
    let voter = identity::resolve(&state.config, &headers, body.approver.as_deref())?;
    let comment = clean_comment(body.comment)?;
    let d = decide(
        &state,
        peer,
        &token,
        Attempt {
            approve,
            voter,
            comment,
            source: peer.0.to_string(),
        },
    )
    .await?;
    let outcome = if d.decisive {
        d.approval.state.as_str()
    } else {
        "recorded"
    };
    Ok(Json(json!({ "outcome": outcome, "decisive": d.decisive, "approval": d.approval })).into_response())
}

/// `?state=pending|approved|rejected|cancelled` and `?limit=`.
#[derive(Debug, Deserialize)]
pub struct ApprovalsQuery {
    state: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/approvals`: approvals, newest first, optionally by state.
pub async fn list_approvals(
    State(state): State<AppState>,
    Query(q): Query<ApprovalsQuery>,
) -> Result<Response, ApiError> {
    let filter = match q.state.as_deref() {
        None | Some("all") => None,
        Some("pending") => Some(ApprovalState::Pending),
        Some("approved") => Some(ApprovalState::Approved),
        Some("rejected") => Some(ApprovalState::Rejected),
        Some("cancelled") => Some(ApprovalState::Cancelled),
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad-state",
                format!("unknown state '{other}': use pending, approved, rejected, cancelled or all"),
            ));
        }
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let store = state.store.clone();
    let approvals = blocking(move || store.approval_views(filter, limit)).await?;
    Ok(Json(json!({ "approvals": approvals })).into_response())
}

/// `GET /api/executions`: every execution, newest first.
pub async fn list_executions(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let rows = blocking(move || store.list()).await?;
    Ok(Json(json!({ "executions": rows })).into_response())
}

/// `GET /api/executions/{id}`: one execution, its steps and its plan.
pub async fn get_execution(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let rec = blocking(move || store.load(&id)).await?;
    Ok(Json(json!({ "execution": rec.summary, "steps": rec.steps, "plan": rec.plan })).into_response())
}

/// Any path no route matches.
pub async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no-route",
        "no such endpoint; see schemas/approval-api.openapi.json",
    )
}
