//! Thin handlers over [`AppState`](crate::AppState), one module per audience:
//! [`pages`] (people following e-mail links), [`api`] (scripts and bots, read-only views),
//! [`admin`] (starting and aborting executions with the admin token), [`sfn`] (approvals on
//! AWS Step Functions: task tokens in `/humanConfirmation` links).
//!
//! What they share lives here: the caller's address ([`Peer`]) and turning a token from a URL
//! into the hash the store knows, under the guess limiter ([`token_hash`]).

pub mod admin;
pub mod api;
pub mod pages;
pub mod sfn;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use steppy_engine::store::{ApprovalView, Attempt, Decided};

/// The address of the caller (unspecified if the server was started without connect info).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
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
    state.decisions.decide(&state.store, hash, attempt).await.inspect_err(|e| note_miss(state, peer, e))
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
