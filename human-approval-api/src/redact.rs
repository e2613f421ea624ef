//! Token-free request targets for the log ([`crate::request_log`]): the target logged never
//! comes from the raw request line where a token could hide. A matched route
//! is logged as its template (`/approvals/{token}`); any other path goes through
//! [`redact_path`], which judges each segment percent-decoded and case-folded (the router
//! decodes `%61pprovals` too, so the log must see what the router sees). Query values are
//! redacted except a few known harmless ones, and everything printed goes through
//! [`printable`]. Request bodies (forms and JSON, which carry task tokens on
//! `POST /humanConfirmation` and `POST /api/task-tokens/decision`) are never logged.

use std::borrow::Cow;
use steppy_engine::text::printable;

/// What replaces anything that could be a token.
const REDACTED: &str = "[redacted]";
/// A path segment or query key longer than this is redacted: every token is longer (Steppy
/// tokens have 47 characters, Step Functions task tokens hundreds), execution ids are not.
const LONGEST_SHOWN: usize = 40;
/// Query keys whose values are shown (when they are short plain words).
const SHOWN_VALUES: [&str; 3] = ["action", "state", "limit"];

/// The request target as logged: the route's template when one matched, else the path with
/// every possible token redacted; then the query, redacted.
pub fn shown_target(matched: Option<&str>, path: &str, query: Option<&str>) -> String {
    let mut out = match matched {
        Some(template) => printable(template).into_owned(),
        None => redact_path(path),
    };
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_query(q));
    }
    out
}

/// `path` with every segment that is or may be a token replaced by `[redacted]`: one holding
/// `stp_`, one after `approvals`, or one longer than any id (all judged percent-decoded and
/// case-folded), the rest escaped for the log.
pub fn redact_path(path: &str) -> String {
    let mut after_approvals = false;
    let parts: Vec<Cow<'_, str>> = path
        .split('/')
        .map(|raw| {
            let seen = percent_decode(raw).to_lowercase();
            let hide = (after_approvals && !seen.is_empty()) || might_be_token(&seen);
            after_approvals = seen == "approvals";
            if hide { Cow::Borrowed(REDACTED) } else { printable(raw) }
        })
        .collect();
    parts.join("/")
}

/// `query` with every value redacted but those of [`SHOWN_VALUES`] that are short plain words,
/// and every key that could be a token redacted too.
pub fn redact_query(query: &str) -> String {
    let pairs: Vec<String> = query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').map_or((kv, None), |(k, v)| (k, Some(v)));
            let key = if plain_word(k) { k } else { REDACTED };
            match v {
                None => key.to_string(),
                Some(v) if SHOWN_VALUES.contains(&key) && plain_word(v) => format!("{key}={v}"),
                Some(_) => format!("{key}={REDACTED}"),
            }
        })
        .collect();
    pairs.join("&")
}

/// True for ASCII letters, digits, `-` and `_`, up to [`LONGEST_SHOWN`], and nothing like a
/// token: safe to log as it is.
fn plain_word(s: &str) -> bool {
    s.len() <= LONGEST_SHOWN
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !might_be_token(&s.to_lowercase())
}

/// `seen` (decoded, lower case) holds a Steppy token's prefix or is as long as a token.
fn might_be_token(seen: &str) -> bool {
    seen.contains("stp_") || seen.chars().count() > LONGEST_SHOWN
}

/// `%XX` decoded (invalid UTF-8 replaced), `+` kept: how the router reads a path segment.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{redact_path, redact_query, shown_target};

    const T: &str = "stp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd";

    #[test]
    fn tokens_never_survive_in_unmatched_paths() {
        let body = &T[4..];
        for p in [
            format!("/approvals/{T}"),
            format!("/APPROVALS/{T}"),
            format!("/%61pprovals/{T}"),
            format!("/api/approvals/{T}/decision/extra"),
            format!("/x/{T}"),
            format!("/x/%73tp_{body}"),
            format!("/x/STP_{body}"),
            format!("/approvals/{body}"),
            format!("/whatever/{body}"),
        ] {
            let r = redact_path(&p);
            assert!(!r.contains(body), "{p} -> {r}");
            assert!(r.contains("[redacted]"), "{r}");
        }
        assert_eq!(
            redact_path("/api/executions/0193e5a1-7c1a-7d4e-9b1e-3f2a1b0c9d8e/x"),
            "/api/executions/0193e5a1-7c1a-7d4e-9b1e-3f2a1b0c9d8e/x"
        );
        assert_eq!(redact_path("/nope"), "/nope");
    }

    #[test]
    fn query_values_are_redacted_but_harmless_words() {
        let sfn = "AQCEAAAAKgAAAAMAAAAA+Gx/4Rk9pZ2lu==";
        for q in [
            format!("taskToken={sfn}&action=reject"),
            format!("action=approve&TASKTOKEN={sfn}"),
            format!("task%54oken={sfn}"),
            format!("taskToken%00={sfn}"),
            format!("taskToken=x&taskToken={sfn}"),
            format!("state={T}"),
            T.to_string(),
            format!("{T}=1"),
            format!("x={sfn}"),
        ] {
            let r = redact_query(&q);
            assert!(
                !r.contains(sfn) && !r.contains("Gx/4Rk9") && !r.contains(&T[4..]),
                "{q} -> {r}"
            );
        }
        assert_eq!(redact_query("action=approve"), "action=approve");
        assert_eq!(redact_query("state=pending&limit=5"), "state=pending&limit=5");
        assert_eq!(redact_query("other=secret"), "other=[redacted]");
    }

    #[test]
    fn matched_routes_log_their_template_and_control_characters_are_escaped() {
        assert_eq!(
            shown_target(
                Some("/approvals/{token}"),
                &format!("/approvals/{T}"),
                Some("action=approve")
            ),
            "/approvals/{token}?action=approve"
        );
        let r = shown_target(None, "/x\u{1b}[2J\r\nGET /fake 200", None);
        assert!(!r.chars().any(char::is_control), "{r:?}");
    }
}
