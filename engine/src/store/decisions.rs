//! Deciding approvals on behalf of people (the approval API, `steppy approve`), with every
//! refusal audited, plus read-only views of approvals that never carry a token or its hash.
//!
//! [`Store::decide`] runs in one `IMMEDIATE` transaction, so racing votes on one token are
//! serialized: the first decisive vote wins and every later one is refused with the state it
//! found. A refused attempt (already decided, expired, not an approver, self-approval, second
//! vote by the same person) is itself committed as an `ApprovalRefused` event in the execution's
//! history: who, when, from which address, with what comment. Identities compare
//! case-insensitively (approvers are usually email addresses).

use super::approvals::{stored_on_timeout, stored_state};
use super::executions::{NewEvent, append_event, append_events};
use super::{ApprovalState, CorruptValue, Refusal, Store, StoreError, StoreResult};
use crate::events::EventType;
use crate::plan::OnTimeout;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One vote as shown to people.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VoteView {
    pub voter: String,
    pub approve: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub at_ms: i64,
}

/// An approval with its context (plan, stage, step) and its votes. Holds no token or hash.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalView {
    pub id: String,
    pub execution_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_name: Option<String>,
    pub execution_state: String,
    pub stage: usize,
    pub stage_name: String,
    pub index: usize,
    pub step_name: String,
    pub message: String,
    pub approvers: Vec<String>,
    pub required: u32,
    pub forbid_self_approval: bool,
    pub requested_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<i64>,
    pub on_timeout: OnTimeout,
    pub state: ApprovalState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub created_ms: i64,
    pub votes: Vec<VoteView>,
}

impl ApprovalView {
    /// Approve votes so far.
    pub fn approvals_so_far(&self) -> u32 {
        self.votes.iter().filter(|v| v.approve).count() as u32
    }

    /// True if the deadline has passed at `now_ms`.
    pub fn expired_at(&self, now_ms: i64) -> bool {
        self.deadline_ms.is_some_and(|d| now_ms >= d)
    }

    /// True if the approval was settled by its timeout.
    pub fn timed_out(&self) -> bool {
        self.state != ApprovalState::Pending && self.decided_by.as_deref() == Some(TIMEOUT_SETTLER)
    }
}

/// Who settles an approval at its deadline (see the Human executor).
pub const TIMEOUT_SETTLER: &str = "timeout";

/// One attempt to decide an approval.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Whether the vote approves ([`Verdict::approves`]).
    pub approve: bool,
    /// The identity of the person (trusted header, or the name they typed).
    pub voter: String,
    pub comment: Option<String>,
    /// Where the attempt came from (an IP address, `"cli"`), kept in the audit events.
    pub source: String,
}

/// Which way a vote goes: `approve` or `reject`, as the JSON API and the forms spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
}

impl Verdict {
    /// From a vote's stored `approve` flag.
    pub fn of(approve: bool) -> Verdict {
        if approve { Verdict::Approve } else { Verdict::Reject }
    }

    /// The stored `approve` flag.
    pub fn approves(self) -> bool {
        self == Verdict::Approve
    }

    /// `"approve"` or `"reject"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }
}

