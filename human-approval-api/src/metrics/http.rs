//! Middleware counting each answered request in `steppy_http_requests_total`, labelled with
//! the matched route's template (never the raw path, where tokens travel), the method (one
//! of the standard ones, or `OTHER`) and the status.

use super::RequestLabels;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Counts the request once it is answered.
pub async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |m| m.as_str().to_string());
    let method = method_label(req.method());
    let response = next.run(req).await;
    state.metrics.request(&RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    });
    response
}

/// The method as a label: a fixed set, so a client cannot mint series.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
