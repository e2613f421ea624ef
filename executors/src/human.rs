//! `Human`: an approval request decided from another process with `steppy approve TOKEN` or
//! `steppy reject TOKEN`, on the approval page, or through the API.
//!
//! The token is 256 random bits, URL-safe base64. Only its SHA-256 is stored; the plain token
//! exists in this process's memory, in the notices shown to the person running Steppy and in
//! what a [`Courier`] sends (the SNS e-mail); it is never logged or written to disk.
//!
//! **Delivery is recorded only after it succeeded.** A fresh token is sent by the courier (if
//! any) and shown; only then is the approval marked delivered. A send that fails (SNS slow or
//! down) is tried again with backoff, with the same token, for as long as this process holds
//! it; a restart finds the approval undelivered and rotates the token (the old hash is replaced,
//! so a link nobody received never works) before delivering the new one. Sending is an async
//! call with a bounded time: it never blocks a runtime thread.
//!
//! The executor applies `timeoutSeconds` itself: at the deadline the approval is settled as
//! `onTimeout` says (reject by default), unless someone decided first.

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steppy_engine::executor::{BoxFuture, ExecError, Executor, Handle, Outcome, RunningWork, StepContext, TokenRoute};
use steppy_engine::plan::{OnTimeout, StepKind};
use steppy_engine::store::{Approval, ApprovalState, NewApproval};

/// How often a pending approval is re-read (decisions come from other processes).
const POLL: Duration = Duration::from_millis(250);

/// Longest wait between two tries of a failed send.
const MAX_SEND_BACKOFF_MS: i64 = 60_000;

/// Where a sent approval request went, for the log (never the token).
#[derive(Debug, Clone)]
pub struct Sent {
    /// The destination, e.g. an SNS topic ARN.
    pub to: String,
    /// The destination's id for the message, e.g. the SNS message id.
    pub id: String,
}

/// Sends approval requests to the people who decide, besides the terminal (the SNS e-mail:
/// [`crate::approval_mail::SnsCourier`]).
pub trait Courier: Send + Sync {
    /// Sends the request for `approval` with the links of `token`. `Ok(Some(_))` when it was
    /// sent, `Ok(None)` when this step has nowhere to send it (no topic configured), `Err` when
    /// sending failed (it is tried again later with the same token).
    fn send<'a>(
        &'a self,
        ctx: &'a StepContext,
        approval: &'a Approval,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Sent>, ExecError>>;
}

/// A token this process issued whose delivery is not recorded yet (memory only).
struct Undelivered {
    token: String,
    /// The courier's send succeeded (only the store's mark is missing).
    sent: bool,
    /// Failed sends so far, and when the next try is due (epoch ms).
    failures: u32,
    next_try_ms: i64,
}

/// The `Human` executor. Remembers which approvals' tokens this process showed (so that after a
/// restart it can say that a pending approval's token was shown earlier) and the tokens it has
/// not delivered yet.
#[derive(Default)]
pub struct HumanExecutor {
    courier: Option<Arc<dyn Courier>>,
    shown_here: Mutex<HashSet<String>>,
    undelivered: Mutex<HashMap<String, Undelivered>>,
}

impl HumanExecutor {
    /// Approvals shown on the terminal (or wherever the notices go) only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Approvals also sent by `courier` (e-mail through SNS).
    pub fn with_courier(courier: Arc<dyn Courier>) -> Self {
        HumanExecutor {
            courier: Some(courier),
            ..Self::default()
        }
    }

    fn note_shown(&self, approval_id: &str) {
        if let Ok(mut s) = self.shown_here.lock() {
            s.insert(approval_id.to_string());
        }
    }
    fn was_shown_here(&self, approval_id: &str) -> bool {
        self.shown_here.lock().map(|s| s.contains(approval_id)).unwrap_or(false)
    }

    fn undelivered(&self) -> std::sync::MutexGuard<'_, HashMap<String, Undelivered>> {
        self.undelivered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Delivers `approval`, which is not marked delivered: with the token this process still
    /// holds for it, or else (after a restart) with a new one that replaces the old hash.
    async fn redeliver(&self, ctx: &StepContext, approval: &Approval) -> Result<(), ExecError> {
        if !self.undelivered().contains_key(&approval.id) {
            let token = new_token()?;
            ctx.store
                .rotate_approval_token(&approval.id, &token_hash(&token), ctx.clock.now_ms())?;
            self.hold(&approval.id, token);
        }
        self.deliver(ctx, approval).await
    }

