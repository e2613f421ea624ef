//! Hardening shared by every route: security headers on every response, the same-origin check
//! for decisions, and the admin bearer-token check.

use crate::config::ApiConfig;
use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// The Content-Security-Policy of every response: no script at all, styles and images from
/// this origin only, forms post only here, never framed.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Middleware: adds the security headers to every response.
pub async fn headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::CACHE_CONTROL, "no-store");
    set(h, HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
    set(h, HeaderName::from_static("cross-origin-resource-policy"), "same-origin");
    response
}

/// Refuses a state-changing request that a browser says came from another site: a
/// `Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` (other than `null`, which
/// browsers send under `Referrer-Policy: no-referrer`) that is neither the public URL's origin
/// nor this request's own host. Requests without these headers (scripts, curl) pass: the token
/// in the path is the capability.
pub fn same_origin(config: &ApiConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = || ApiError::new(StatusCode::FORBIDDEN, "cross-site", "decisions must be made from the approval page itself, not from another site");
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Err(refuse());
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        if origin == "null" {
            return Ok(());
        }
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
        if !origin.eq_ignore_ascii_case(config.public_origin()) && !origin_host.eq_ignore_ascii_case(host) {
            return Err(refuse());
        }
    }
    Ok(())
}

/// Checks `Authorization: Bearer <admin token>`; 403 if no admin token is configured.
pub fn require_admin(config: &ApiConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &config.admin_token else {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "admin-disabled",
            "starting and aborting executions over HTTP is disabled: no admin token is configured (--admin-token-file or STEPPY_ADMIN_TOKEN)"));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    match presented {
        Some(token) if expected.matches(token) => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "bad-admin-token", "the admin token is not valid")),
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "no-admin-token", "this endpoint needs Authorization: Bearer <admin token>")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AdminToken;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let c = ApiConfig::new("https://steppy.example.com/base");
        assert_eq!(c.public_origin(), "https://steppy.example.com");
        assert!(same_origin(&c, &h(&[])).is_ok());
        assert!(same_origin(&c, &h(&[("sec-fetch-site", "same-origin"), ("origin", "null")])).is_ok());
        assert!(same_origin(&c, &h(&[("origin", "https://steppy.example.com")])).is_ok());
        assert!(same_origin(&c, &h(&[("origin", "http://127.0.0.1:9"), ("host", "127.0.0.1:9")])).is_ok());
        assert!(same_origin(&c, &h(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&c, &h(&[("origin", "https://evil.example")])).is_err());
    }

    #[test]
    fn admin_token_is_checked() {
        let mut c = ApiConfig::new("http://x");
        assert_eq!(require_admin(&c, &h(&[])).map_err(|e| e.status), Err(StatusCode::FORBIDDEN));
        c.admin_token = Some(AdminToken::new("0123456789abcdef-admin").expect("token"));
        assert_eq!(require_admin(&c, &h(&[])).map_err(|e| e.status), Err(StatusCode::UNAUTHORIZED));
        assert!(require_admin(&c, &h(&[("authorization", "Bearer 0123456789abcdef-admin")])).is_ok());
        assert!(require_admin(&c, &h(&[("authorization", "Bearer 0123456789abcdef-admiN")])).is_err());
        assert!(AdminToken::new("short").is_err());
    }
}
