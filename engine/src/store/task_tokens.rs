//! Decisions on AWS Step Functions task tokens, as the approval API redeems them for state
//! machines compiled by `steppy compile` (or deployed by the original Steppy).
//!
//! A task token is redeemed once, by `SendTaskSuccess` or `SendTaskFailure`. The API records
//! the decision **before** it calls Step Functions: [`Store::claim_task_token`] inserts the row
//! keyed by the token's SHA-256 (the token itself is never stored), so of racing requests
//! exactly one wins the insert and sends; the others find the row and are refused with it.
//! The row then moves `sending` → `sent` (Step Functions took it) or `closed` (the task was no
//! longer waiting). When Step Functions could not be reached, it stays `sending` with the error
//! noted, and a later request with the same decision (or the API's retry) takes it again: a
//! send in flight holds the row for [`TASK_TOKEN_SEND_STALE_MS`], so two sends never overlap
//! unless one was abandoned (its process died) that long ago.
//!
//! Every attempt, refused ones included, leaves a row in `task_token_attempts`: the audit.

use super::decisions::Attempt;
use super::{CorruptValue, Store, StoreError, StoreResult};
use rusqlite::{OptionalExtension, Row, params};

/// How long a send in flight holds its row: after this, another request may send again (the
/// first one's process is presumed dead). The API bounds each call well below it.
pub const TASK_TOKEN_SEND_STALE_MS: i64 = 120_000;

/// Where a recorded decision stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskTokenState {
    /// Recorded; not (yet) accepted by Step Functions.
    Sending,
    /// Step Functions accepted it.
    Sent,
    /// Step Functions said the task was no longer waiting (timed out, closed, not a token).
    Closed,
}

impl TaskTokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskTokenState::Sending => "sending",
            TaskTokenState::Sent => "sent",
            TaskTokenState::Closed => "closed",
        }
    }

    /// The state spelled `s`; `None` for anything else (an unknown stored state is a
    /// [`CorruptValue`], never a default).
    fn parse(s: &str) -> Option<TaskTokenState> {
        match s {
            "sending" => Some(TaskTokenState::Sending),
            "sent" => Some(TaskTokenState::Sent),
            "closed" => Some(TaskTokenState::Closed),
            _ => None,
        }
    }
}

/// The decision recorded for one task token. Holds neither the token nor its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTokenDecision {
    pub approve: bool,
    pub approver: String,
    pub comment: Option<String>,
    /// Where the deciding request came from (an IP address).
    pub source: String,
    pub decided_ms: i64,
    pub state: TaskTokenState,
    /// Sends attempted so far.
    pub attempts: u32,
    /// Why the last send did not go through (token-free), while `sending` or once `closed`.
    pub last_error: Option<String>,
    pub updated_ms: i64,
    /// True if a send is under way (started less than [`TASK_TOKEN_SEND_STALE_MS`] ago).
    pub in_flight: bool,
}

/// What [`Store::claim_task_token`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The caller now holds the send of this decision: a new claim (`first`), or a resend of
    /// the recorded decision, which is still `sending` and was asked for again.
    Send { decision: TaskTokenDecision, first: bool },
    /// Another decision stands, or this one is being sent right now (answered 409).
    Taken(TaskTokenDecision),
    /// Step Functions already said the task is no longer waiting (answered 410).
    Closed(TaskTokenDecision),
}

/// One attempt on a task token, as audited.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTokenAudit {
    pub at_ms: i64,
    /// `claimed`, `resend`, `sent`, `closed`, `unavailable`, `conflict`, `gone`, or a refusal
    /// code (`no-identity`, `bad-identity`, ...).
    pub outcome: String,
    pub approve: Option<bool>,
    pub approver: Option<String>,
    pub comment: Option<String>,
    pub source: String,
    pub detail: Option<String>,
}

const SELECT: &str = "SELECT approve, approver, comment, source, decided_ms, state, send_started_ms, attempts, last_error, updated_ms \
     FROM task_token_decisions WHERE token_sha256 = ?1";

fn decision_from_row(r: &Row<'_>, now_ms: i64, token_sha256: &str) -> rusqlite::Result<TaskTokenDecision> {
    let text: String = r.get("state")?;
    let state = TaskTokenState::parse(&text).ok_or_else(|| {
        let row = format!("the decision on task token hash {token_sha256}");
        CorruptValue::unknown(
            "task_token_decisions",
            "state",
            row,
            &text,
            &["sending", "sent", "closed"],
        )
        .in_row()
    })?;
    let started: Option<i64> = r.get("send_started_ms")?;
    Ok(TaskTokenDecision {
        approve: r.get("approve")?,
        approver: r.get("approver")?,
        comment: r.get("comment")?,
        source: r.get("source")?,
        decided_ms: r.get("decided_ms")?,
        state,
        attempts: r.get::<_, i64>("attempts")?.max(0) as u32,
        last_error: r.get("last_error")?,
        updated_ms: r.get("updated_ms")?,
        in_flight: state == TaskTokenState::Sending && started.is_some_and(|s| now_ms - s < TASK_TOKEN_SEND_STALE_MS),
    })
}

