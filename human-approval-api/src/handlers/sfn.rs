//! Approvals on AWS Step Functions: the `/humanConfirmation` links of state machines compiled by
//! `steppy compile` (or deployed by the original Steppy) carry a task token instead of a Steppy
//! token. `GET /humanConfirmation` shows a page and never redeems; `POST /humanConfirmation`
//! (the page's form) and `POST /api/task-tokens/decision` (scripts) decide through
//! [`task_tokens::redeem`]. Thin: parse, check, call, render.

use super::Peer;
use crate::error::{ApiError, blocking};
use crate::page::{self, TaskTokenPage};
use crate::state::AppState;
use crate::task_tokens::{self, Redeemed};
use crate::{identity, security, time};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use steppy_engine::clock::system_now_ms;
use steppy_engine::store::{Attempt, TaskTokenDecision, TaskTokenState};

/// Seconds a client is told to wait after a 503.
const RETRY_AFTER_SECS: u64 = 30;

/// A decision on a task token: the page's form (`POST /humanConfirmation`) and the JSON body
/// of `POST /api/task-tokens/decision` carry the same fields.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskTokenDecisionInput {
    #[serde(default)]
    task_token: String,
    #[serde(default)]
    decision: String,
    comment: Option<String>,
    approver: Option<String>,
}

// Never printed, but if it were, the token would not be.
impl std::fmt::Debug for TaskTokenDecisionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskTokenDecisionInput")
            .field("task_token", &"[redacted]")
            .field("decision", &self.decision)
            .finish_non_exhaustive()
    }
}

/// An error as a task-token page.
fn error_page(e: ApiError) -> Response {
    let title = match e.status {
        StatusCode::NOT_FOUND => "Link not valid",
        StatusCode::BAD_REQUEST => "Link or form not valid",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        StatusCode::FORBIDDEN => "Not allowed",
        _ => "Something went wrong",
    };
    let mut response = (
        e.status,
        Html(page::task_token_notice(title, &e.message, None).into_string()),
    )
        .into_response();
    retry_after(&mut response, e.retry_after);
    response
}

