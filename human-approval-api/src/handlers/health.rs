//! Probes for supervisors and load balancers: `GET /healthz` (the process answers HTTP) and
//! `GET /readyz` (the engine runs and its database works; see [`crate::readiness`]).

use crate::readiness;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use steppy_engine::clock::system_now_ms;

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 with the readiness when ready, 503 with it otherwise.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let readiness = match &state.health {
        Some(health) => health.readiness(system_now_ms()),
        None => readiness::without_engine(&state.store_probe.check(&state.store).await),
    };
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}
