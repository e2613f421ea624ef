//! Request ids and the access log of the service.
//!
//! [`assign`] gives every request an id (a UUID v7, made here: an `x-request-id` the client
//! sent is replaced, so the log only ever holds ids this service made), available to the
//! handlers through [`current`] and returned in the `x-request-id` response header.
//! [`access_log`] is `tower-http`'s [`TraceLayer`]: each request runs in an `info` span
//! `request` (target `steppy::access`) holding its method, its target as
//! [`shown_target`] shows it (the route template, or the path with every possible token
//! redacted; the query redacted) and its id, and, with the access log on, one `info` event per
//! request adds the status and the latency. The raw path never reaches the log.

use crate::config::ApiConfig;
use crate::redact::shown_target;
use axum::extract::{MatchedPath, Request};
use axum::http::{self, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Duration;
use steppy_engine::text::printable;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;

/// The request and response header holding the request id.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task (none outside a request).
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Middleware: a fresh request id for the request (header and task-local) and its response.
pub async fn assign(mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::now_v7().to_string();
    let value = HeaderValue::from_str(&id).ok();
    match &value {
        Some(v) => req.headers_mut().insert(HEADER, v.clone()),
        None => req.headers_mut().remove(HEADER),
    };
    let mut response = REQUEST_ID.scope(id, next.run(req)).await;
    if let Some(v) = value {
        response.headers_mut().insert(HEADER, v);
    }
    response
}

/// The span of one request: method, redacted target, request id.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &http::Request<B>) -> Span {
        let matched = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
        let route = shown_target(matched, req.uri().path(), req.uri().query());
        let id = req.headers().get(HEADER).and_then(|v| v.to_str().ok()).unwrap_or("-");
        tracing::info_span!(
            target: "steppy::access",
            "request",
            method = %printable(req.method().as_str()),
            route = %route,
            request_id = %printable(id),
        )
    }
}

/// Whether each answered request gets its access line (`--access-log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLine {
    /// One `info` event per request, with its status and latency, in the request's span.
    Logged,
    /// No line (the span still carries the request id for the handlers' own events).
    Off,
}

impl<B> OnResponse<B> for AccessLine {
    fn on_response(self, response: &http::Response<B>, latency: Duration, _: &Span) {
        if self == AccessLine::Logged {
            tracing::info!(
                target: "steppy::access",
                status = response.status().as_u16(),
                latency_ms = (latency.as_secs_f64() * 10_000.0).round() / 10.0,
                "request"
            );
        }
    }
}

/// The access log as a layer.
pub type AccessLog = TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), AccessLine, (), (), ()>;

/// `tower-http`'s trace layer with Steppy's span and line (nothing logged when a request
/// starts or fails: one line per request, at its end; errors log themselves, see
/// [`crate::error::ApiError::internal`]).
pub fn access_log(config: &ApiConfig) -> AccessLog {
    let line = if config.access_log {
        AccessLine::Logged
    } else {
        AccessLine::Off
    };
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(line)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}
