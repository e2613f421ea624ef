//! Who is deciding: the trusted identity header set by an authenticating proxy when one is
//! configured (then nothing the person types counts), else the name the person typed.

use crate::config::ApiConfig;
use crate::error::ApiError;
use axum::http::{HeaderMap, StatusCode};

/// The longest identity accepted.
const MAX_IDENTITY: usize = 200;

/// The identity from the configured trusted header, if one is configured and sent.
pub fn from_header(config: &ApiConfig, headers: &HeaderMap) -> Option<String> {
    let name = config.identity_header.as_deref()?;
    let value = headers.get(name)?.to_str().ok()?.trim();
    // An AWS ALB's x-amzn-oidc-identity is the subject; a proxy's header may say "accounts.google.com:alice@x".
    let value = value
        .rsplit_once(':')
        .filter(|(_, v)| v.contains('@'))
        .map(|(_, v)| v)
        .unwrap_or(value);
    (!value.is_empty() && value.len() <= MAX_IDENTITY).then(|| value.to_string())
}

/// The identity of the person deciding: the trusted header when configured, else `typed`.
pub fn resolve(config: &ApiConfig, headers: &HeaderMap, typed: Option<&str>) -> Result<String, ApiError> {
    if let Some(header) = config.identity_header.as_deref() {
        return from_header(config, headers).ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "no-identity",
                format!("this service takes your identity from the {header} header set by its sign-in proxy, and the request had none; open the link through the proxy"),
            )
        });
    }
    let typed = typed.map(str::trim).unwrap_or("");
    if typed.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no-identity",
            "please give your name or e-mail address with your decision",
        ));
    }
    if typed.len() > MAX_IDENTITY || typed.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-identity",
            "the name must be at most 200 characters, without control characters",
        ));
    }
    Ok(typed.to_string())
}
