//! Redeeming AWS Step Functions task tokens: the approval links of state machines compiled by
//! `steppy compile` and of those deployed by the original Steppy
//! (`/humanConfirmation?taskToken=…&action=approve|reject`).
//!
//! - [`TaskTokens`]: the two calls that redeem a token (`SendTaskSuccess`, `SendTaskFailure`),
//!   object-safe so tests can count calls and inject errors; [`SfnTaskTokens`] is the real one.
//! - [`redeem`]: durable first, then act. The decision is claimed in the store
//!   ([`Store::claim_task_token`](steppy_engine::store::Store::claim_task_token), keyed by the
//!   token's SHA-256, one decision per token), then sent; the answer says whether Step Functions
//!   took it ([`Redeemed::Sent`]), someone decided first ([`Redeemed::Conflict`]), the task was
//!   no longer waiting ([`Redeemed::Closed`]) or Step Functions could not be reached
//!   ([`Redeemed::Unavailable`]: the decision stays recorded and is sent again).
//! - [`resend_pending`] / [`resend_loop`]: sending again what could not be sent.
//!
//! Tokens are capabilities: the store keeps only their hash, and nothing here logs them. To
//! send a decision again without a new request, the token of a decision that could not be sent
//! is kept **in memory** ([`HeldTokens`]), never on disk; after a restart such a decision is sent
//! again when someone with the link confirms it (the page offers to).

use crate::error::{ApiError, blocking};
use crate::state::AppState;
use crate::time;
use axum::http::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use steppy_engine::clock::system_now_ms;
use steppy_engine::store::{Attempt, Claim, TaskTokenDecision, TaskTokenState};

pub use steppy_engine::executor::BoxFuture;

/// Longest task token Step Functions issues.
pub const MAX_TOKEN_LEN: usize = 2048;
/// Longest `error` of `SendTaskFailure`.
pub const MAX_ERROR_LEN: usize = 256;
/// Longest `cause` of `SendTaskFailure`.
pub const MAX_CAUSE_LEN: usize = 32_768;
/// The longest one call to Step Functions may take before it counts as unavailable (well below
/// the store's [`TASK_TOKEN_SEND_STALE_MS`](steppy_engine::store::TASK_TOKEN_SEND_STALE_MS)).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Most tokens held in memory for a later resend.
const MAX_HELD: usize = 10_000;

/// Why a task token could not be redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeemError {
    /// The task is no longer waiting for this token (Step Functions' `InvalidToken`,
    /// `TaskTimedOut`, `TaskDoesNotExist`): nothing will ever redeem it.
    NoLongerWaiting(String),
    /// Anything else (network, throttling, credentials, a 5xx): worth trying again.
    Unavailable(String),
}

impl std::fmt::Display for RedeemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedeemError::NoLongerWaiting(why) => write!(f, "the task is no longer waiting: {why}"),
            RedeemError::Unavailable(why) => write!(f, "Step Functions could not be reached: {why}"),
        }
    }
}

impl std::error::Error for RedeemError {}

/// Redeems task tokens: `SendTaskSuccess` and `SendTaskFailure`.
pub trait TaskTokens: Send + Sync {
    /// Completes the task with `output_json` (a JSON document) as its output.
    fn succeed<'a>(&'a self, token: &'a str, output_json: &'a str) -> BoxFuture<'a, Result<(), RedeemError>>;
    /// Fails the task with `error` and `cause`.
    fn fail<'a>(&'a self, token: &'a str, error: &'a str, cause: &'a str) -> BoxFuture<'a, Result<(), RedeemError>>;
}

/// [`TaskTokens`] on AWS Step Functions.
#[derive(Clone, Debug)]
pub struct SfnTaskTokens {
    client: aws_sdk_sfn::Client,
}

/// The error codes that mean the task will never take this token.
const NO_LONGER_WAITING: [&str; 3] = ["InvalidToken", "TaskTimedOut", "TaskDoesNotExist"];

impl SfnTaskTokens {
    pub fn new(client: aws_sdk_sfn::Client) -> SfnTaskTokens {
        SfnTaskTokens { client }
    }

    /// A Step Functions client from the standard AWS configuration (region, credentials):
    /// `state.with_task_tokens(Arc::new(SfnTaskTokens::from_config(&sdk_config)))`.
    pub fn from_config(config: &aws_config::SdkConfig) -> SfnTaskTokens {
        SfnTaskTokens::new(aws_sdk_sfn::Client::new(config))
    }
}

