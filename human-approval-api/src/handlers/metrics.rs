//! `GET /metrics`: the service's metrics in the text format Prometheus scrapes (see
//! [`crate::metrics`]). Reads the store, changes nothing.

use crate::error::{ApiError, blocking};
use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let tallies = blocking(move || store.tallies()).await?;
    let text = state.metrics.render(&tallies).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}
