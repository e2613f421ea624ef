//! Token-free logging: [`redact_path`] hides the token in approval paths and query strings
//! (Steppy tokens and Step Functions task tokens alike), and [`access_log`] prints one redacted
//! line per request when enabled. Request bodies (forms and JSON, which carry task tokens on
//! `POST /humanConfirmation` and `POST /api/task-tokens/decision`) are never logged.

use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The request path and query with every approval token replaced by `[redacted]`.
pub fn redact_path(path_and_query: &str) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let mut parts: Vec<String> = path.split('/').map(str::to_string).collect();
    for i in 1..parts.len() {
        if parts[i - 1] == "approvals" && !parts[i].is_empty() {
            parts[i] = "[redacted]".into();
        }
    }
    let mut out = parts.join("/");
    if let Some(q) = query {
        let q: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if is_token_key(k) => format!("{k}=[redacted]"),
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&q.join("&"));
    }
    out
}

/// True for the query keys that carry a token, also when the key is %-encoded (`task%54oken`
/// is decoded to `taskToken` by the handlers, so it must be redacted too).
fn is_token_key(key: &str) -> bool {
    let mut decoded = Vec::with_capacity(key.len());
    let bytes = key.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                decoded.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                decoded.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let key = String::from_utf8_lossy(&decoded);
    let key = key.trim();
    key.eq_ignore_ascii_case("taskToken") || key.eq_ignore_ascii_case("token")
}

/// Middleware: one line per request (method, redacted path, status, milliseconds) on stderr.
pub async fn access_log(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.config.access_log {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let shown = redact_path(req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let started = Instant::now();
    let response = next.run(req).await;
    eprintln!("{method} {shown} {} {:.1}ms", response.status().as_u16(), started.elapsed().as_secs_f64() * 1000.0);
    response
}

#[cfg(test)]
mod tests {
    use super::redact_path;

    #[test]
    fn tokens_never_survive_redaction() {
        let t = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";
        for p in [
            format!("/approvals/{t}"),
            format!("/approvals/{t}?action=approve"),
            format!("/api/approvals/{t}/decision"),
            format!("/humanConfirmation?taskToken={t}&action=reject"),
        ] {
            let r = redact_path(&p);
            assert!(!r.contains(t), "{r}");
            assert!(r.contains("[redacted]"), "{r}");
        }
        // Step Functions task tokens (base64 with + / =), however the key is spelled.
        let sfn = "AQCEAAAAKgAAAAMAAAAA+Gx/4Rk9pZ2lu==";
        for p in [
            format!("/humanConfirmation?taskToken={sfn}&action=approve"),
            format!("/humanConfirmation?action=approve&TASKTOKEN={sfn}"),
            format!("/humanConfirmation?task%54oken={sfn}"),
            format!("/humanConfirmation?taskToken=x&taskToken={sfn}"),
        ] {
            let r = redact_path(&p);
            assert!(!r.contains(sfn) && !r.contains("Gx/4Rk9"), "{r}");
        }
        assert_eq!(redact_path("/humanConfirmation?action=approve"), "/humanConfirmation?action=approve");
        assert_eq!(redact_path("/api/approvals?state=pending"), "/api/approvals?state=pending");
        assert_eq!(redact_path("/api/executions/abc"), "/api/executions/abc");
    }
}
