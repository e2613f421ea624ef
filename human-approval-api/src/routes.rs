//! Every route of the service in one table ([`table`]): the router is built from it and
//! [`route_table`] lists it, so a test can hold `schemas/approval-api.openapi.json` to it.

use crate::config::ApiConfig;
use crate::handlers::{admin, api, pages, sfn};
use crate::state::AppState;
use crate::{redact, security};
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::middleware;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

/// (method, path, handler) for every route.
fn table(config: &ApiConfig) -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    let small = DefaultBodyLimit::max(config.max_decision_body);
    let plan = DefaultBodyLimit::max(config.max_plan_body);
    vec![
        (Method::GET, "/healthz", get(api::healthz)),
        // People, from the links in an approval e-mail.
        (Method::GET, "/approvals/{token}", get(pages::approval_page)),
        (Method::POST, "/approvals/{token}", post(pages::decide_form).layer(small)),
        (Method::GET, "/humanConfirmation", get(pages::legacy_page)),
        (Method::POST, "/humanConfirmation", post(sfn::decide_form).layer(small)),
        (Method::GET, "/assets/approval.css", get(pages::stylesheet)),
        // Scripts and bots.
        (Method::POST, "/api/approvals/{token}/decision", post(api::decision).layer(small)),
        (Method::POST, "/api/task-tokens/decision", post(sfn::decide_json).layer(small)),
        (Method::GET, "/api/approvals", get(api::list_approvals)),
        (Method::GET, "/api/executions", get(api::list_executions)),
        (Method::GET, "/api/executions/{id}", get(api::get_execution)),
        // Admin token.
        (Method::POST, "/api/executions", post(admin::start).layer(plan)),
        (Method::POST, "/api/executions/{id}/abort", post(admin::abort).layer(small)),
    ]
}

/// `(METHOD, path)` of every route, e.g. `("POST", "/approvals/{token}")`.
pub fn route_table() -> Vec<(String, String)> {
    table(&ApiConfig::new("http://localhost")).into_iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect()
}

/// The whole service: every route, the security headers and the redacting access log.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in table(&state.config) {
        router = router.route(path, handler);
    }
    router
        .fallback(api::no_route)
        .layer(middleware::from_fn_with_state(state.clone(), redact::access_log))
        .layer(middleware::from_fn(security::headers))
        .with_state(state)
}
