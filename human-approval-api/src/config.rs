//! The approval API's settings: the public URL links are built from, the trusted identity
//! header, the admin token, and the limits.

use sha2::{Digest, Sha256};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Why a text cannot be the admin token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminTokenError {
    #[error("the admin token must be at least {MIN_ADMIN_TOKEN_LEN} characters long (it has {0})")]
    TooShort(usize),
}

/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// The admin token for endpoints that start or abort executions. Only its SHA-256 is kept,
/// and a presented token is compared in constant time.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl AdminToken {
    /// An admin token from its text (surrounding whitespace ignored). Refuses short tokens.
    pub fn new(text: &str) -> Result<AdminToken, AdminTokenError> {
        let t = text.trim();
        if t.len() < MIN_ADMIN_TOKEN_LEN {
            return Err(AdminTokenError::TooShort(t.len()));
        }
        Ok(AdminToken(Sha256::digest(t.as_bytes()).into()))
    }

    /// True if `presented` is the admin token (constant time in the token's content).
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        bool::from(self.0.ct_eq(&digest))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Everything configurable about the service.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where people reach the service, e.g. `https://steppy.example.com` (links are built on it).
    pub public_url: String,
    /// A request header set by an authenticating proxy that names the person
    /// (`X-Forwarded-Email`, `x-amzn-oidc-identity`). `None`: people type their name.
    pub identity_header: Option<String>,
    /// Required as `Authorization: Bearer ...` by the endpoints that start or abort executions.
    /// `None`: those endpoints answer 403.
    pub admin_token: Option<AdminToken>,
    /// Unknown-token answers one address may get within [`ApiConfig::guess_window`] before
    /// it is answered 429.
    pub max_token_guesses: u32,
    pub guess_window: Duration,
    /// Wrong admin tokens one address may present within [`ApiConfig::guess_window`] before
    /// the admin endpoints answer it 429.
    pub max_admin_token_guesses: u32,
    /// Largest request body accepted on the approval routes (forms, JSON decisions).
    pub max_decision_body: usize,
    /// Largest plan accepted by `POST /api/executions`.
    pub max_plan_body: usize,
    /// Print one redacted line per request to stderr.
    pub access_log: bool,
}

impl ApiConfig {
    /// Defaults for a service reachable at `public_url`.
    pub fn new(public_url: impl Into<String>) -> ApiConfig {
        ApiConfig {
            public_url: public_url.into().trim_end_matches('/').to_string(),
            identity_header: None,
            admin_token: None,
            max_token_guesses: 20,
            guess_window: Duration::from_secs(600),
            max_admin_token_guesses: 10,
            max_decision_body: 16 * 1024,
            max_plan_body: 1024 * 1024,
            access_log: false,
        }
    }

    /// The origin (`scheme://host[:port]`) of [`ApiConfig::public_url`].
    pub fn public_origin(&self) -> &str {
        let url = self.public_url.as_str();
        let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
        match url[after_scheme..].find('/') {
            Some(slash) => &url[..after_scheme + slash],
            None => url,
        }
    }
}