fn classify<E, R>(e: aws_sdk_sfn::error::SdkError<E, R>) -> RedeemError
where
    E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let Some(service) = e.as_service_error()
        && let Some(code) = service.code().filter(|c| NO_LONGER_WAITING.contains(c))
    {
        return RedeemError::NoLongerWaiting(format!("{code}: {}", service.message().unwrap_or("no message")));
    }
    RedeemError::Unavailable(aws_sdk_sfn::error::DisplayErrorContext(&e).to_string())
}

impl TaskTokens for SfnTaskTokens {
    fn succeed<'a>(&'a self, token: &'a str, output_json: &'a str) -> BoxFuture<'a, Result<(), RedeemError>> {
        Box::pin(async move {
            self.client
                .send_task_success()
                .task_token(token)
                .output(output_json)
                .send()
                .await
                .map(|_| ())
                .map_err(classify)
        })
    }

    fn fail<'a>(&'a self, token: &'a str, error: &'a str, cause: &'a str) -> BoxFuture<'a, Result<(), RedeemError>> {
        Box::pin(async move {
            self.client
                .send_task_failure()
                .task_token(token)
                .error(error)
                .cause(cause)
                .send()
                .await
                .map(|_| ())
                .map_err(classify)
        })
    }
}

/// True if `token` is one of Steppy's own approval tokens (they start with `stp_`), which the
/// local engine's approvals handle; anything else is taken for a Step Functions task token.
pub fn is_steppy_token(token: &str) -> bool {
    token.starts_with("stp_")
}

/// Why a task token from a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Missing,
    TooLong,
    BadCharacters,
}

impl TokenProblem {
    /// The 400 answer.
    pub fn to_error(self) -> ApiError {
        let message = match self {
            TokenProblem::Missing => "the link has no task token".to_string(),
            TokenProblem::TooLong => format!(
                "the task token is longer than the {MAX_TOKEN_LEN} characters Step Functions issues; the link is damaged"
            ),
            TokenProblem::BadCharacters => {
                "the task token has characters Step Functions tokens never have; the link is damaged".to_string()
            }
        };
        ApiError::new(StatusCode::BAD_REQUEST, "bad-task-token", message)
    }
}

/// The task token as Step Functions issued it: spaces turned back into `+` (a link built
/// without URL-encoding the token loses its `+` to URL decoding), then checked: 1 to 2048
/// printable ASCII characters.
pub fn normalize_token(raw: &str) -> Result<String, TokenProblem> {
    if raw.is_empty() {
        return Err(TokenProblem::Missing);
    }
    if raw.len() > MAX_TOKEN_LEN {
        return Err(TokenProblem::TooLong);
    }
    let token = raw.replace(' ', "+");
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenProblem::BadCharacters);
    }
    Ok(token)
}

/// The stored form of a task token: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    steppy_executors::human::token_hash(token)
}

/// `s` cut to at most `max` UTF-16 code units (how Step Functions counts), on a char boundary.
pub fn truncate_utf16(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..i];
        }
    }
    s
}

/// The output of an approved task: `{"decision":"approved","approver","comment","decidedAt"}`.
pub fn output_json(d: &TaskTokenDecision) -> String {
    json!({
        "decision": if d.approve { "approved" } else { "rejected" },
        "approver": d.approver,
        "comment": d.comment,
        "decidedAt": time::rfc3339(d.decided_ms),
    })
    .to_string()
}

/// The `error` and `cause` of a rejected task (`Steppy.Rejected`; who rejected, when, why).
pub fn failure(d: &TaskTokenDecision) -> (String, String) {
    let when = time::rfc3339(d.decided_ms);
    let cause = match &d.comment {
        Some(c) => format!("rejected by {} at {when}: {c}", d.approver),
        None => format!("rejected by {} at {when} (no comment)", d.approver),
    };
    let error = truncate_utf16(steppy_engine::asl::REJECTED, MAX_ERROR_LEN).to_string();
    (error, truncate_utf16(&cause, MAX_CAUSE_LEN).to_string())
}

/// Tokens of decisions that could not be sent yet, by hash, **in memory only** (so that
/// [`resend_pending`] can send them without a new request). Never printed.
#[derive(Default)]
pub struct HeldTokens(Mutex<HashMap<String, String>>);

