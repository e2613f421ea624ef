//! Every route of the service in one table ([`table`]): the router is built from it and
//! [`route_table`] lists it, so a test can hold `schemas/approval-api.openapi.json` to it.

use crate::body_limit::limited;
use crate::config::ApiConfig;
use crate::handlers::{admin, api, health, metrics, pages, sfn};
use crate::state::AppState;
use crate::{request_log, security};
use axum::Router;
use axum::http::Method;
use axum::middleware;
use axum::routing::{MethodRouter, get, post};

/// (method, path, handler) for every route.
fn table(config: &ApiConfig) -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    let small = |route| limited(route, config.max_decision_body);
    let plan = |route| limited(route, config.max_plan_body);
    vec![
        (Method::GET, "/healthz", get(health::healthz)),
        (Method::GET, "/readyz", get(health::readyz)),
        (Method::GET, "/metrics", get(metrics::metrics)),
        // People, from the links in an approval e-mail.
        (Method::GET, "/approvals/{token}", get(pages::approval_page)),
        (Method::POST, "/approvals/{token}", small(post(pages::decide_form))),
        (Method::GET, "/humanConfirmation", get(pages::legacy_page)),
        (Method::POST, "/humanConfirmation", small(post(sfn::decide_form))),
        (Method::GET, "/assets/approval.css", get(pages::stylesheet)),
        // Scripts and bots.
        (
            Method::POST,
            "/api/approvals/{token}/decision",
            small(post(api::decision)),
        ),
        (Method::POST, "/api/task-tokens/decision", small(post(sfn::decide_json))),
        (Method::GET, "/api/approvals", get(api::list_approvals)),
        (Method::GET, "/api/executions", get(api::list_executions)),
        (Method::GET, "/api/executions/{id}", get(api::get_execution)),
        // Admin token.
        (Method::POST, "/api/executions", plan(post(admin::start))),
        (Method::POST, "/api/executions/{id}/abort", small(post(admin::abort))),
    ]
}

/// `(METHOD, path)` of every route, e.g. `("POST", "/approvals/{token}")`.
pub fn route_table() -> Vec<(String, String)> {
    table(&ApiConfig::new("http://localhost"))
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect()
}

/// The whole service: every route, the request counter of `/metrics`, the security headers,
/// request ids and the redacting access log (innermost first: the trace layer sees the matched route and the request id).
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in table(&state.config) {
        router = router.route(path, handler);
    }
    router
        .fallback(api::no_route)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::http::count,
        ))
        .layer(request_log::access_log(&state.config))
        .layer(middleware::from_fn(request_log::assign))
        .layer(middleware::from_fn(security::headers))
        .with_state(state)
}
