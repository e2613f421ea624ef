//! Hardening shared by every route: security headers on every response, the same-origin check
//! for decisions, and the admin bearer-token check (wrong tokens limited per address).

use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::guard::GuessLimiter;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::net::IpAddr;

/// The Content-Security-Policy of every response: no script at all, styles and images from
/// this origin only, forms post only here, never framed.
pub const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

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
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    response
}

/// Refuses a state-changing request that a browser says came from another site: a
/// `Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` that is neither the public
/// URL's origin nor this request's own host. `Origin: null` passes only together with a
/// same-origin `Sec-Fetch-Site`: our pages send `Referrer-Policy: no-referrer`, under which
/// browsers post `null` from the page itself, but sandboxed frames and `data:` pages of any
/// site post `null` too, and only Fetch Metadata tells the two apart. Requests without either
/// header (scripts, curl) pass: the token in the path is the capability.
pub fn same_origin(config: &ApiConfig, headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-site",
            "decisions must be made from the approval page itself, not from another site",
        )
    };
    let text = |name: HeaderName| headers.get(name).map(|v| v.to_str().map_err(|_| refuse()));
    let site = text(HeaderName::from_static("sec-fetch-site")).transpose()?;
    if site.is_some_and(|s| !matches!(s, "same-origin" | "none")) {
        return Err(refuse());
    }
    let Some(origin) = text(header::ORIGIN).transpose()? else {
        return Ok(());
    };
    if origin == "null" {
        return if site.is_some() { Ok(()) } else { Err(refuse()) };
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    if !origin.eq_ignore_ascii_case(config.public_origin()) && !origin_host.eq_ignore_ascii_case(host) {
        return Err(refuse());
    }
    Ok(())
}

/// The credentials of `Authorization: Bearer <token>`; the scheme is case-insensitive
/// (RFC 9110, 11.1) and may be followed by any amount of blank space.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks `Authorization: Bearer <admin token>` from `peer`: 403 if no admin token is
/// configured, 429 once `peer` presented too many wrong tokens in the window, 401 otherwise
/// (a wrong token counts against `peer`).
pub fn require_admin(
    config: &ApiConfig,
    wrong_tokens: &GuessLimiter,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(expected) = &config.admin_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin-disabled",
            "starting and aborting executions over HTTP is disabled: no admin token is configured (--admin-token-file or STEPPY_ADMIN_TOKEN)",
        ));
    };
    wrong_tokens.check(peer).map_err(ApiError::too_many_admin_guesses)?;
    match bearer(headers) {
        Some(token) if expected.matches(token) => Ok(()),
        Some(_) => {
            wrong_tokens.record_miss(peer);
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad-admin-token",
                "the admin token is not valid",
            ))
        }
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no-admin-token",
            "this endpoint needs Authorization: Bearer <admin token>",
        )),
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
        assert!(
            same_origin(&c, &h(&[("origin", "null")])).is_err(),
            "null without Fetch Metadata"
        );
        assert!(same_origin(&c, &h(&[("origin", "null"), ("sec-fetch-site", "cross-site")])).is_err());
    }

    #[test]
    fn admin_token_is_checked() {
        let mut c = ApiConfig::new("http://x");
        let g = GuessLimiter::new(100, std::time::Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let check = |c: &ApiConfig, pairs: &[(&'static str, &'static str)]| {
            require_admin(c, &g, ip, &h(pairs)).map_err(|e| e.status)
        };
        assert_eq!(check(&c, &[]), Err(StatusCode::FORBIDDEN));
        c.admin_token = Some(AdminToken::new("0123456789abcdef-admin").expect("token"));
        assert_eq!(check(&c, &[]), Err(StatusCode::UNAUTHORIZED));
        for ok in [
            "Bearer 0123456789abcdef-admin",
            "BEARER 0123456789abcdef-admin",
            "bearer  0123456789abcdef-admin",
            "beARer\t0123456789abcdef-admin",
        ] {
            assert!(require_admin(&c, &g, ip, &h(&[("authorization", ok)])).is_ok(), "{ok}");
        }
        assert!(check(&c, &[("authorization", "Bearer 0123456789abcdef-admiN")]).is_err());
        assert!(check(&c, &[("authorization", "Basic 0123456789abcdef-admin")]).is_err());
        assert!(check(&c, &[("authorization", "Bearer0123456789abcdef-admin")]).is_err());
        assert!(AdminToken::new("short").is_err());
    }

    #[test]
    fn wrong_admin_tokens_are_limited_per_address() {
        let mut c = ApiConfig::new("http://x");
        c.admin_token = Some(AdminToken::new("0123456789abcdef-admin").expect("token"));
        let g = GuessLimiter::new(3, std::time::Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().expect("ip"), "10.0.0.2".parse().expect("ip"));
        for _ in 0..3 {
            assert_eq!(
                require_admin(&c, &g, a, &h(&[("authorization", "Bearer wrong-wrong-wrong")])).map_err(|e| e.status),
                Err(StatusCode::UNAUTHORIZED)
            );
        }
        let right = h(&[("authorization", "Bearer 0123456789abcdef-admin")]);
        assert_eq!(
            require_admin(&c, &g, a, &right).map_err(|e| e.status),
            Err(StatusCode::TOO_MANY_REQUESTS),
            "even the right token, once over the limit"
        );
        assert!(
            require_admin(&c, &g, b, &right).is_ok(),
            "other addresses are not affected"
        );
    }
}