fn read(conn: &rusqlite::Connection, token_sha256: &str, now_ms: i64) -> rusqlite::Result<Option<TaskTokenDecision>> {
    conn.prepare_cached(SELECT)?
        .query_row([token_sha256], |r| decision_from_row(r, now_ms, token_sha256))
        .optional()
}

#[allow(clippy::too_many_arguments)]
fn audit(
    conn: &rusqlite::Connection,
    token_sha256: &str,
    now_ms: i64,
    outcome: &str,
    approve: Option<bool>,
    approver: Option<&str>,
    comment: Option<&str>,
    source: &str,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO task_token_attempts (token_sha256, at_ms, outcome, approve, approver, comment, source, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        token_sha256,
        now_ms,
        outcome,
        approve,
        approver,
        comment,
        source,
        detail
    ])?;
    Ok(())
}

fn audit_attempt(
    conn: &rusqlite::Connection,
    token_sha256: &str,
    now_ms: i64,
    outcome: &str,
    a: &Attempt,
) -> rusqlite::Result<()> {
    audit(
        conn,
        token_sha256,
        now_ms,
        outcome,
        Some(a.approve),
        Some(&a.voter),
        a.comment.as_deref(),
        &a.source,
        None,
    )
}

fn vanished() -> StoreError {
    StoreError::Conflict("the task token's claim vanished".into())
}

