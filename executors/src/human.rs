//! `Human`: an approval request decided from another process with `steppy approve TOKEN` or
//! `steppy reject TOKEN`.
//!
//! The token is 256 random bits, URL-safe base64. Only its SHA-256 is stored; the plain token
//! is handed to [`Notices::approval_token`] once and never logged. If the process dies after
//! the request was recorded but before its token was delivered, the next `start`/`resume`
//! rotates the token (the old hash is replaced) and delivers the new one.
//!
//! The executor applies `timeoutSeconds` itself: at the deadline the approval is settled as
//! `onTimeout` says (reject by default), unless someone decided first.

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;
use steppy_engine::executor::{
    BoxFuture, ExecError, Executor, Handle, Notices, Outcome, StepContext,
};
use steppy_engine::plan::{OnTimeout, StepKind};
use steppy_engine::store::{Approval, ApprovalState, NewApproval};

/// How often a pending approval is re-read (decisions come from other processes).
const POLL: Duration = Duration::from_millis(250);

/// The `Human` executor. Remembers which approvals' tokens this process showed, so that after a
/// restart it can say that a pending approval's token was shown earlier.
#[derive(Default)]
pub struct HumanExecutor {
    shown_here: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl HumanExecutor {
    fn note_shown(&self, approval_id: &str) {
        if let Ok(mut s) = self.shown_here.lock() {
            s.insert(approval_id.to_string());
        }
    }
    fn was_shown_here(&self, approval_id: &str) -> bool {
        self.shown_here
            .lock()
            .map(|s| s.contains(approval_id))
            .unwrap_or(false)
    }
}

/// A fresh approval token: `stp_` then 32 random bytes as URL-safe base64 without padding.
/// The prefix makes tokens easy to recognize (and to scan for in logs) and means a token never
/// starts with `-`, which a command line would take for an option.
pub fn new_token() -> Result<String, ExecError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ExecError::new(format!("no randomness for an approval token: {e}")))?;
    Ok(format!(
        "stp_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// True if `token` has the shape [`new_token`] issues (`stp_` and 43 URL-safe base64
/// characters); anything else can be refused without a database look-up.
pub fn looks_like_token(token: &str) -> bool {
    token.strip_prefix("stp_").is_some_and(|rest| {
        rest.len() == 43 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
    (format!("{base}/approvals/{token}?action=approve"), format!("{base}/approvals/{token}?action=reject"))
}

/// Who is running Steppy (for `forbidSelfApproval` and as the default voter name).
pub fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn store_err(e: steppy_engine::store::StoreError) -> ExecError {
    ExecError::new(e.to_string())
}

/// Issues a new token for `approval` and shows it, then marks it delivered.
fn rotate_and_deliver(ctx: &StepContext, approval: &Approval) -> Result<(), ExecError> {
    let token = new_token()?;
    ctx.store
        .rotate_approval_token(&approval.id, &token_hash(&token), ctx.clock.now_ms())
        .map_err(store_err)?;
    deliver(ctx, &approval.id, &token, ctx.notices.as_ref())
}

fn deliver(
    ctx: &StepContext,
    approval_id: &str,
    token: &str,
    notices: &dyn Notices,
) -> Result<(), ExecError> {
    notices.approval_token(&ctx.execution_id, &ctx.step.name, token);
    ctx.store
        .mark_approval_delivered(approval_id)
        .map_err(store_err)
}

impl Executor for HumanExecutor {
    fn start<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, Result<Handle, ExecError>> {
        Box::pin(async move {
            let StepKind::Human(h) = &ctx.step.kind else {
                return Err(ExecError::new(
                    "the Human executor was given another step type",
                ));
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
                requested_by: ctx.store.started_by(&ctx.execution_id).ok().flatten().unwrap_or_else(current_user),
                deadline_ms: ctx.step.options.timeout_seconds.map(|t| {
                    ctx.attempt_started_ms
                        .saturating_add((t as i64).saturating_mul(1000))
                }),
                on_timeout: match h.on_timeout {
                    OnTimeout::Approve => "approve".into(),
                    OnTimeout::Reject => "reject".into(),
                },
            };
            let (approval, created) = ctx.store.create_approval(&new, now).map_err(store_err)?;
            if created {
                steppy_engine::fault::hit("approval-row", &ctx.step.name);
                ctx.notices.notice(
                    &ctx.execution_id,
                    &ctx.step.name,
                    &format!("approval requested: {}", h.message),
                );
                deliver(ctx, &approval.id, &token, ctx.notices.as_ref())?;
                self.note_shown(&approval.id);
            } else if approval.state == ApprovalState::Pending && !approval.delivered {
                rotate_and_deliver(ctx, &approval)?;
                self.note_shown(&approval.id);
            }
            Ok(json!({ "approvalId": approval.id }))
        })
    }

    fn resume<'a>(
        &'a self,
        ctx: &'a StepContext,
        handle: &'a Handle,
    ) -> BoxFuture<'a, Result<Outcome, ExecError>> {
        Box::pin(async move {
            let id = handle
                .get("approvalId")
                .and_then(|v| v.as_str())
                .ok_or_else(|| ExecError::new("approval handle has no approvalId"))?;
            let mut first = true;
            loop {
                let a = ctx.store.approval(id).map_err(store_err)?;
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
                    rotate_and_deliver(ctx, &a)?;
                    self.note_shown(id);
                }
                let now = ctx.clock.now_ms();
                match a.deadline_ms {
                    Some(deadline) if now >= deadline => {
                        let state = if a.on_timeout == "approve" {
                            ApprovalState::Approved
                        } else {
                            ApprovalState::Rejected
                        };
                        ctx.store
                            .settle_approval(id, state, "timeout", now)
                            .map_err(store_err)?;
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
        _: bool,
    ) -> BoxFuture<'a, Result<(), ExecError>> {
        Box::pin(async move {
            if let Some(id) = handle.get("approvalId").and_then(|v| v.as_str()) {
                ctx.store
                    .settle_approval(id, ApprovalState::Cancelled, "abort", ctx.clock.now_ms())
                    .map_err(store_err)?;
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
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
