//! Approval requests for `Human` steps, and their decisions.
//!
//! Only the SHA-256 of an approval token is stored. A decision is final: votes are counted in
//! one `IMMEDIATE` transaction, so the first decisive vote wins and every later one is refused.
//! Any reject decides "rejected"; `required` approve votes decide "approved".

use super::executions::append_event;
use super::{CorruptValue, Refusal, Store, StoreError, StoreResult};
use crate::events::EventType;
use crate::plan::OnTimeout;
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::json;

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    Pending,
    Approved,
    Rejected,
    /// The step was cancelled (its execution aborted) before anyone decided.
    Cancelled,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
            ApprovalState::Cancelled => "cancelled",
        }
    }
    /// The state spelled `s`; `None` for anything else (never a default: an unknown stored
    /// state is a [`CorruptValue`], see [`stored_state`]).
    pub(crate) fn parse(s: &str) -> Option<ApprovalState> {
        match s {
            "pending" => Some(ApprovalState::Pending),
            "approved" => Some(ApprovalState::Approved),
            "rejected" => Some(ApprovalState::Rejected),
            "cancelled" => Some(ApprovalState::Cancelled),
            _ => None,
        }
    }
}

/// How `on_timeout` is spelled in the `approvals` table.
pub(super) fn on_timeout_text(t: OnTimeout) -> &'static str {
    match t {
        OnTimeout::Approve => "approve",
        OnTimeout::Reject => "reject",
    }
}

/// The `approvals` row `r`'s state; an unknown one is a [`CorruptValue`].
pub(super) fn stored_state(r: &Row<'_>) -> rusqlite::Result<ApprovalState> {
    let text: String = r.get("state")?;
    ApprovalState::parse(&text).ok_or_else(|| {
        let row = format!("approval {}", r.get::<_, String>("id").unwrap_or_default());
        CorruptValue::unknown(
            "approvals",
            "state",
            row,
            &text,
            &["pending", "approved", "rejected", "cancelled"],
        )
        .in_row()
    })
}

/// The `approvals` row `r`'s `on_timeout`; an unknown one is a [`CorruptValue`].
pub(super) fn stored_on_timeout(r: &Row<'_>) -> rusqlite::Result<OnTimeout> {
    let text: String = r.get("on_timeout")?;
    match text.as_str() {
        "approve" => Ok(OnTimeout::Approve),
        "reject" => Ok(OnTimeout::Reject),
        _ => {
            let row = format!("approval {}", r.get::<_, String>("id").unwrap_or_default());
            Err(CorruptValue::unknown("approvals", "on_timeout", row, &text, &["approve", "reject"]).in_row())
        }
    }
}

/// What is needed to create an approval request.
#[derive(Debug, Clone)]
pub struct NewApproval {
    pub execution_id: String,
    pub stage: usize,
    pub index: usize,
    pub idempotency_key: String,
    pub token_sha256: String,
    pub message: String,
    pub approvers: Vec<String>,
    pub required: u32,
    pub forbid_self: bool,
    pub requested_by: String,
    pub deadline_ms: Option<i64>,
    pub on_timeout: OnTimeout,
}

/// A stored approval request.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub id: String,
    pub execution_id: String,
    pub stage: usize,
    pub index: usize,
    pub delivered: bool,
    pub message: String,
    pub required: u32,
    pub deadline_ms: Option<i64>,
    pub on_timeout: OnTimeout,
    pub state: ApprovalState,
    pub decided_by: Option<String>,
    pub comment: Option<String>,
    pub approvals_so_far: u32,
}

/// A vote cast with a token.
#[derive(Debug, Clone)]
pub struct Vote {
    pub approve: bool,
    pub voter: String,
    pub comment: Option<String>,
}

/// The result of a vote.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub approval: Approval,
    /// True if this vote decided the approval (false: recorded, more approvals needed).
    pub decisive: bool,
}

fn approval_from_row(r: &Row<'_>) -> rusqlite::Result<Approval> {
    Ok(Approval {
        id: r.get("id")?,
        execution_id: r.get("execution_id")?,
        stage: r.get::<_, i64>("stage")? as usize,
        index: r.get::<_, i64>("idx")? as usize,
        delivered: r.get("delivered")?,
        message: r.get("message")?,
        required: r.get::<_, i64>("required")? as u32,
        deadline_ms: r.get("deadline_ms")?,
        on_timeout: stored_on_timeout(r)?,
        state: stored_state(r)?,
        decided_by: r.get("decided_by")?,
        comment: r.get("comment")?,
        approvals_so_far: r.get::<_, i64>("approvals_so_far")? as u32,
    })
}

const APPROVAL_SELECT: &str = "SELECT a.*, (SELECT COUNT(*) FROM approval_votes v WHERE v.approval_id = a.id AND v.approve = 1) \
     AS approvals_so_far FROM approvals a";

