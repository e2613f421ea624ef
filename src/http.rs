//! The HTTP service of `steppy serve` (axum): health and read-only execution views.
//!
//! [`router`] builds everything from one typed [`AppState`]. Later issues mount more routes in
//! [`router`] (the approval API goes in [`approval_routes`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use steppy_engine::store::{Store, StoreError};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/executions", get(list_executions))
        .route("/api/executions/{id}", get(get_execution))
        .merge(approval_routes())
        .with_state(state)
}

/// The approval API (approve/reject links) is mounted here by a later issue.
fn approval_routes() -> Router<AppState> {
    Router::new()
}

async fn healthz() -> &'static str {
    "ok"
}

/// Runs a store call off the async threads and maps its error to a status code.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            let status = match e {
                StoreError::UnknownExecution(_) => StatusCode::NOT_FOUND,
                StoreError::Locked(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Err((status, Json(json!({ "error": e.to_string() }))).into_response())
        }
        Err(e) => Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": e.to_string() })),
        )
            .into_response()),
    }
}

async fn list_executions(State(state): State<AppState>) -> Response {
    match blocking(move || state.store.list()).await {
        Ok(rows) => Json(json!({ "executions": rows })).into_response(),
        Err(r) => r,
    }
}

async fn get_execution(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match blocking(move || state.store.load(&id)).await {
        Ok(rec) => Json(json!({ "execution": rec.summary, "steps": rec.steps, "plan": rec.plan }))
            .into_response(),
        Err(r) => r,
    }
}
