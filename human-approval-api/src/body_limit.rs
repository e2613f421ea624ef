//! Body limits per route. [`DefaultBodyLimit`] stops a body that grows past the limit while it
//! is read, but a request that announces a larger `Content-Length` and then sends nothing would
//! keep its handler waiting; [`announced_length`] answers such a request 413 at once, from its
//! head, and closes the connection instead of reading the body.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

/// `route` with bodies limited to `max` bytes, by what the head announces and by what arrives.
pub fn limited(route: MethodRouter<AppState>, max: usize) -> MethodRouter<AppState> {
    route
        .layer(DefaultBodyLimit::max(max))
        .layer(middleware::from_fn_with_state(max, announced_length))
}

/// Middleware: 413 for a `Content-Length` above `max` (or one that is not a number).
pub async fn announced_length(State(max): State<usize>, req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()));
    match announced {
        Some(Some(n)) if n <= max as u64 => next.run(req).await,
        None => next.run(req).await,
        Some(_) => {
            let mut response = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                format!("the request body must be at most {max} bytes"),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}
