//! Token-free logging: [`redact_path`] hides the token in approval paths and query strings,
//! and [`access_log`] prints one redacted line per request when enabled.

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
                Some((k, _)) if k.eq_ignore_ascii_case("taskToken") || k.eq_ignore_ascii_case("token") => format!("{k}=[redacted]"),
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&q.join("&"));
    }
    out
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
        assert_eq!(redact_path("/api/approvals?state=pending"), "/api/approvals?state=pending");
        assert_eq!(redact_path("/api/executions/abc"), "/api/executions/abc");
    }
}