    fn hold(&self, approval_id: &str, token: String) {
        self.undelivered().insert(
            approval_id.to_string(),
            Undelivered {
                token,
                sent: false,
                failures: 0,
                next_try_ms: 0,
            },
        );
    }

    /// Sends and shows the held token of `approval` (if its next try is due), then records it
    /// delivered. A failed send is kept for a later try and is not an error; a store failure
    /// is (the engine runs the attempt again, and the held token with it).
    async fn deliver(&self, ctx: &StepContext, approval: &Approval) -> Result<(), ExecError> {
        let now = ctx.clock.now_ms();
        let (token, sent, failures) = match self.undelivered().get(&approval.id) {
            Some(u) if !u.sent && now < u.next_try_ms => return Ok(()),
            Some(u) => (u.token.clone(), u.sent, u.failures),
            None => return Ok(()),
        };
        if !sent {
            let (exec, step) = (&ctx.execution_id, &ctx.step.name);
            let outcome = match &self.courier {
                Some(c) => c.send(ctx, approval, &token).await,
                None => Ok(None),
            };
            match outcome {
                Ok(Some(sent)) => {
                    let line = format!("approval request published to {} (message {})", sent.to, sent.id);
                    ctx.notices.notice(exec, step, &line);
                    ctx.notices
                        .approval_token_routed(exec, step, &token, TokenRoute::Mailed { via: &sent.to });
                }
                Ok(None) => ctx.notices.approval_token(exec, step, &token),
                Err(e) => {
                    let failures = failures + 1;
                    let wait = (1_000i64 << (failures - 1).min(6)).min(MAX_SEND_BACKOFF_MS);
                    if let Some(u) = self.undelivered().get_mut(&approval.id) {
                        u.failures = failures;
                        u.next_try_ms = now + wait;
                    }
                    let line = format!(
                        "could not publish the approval request: {e} (trying again in {} s; it counts as delivered only once sent)",
                        wait / 1000
                    );
                    ctx.notices.notice(exec, step, &line);
                    if failures == 1 {
                        ctx.notices
                            .approval_token_routed(exec, step, &token, TokenRoute::MailFailed);
                    }
                    return Ok(());
                }
            }
            if let Some(u) = self.undelivered().get_mut(&approval.id) {
                u.sent = true;
            }
        }
        ctx.store.mark_approval_delivered(&approval.id)?;
        self.undelivered().remove(&approval.id);
        self.note_shown(&approval.id);
        Ok(())
    }
}