impl Store {
    /// Records `attempt` as the decision on the task token whose SHA-256 is `token_sha256`, or
    /// finds the decision already recorded. See [`Claim`]; every outcome is audited.
    pub fn claim_task_token(&self, token_sha256: &str, attempt: &Attempt, now_ms: i64) -> StoreResult<Claim> {
        self.write(|tx| {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO task_token_decisions \
                 (token_sha256, approve, approver, comment, source, decided_ms, state, send_started_ms, attempts, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'sending', ?6, 1, ?6)",
                params![token_sha256, attempt.approve, attempt.voter, attempt.comment, attempt.source, now_ms],
            )?;
            if inserted == 1 {
                audit_attempt(tx, token_sha256, now_ms, "claimed", attempt)?;
                let decision = read(tx, token_sha256, now_ms)?.ok_or_else(vanished)?;
                return Ok(Claim::Send { decision, first: true });
            }
            let found = read(tx, token_sha256, now_ms)?.ok_or_else(vanished)?;
            let claim = match found.state {
                TaskTokenState::Closed => {
                    audit_attempt(tx, token_sha256, now_ms, "gone", attempt)?;
                    Claim::Closed(found)
                }
                TaskTokenState::Sending if found.approve == attempt.approve && !found.in_flight => {
                    match take_send(tx, token_sha256, now_ms)? {
                        Some(decision) => {
                            audit_attempt(tx, token_sha256, now_ms, "resend", attempt)?;
                            Claim::Send { decision, first: false }
                        }
                        None => {
                            audit_attempt(tx, token_sha256, now_ms, "conflict", attempt)?;
                            Claim::Taken(found)
                        }
                    }
                }
                _ => {
                    audit_attempt(tx, token_sha256, now_ms, "conflict", attempt)?;
                    Claim::Taken(found)
                }
            };
            Ok(claim)
        })
    }

    /// Takes the send of a decision that is still `sending` and not in flight (the API's retry).
    /// `None` if there is nothing to send (sent, closed, in flight, or no such decision).
    pub fn take_task_token_resend(&self, token_sha256: &str, now_ms: i64) -> StoreResult<Option<TaskTokenDecision>> {
        self.write(|tx| {
            let taken = take_send(tx, token_sha256, now_ms)?;
            if taken.is_some() {
                audit(tx, token_sha256, now_ms, "retry", None, None, None, "retry", None)?;
            }
            Ok(taken)
        })
    }

    /// Step Functions accepted the decision: `sending` → `sent`.
    pub fn task_token_sent(&self, token_sha256: &str, now_ms: i64) -> StoreResult<Option<TaskTokenDecision>> {
        self.finish_send(token_sha256, now_ms, "sent", Some(TaskTokenState::Sent), None)
    }

    /// Step Functions said the task is no longer waiting: `sending` → `closed`, with `why`.
    pub fn task_token_closed(
        &self,
        token_sha256: &str,
        why: &str,
        now_ms: i64,
    ) -> StoreResult<Option<TaskTokenDecision>> {
        self.finish_send(token_sha256, now_ms, "closed", Some(TaskTokenState::Closed), Some(why))
    }

    /// Step Functions could not be reached: the decision stays `sending`, free to be sent again.
    pub fn task_token_unavailable(
        &self,
        token_sha256: &str,
        why: &str,
        now_ms: i64,
    ) -> StoreResult<Option<TaskTokenDecision>> {
        self.finish_send(token_sha256, now_ms, "unavailable", None, Some(why))
    }

    fn finish_send(
        &self,
        token_sha256: &str,
        now_ms: i64,
        outcome: &str,
        to: Option<TaskTokenState>,
        why: Option<&str>,
    ) -> StoreResult<Option<TaskTokenDecision>> {
        self.write(|tx| {
            let state = to.unwrap_or(TaskTokenState::Sending).as_str();
            tx.execute(
                "UPDATE task_token_decisions SET state = ?2, send_started_ms = NULL, last_error = ?3, updated_ms = ?4 \
                 WHERE token_sha256 = ?1 AND state = 'sending'",
                params![token_sha256, state, why, now_ms],
            )?;
            audit(
                tx,
                token_sha256,
                now_ms,
                outcome,
                None,
                None,
                None,
                "step-functions",
                why,
            )?;
            Ok(read(tx, token_sha256, now_ms)?)
        })
    }

    /// Audits an attempt refused before it could claim (e.g. no identity). Returns nothing: the
    /// recorded decision, if any, is unchanged.
    #[allow(clippy::too_many_arguments)]
    pub fn task_token_refused(
        &self,
        token_sha256: &str,
        code: &str,
        approve: Option<bool>,
        approver: Option<&str>,
        comment: Option<&str>,
        source: &str,
        reason: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.read(|conn| {
            Ok(audit(
                conn,
                token_sha256,
                now_ms,
                code,
                approve,
                approver,
                comment,
                source,
                Some(reason),
            )?)
        })
    }

    /// The decision recorded for the task token whose SHA-256 is `token_sha256`, if any.
    pub fn task_token_decision(&self, token_sha256: &str, now_ms: i64) -> StoreResult<Option<TaskTokenDecision>> {
        self.read(|conn| Ok(read(conn, token_sha256, now_ms)?))
    }

    /// Hashes of the decisions still to be sent (`sending`, not in flight), oldest first.
    pub fn task_tokens_to_resend(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            let mut st = conn.prepare_cached(
                "SELECT token_sha256 FROM task_token_decisions WHERE state = 'sending' \
                 AND (send_started_ms IS NULL OR send_started_ms <= ?1) ORDER BY decided_ms LIMIT ?2",
            )?;
            Ok(st
                .query_map(params![now_ms - TASK_TOKEN_SEND_STALE_MS, limit as i64], |r| r.get(0))
                .and_then(|rows| rows.collect())?)
        })
    }

    /// Every audited attempt on the task token whose SHA-256 is `token_sha256`, oldest first.
    pub fn task_token_audit(&self, token_sha256: &str) -> StoreResult<Vec<TaskTokenAudit>> {
        self.read(|conn| {
            let mut st = conn.prepare_cached(
                "SELECT at_ms, outcome, approve, approver, comment, source, detail FROM task_token_attempts \
                 WHERE token_sha256 = ?1 ORDER BY id",
            )?;
            Ok(st
                .query_map([token_sha256], |r| {
                    Ok(TaskTokenAudit {
                        at_ms: r.get(0)?,
                        outcome: r.get(1)?,
                        approve: r.get(2)?,
                        approver: r.get(3)?,
                        comment: r.get(4)?,
                        source: r.get(5)?,
                        detail: r.get(6)?,
                    })
                })
                .and_then(|rows| rows.collect())?)
        })
    }
}

