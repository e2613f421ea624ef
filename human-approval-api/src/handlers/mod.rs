//! Thin handlers over [`AppState`](crate::AppState), one module per audience:
//! [`pages`] (people following e-mail links), [`api`] (scripts and bots, read-only views),
//! [`admin`] (starting and aborting executions with the admin token), [`sfn`] (approvals on
//! AWS Step Functions: task tokens in `/humanConfirmation` links), [`health`] (liveness and
//! readiness probes), [`metrics`] (`GET /metrics` for Prometheus).
//!
//! What they share lives here: the caller's address ([`Peer`]), turning a token from a URL
//! into the hash the store knows, under the guess limiter ([`token_hash`]), and the decision
//! path itself ([`decide`], or [`refuse_cross_site`] for a request from another site).

pub mod admin;
pub mod api;
pub mod health;
pub mod metrics;
pub mod pages;
pub mod sfn;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;
use steppy_engine::store::{ApprovalView, Attempt, Decided, Refusal, Verdict};

/// The address of the caller (unspecified if the server was started without connect info).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(Peer(ip))
    }
}

/// The stored hash of `token`, after the guess limiter let `peer` in. A malformed token counts
/// as a miss and is answered like an unknown one.
pub fn token_hash(state: &AppState, peer: Peer, token: &str) -> Result<String, ApiError> {
    state.guesses.check(peer.0).map_err(ApiError::rate_limited)?;
    if !steppy_executors::human::looks_like_token(token) {
        state.guesses.record_miss(peer.0);
        return Err(ApiError::unknown_token());
    }
    Ok(steppy_executors::human::token_hash(token))
}

/// Counts a 404 for an unknown token against `peer`.
fn note_miss(state: &AppState, peer: Peer, e: &ApiError) {
    if e.code == "unknown-token" {
        state.guesses.record_miss(peer.0);
    }
}

/// The approval behind `token` (404 if none).
pub async fn lookup(state: &AppState, peer: Peer, token: &str) -> Result<ApprovalView, ApiError> {
    let hash = token_hash(state, peer, token)?;
    let store = state.store.clone();
    let found = crate::error::blocking(move || store.approval_by_token(&hash)).await?;
    found.ok_or_else(|| {
        let e = ApiError::unknown_token();
        note_miss(state, peer, &e);
        e
    })
}

/// Casts `attempt` with `token`: the one place a decision is made over HTTP.
pub async fn decide(state: &AppState, peer: Peer, token: &str, attempt: Attempt) -> Result<Decided, ApiError> {
    let hash = token_hash(state, peer, token)?;
    let decision = Verdict::of(attempt.approve);
    let approver = steppy_engine::text::printable(&attempt.voter).into_owned();
    let queued = Instant::now();
    let decided = state
        .decisions
        .decide(&state.store, hash, attempt)
        .await
        .inspect_err(|e| note_miss(state, peer, e))?;
    state.metrics.decision(decision, queued.elapsed());
    log_decision(&decided, decision, &approver);
    Ok(decided)
}

/// The decision line of the log: one `info` event (target `steppy::decision`) per recorded
/// vote, naming the execution, the step, the decision and who made it; never the token.
fn log_decision(d: &Decided, decision: Verdict, approver: &str) {
    let a = &d.approval;
    tracing::info!(
        target: "steppy::decision",
        execution = %a.execution_id,
        stage = %steppy_engine::text::printable(&a.stage_name),
        step = %steppy_engine::text::printable(&a.step_name),
        approval = %a.id,
        decision = decision.as_str(),
        approver,
        decisive = d.decisive,
        state = a.state.as_str(),
        "approval decision"
    );
}

/// What a decision request asked for, as far as it can be told before it is checked: kept in
/// the audit record of a refusal.
pub struct Asked<'a> {
    pub decision: &'a str,
    pub typed_name: Option<&'a str>,
    pub comment: Option<&'a str>,
}

/// Checks that a decision on `token` comes from the approval page itself
/// ([`security::same_origin`](crate::security::same_origin)). A request from another site is
/// refused (403), and the refusal is audited like every attempt on a known token (an
/// `ApprovalRefused` event with who, from where and the comment); on an unknown token it counts
/// as a guess.
pub async fn check_same_origin(
    state: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    token: &str,
    asked: Asked<'_>,
) -> Result<(), ApiError> {
    match crate::security::same_origin(&state.config, headers) {
        Ok(()) => Ok(()),
        Err(refused) => Err(refuse_cross_site(state, peer, headers, token, asked, refused).await),
    }
}

async fn refuse_cross_site(
    state: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    token: &str,
    asked: Asked<'_>,
    refused: ApiError,
) -> ApiError {
    let hash = match token_hash(state, peer, token) {
        Ok(h) => h,
        Err(e) if e.status == axum::http::StatusCode::TOO_MANY_REQUESTS => return e,
        Err(_) => return refused, // malformed: counted as a miss already
    };
    let attempt = Attempt {
        approve: asked.decision == "approve",
        voter: crate::identity::resolve(&state.config, headers, asked.typed_name).unwrap_or_else(|_| {
            asked
                .typed_name
                .map(|t| truncate_chars(t.trim(), 200).to_string())
                .unwrap_or_default()
        }),
        comment: asked
            .comment
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| truncate_chars(c, 2000).to_string()),
        source: peer.0.to_string(),
    };
    let store = state.store.clone();
    let now = steppy_engine::clock::system_now_ms();
    match crate::error::blocking(move || store.refuse(&hash, &attempt, &Refusal::CrossSite, now)).await {
        Ok(Some(_)) => refused,
        Ok(None) => {
            state.guesses.record_miss(peer.0);
            refused
        }
        // Not audited, so not answered as if it were.
        Err(e) => e,
    }
}

/// The first `max` characters of `s`.
fn truncate_chars(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(i, _)| &s[..i])
}

/// A comment as stored: trimmed, empty as none, at most 2,000 characters.
pub fn clean_comment(comment: Option<String>) -> Result<Option<String>, ApiError> {
    let c = comment.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    match c {
        Some(c) if c.chars().count() > 2000 => Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "comment-too-long",
            "the comment must be at most 2,000 characters",
        )),
        other => Ok(other),
    }
}