/// A fresh approval token: `stp_` then 32 random bytes as URL-safe base64 without padding.
/// The prefix makes tokens easy to recognize (and to scan for in logs) and means a token never
/// starts with `-`, which a command line would take for an option.
pub fn new_token() -> Result<String, ExecError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ExecError::new(format!("no randomness for an approval token: {e}")))?;
    Ok(format!(
        "stp_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// True if `token` has the shape [`new_token`] issues (`stp_` and 43 URL-safe base64
/// characters); anything else can be refused without a database look-up.
pub fn looks_like_token(token: &str) -> bool {
    token.strip_prefix("stp_").is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The stored form of a token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The two links of an approval e-mail: `GET {public_url}/approvals/{token}?action=approve` and
/// `...?action=reject`. Both only show the approval page; deciding takes a POST from it.
pub fn approval_links(public_url: &str, token: &str) -> (String, String) {
    let base = public_url.trim_end_matches('/');
    let token = token.trim();
    (
        format!("{base}/approvals/{token}?action=approve"),
        format!("{base}/approvals/{token}?action=reject"),
    )
}

/// Who is running Steppy (for `forbidSelfApproval` and as the default voter name).
pub fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

impl Executor for HumanExecutor {
    fn start<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Handle, ExecError>> {
        Box::pin(async move {
            let StepKind::Human(h) = &ctx.step.kind else {
                return Err(ExecError::new("the Human executor was given another step type"));
            };
            let now = ctx.clock.now_ms();
            let token = new_token()?;
            let new = NewApproval {
                execution_id: ctx.execution_id.to_string(),
                stage: ctx.stage,
                index: ctx.index,
                idempotency_key: ctx.idempotency_key.clone(),
                token_sha256: token_hash(&token),
                message: h.message.clone(),
                approvers: h.approvers.clone(),
                required: h.required_approvals.max(1),
                forbid_self: h.forbid_self_approval,
                requested_by: ctx
                    .store
                    .started_by(&ctx.execution_id)
                    .ok()
                    .flatten()
                    .unwrap_or_else(current_user),
                deadline_ms: ctx
                    .step
                    .options
                    .timeout_seconds
                    .map(|t| ctx.attempt_started_ms.saturating_add((t as i64).saturating_mul(1000))),
                on_timeout: h.on_timeout,
            };
            let (approval, created) = ctx.store.create_approval(&new, now)?;
            if created {
                steppy_engine::fault::hit("approval-row", &ctx.step.name);
                ctx.notices.notice(
                    &ctx.execution_id,
                    &ctx.step.name,
                    &format!("approval requested: {}", h.message),
                );
                self.hold(&approval.id, token);
                self.deliver(ctx, &approval).await?;
            } else if approval.state == ApprovalState::Pending && !approval.delivered {
                self.redeliver(ctx, &approval).await?;
            }
            Ok(json!({ "approvalId": approval.id }))
        })
    }

    fn resume<'a>(&'a self, ctx: &'a StepContext, handle: &'a Handle) -> BoxFuture<'a, Result<Outcome, ExecError>> {
        Box::pin(async move {
            let id = handle
                .get("approvalId")
                .and_then(|v| v.as_str())
                .ok_or_else(|| ExecError::new("approval handle has no approvalId"))?;
            let mut first = true;
            loop {
                let a = ctx.store.approval(id)?;
                if std::mem::take(&mut first)
                    && a.state == ApprovalState::Pending
                    && a.delivered
                    && !self.was_shown_here(id)
                {
                    let line = format!(
                        "still waiting for a decision on \"{}\" (use the token shown when it was requested)",
                        a.message
                    );
                    ctx.notices.notice(&ctx.execution_id, &ctx.step.name, &line);
                }
                match a.state {
                    ApprovalState::Approved => {
                        return Ok(Outcome::Succeeded(
                            json!({ "approvedBy": a.decided_by, "comment": a.comment }),
                        ));
                    }
                    ApprovalState::Rejected => {
                        let by = a.decided_by.unwrap_or_else(|| "someone".into());
                        let comment = a.comment.map(|c| format!(": {c}")).unwrap_or_default();
                        return Ok(Outcome::Rejected {
                            reason: format!("rejected by {by}{comment}"),
                        });
                    }
                    ApprovalState::Cancelled => {
                        return Ok(Outcome::Failed {
                            reason: "the approval was cancelled".into(),
                            retryable: false,
                        });
                    }
                    ApprovalState::Pending => {}
                }
                if !a.delivered {
                    self.redeliver(ctx, &a).await?;
                }
                let now = ctx.clock.now_ms();
                match a.deadline_ms {
                    Some(deadline) if now >= deadline => {
                        let state = match a.on_timeout {
                            OnTimeout::Approve => ApprovalState::Approved,
                            OnTimeout::Reject => ApprovalState::Rejected,
                        };
                        ctx.store.settle_approval(id, state, "timeout", now)?;
                    }
                    Some(deadline) => {
                        let nap = Duration::from_millis((deadline - now) as u64).min(POLL);
                        tokio::time::sleep(nap).await;
                    }
                    None => tokio::time::sleep(POLL).await,
                }
            }
        })
    }

    fn cancel<'a>(
        &'a self,
        ctx: &'a StepContext,
        handle: &'a Handle,
        _: RunningWork,
    ) -> BoxFuture<'a, Result<(), ExecError>> {
        Box::pin(async move {
            if let Some(id) = handle.get("approvalId").and_then(|v| v.as_str()) {
                ctx.store
                    .settle_approval(id, ApprovalState::Cancelled, "abort", ctx.clock.now_ms())?;
            }
            Ok(())
        })
    }

    fn waits(&self) -> bool {
        true
    }

    fn owns_timeout(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_url_safe_and_distinct() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert_eq!(a.len(), 4 + 43);
        assert!(a.starts_with("stp_"));
        assert!(looks_like_token(&a));
        assert!(!looks_like_token(&a[4..]) && !looks_like_token(&format!("{a}x")) && !looks_like_token("stp_<script>"));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