fn retry_after(response: &mut Response, secs: Option<u64>) {
    if let Some(v) = secs.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

/// `GET /humanConfirmation?taskToken=T&action=…` for a task token (the caller routes Steppy's
/// own tokens elsewhere): the page. Only reads.
pub async fn page(
    state: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    raw_token: &str,
    preselect: Option<bool>,
) -> Response {
    match show(state, peer, headers, raw_token, preselect).await {
        Ok(r) => r,
        Err(e) => error_page(e),
    }
}

async fn show(
    state: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    raw_token: &str,
    preselect: Option<bool>,
) -> Result<Response, ApiError> {
    state.guesses.check(peer.0).map_err(ApiError::rate_limited)?;
    if state.task_tokens.is_none() {
        state.guesses.record_miss(peer.0);
        return Err(task_tokens::disabled());
    }
    let token = task_tokens::normalize_token(raw_token).map_err(|p| p.to_error())?;
    let (store, hash) = (state.store.clone(), task_tokens::token_hash(&token));
    let decision = blocking(move || store.task_token_decision(&hash, system_now_ms())).await?;
    let signed_in = state
        .config
        .identity_header
        .as_ref()
        .map(|_| identity::from_header(&state.config, headers));
    let p = TaskTokenPage {
        token: &token,
        preselect,
        signed_in,
        decision: decision.as_ref(),
    };
    Ok(Html(page::task_token(&p).into_string()).into_response())
}

/// What every decision request is checked for before it may claim: a configured redeemer, the
/// guess limit, a well-formed token, then same origin, the decision, an identity and a comment.
/// Refusals on a well-formed token are audited (cross-site ones too).
async fn prepare(
    state: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    raw_token: &str,
    decision: &str,
    approver: Option<&str>,
    comment: Option<String>,
) -> Result<(String, Attempt), ApiError> {
    if state.task_tokens.is_none() {
        return Err(task_tokens::disabled());
    }
    state.guesses.check(peer.0).map_err(ApiError::rate_limited)?;
    let token = task_tokens::normalize_token(raw_token).map_err(|p| p.to_error())?;
    if task_tokens::is_steppy_token(&token) {
        // Never hand one of Steppy's own tokens to AWS: it is decided on its own page.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "steppy-token",
            "this is a Steppy approval token, not a Step Functions task token: decide on its page, /approvals/{token}",
        ));
    }
    let approve = match decision {
        "approve" => Some(true),
        "reject" => Some(false),
        _ => None,
    };
    let typed = approver.map(str::trim).filter(|a| !a.is_empty());
    // A request from another site is refused first, and audited like the other refusals.
    let checked = security::same_origin(&state.config, headers).and_then(|()| match approve {
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-decision",
            "decision must be \"approve\" or \"reject\"",
        )),
        Some(approve) => identity::resolve(&state.config, headers, approver)
            .and_then(|voter| super::clean_comment(comment.clone()).map(|comment| (approve, voter, comment))),
    });
    match checked {
        Ok((approve, voter, comment)) => Ok((
            token,
            Attempt {
                approve,
                voter,
                comment,
                source: peer.0.to_string(),
            },
        )),
        Err(e) => {
            // Any token can be written into a request, and each refusal writes an audit row:
            // refusals count against the address like unknown-token guesses.
            state.guesses.record_miss(peer.0);
            let (store, hash, code, reason) = (
                state.store.clone(),
                task_tokens::token_hash(&token),
                e.code,
                e.message.clone(),
            );
            let typed = typed.map(|t| task_tokens::truncate_utf16(t, 200).to_string());
            let comment = comment.map(|c| task_tokens::truncate_utf16(&c, 2000).to_string());
            let source = peer.0.to_string();
            blocking(move || {
                store.task_token_refused(
                    &hash,
                    code,
                    approve,
                    typed.as_deref(),
                    comment.as_deref(),
                    &source,
                    &reason,
                    system_now_ms(),
                )
            })
            .await?;
            Err(e)
        }
    }
}

/// The sentence and status of each outcome, and counting a closed token against the limiter.
fn outcome(state: &AppState, peer: Peer, r: &Redeemed) -> (StatusCode, &'static str, String) {
    match r {
        Redeemed::Sent(d) => (
            StatusCode::OK,
            if d.approve { "approved" } else { "rejected" },
            format!(
                "{} by {}; Step Functions has it and the execution moves on.",
                if d.approve { "Approved" } else { "Rejected" },
                d.approver
            ),
        ),
        Redeemed::Conflict(d) if d.in_flight => (
            StatusCode::CONFLICT,
            "already-decided",
            format!(
                "{} by {} is being sent to Step Functions right now; a decision is final.",
                if d.approve { "Approved" } else { "Rejected" },
                d.approver
            ),
        ),
        Redeemed::Conflict(d) => (
            StatusCode::CONFLICT,
            "already-decided",
            format!(
                "This approval was already {} by {}; a decision is final.",
                if d.approve { "approved" } else { "rejected" },
                d.approver
            ),
        ),
        Redeemed::Closed(_) => {
            // A token Step Functions does not know counts like an unknown Steppy token.
            state.guesses.record_miss(peer.0);
            (StatusCode::GONE, "no-longer-waiting",
                "Step Functions says this approval is no longer waiting (it timed out, its execution ended, or the link is not valid): nothing was decided.".to_string())
        }
        Redeemed::Unavailable(d) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not-delivered",
            format!(
                "Your decision ({} by {}) is recorded, but Step Functions could not be reached. It will be sent again automatically while this service runs; you can also open the link later and send it again.",
                if d.approve { "approve" } else { "reject" },
                d.approver
            ),
        ),
    }
}

