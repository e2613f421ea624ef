//! The smaller findings of issue 10 §6 about the approval API, over real HTTP on loopback:
//! cross-site decisions (`Origin: null` without Fetch Metadata) are refused and audited, a body
//! announced beyond the limit is answered 413 from the head alone, and admin tokens take any
//! spelling of `Bearer` but wrong ones are limited per address.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use steppy_engine::store::ApprovalState;
use support::{Harness, human_plan};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `head` (a request head, no body) on a new connection and reads what comes back within
/// `within` (until the server closes the connection or the time is up).
async fn raw(base: &str, head: &str, within: Duration) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(within, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    String::from_utf8_lossy(&got).into_owned()
}

fn refusals(h: &Harness, id: &str) -> Vec<Value> {
    h.history(id)
        .into_iter()
        .filter(|(k, _)| k == "ApprovalRefused")
        .map(|(_, d)| d)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_decisions_are_refused_and_audited() {
    let h = Harness::start().await;
    let (id, token) = h.run_plan(human_plan(json!({})), "starter").await;
    let form = [
        ("decision", "approve"),
        ("approver", "mallory"),
        ("comment", "from a sandboxed frame"),
    ];
    // A sandboxed iframe or an older browser on another site: `Origin: null`, no Fetch Metadata.
    let r = h
        .client
        .post(format!("{}/approvals/{token}", h.base))
        .header("Origin", "null")
        .form(&form)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = h
        .client
        .post(format!("{}/approvals/{token}", h.base))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&form)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = h
        .client
        .post(format!("{}/api/approvals/{token}/decision", h.base))
        .header("Origin", "https://evil.example")
        .json(&json!({ "decision": "reject", "approver": "mallory" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let approval = h
        .store
        .approval_by_token(&steppy_executors::human::token_hash(&token))
        .expect("store")
        .expect("approval");
    assert_eq!(approval.state, ApprovalState::Pending, "nothing was decided");
    assert_eq!(h.count(&id, "ApprovalVoted"), 0);
    let refused = refusals(&h, &id);
    assert_eq!(
        refused.len(),
        3,
        "every refused cross-site attempt on a known token is audited: {refused:?}"
    );
    for d in &refused {
        assert_eq!(d["refusal"], "cross-site", "{d}");
        assert_eq!(d["voter"], "mallory");
        assert_eq!(d["source"], "127.0.0.1");
        assert!(!d.to_string().contains(&token), "no token in the audit record");
    }
    assert_eq!(refused[0]["comment"], "from a sandboxed frame");
    assert_eq!(refused[2]["approve"], false);

    // The page itself (a browser sends Fetch Metadata with its `null` origin) still decides.
    assert_eq!(
        h.post_form(&token, "approve", "alice", "").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_announced_beyond_the_limit_is_answered_413_at_once() {
    let h = Harness::start().await;
    let (id, token) = h.run_plan(human_plan(json!({})), "starter").await;
    for (path, kind) in [
        (format!("/approvals/{token}"), "application/x-www-form-urlencoded"),
        (format!("/api/approvals/{token}/decision"), "application/json"),
        ("/api/executions".to_string(), "application/json"),
    ] {
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {kind}\r\nContent-Length: 10000000000\r\n\r\n");
        let answer = raw(&h.base, &head, Duration::from_secs(3)).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "POST {path} announcing 10 GB: {answer:?}"
        );
    }
    assert_eq!(h.count(&id, "ApprovalVoted") + h.count(&id, "ApprovalRefused"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() {
    let secret = "admin-token-for-tests-0123456789";
    let h = Harness::start_with(|c| {
        c.admin_token = Some(steppy_human_approval_api::AdminToken::new(secret).expect("token"))
    })
    .await;
    let (id, _) = h.run_plan(human_plan(json!({})), "starter").await;
    let abort = format!("{}/api/executions/{id}/abort", h.base);
    for scheme in ["BEARER", "bearer", "Bearer"] {
        let r = h
            .client
            .post(&abort)
            .header("Authorization", format!("{scheme} {secret}"))
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::ACCEPTED, "Authorization: {scheme} ...");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_guesses_are_rate_limited_per_address() {
    let secret = "admin-token-for-tests-0123456789";
    let h = Harness::start_with(|c| {
        c.admin_token = Some(steppy_human_approval_api::AdminToken::new(secret).expect("token"))
    })
    .await;
    let (id, _) = h.run_plan(human_plan(json!({})), "starter").await;
    let abort = format!("{}/api/executions/{id}/abort", h.base);
    // The default allows 10 wrong tokens per address in the window.
    for i in 0..10 {
        let r = h
            .client
            .post(&abort)
            .bearer_auth(format!("guess-{i:04}-0123456789"))
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let r = h
        .client
        .post(&abort)
        .bearer_auth("guess-9999-0123456789")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    let r = h.client.post(&abort).bearer_auth(secret).send().await.expect("POST");
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address is blocked for the window, even with the right token"
    );
    assert!(!h.store.load(&id).expect("load").summary.abort_requested);
}
