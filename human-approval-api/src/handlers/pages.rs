//! The pages people reach from approval e-mails. `GET` only shows (mail scanners fetch every
//! link); the form's `POST` decides and redirects back to the page (post/redirect/get).

use super::{Asked, Peer, check_same_origin, clean_comment, decide, lookup};
use crate::error::ApiError;
use crate::identity;
use crate::page::{self, PageContext};
use crate::state::AppState;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use steppy_engine::clock::system_now_ms;
use steppy_engine::store::Attempt;

/// `?action=approve|reject` on an e-mail link: only preselects a button.
#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    action: Option<String>,
}

/// The original Steppy's link: `/humanConfirmation?taskToken=...&action=...`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyQuery {
    task_token: Option<String>,
    action: Option<String>,
}

/// The decision form.
#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    decision: String,
    comment: Option<String>,
    approver: Option<String>,
}

/// An [`ApiError`] shown as an HTML page.
pub struct PageError {
    error: ApiError,
    root: &'static str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.error;
        let title = match e.status {
            StatusCode::NOT_FOUND => "Link not valid",
            StatusCode::GONE => "Approval closed",
            StatusCode::CONFLICT => "Already decided",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            StatusCode::FORBIDDEN => "Not allowed",
            _ => "Something went wrong",
        };
        let body = page::notice(self.root, title, &e.message, e.approval.as_deref(), system_now_ms());
        let mut response = (e.status, Html(body.into_string())).into_response();
        if let Some(secs) = e.retry_after
            && let Ok(v) = secs.to_string().parse()
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

fn preselect(action: Option<&str>) -> Option<bool> {
    match action {
        Some(a) if a.eq_ignore_ascii_case("approve") => Some(true),
        Some(a) if a.eq_ignore_ascii_case("reject") => Some(false),
        _ => None,
    }
}

async fn show(
    state: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    token: &str,
    action: Option<&str>,
    root: &'static str,
) -> Result<Response, PageError> {
    let view = lookup(state, peer, token)
        .await
        .map_err(|error| PageError { error, root })?;
    let signed_in = state
        .config
        .identity_header
        .as_ref()
        .map(|_| identity::from_header(&state.config, headers));
    let ctx = PageContext {
        root,
        token,
        preselect: preselect(action),
        signed_in,
        now_ms: system_now_ms(),
    };
    Ok(Html(page::approval(&view, &ctx).into_string()).into_response())
}

/// `GET /approvals/{token}`: the approval page. Never changes anything.
pub async fn approval_page(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(q): Query<LinkQuery>,
) -> Result<Response, PageError> {
    show(&state, peer, &headers, &token, q.action.as_deref(), "../").await
}

/// `GET /humanConfirmation?taskToken=...&action=...`: the original link shape. A Steppy token
/// shows the same page as `/approvals/{token}`; anything else is an AWS Step Functions task
/// token ([`super::sfn::page`]). Never decides.
pub async fn legacy_page(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Query(q): Query<LegacyQuery>,
) -> Result<Response, PageError> {
    let token = q.task_token.unwrap_or_default();
    if !token.is_empty() && !crate::task_tokens::is_steppy_token(&token) {
        return Ok(super::sfn::page(&state, peer, &headers, &token, preselect(q.action.as_deref())).await);
    }
    show(&state, peer, &headers, &token, q.action.as_deref(), "").await
}

/// `POST /approvals/{token}`: the decision form. 303 back to the page when accepted.
pub async fn decide_form(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, PageError> {
    let root = "../";
    let fail = |error| PageError { error, root };
    let asked = Asked {
        decision: &form.decision,
        typed_name: form.approver.as_deref(),
        comment: form.comment.as_deref(),
    };
    check_same_origin(&state, peer, &headers, &token, asked)
        .await
        .map_err(fail)?;
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return Err(fail(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad-decision",
                "the decision must be approve or reject",
            )));
        }
    };
    let voter = identity::resolve(&state.config, &headers, form.approver.as_deref()).map_err(fail)?;
    let comment = clean_comment(form.comment).map_err(fail)?;
    let attempt = Attempt {
        approve,
        voter,
        comment,
        source: peer.0.to_string(),
    };
    decide(&state, peer, &token, attempt).await.map_err(fail)?;
    Ok(Redirect::to(&token).into_response())
}

/// `GET /assets/approval.css`.
pub async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], page::STYLESHEET).into_response()
}