fn decision_of(r: &Redeemed) -> &TaskTokenDecision {
    match r {
        Redeemed::Sent(d) | Redeemed::Conflict(d) | Redeemed::Closed(d) | Redeemed::Unavailable(d) => d,
    }
}

/// The JSON view of a recorded decision (no token, no hash, no address).
pub fn decision_json(d: &TaskTokenDecision) -> Value {
    let mut v = json!({
        "decision": if d.approve { "approved" } else { "rejected" },
        "approver": d.approver,
        "comment": d.comment,
        "decidedAt": time::rfc3339(d.decided_ms),
        "delivery": match d.state {
            TaskTokenState::Sending if d.in_flight => "sending",
            TaskTokenState::Sending => "pending",
            TaskTokenState::Sent => "sent",
            TaskTokenState::Closed => "closed",
        },
        "attempts": d.attempts,
    });
    if let (Some(e), Some(o)) = (&d.last_error, v.as_object_mut()) {
        o.insert("lastError".into(), json!(e));
    }
    v
}

/// `%`-encodes everything but unreserved characters (for the redirect back to the page).
fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `POST /humanConfirmation`: the page's form. 303 back to the page when Step Functions took
/// the decision; otherwise a page saying why (409, 410, 503).
pub async fn decide_form(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<TaskTokenDecisionInput>,
) -> Response {
    let prepared = prepare(
        &state,
        peer,
        &headers,
        &form.task_token,
        &form.decision,
        form.approver.as_deref(),
        form.comment,
    )
    .await;
    let (token, attempt) = match prepared {
        Ok(p) => p,
        Err(e) => return error_page(e),
    };
    let redeemed = match redeem(&state, &token, attempt).await {
        Ok(r) => r,
        Err(e) => return error_page(e),
    };
    let (status, _, sentence) = outcome(&state, peer, &redeemed);
    if let Redeemed::Sent(_) = redeemed {
        return Redirect::to(&format!("humanConfirmation?taskToken={}", encode_query_value(&token))).into_response();
    }
    let title = match status {
        StatusCode::CONFLICT => "Already decided",
        StatusCode::GONE => "Approval closed",
        _ => "Decision recorded, not delivered yet",
    };
    let mut response = (
        status,
        Html(page::task_token_notice(title, &sentence, Some(decision_of(&redeemed))).into_string()),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        retry_after(&mut response, Some(RETRY_AFTER_SECS));
    }
    response
}

/// `POST /api/task-tokens/decision`: the same decision for scripts, in JSON.
pub async fn decide_json(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Json(body): Json<TaskTokenDecisionInput>,
) -> Result<Response, ApiError> {
    let (token, attempt) = prepare(
        &state,
        peer,
        &headers,
        &body.task_token,
        &body.decision,
        body.approver.as_deref(),
        body.comment,
    )
    .await?;
    let redeemed = redeem(&state, &token, attempt).await?;
    let (status, code, sentence) = outcome(&state, peer, &redeemed);
    let decision = decision_json(decision_of(&redeemed));
    let body = if status == StatusCode::OK {
        json!({ "outcome": code, "decision": decision })
    } else {
        json!({ "error": sentence, "code": code, "decision": decision })
    };
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        retry_after(&mut response, Some(RETRY_AFTER_SECS));
    }
    Ok(response)
}

/// Redeems `token` with the state's [`task_tokens::Redeemer`], if this service has one.
async fn redeem(state: &AppState, token: &str, attempt: Attempt) -> Result<Redeemed, ApiError> {
    let redeemer = state.task_tokens.as_ref().ok_or_else(task_tokens::disabled)?;
    redeemer.redeem(token, attempt).await
}

#[cfg(test)]
mod tests {
    use super::encode_query_value;

    #[test]
    fn redirect_values_are_encoded() {
        assert_eq!(encode_query_value("AA+b/c=="), "AA%2Bb%2Fc%3D%3D");
        assert_eq!(encode_query_value("0f1e-x_y.z~"), "0f1e-x_y.z~");
    }
}
