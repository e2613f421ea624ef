//! Redeeming AWS Step Functions task tokens: the approval links of state machines compiled by
//! `steppy compile` and of those deployed by the original Steppy
//! (`/humanConfirmation?taskToken=…&action=approve|reject`).
//!
//! - [`client`]: the two calls that redeem a token (`SendTaskSuccess`, `SendTaskFailure`) as the
//!   object-safe [`TaskTokens`], so tests can count calls and inject errors; [`SfnTaskTokens`] is
//!   the real one.
//! - [`token`]: reading a token from a link, its stored hash, and keeping it out of messages.
//! - [`message`]: what a decision sends (the output of an approval, the cause of a rejection).
//! - [`held`]: tokens kept in memory for a resend.
//! - [`redeemer`]: [`Redeemer::redeem`], durable first, then act. The decision is claimed in the store
//!   ([`Store::claim_task_token`](steppy_engine::store::Store::claim_task_token), keyed by the
//!   token's SHA-256, one decision per token), then sent; the answer says whether Step Functions
//!   took it ([`Redeemed::Sent`]), someone decided first ([`Redeemed::Conflict`]), the task was
//!   no longer waiting ([`Redeemed::Closed`]) or Step Functions could not be reached
//!   ([`Redeemed::Unavailable`]: the decision stays recorded and is sent again).
//!   [`Redeemer::resend_pending`] / [`Redeemer::resend_loop`] send again what could not be sent.
//!
//! The [`AppState`](crate::state::AppState) owns a [`Redeemer`]; nothing here reaches back into
//! the state.
//!
//! Tokens are capabilities: the store keeps only their hash, and nothing here logs them. To
//! send a decision again without a new request, the token of a decision that could not be sent
//! is kept **in memory** ([`held::HeldTokens`]), never on disk; after a restart such a decision is sent
//! again when someone with the link confirms it (the page offers to).

pub mod client;
pub mod held;
pub mod message;
pub mod redeemer;
pub mod token;

use std::time::Duration;

pub use client::{RedeemError, SfnTaskTokens, TaskTokens};
pub use redeemer::{Redeemed, Redeemer, ResendReport, disabled};
pub use steppy_engine::executor::BoxFuture;
pub use token::{TokenProblem, is_steppy_token, normalize_token, token_hash, truncate_utf16};

/// Longest task token Step Functions issues.
pub const MAX_TOKEN_LEN: usize = 2048;
/// Longest `error` of `SendTaskFailure`.
pub const MAX_ERROR_LEN: usize = 256;
/// Longest `cause` of `SendTaskFailure`.
pub const MAX_CAUSE_LEN: usize = 32_768;
/// The longest one call to Step Functions may take before it counts as unavailable (well below
/// the store's [`TASK_TOKEN_SEND_STALE_MS`](steppy_engine::store::TASK_TOKEN_SEND_STALE_MS)).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