/// The failure of [`Store::decide`]: a refusal (with the approval as it stands, when known),
/// or a store problem.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("{0}")]
    Refused(Refusal, Option<Box<ApprovalView>>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DecideError> for StoreError {
    fn from(e: DecideError) -> StoreError {
        match e {
            DecideError::Refused(Refusal::Expired | Refusal::Cancelled, Some(v))
                if v.state != ApprovalState::Pending =>
            {
                StoreError::Refused(Refusal::AlreadyDecided {
                    state: v.state.as_str().to_string(),
                    by: v.decided_by.unwrap_or_else(|| "someone".into()),
                })
            }
            DecideError::Refused(r, _) => StoreError::Refused(r),
            DecideError::Store(e) => e,
        }
    }
}

/// The result of an accepted attempt.
#[derive(Debug, Clone)]
pub struct Decided {
    pub approval: ApprovalView,
    /// True if this vote decided the approval (false: recorded, more approvals needed).
    pub decisive: bool,
}

const VIEW_SELECT: &str = "SELECT a.id, a.execution_id, a.stage, a.idx, a.message, a.approvers, a.required, a.forbid_self, \
     a.requested_by, a.deadline_ms, a.on_timeout, a.state, a.decided_by, a.decided_ms, a.comment, a.created_ms, \
     e.name AS plan_name, e.state AS execution_state, \
     (SELECT g.name FROM stages g WHERE g.execution_id = a.execution_id AND g.idx = a.stage) AS stage_name, \
     (SELECT s.name FROM steps s WHERE s.execution_id = a.execution_id AND s.stage = a.stage AND s.idx = a.idx) AS step_name \
     FROM approvals a JOIN executions e ON e.id = a.execution_id";

fn view_from_row(r: &Row<'_>) -> rusqlite::Result<ApprovalView> {
    let stage = r.get::<_, i64>("stage")? as usize;
    let stage_name = r.get::<_, Option<String>>("stage_name")?.unwrap_or_default();
    Ok(ApprovalView {
        id: r.get("id")?,
        execution_id: r.get("execution_id")?,
        plan_name: r.get("plan_name")?,
        execution_state: r.get("execution_state")?,
        stage,
        stage_name,
        index: r.get::<_, i64>("idx")? as usize,
        step_name: r.get::<_, Option<String>>("step_name")?.unwrap_or_default(),
        message: r.get("message")?,
        approvers: stored_approvers(r)?,
        required: r.get::<_, i64>("required")? as u32,
        forbid_self_approval: r.get("forbid_self")?,
        requested_by: r.get("requested_by")?,
        deadline_ms: r.get("deadline_ms")?,
        on_timeout: stored_on_timeout(r)?,
        state: stored_state(r)?,
        decided_by: r.get("decided_by")?,
        decided_ms: r.get("decided_ms")?,
        comment: r.get("comment")?,
        created_ms: r.get("created_ms")?,
        votes: Vec::new(),
    })
}

/// The approvers of the `approvals` row `r`. JSON that does not parse is a [`CorruptValue`],
/// never an empty list: an empty list means anyone may decide.
fn stored_approvers(r: &Row<'_>) -> rusqlite::Result<Vec<String>> {
    let text: String = r.get("approvers")?;
    serde_json::from_str(&text).map_err(|e| {
        let row = format!("approval {}", r.get::<_, String>("id").unwrap_or_default());
        CorruptValue::json("approvals", "approvers", row, e).in_row()
    })
}

fn votes_of(conn: &rusqlite::Connection, approval_id: &str) -> rusqlite::Result<Vec<VoteView>> {
    let mut st = conn.prepare_cached(
        "SELECT voter, approve, comment, at_ms FROM approval_votes WHERE approval_id = ?1 ORDER BY at_ms, voter",
    )?;
    let rows = st.query_map([approval_id], |r| {
        Ok(VoteView {
            voter: r.get(0)?,
            approve: r.get(1)?,
            comment: r.get(2)?,
            at_ms: r.get(3)?,
        })
    })?;
    rows.collect()
}

fn view_where(conn: &rusqlite::Connection, where_sql: &str, arg: &str) -> rusqlite::Result<Option<ApprovalView>> {
    let found = conn
        .prepare_cached(&format!("{VIEW_SELECT} WHERE {where_sql}"))?
        .query_row([arg], view_from_row)
        .optional()?;
    match found {
        Some(mut v) => {
            v.votes = votes_of(conn, &v.id)?;
            Ok(Some(v))
        }
        None => Ok(None),
    }
}

/// Same identity? Identities are compared trimmed and case-insensitively.
pub fn same_identity(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// A refused attempt, with the approval as it stood when it was refused.
type Refused = (Refusal, Option<Box<ApprovalView>>);

impl Store {
    /// The approval whose token has SHA-256 `token_sha256`, with its context and votes.
    pub fn approval_by_token(&self, token_sha256: &str) -> StoreResult<Option<ApprovalView>> {
        self.read(|conn| Ok(view_where(conn, "a.token_sha256 = ?1", token_sha256)?))
    }

    /// Approvals, newest first; only those in `state` if given. Never includes tokens.
    pub fn approval_views(&self, state: Option<ApprovalState>, limit: usize) -> StoreResult<Vec<ApprovalView>> {
        self.read(|conn| {
            let filter = state.map(|s| s.as_str()).unwrap_or("%");
            let mut st = conn.prepare_cached(&format!(
                "{VIEW_SELECT} WHERE a.state LIKE ?1 ORDER BY a.created_ms DESC, a.id DESC LIMIT ?2"
            ))?;
            let mut views: Vec<ApprovalView> = st
                .query_map(params![filter, limit as i64], view_from_row)
                .and_then(|rows| rows.collect())?;
            drop(st);
            for v in &mut views {
                v.votes = votes_of(conn, &v.id)?;
            }
            Ok(views)
        })
    }

    /// Who started execution `execution_id`, if it was recorded at submission.
    pub fn started_by(&self, execution_id: &str) -> StoreResult<Option<String>> {
        let details: Option<String> = self.read(|conn| {
            Ok(conn
                .query_row(
                    "SELECT details FROM events WHERE execution_id = ?1 AND type = 'ExecutionSubmitted' ORDER BY seq LIMIT 1",
                    [execution_id],
                    |r| r.get(0),
                )
                .optional()?)
        })?;
        Ok(details
            .and_then(|d| serde_json::from_str::<Value>(&d).ok())
            .and_then(|d| d.get("startedBy").and_then(|s| s.as_str()).map(str::to_string)))
    }

    /// Casts `attempt` on the approval whose token hash is `token_sha256`, at `now_ms`.
    /// First decisive vote wins; every refusal except an unknown token is audited.
    pub fn decide(&self, token_sha256: &str, attempt: &Attempt, now_ms: i64) -> Result<Decided, DecideError> {
        // A refusal commits (its audit record); a store error rolls back.
        let decided = self.write(|tx| decide_in(tx, token_sha256, attempt, now_ms))?;
        decided.map_err(|(refusal, view)| DecideError::Refused(refusal, view))
    }

    /// Records `attempt` as refused for `refusal`, a reason its caller found before the rules
    /// (a request from another site), as an `ApprovalRefused` event like every other refusal.
    /// Returns the approval, or `None` for an unknown token (nothing to record against).
    pub fn refuse(
        &self,
        token_sha256: &str,
        attempt: &Attempt,
        refusal: &Refusal,
        now_ms: i64,
    ) -> StoreResult<Option<ApprovalView>> {
        self.write(|tx| {
            let Some(view) = view_where(tx, "a.token_sha256 = ?1", token_sha256)? else {
                return Ok(None);
            };
            audit_refusal(tx, &view, attempt, refusal, now_ms)?;
            Ok(Some(view))
        })
    }

    /// Decides many attempts in **one** transaction (one fsync), in order, each in its own
    /// savepoint: a refusal keeps its audit record, an error undoes only its own attempt.
    /// Decisions racing on one token are serialized exactly as with [`Store::decide`]; this is
    /// the group commit the approval API uses under load. The outer error means nothing of the
    /// batch was committed.
    pub fn decide_batch(
        &self,
        attempts: &[(String, Attempt)],
        now_ms: i64,
    ) -> StoreResult<Vec<Result<Decided, DecideError>>> {
        self.write(|tx| {
            let mut results = Vec::with_capacity(attempts.len());
            for (token_sha256, attempt) in attempts {
                let sp = tx.savepoint()?;
                let result = match decide_in(&sp, token_sha256, attempt, now_ms) {
                    Ok(decided) => {
                        sp.commit()?;
                        decided.map_err(|(refusal, view)| DecideError::Refused(refusal, view))
                    }
                    // Dropping `sp` rolls back to it. The error is classified as the whole
                    // batch's would be.
                    Err(e) => Err(DecideError::Store(e.at(&self.path))),
                };
                results.push(result);
            }
            Ok(results)
        })
    }
}

/// The decision itself, inside the caller's transaction (which the caller commits, also
/// after a refusal: the refusal's audit record is part of it). The outer error is the store's.
fn decide_in(
    tx: &rusqlite::Connection,
    token_sha256: &str,
    attempt: &Attempt,
    now_ms: i64,
) -> StoreResult<Result<Decided, Refused>> {
    let Some(view) = view_where(tx, "a.token_sha256 = ?1", token_sha256)? else {
        return Ok(Err((Refusal::UnknownToken, None)));
    };
    if let Some(refusal) = refusal_for(&view, attempt, now_ms) {
        audit_refusal(tx, &view, attempt, &refusal, now_ms)?;
        return Ok(Err((refusal, Some(Box::new(view)))));
    }
    // Listed approvers vote under the spelling the plan gives, so one person is one voter.
    let voter = view
        .approvers
        .iter()
        .find(|a| same_identity(a, &attempt.voter))
        .cloned()
        .unwrap_or_else(|| attempt.voter.trim().to_string());
    let decided = outcome(&view, attempt);
    record_vote(tx, &view, &voter, attempt, decided, now_ms)?;
    let voted = json!({
        "approvalId": view.id, "voter": voter, "approve": attempt.approve, "comment": attempt.comment, "source": attempt.source,
    });
    let settled = decided.map(
        |state| json!({ "approvalId": view.id, "decision": state.as_str(), "by": voter, "source": attempt.source }),
    );
    let (stage, step) = (Some(view.stage), Some(view.index));
    let mut events = vec![NewEvent {
        kind: EventType::ApprovalVoted,
        stage,
        step,
        details: &voted,
    }];
    if let Some(details) = &settled {
        events.push(NewEvent {
            kind: EventType::ApprovalDecided,
            stage,
            step,
            details,
        });
    }
    append_events(tx, &view.execution_id, now_ms, &events)?;
    // The approval as it now stands, without reading it again: the transaction wrote exactly this.
    let mut approval = view;
    approval.votes.push(VoteView {
        voter: voter.clone(),
        approve: attempt.approve,
        comment: attempt.comment.clone(),
        at_ms: now_ms,
    });
    if let Some(state) = decided {
        approval.state = state;
        approval.decided_by = Some(voter);
        approval.decided_ms = Some(now_ms);
        approval.comment = attempt.comment.clone();
    }
    Ok(Ok(Decided {
        approval,
        decisive: decided.is_some(),
    }))
}

/// What an accepted vote does to `view`: a reject decides at once, an approve decides when it
/// is the last one required; `None` means recorded, more approvals needed.
fn outcome(view: &ApprovalView, attempt: &Attempt) -> Option<ApprovalState> {
    if !attempt.approve {
        Some(ApprovalState::Rejected)
    } else if view.approvals_so_far() + 1 >= view.required {
        Some(ApprovalState::Approved)
    } else {
        None
    }
}

/// Writes an accepted vote by `voter` and, if it decided the approval, the decision.
fn record_vote(
    tx: &rusqlite::Connection,
    view: &ApprovalView,
    voter: &str,
    attempt: &Attempt,
    decided: Option<ApprovalState>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO approval_votes (approval_id, voter, approve, comment, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![view.id, voter, attempt.approve, attempt.comment, now_ms])?;
    if let Some(state) = decided {
        tx.prepare_cached("UPDATE approvals SET state = ?2, decided_ms = ?3, decided_by = ?4, comment = ?5 WHERE id = ?1 AND state = 'pending'")?
            .execute(params![view.id, state.as_str(), now_ms, voter, attempt.comment])?;
    }
    Ok(())
}

/// Why `attempt` may not vote on `view` at `now_ms`, if it may not.
fn refusal_for(view: &ApprovalView, attempt: &Attempt, now_ms: i64) -> Option<Refusal> {
    match view.state {
        ApprovalState::Cancelled => return Some(Refusal::Cancelled),
        _ if view.timed_out() => return Some(Refusal::Expired),
        ApprovalState::Approved | ApprovalState::Rejected => {
            let by = view.decided_by.clone().unwrap_or_else(|| "someone".into());
            return Some(Refusal::AlreadyDecided {
                state: view.state.as_str().to_string(),
                by,
            });
        }
        ApprovalState::Pending => {}
    }
    if view.expired_at(now_ms) {
        return Some(Refusal::Expired);
    }
    if !view.approvers.is_empty() && !view.approvers.iter().any(|a| same_identity(a, &attempt.voter)) {
        return Some(Refusal::NotAnApprover {
            voter: attempt.voter.clone(),
            approvers: view.approvers.join(", "),
        });
    }
    if view.forbid_self_approval && attempt.approve && same_identity(&view.requested_by, &attempt.voter) {
        return Some(Refusal::SelfApproval {
            voter: attempt.voter.clone(),
        });
    }
    if view.votes.iter().any(|v| same_identity(&v.voter, &attempt.voter)) {
        return Some(Refusal::AlreadyVoted {
            voter: attempt.voter.clone(),
        });
    }
    None
}

fn audit_refusal(
    tx: &rusqlite::Connection,
    view: &ApprovalView,
    attempt: &Attempt,
    refusal: &Refusal,
    now_ms: i64,
) -> StoreResult<()> {
    let details = json!({
        "approvalId": view.id, "voter": attempt.voter, "approve": attempt.approve, "comment": attempt.comment,
        "source": attempt.source, "refusal": refusal.code(), "reason": refusal.to_string(),
    });
    append_event(
        tx,
        &view.execution_id,
        now_ms,
        EventType::ApprovalRefused,
        Some(view.stage),
        Some(view.index),
        &details,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewApproval;
    use rusqlite::StatementStatus;

    #[test]
    fn the_cached_approval_view_is_not_parsed_again_on_every_use() {
        let store = Store::open_in_memory().expect("store");
        let plan: crate::Plan = serde_json::from_value(json!({
            "name": "p", "stages": [{ "name": "s", "steps": [{ "type": "Human", "name": "h", "message": "ok?" }] }]
        }))
        .expect("plan");
        let exec = store.submit(&plan, 1, Default::default()).expect("submit");
        for (key, hash) in [("k1", "h1"), ("k2", "h2")] {
            let new = NewApproval {
                execution_id: exec.clone(),
                stage: 0,
                index: 0,
                idempotency_key: key.into(),
                token_sha256: hash.into(),
                message: "ok?".into(),
                approvers: vec![],
                required: 1,
                forbid_self: false,
                requested_by: "t".into(),
                deadline_ms: None,
                on_timeout: OnTimeout::Reject,
            };
            store.create_approval(&new, 1).expect("approval");
        }
        for hash in ["h1", "h2", "h1", "h2"] {
            assert!(store.approval_by_token(hash).expect("view").is_some());
        }
        // The statement the decisions use, as the connection's cache holds it: SQLite re-plans
        // a statement on use if a bound value may change its plan, unless the connection has the
        // query planner stability guarantee (it cost a full parse per decision).
        let conn = store.lock();
        let view = conn
            .prepare_cached(&format!("{VIEW_SELECT} WHERE a.token_sha256 = ?1"))
            .expect("cached");
        assert_eq!(view.get_status(StatementStatus::RePrepare), 0);
        assert!(
            view.get_status(StatementStatus::VmStep) > 0,
            "the statement came from the cache, already used"
        );
    }
}
