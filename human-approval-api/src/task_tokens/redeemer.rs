//! [`Redeemer`]: durable first, then act. A decision on a task token is claimed in the store
//! ([`Store::claim_task_token`], keyed by the token's SHA-256, one decision per token), then sent
//! to Step Functions in a task of its own (a client that hangs up does not abandon it half-way),
//! and what Step Functions said is recorded. What could not be sent is sent again by
//! [`Redeemer::resend_pending`], at start and every so often ([`Redeemer::resend_loop`]).

use super::held::HeldTokens;
use super::message::{failure, output_json};
use super::token::{scrub, token_hash};
use super::{RedeemError, SEND_TIMEOUT, TaskTokens};
use crate::error::{ApiError, blocking};
use axum::http::StatusCode;
use std::sync::Arc;
use std::time::Duration;
use steppy_engine::clock::system_now_ms;
use steppy_engine::store::{Attempt, Claim, Store, TaskTokenDecision, TaskTokenState};

/// Redeems task tokens for the approval service: the store that records decisions, the client
/// that sends them, and the tokens held for a resend. Cheap to clone; owned by the
/// [`AppState`](crate::state::AppState).
#[derive(Clone)]
pub struct Redeemer {
    store: Store,
    client: Arc<dyn TaskTokens>,
    held: Arc<HeldTokens>,
}

impl std::fmt::Debug for Redeemer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redeemer")
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

/// What became of a decision on a task token.
#[derive(Debug, Clone, PartialEq)]
pub enum Redeemed {
    /// Step Functions took it (200).
    Sent(TaskTokenDecision),
    /// Another decision stands, or this one is being sent right now (409).
    Conflict(TaskTokenDecision),
    /// The task is no longer waiting; nothing was or will be redeemed (410).
    Closed(TaskTokenDecision),
    /// Recorded, but Step Functions could not be reached; it will be sent again (503).
    Unavailable(TaskTokenDecision),
}

/// The answer when no [`TaskTokens`] is configured.
pub fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "task-tokens-disabled",
        "this link is for an approval on AWS Step Functions, and this approval service is not set up to redeem Step Functions task tokens; ask its operator to enable it, or decide in the Step Functions console",
    )
}

/// What [`Redeemer::resend_pending`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResendReport {
    /// Sent again, and Step Functions took them.
    pub sent: usize,
    /// Step Functions said the task was no longer waiting.
    pub closed: usize,
    /// Still unreachable; tried again next time.
    pub unavailable: usize,
    /// Recorded but not sent, and this process does not hold the token (it was recorded before
    /// a restart): sent again when someone with the link confirms it on the page.
    pub need_link: usize,
}

impl Redeemer {
    /// A redeemer recording in `store` and sending with `client`.
    pub fn new(store: Store, client: Arc<dyn TaskTokens>) -> Redeemer {
        Redeemer {
            store,
            client,
            held: Arc::default(),
        }
    }

    /// How many tokens are held in memory for a resend.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Records `attempt` as the decision on `token` (already [`normalize_token`]d), then sends it.
    pub async fn redeem(&self, token: &str, attempt: Attempt) -> Result<Redeemed, ApiError> {
        let hash = token_hash(token);
        let (store, h) = (self.store.clone(), hash.clone());
        let claim = blocking(move || store.claim_task_token(&h, &attempt, system_now_ms())).await?;
        let decision = match claim {
            Claim::Taken(d) => return Ok(Redeemed::Conflict(d)),
            Claim::Closed(d) => return Ok(Redeemed::Closed(d)),
            Claim::Send { decision, .. } => decision,
        };
        // The send runs in its own task, so a client that hangs up does not abandon it half-way.
        let (this, token) = (self.clone(), token.to_string());
        tokio::spawn(async move { this.send(&hash, &token, decision).await })
            .await
            .map_err(|e| ApiError::internal(format!("sending the decision failed: {e}")))
    }

    /// Sends `decision` (whose send this caller holds) and records what Step Functions said.
    async fn send(&self, hash: &str, token: &str, decision: TaskTokenDecision) -> Redeemed {
        let call = async {
            if decision.approve {
                self.client.succeed(token, &output_json(&decision)).await
            } else {
                let (error, cause) = failure(&decision);
                self.client.fail(token, &error, &cause).await
            }
        };
        let result = match tokio::time::timeout(SEND_TIMEOUT, call).await {
            Ok(r) => r,
            Err(_) => Err(RedeemError::Unavailable(format!(
                "no answer within {} s",
                SEND_TIMEOUT.as_secs()
            ))),
        };
        let (store, h, now) = (self.store.clone(), hash.to_string(), system_now_ms());
        // If the store fails here, the answer still says what Step Functions did (the row stays
        // in flight, and a later resend learns that the task is closed).
        let mut local = decision;
        local.in_flight = false;
        local.updated_ms = now;
        match result {
            Ok(()) => {
                self.held.release(hash);
                local.state = TaskTokenState::Sent;
                local.last_error = None;
                let recorded = blocking(move || store.task_token_sent(&h, now)).await;
                Redeemed::Sent(recorded.ok().flatten().unwrap_or(local))
            }
            Err(RedeemError::NoLongerWaiting(why)) => {
                self.held.release(hash);
                let why = scrub(&why, token);
                local.state = TaskTokenState::Closed;
                local.last_error = Some(why.clone());
                let recorded = blocking(move || store.task_token_closed(&h, &why, now)).await;
                Redeemed::Closed(recorded.ok().flatten().unwrap_or(local))
            }
            Err(RedeemError::Unavailable(why)) => {
                self.held.hold(hash, token);
                let why = scrub(&why, token);
                local.last_error = Some(why.clone());
                let recorded = blocking(move || store.task_token_unavailable(&h, &why, now)).await;
                Redeemed::Unavailable(recorded.ok().flatten().unwrap_or(local))
            }
        }
    }

    /// Sends again every recorded decision that Step Functions has not taken yet and whose token
    /// this process holds. Call it at start (it then reports what waits for a link) and
    /// periodically ([`Redeemer::resend_loop`]); each decision is sent by one caller at a time.
    pub async fn resend_pending(&self) -> Result<ResendReport, ApiError> {
        let mut report = ResendReport::default();
        let store = self.store.clone();
        let hashes = blocking(move || store.task_tokens_to_resend(system_now_ms(), 1000)).await?;
        for hash in hashes {
            let Some(token) = self.held.get(&hash) else {
                report.need_link += 1;
                continue;
            };
            let (store, h) = (self.store.clone(), hash.clone());
            let Some(decision) = blocking(move || store.take_task_token_resend(&h, system_now_ms())).await? else {
                continue; // someone else took it meanwhile
            };
            match self.send(&hash, &token, decision).await {
                Redeemed::Sent(_) => report.sent += 1,
                Redeemed::Closed(_) => report.closed += 1,
                Redeemed::Unavailable(_) => report.unavailable += 1,
                Redeemed::Conflict(_) => {}
            }
        }
        Ok(report)
    }

    /// Runs [`Redeemer::resend_pending`] every `every`, forever (spawn it beside the server).
    pub async fn resend_loop(self, every: Duration) {
        let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let _ = self.resend_pending().await;
        }
    }
}
