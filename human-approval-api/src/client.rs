//! A minimal HTTP/1.1 client for `POST {server}/api/approvals/{token}/decision`, so that
//! `steppy approve TOKEN --server URL` needs no HTTP library. Plain `http://` only (put TLS in
//! front of the server, and call it from inside, or use the web page).

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Why the server could not be asked; every message names the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the server URL must start with http:// (got {server}); this client does not speak TLS")]
    NotHttp { server: String },
    #[error("cannot reach {server}: {source}")]
    Connect { server: String, source: std::io::Error },
    #[error("cannot send to {server}: {source}")]
    Send { server: String, source: std::io::Error },
    #[error("no answer from {server}: {source}")]
    Receive { server: String, source: std::io::Error },
    #[error("{server} sent an answer that is not HTTP")]
    NotHttpAnswer { server: String },
    #[error("{server} sent an answer without a status code")]
    NoStatus { server: String },
}

/// The server's answer: status code and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// Sends a decision. `Err` says why the server could not be asked.
pub fn post_decision(
    server: &str,
    token: &str,
    approve: bool,
    comment: Option<&str>,
    approver: &str,
) -> Result<Answer, ClientError> {
    let rest = server
        .trim_end_matches('/')
        .strip_prefix("http://")
        .ok_or_else(|| ClientError::NotHttp {
            server: server.to_string(),
        })?;
    let (authority, base) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let body =
        json!({ "decision": if approve { "approve" } else { "reject" }, "comment": comment, "approver": approver })
            .to_string();
    let request = format!(
        "POST {base}/api/approvals/{}/decision HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        token.trim(),
        body.len()
    );
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut stream = TcpStream::connect(&addr).map_err(|source| ClientError::Connect {
        server: server.to_string(),
        source,
    })?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    stream
        .write_all(request.as_bytes())
        .map_err(|source| ClientError::Send {
            server: server.to_string(),
            source,
        })?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|source| ClientError::Receive {
        server: server.to_string(),
        source,
    })?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| ClientError::NotHttpAnswer {
        server: server.to_string(),
    })?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::NoStatus {
            server: server.to_string(),
        })?;
    let body = serde_json::from_str(body.trim()).unwrap_or_else(|_| json!({ "error": body.trim() }));
    Ok(Answer { status, body })
}
