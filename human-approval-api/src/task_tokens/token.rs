//! A task token as it arrives in a link: telling it from Steppy's own tokens, reading it back into
//! the form Step Functions issued, its stored hash, and keeping it out of any message.

use super::MAX_TOKEN_LEN;
use crate::error::ApiError;
use axum::http::StatusCode;

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

/// `text` without `token` in it (error messages may quote the token), at most 500 characters.
pub(super) fn scrub(text: &str, token: &str) -> String {
    let text = if token.is_empty() {
        text.to_string()
    } else {
        text.replace(token, "[redacted]")
    };
    truncate_utf16(&text, 500).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn error_messages_lose_the_token() {
        assert_eq!(
            scrub("Invalid Token: 'AAA+b=' is bad", "AAA+b="),
            "Invalid Token: '[redacted]' is bad"
        );
    }
}