impl Store {
    /// Creates the approval request for an attempt, or returns the existing one for the same
    /// idempotency key (then `token_sha256` is ignored). The bool is true if it was created.
    pub fn create_approval(&self, new: &NewApproval, now_ms: i64) -> StoreResult<(Approval, bool)> {
        let approvers = serde_json::to_string(&new.approvers).map_err(|source| StoreError::Encode {
            what: format!("the approvers of {}", new.idempotency_key),
            source,
        })?;
        self.write(|tx| {
            let existing = tx
                .query_row(
                    &format!("{APPROVAL_SELECT} WHERE a.idempotency_key = ?1"),
                    [&new.idempotency_key],
                    approval_from_row,
                )
                .optional()?;
            if let Some(a) = existing {
                return Ok((a, false));
            }
            let id = uuid::Uuid::now_v7().to_string();
            tx.execute(
                "INSERT INTO approvals (id, execution_id, stage, idx, idempotency_key, token_sha256, message, approvers, required, \
                 forbid_self, requested_by, deadline_ms, on_timeout, state, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'pending', ?14)",
                params![
                    id, new.execution_id, new.stage as i64, new.index as i64, new.idempotency_key, new.token_sha256, new.message,
                    approvers, new.required as i64, new.forbid_self, new.requested_by, new.deadline_ms,
                    on_timeout_text(new.on_timeout), now_ms
                ],
            )?;
            let details =
                json!({ "approvalId": id, "key": new.idempotency_key, "required": new.required, "deadlineMs": new.deadline_ms });
            append_event(
                tx,
                &new.execution_id,
                now_ms,
                EventType::ApprovalRequested,
                Some(new.stage),
                Some(new.index),
                &details,
            )?;
            let a = tx.query_row(&format!("{APPROVAL_SELECT} WHERE a.id = ?1"), [&id], approval_from_row)?;
            Ok((a, true))
        })
    }

    /// Replaces the token of a pending, undelivered approval (the old token stops working).
    pub fn rotate_approval_token(&self, id: &str, token_sha256: &str, now_ms: i64) -> StoreResult<()> {
        self.write(|tx| {
            let row: Option<(String, i64, i64)> = tx
                .query_row(
                    "UPDATE approvals SET token_sha256 = ?2, delivered = 0 WHERE id = ?1 AND state = 'pending' \
                            RETURNING execution_id, stage, idx",
                    params![id, token_sha256],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if let Some((exec, stage, idx)) = row {
                append_event(
                    tx,
                    &exec,
                    now_ms,
                    EventType::ApprovalTokenRotated,
                    Some(stage as usize),
                    Some(idx as usize),
                    &json!({ "approvalId": id }),
                )?;
            }
            Ok(())
        })
    }

    /// Records that the approval's current token was shown/delivered.
    pub fn mark_approval_delivered(&self, id: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("UPDATE approvals SET delivered = 1 WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// The approval with this id.
    pub fn approval(&self, id: &str) -> StoreResult<Approval> {
        self.read(|conn| {
            conn.query_row(&format!("{APPROVAL_SELECT} WHERE a.id = ?1"), [id], approval_from_row)
                .optional()?
                .ok_or_else(|| no_approval(id))
        })
    }

    /// Casts a vote with the token whose SHA-256 is `token_sha256`. First decision wins; a
    /// refused vote is audited (see [`Store::decide`], which this wraps for the CLI).
    pub fn vote(&self, token_sha256: &str, vote: &Vote, now_ms: i64) -> StoreResult<Decision> {
        let attempt = super::Attempt {
            approve: vote.approve,
            voter: vote.voter.clone(),
            comment: vote.comment.clone(),
            source: "cli".into(),
        };
        let decided = self.decide(token_sha256, &attempt, now_ms)?;
        let approval = self.approval(&decided.approval.id)?;
        Ok(Decision {
            approval,
            decisive: decided.decisive,
        })
    }

    /// Decides a still-pending approval as `state` on behalf of `by` (a timeout, a cancellation).
    /// Returns the approval as it ends up: if someone decided first, their decision stands.
    pub fn settle_approval(&self, id: &str, state: ApprovalState, by: &str, now_ms: i64) -> StoreResult<Approval> {
        self.write(|tx| {
            let row: Option<(String, i64, i64)> = tx
                .query_row(
                    "UPDATE approvals SET state = ?2, decided_ms = ?3, decided_by = ?4 WHERE id = ?1 AND state = 'pending' \
                     RETURNING execution_id, stage, idx",
                    params![id, state.as_str(), now_ms, by],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if let Some((exec, stage, idx)) = row {
                append_event(
                    tx,
                    &exec,
                    now_ms,
                    EventType::ApprovalDecided,
                    Some(stage as usize),
                    Some(idx as usize),
                    &json!({ "approvalId": id, "decision": state.as_str(), "by": by }),
                )?;
            }
            tx.query_row(&format!("{APPROVAL_SELECT} WHERE a.id = ?1"), [id], approval_from_row)
                .optional()?
                .ok_or_else(|| no_approval(id))
        })
    }
}

fn no_approval(id: &str) -> StoreError {
    StoreError::Refused(Refusal::NoApproval { id: id.to_string() })
}
