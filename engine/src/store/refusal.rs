//! [`Refusal`]: the one type of the store's refusals, requests it turns down by a rule of its
//! own (a decided approval, a vote from someone not listed, an abort of an ended execution, a
//! write from a process that lost its lease), as opposed to trouble with the database.

/// Why the store refused a request: a vote, a decision, an abort, a batch from a process
/// that lost its lease. Phrased as a sentence by `Display` (also inside
/// [`StoreError::Refused`](super::StoreError::Refused)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no approval with id {id}")]
    NoApproval { id: String },
    #[error("execution {id} has already ended ({state}); there is nothing to abort")]
    ExecutionEnded { id: String, state: String },
    /// A batch would change `execution_id`, whose lease this process no longer holds.
    #[error("execution {execution_id} is no longer leased to this process (another one took it over)")]
    LeaseLost { execution_id: String },
    #[error("no approval matches this token (it was never issued, or it was replaced by a newer one)")]
    UnknownToken,
    #[error("this approval expired; it was settled as its plan's onTimeout says")]
    Expired,
    #[error("this approval is no longer open: its execution was aborted")]
    Cancelled,
    #[error("this approval was already {state} by {by}; a decision is final")]
    AlreadyDecided { state: String, by: String },
    #[error("{voter} is not one of the approvers of this step ({approvers})")]
    NotAnApprover { voter: String, approvers: String },
    #[error("{voter} started this execution and may not approve it (forbidSelfApproval)")]
    SelfApproval { voter: String },
    #[error("{voter} has already voted on this approval; each approver votes once")]
    AlreadyVoted { voter: String },
    /// Found by the caller before the rules are checked (see [`Store::refuse`](super::Store::refuse)): a browser
    /// said the request came from another site.
    #[error("decisions must be made from the approval page itself, not from another site")]
    CrossSite,
}

impl Refusal {
    /// A short machine-readable code (kept in the audit event and the JSON API).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoApproval { .. } => "no-approval",
            Refusal::ExecutionEnded { .. } => "execution-ended",
            Refusal::LeaseLost { .. } => "lease-lost",
            Refusal::UnknownToken => "unknown-token",
            Refusal::Expired => "expired",
            Refusal::Cancelled => "cancelled",
            Refusal::AlreadyDecided { .. } => "already-decided",
            Refusal::NotAnApprover { .. } => "not-an-approver",
            Refusal::SelfApproval { .. } => "self-approval",
            Refusal::AlreadyVoted { .. } => "already-voted",
            Refusal::CrossSite => "cross-site",
        }
    }
}