/// Marks a `sending`, not-in-flight decision as in flight again; `None` if it is not one.
fn take_send(
    tx: &rusqlite::Connection,
    token_sha256: &str,
    now_ms: i64,
) -> rusqlite::Result<Option<TaskTokenDecision>> {
    let taken = tx.execute(
        "UPDATE task_token_decisions SET send_started_ms = ?2, attempts = attempts + 1, updated_ms = ?2 \
         WHERE token_sha256 = ?1 AND state = 'sending' AND (send_started_ms IS NULL OR send_started_ms <= ?3)",
        params![token_sha256, now_ms, now_ms - TASK_TOKEN_SEND_STALE_MS],
    )?;
    if taken == 0 {
        return Ok(None);
    }
    read(tx, token_sha256, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(approve: bool, voter: &str) -> Attempt {
        Attempt {
            approve,
            voter: voter.into(),
            comment: Some("c".into()),
            source: "10.0.0.1".into(),
        }
    }

    fn outcomes(store: &Store, hash: &str) -> Vec<String> {
        store
            .task_token_audit(hash)
            .expect("audit")
            .into_iter()
            .map(|a| a.outcome)
            .collect()
    }

    #[test]
    fn one_claim_per_token_and_refusals_are_audited() {
        let store = Store::open_in_memory().expect("store");
        let Claim::Send { decision, first: true } = store
            .claim_task_token("h1", &attempt(true, "ann"), 1_000)
            .expect("claim")
        else {
            panic!("the first claim sends");
        };
        assert_eq!(
            (
                decision.approver.as_str(),
                decision.state,
                decision.attempts,
                decision.in_flight
            ),
            ("ann", TaskTokenState::Sending, 1, true)
        );
        // While it is in flight, neither the same nor another decision may send.
        assert!(
            matches!(store.claim_task_token("h1", &attempt(true, "ann"), 1_001).expect("claim"), Claim::Taken(d) if d.approver == "ann")
        );
        assert!(
            matches!(store.claim_task_token("h1", &attempt(false, "bob"), 1_002).expect("claim"), Claim::Taken(d) if d.approve)
        );
        let sent = store.task_token_sent("h1", 1_500).expect("sent").expect("row");
        assert_eq!((sent.state, sent.in_flight), (TaskTokenState::Sent, false));
        assert!(
            matches!(store.claim_task_token("h1", &attempt(true, "cy"), 2_000).expect("claim"), Claim::Taken(d) if d.state == TaskTokenState::Sent)
        );
        assert_eq!(
            outcomes(&store, "h1"),
            ["claimed", "conflict", "conflict", "sent", "conflict"]
        );
        let audit = store.task_token_audit("h1").expect("audit");
        assert_eq!(
            (audit[2].approver.as_deref(), audit[2].approve, audit[2].source.as_str()),
            (Some("bob"), Some(false), "10.0.0.1")
        );
    }

    #[test]
    fn an_unavailable_send_is_resent_with_the_same_decision_only() {
        let store = Store::open_in_memory().expect("store");
        store
            .claim_task_token("h", &attempt(false, "ann"), 1_000)
            .expect("claim");
        let d = store
            .task_token_unavailable("h", "ThrottlingException", 1_100)
            .expect("noted")
            .expect("row");
        assert_eq!(
            (d.state, d.in_flight, d.last_error.as_deref()),
            (TaskTokenState::Sending, false, Some("ThrottlingException"))
        );
        assert_eq!(store.task_tokens_to_resend(1_200, 10).expect("list"), ["h"]);
        // Another decision does not replace the recorded one; the same one takes the send again.
        assert!(matches!(
            store
                .claim_task_token("h", &attempt(true, "bob"), 1_200)
                .expect("claim"),
            Claim::Taken(_)
        ));
        let Claim::Send { decision, first: false } = store
            .claim_task_token("h", &attempt(false, "cy"), 1_300)
            .expect("claim")
        else {
            panic!("the same decision resends");
        };
        assert_eq!(
            (decision.approver.as_str(), decision.attempts, decision.decided_ms),
            ("ann", 2, 1_000),
            "the recorded decision is what is sent"
        );
        assert!(
            store.task_tokens_to_resend(1_400, 10).expect("list").is_empty(),
            "in flight"
        );
        assert_eq!(store.take_task_token_resend("h", 1_400).expect("take"), None);
        // A send abandoned (its process died) may be taken again once stale.
        let later = 1_300 + TASK_TOKEN_SEND_STALE_MS;
        assert_eq!(store.task_tokens_to_resend(later, 10).expect("list"), ["h"]);
        assert_eq!(
            store
                .take_task_token_resend("h", later)
                .expect("take")
                .map(|d| d.attempts),
            Some(3)
        );
        let closed = store
            .task_token_closed("h", "TaskTimedOut", later + 1)
            .expect("closed")
            .expect("row");
        assert_eq!(closed.state, TaskTokenState::Closed);
        assert!(matches!(
            store
                .claim_task_token("h", &attempt(false, "ann"), later + 2)
                .expect("claim"),
            Claim::Closed(_)
        ));
        assert_eq!(
            outcomes(&store, "h"),
            [
                "claimed",
                "unavailable",
                "conflict",
                "resend",
                "retry",
                "closed",
                "gone"
            ]
        );
    }

    #[test]
    fn refusals_before_a_claim_are_audited_and_change_nothing() {
        let store = Store::open_in_memory().expect("store");
        store
            .task_token_refused("h", "no-identity", Some(true), None, None, "10.0.0.2", "no header", 5)
            .expect("audit");
        assert_eq!(store.task_token_decision("h", 6).expect("read"), None);
        assert_eq!(outcomes(&store, "h"), ["no-identity"]);
    }
}
