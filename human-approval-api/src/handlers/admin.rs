//! Starting and aborting executions over HTTP. Both need `Authorization: Bearer <admin token>`;
//! with no admin token configured they answer 403, and an address that presented too many
//! wrong tokens is answered 429 for the rest of the window.

use super::Peer;
use crate::error::{ApiError, blocking};
use crate::state::AppState;
use crate::{identity, security};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use steppy_engine::clock::system_now_ms;
use steppy_engine::executor::RunningWork;

/// `POST /api/executions`: validates the plan in the body and records an execution of it
/// (`steppy serve` runs it). 201 with its id.
pub async fn start(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    security::require_admin(&state.config, &state.admin_guesses, peer.0, &headers)?;
    let plan = steppy_engine::validate::validate_bytes("the request body", &body, None).map_err(|report| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-plan",
            format!("the plan is not valid: {report}"),
        )
    })?;
    let started_by = identity::from_header(&state.config, &headers).unwrap_or_else(|| "admin-token".into());
    let store = state.store.clone();
    let id = blocking(move || {
        store.submit(
            &plan,
            system_now_ms(),
            steppy_engine::store::SubmitOptions {
                started_by: Some(&started_by),
                ..Default::default()
            },
        )
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "state": "PENDING" }))).into_response())
}

/// `POST /api/executions/{id}/abort` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortBody {
    #[serde(default)]
    stop_running: bool,
}

/// `POST /api/executions/{id}/abort`: asks the engine to abort; 202 with the state it was in.
pub async fn abort(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    security::require_admin(&state.config, &state.admin_guesses, peer.0, &headers)?;
    let options: AbortBody = if body.iter().all(u8::is_ascii_whitespace) {
        AbortBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad-body",
                format!("the body is not valid JSON: {e}"),
            )
        })?
    };
    let store = state.store.clone();
    let was = blocking(move || {
        store.request_abort(
            &id,
            RunningWork::from_stop_running(options.stop_running),
            system_now_ms(),
        )
    })
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "abortRequested": true, "state": was })),
    )
        .into_response())
}
