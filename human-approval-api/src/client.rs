//! The client side of `POST {server}/api/approvals/{token}/decision`, for `steppy approve
//! TOKEN --server URL`: one request through `reqwest`. Plain `http://` only (this build
//! carries no TLS; put TLS in front of the server and call it from inside, or use the page).

use serde_json::{Value, json};
use std::time::Duration;
use steppy_engine::store::Verdict;

/// How long the server has to answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why the server could not be asked; every message names the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server URL must start with http:// (got {server}); this client does not speak TLS")]
    NotHttp { server: String },
    #[error("cannot ask {server}: {source}")]
    Request { server: String, source: reqwest::Error },
    #[error("{server} sent an answer that could not be read: {source}")]
    Answer { server: String, source: reqwest::Error },
}

/// One decision to send.
#[derive(Debug, Clone, Copy)]
pub struct DecisionRequest<'a> {
    /// The approval token from the link (a capability: sent in the path, never logged here).
    pub token: &'a str,
    pub verdict: Verdict,
    pub comment: Option<&'a str>,
    /// The name recorded with the vote.
    pub approver: &'a str,
}

/// The server's answer: status code and JSON body (a body that is not JSON is wrapped as
/// `{"error": TEXT}`).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// Sends a decision to `server` (e.g. `http://127.0.0.1:8080`, a path prefix allowed).
/// `Err` says why the server could not be asked; a refusal is an [`Answer`] with its status.
pub async fn post_decision(server: &str, request: &DecisionRequest<'_>) -> Result<Answer, ClientError> {
    let base = server.trim_end_matches('/');
    if !base.starts_with("http://") {
        return Err(ClientError::NotHttp {
            server: server.to_string(),
        });
    }
    let url = format!("{base}/api/approvals/{}/decision", request.token.trim());
    let body = json!({
        "decision": request.verdict.as_str(),
        "comment": request.comment,
        "approver": request.approver,
    });
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|source| ClientError::Request {
            server: server.to_string(),
            source,
        })?;
    let response = client
        .post(url)
        .json(&body)
        .send()
        .await
        // The error's text would carry the URL, and so the token: drop it.
        .map_err(|source| ClientError::Request {
            server: server.to_string(),
            source: source.without_url(),
        })?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|source| ClientError::Answer {
        server: server.to_string(),
        source: source.without_url(),
    })?;
    let body = serde_json::from_str(text.trim()).unwrap_or_else(|_| json!({ "error": text.trim() }));
    Ok(Answer { status, body })
}