impl HeldTokens {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hold(&self, hash: &str, token: &str) {
        let mut map = self.map();
        if map.len() < MAX_HELD || map.contains_key(hash) {
            map.insert(hash.to_string(), token.to_string());
        }
    }

    fn get(&self, hash: &str) -> Option<String> {
        self.map().get(hash).cloned()
    }

    fn release(&self, hash: &str) {
        self.map().remove(hash);
    }

    /// How many tokens are held.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for HeldTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldTokens({} held)", self.len())
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

/// `text` without `token` in it (error messages may quote the token), at most 500 characters.
fn scrub(text: &str, token: &str) -> String {
    let text = if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "[redacted]")
    };
    truncate_utf16(&text, 500).to_string()
}

/// Records `attempt` as the decision on `token` (already [`normalize_token`]d), then sends it.
pub async fn redeem(state: &AppState, token: &str, attempt: Attempt) -> Result<Redeemed, ApiError> {
    let tokens = state.task_tokens.clone().ok_or_else(disabled)?;
    let hash = token_hash(token);
    let (store, h) = (state.store.clone(), hash.clone());
    let claim = blocking(move || store.claim_task_token(&h, &attempt, system_now_ms())).await?;
    let decision = match claim {
        Claim::Taken(d) => return Ok(Redeemed::Conflict(d)),
        Claim::Closed(d) => return Ok(Redeemed::Closed(d)),
        Claim::Send { decision, .. } => decision,
    };
    // The send runs in its own task, so a client that hangs up does not abandon it half-way.
    let (state, token) = (state.clone(), token.to_string());
    tokio::spawn(async move { send(&state, tokens.as_ref(), &hash, &token, decision).await })
        .await
        .map_err(|e| ApiError::internal(format!("sending the decision failed: {e}")))
}

/// Sends `decision` (whose send this caller holds) and records what Step Functions said.
async fn send(
    state: &AppState,
    tokens: &dyn TaskTokens,
    hash: &str,
    token: &str,
    decision: TaskTokenDecision,
) -> Redeemed {
    let call = async {
        if decision.approve {
            tokens.succeed(token, &output_json(&decision)).await
        } else {
            let (error, cause) = failure(&decision);
            tokens.fail(token, &error, &cause).await
        }
    };
    let result = match tokio::time::timeout(SEND_TIMEOUT, call).await {
        Ok(r) => r,
        Err(_) => Err(RedeemError::Unavailable(format!(
            "no answer within {} s",
            SEND_TIMEOUT.as_secs()
        ))),
    };
    let (store, h, now) = (state.store.clone(), hash.to_string(), system_now_ms());
    // If the store fails here, the answer still says what Step Functions did (the row stays
    // in flight, and a later resend learns that the task is closed).
    let mut local = decision;
    local.in_flight = false;
    local.updated_ms = now;
    match result {
        Ok(()) => {
            state.held_task_tokens.release(hash);
            local.state = TaskTokenState::Sent;
            local.last_error = None;
            let recorded = blocking(move || store.task_token_sent(&h, now)).await;
            Redeemed::Sent(recorded.ok().flatten().unwrap_or(local))
        }
        Err(RedeemError::NoLongerWaiting(why)) => {
            state.held_task_tokens.release(hash);
            let why = scrub(&why, token);
            local.state = TaskTokenState::Closed;
            local.last_error = Some(why.clone());
            let recorded = blocking(move || store.task_token_closed(&h, &why, now)).await;
            Redeemed::Closed(recorded.ok().flatten().unwrap_or(local))
        }
        Err(RedeemError::Unavailable(why)) => {
            state.held_task_tokens.hold(hash, token);
            let why = scrub(&why, token);
            local.last_error = Some(why.clone());
            let recorded = blocking(move || store.task_token_unavailable(&h, &why, now)).await;
            Redeemed::Unavailable(recorded.ok().flatten().unwrap_or(local))
        }
    }
}

/// What [`resend_pending`] did.
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

/// Sends again every recorded decision that Step Functions has not taken yet and whose token
/// this process holds. Call it at start (it then reports what waits for a link) and
/// periodically ([`resend_loop`]); each decision is sent by one caller at a time.
pub async fn resend_pending(state: &AppState) -> Result<ResendReport, ApiError> {
    let mut report = ResendReport::default();
    let Some(tokens) = state.task_tokens.clone() else {
        return Ok(report);
    };
    let store = state.store.clone();
    let hashes = blocking(move || store.task_tokens_to_resend(system_now_ms(), 1000)).await?;
    for hash in hashes {
        let Some(token) = state.held_task_tokens.get(&hash) else {
            report.need_link += 1;
            continue;
        };
        let (store, h) = (state.store.clone(), hash.clone());
        let Some(decision) = blocking(move || store.take_task_token_resend(&h, system_now_ms())).await? else {
            continue; // someone else took it meanwhile
        };
        match send(state, tokens.as_ref(), &hash, &token, decision).await {
            Redeemed::Sent(_) => report.sent += 1,
            Redeemed::Closed(_) => report.closed += 1,
            Redeemed::Unavailable(_) => report.unavailable += 1,
            Redeemed::Conflict(_) => {}
        }
    }
    Ok(report)
}

/// Runs [`resend_pending`] every `every`, forever (spawn it beside the server).
pub async fn resend_loop(state: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let _ = resend_pending(&state).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(approve: bool, comment: Option<&str>) -> TaskTokenDecision {
        TaskTokenDecision {
            approve,
            approver: "ann@example.com".into(),
            comment: comment.map(str::to_string),
            source: "10.0.0.1".into(),
            decided_ms: 1_709_301_907_123,
            state: TaskTokenState::Sending,
            attempts: 1,
            last_error: None,
            updated_ms: 0,
            in_flight: true,
        }
    }

    #[test]
    fn tokens_are_normalized_and_checked() {
        assert_eq!(normalize_token("AAAA BBB/c=="), Ok("AAAA+BBB/c==".into()));
        assert_eq!(
            normalize_token("0f1e2d3c-aaaa-bbbb-cccc-000000000000"),
            Ok("0f1e2d3c-aaaa-bbbb-cccc-000000000000".into())
        );
        assert_eq!(normalize_token(""), Err(TokenProblem::Missing));
        assert_eq!(
            normalize_token(&"A".repeat(MAX_TOKEN_LEN)).map(|t| t.len()),
            Ok(MAX_TOKEN_LEN)
        );
        assert_eq!(
            normalize_token(&"A".repeat(MAX_TOKEN_LEN + 1)),
            Err(TokenProblem::TooLong)
        );
        for bad in ["a\nb", "a\u{0}b", "a\tb", "é", "a\u{7f}"] {
            assert_eq!(normalize_token(bad), Err(TokenProblem::BadCharacters), "{bad:?}");
        }
        assert!(is_steppy_token("stp_x") && !is_steppy_token("AAAA"));
    }

    #[test]
    fn truncation_counts_utf16_units_and_keeps_char_boundaries() {
        assert_eq!(truncate_utf16("abc", 2), "ab");
        assert_eq!(truncate_utf16("abc", 3), "abc");
        assert_eq!(truncate_utf16("aé😀b", 2), "aé");
        assert_eq!(
            truncate_utf16("aé😀b", 3),
            "aé",
            "an emoji is two UTF-16 units; never half of it"
        );
        assert_eq!(truncate_utf16("aé😀b", 4), "aé😀");
        assert_eq!(truncate_utf16("", 0), "");
    }

    #[test]
    fn output_and_failure_say_who_and_why() {
        let out: serde_json::Value = serde_json::from_str(&output_json(&decision(true, Some("ok")))).expect("json");
        assert_eq!(
            out,
            json!({ "decision": "approved", "approver": "ann@example.com", "comment": "ok", "decidedAt": "2024-03-01T14:05:07.123Z" })
        );
        let (error, cause) = failure(&decision(false, Some("not today")));
        assert_eq!(error, "Steppy.Rejected");
        assert_eq!(
            cause,
            "rejected by ann@example.com at 2024-03-01T14:05:07.123Z: not today"
        );
        let huge = "😀".repeat(MAX_CAUSE_LEN);
        let (_, cause) = failure(&decision(false, Some(&huge)));
        assert!(
            cause.encode_utf16().count() <= MAX_CAUSE_LEN && cause.starts_with("rejected by ann"),
            "{}",
            cause.len()
        );
        assert!(failure(&decision(false, None)).1.ends_with("(no comment)"));
    }

    #[test]
    fn error_messages_lose_the_token() {
        assert_eq!(
            scrub("Invalid Token: 'AAA+b=' is bad", "AAA+b="),
            "Invalid Token: '[redacted]' is bad"
        );
    }
}
