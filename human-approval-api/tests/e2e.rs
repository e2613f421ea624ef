//! End-to-end over real HTTP on loopback: the real router, a temp SQLite store, and real
//! executions waiting on `Human` steps, driven with reqwest.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use steppy_engine::state::ExecutionState;
use steppy_engine::store::{ApprovalState, NewApproval, Verdict};
use steppy_human_approval_api::client::{DecisionRequest, post_decision};
use support::{Harness, human_plan};

const UNKNOWN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_never_decides_and_post_approves_to_success() {
    let h = Harness::start().await;
    let (id, token) = h.run_plan(human_plan(json!({})), "starter").await;
    for i in 0..30 {
        let path = match i % 4 {
            0 => format!("/approvals/{token}"),
            1 => format!("/approvals/{token}?action=approve"),
            2 => format!("/approvals/{token}?action=reject"),
            _ => format!("/humanConfirmation?taskToken={token}&action=approve"),
        };
        let r = h.get(&path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let body = r.text().await.expect("body");
        assert!(body.contains("Ship release 1.2.3?"));
        assert!(body.contains(r#"value="approve""#) && body.contains(r#"value="reject""#));
    }
    let approval = h
        .store
        .approval_by_token(&steppy_executors::human::token_hash(&token))
        .expect("store")
        .expect("approval");
    assert_eq!(approval.state, ApprovalState::Pending);
    assert!(approval.votes.is_empty());
    assert_eq!(h.count(&id, "ApprovalVoted") + h.count(&id, "ApprovalDecided"), 0);
    assert!(!h.state(&id).is_terminal());

    let r = h.post_form(&token, "approve", "alice@example.com", "looks good").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(h.finished(&id).await, ExecutionState::Succeeded);
    let page = h.get(&format!("/approvals/{token}")).await.text().await.expect("body");
    assert!(page.contains("Approved by alice@example.com"), "{page}");
    assert!(
        !page.contains(r#"value="approve""#),
        "a decided approval shows no buttons"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_reject_aborts_the_execution() {
    let h = Harness::start().await;
    let (id, token) = h.run_plan(human_plan(json!({})), "starter").await;
    let r = h.post_form(&token, "reject", "bob", "not today").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(h.finished(&id).await, ExecutionState::Aborted);
    let reason = h.store.load(&id).expect("load").summary.reason.unwrap_or_default();
    assert!(
        reason.contains("rejected by bob") && reason.contains("not today"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_posts_give_exactly_one_decision() {
    let h = std::sync::Arc::new(Harness::start().await);
    let (id, token) = h.run_plan(human_plan(json!({})), "starter").await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (h, token) = (h.clone(), token.clone());
        let decision = if i % 2 == 0 { "approve" } else { "reject" };
        tasks.push(tokio::spawn(async move {
            h.post_form(&token, decision, &format!("person{i}"), "").await.status()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.expect("task"));
    }
    let won = codes.iter().filter(|c| **c == StatusCode::SEE_OTHER).count();
    let conflicts = codes.iter().filter(|c| **c == StatusCode::CONFLICT).count();
    assert_eq!((won, conflicts), (1, 99), "{codes:?}");
    assert_eq!(h.count(&id, "ApprovalDecided"), 1);
    assert_eq!(h.count(&id, "ApprovalVoted"), 1);
    assert_eq!(h.count(&id, "ApprovalRefused"), 99, "every refused attempt is audited");
    assert!(h.finished(&id).await.is_terminal());
    // The loser sees the current state in JSON too.
    let r = h
        .client
        .post(format!("{}/api/approvals/{token}/decision", h.base))
        .json(&json!({ "decision": "approve", "approver": "late" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "already-decided");
    assert!(
        body["approval"]["state"] == "approved" || body["approval"]["state"] == "rejected",
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_is_410_and_unknown_is_404() {
    let h = Harness::start().await;
    let plan: steppy_engine::Plan = serde_json::from_value(human_plan(json!({}))).expect("plan");
    let now = steppy_engine::clock::system_now_ms();
    let exec = h
        .store
        .submit(
            &plan,
            now,
            steppy_engine::store::SubmitOptions {
                started_by: Some("starter"),
                ..Default::default()
            },
        )
        .expect("submit");
    let token = steppy_executors::human::new_token().expect("token");
    let new = NewApproval {
        execution_id: exec.clone(),
        stage: 0,
        index: 0,
        idempotency_key: format!("{exec}/0.0/1"),
        token_sha256: steppy_executors::human::token_hash(&token),
        message: "Expired one".into(),
        approvers: vec![],
        required: 1,
        forbid_self: false,
        requested_by: "starter".into(),
        deadline_ms: Some(now - 60_000),
        on_timeout: steppy_engine::plan::OnTimeout::Reject,
    };
    h.store.create_approval(&new, now - 120_000).expect("approval");
    let page = h.get(&format!("/approvals/{token}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.expect("body");
    assert!(
        page.contains("Expired") && !page.contains(r#"value="approve""#),
        "{page}"
    );
    let r = h.post_form(&token, "approve", "alice", "").await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(h.count(&exec, "ApprovalRefused"), 1);
    assert_eq!(
        h.get(&format!("/approvals/{UNKNOWN}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.post_form(UNKNOWN, "approve", "alice", "").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(h.get("/approvals/short").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.get("/humanConfirmation").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_approvers_and_any_reject_aborts() {
    let h = Harness::start().await;
    let rules =
        json!({ "approvers": ["ann@example.com", "ben@example.com", "cy@example.com"], "requiredApprovals": 2 });
    let (id, token) = h.run_plan(human_plan(rules.clone()), "starter").await;
    assert_eq!(
        h.post_form(&token, "approve", "ann@example.com", "").await.status(),
        StatusCode::SEE_OTHER
    );
    let page = h.get(&format!("/approvals/{token}")).await.text().await.expect("page");
    assert!(page.contains("1 of 2 approvals"), "{page}");
    assert!(!h.state(&id).is_terminal());
    assert_eq!(
        h.post_form(&token, "approve", "ANN@example.com", "").await.status(),
        StatusCode::CONFLICT,
        "one vote per person"
    );
    assert_eq!(
        h.post_form(&token, "approve", "Ben@Example.com", "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(h.finished(&id).await, ExecutionState::Succeeded);

    let (id2, token2) = h.run_plan(human_plan(rules), "starter").await;
    assert_eq!(
        h.post_form(&token2, "approve", "ann@example.com", "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        h.post_form(&token2, "reject", "cy@example.com", "no").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(h.finished(&id2).await, ExecutionState::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlisted_approver_is_refused_and_audited_without_the_token() {
    let h = Harness::start().await;
    let (id, token) = h
        .run_plan(human_plan(json!({ "approvers": ["ann@example.com"] })), "starter")
        .await;
    let r = h.post_form(&token, "approve", "mallory@example.com", "let me in").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.expect("body").contains("not one of the approvers"));
    let refused: Vec<Value> = h
        .history(&id)
        .into_iter()
        .filter(|(k, _)| k == "ApprovalRefused")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["voter"], "mallory@example.com");
    assert_eq!(refused[0]["refusal"], "not-an-approver");
    assert_eq!(refused[0]["source"], "127.0.0.1");
    assert_eq!(refused[0]["comment"], "let me in");
    let all = serde_json::to_string(&h.store.history(&id).expect("history")).expect("json");
    assert!(
        !all.contains(&token) && !all.contains(&steppy_executors::human::token_hash(&token)),
        "no token in history"
    );
    assert!(!h.state(&id).is_terminal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_starter_may_not_approve_with_forbid_self_approval() {
    let h = Harness::start().await;
    let (id, token) = h
        .run_plan(human_plan(json!({ "forbidSelfApproval": true })), "carol@example.com")
        .await;
    let r = h.post_form(&token, "approve", "Carol@Example.com", "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        h.history(&id)
            .iter()
            .filter(|(k, d)| k == "ApprovalRefused" && d["refusal"] == "self-approval")
            .count(),
        1
    );
    assert_eq!(
        h.post_form(&token, "approve", "dave@example.com", "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(h.finished(&id).await, ExecutionState::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_text_is_escaped() {
    let h = Harness::start().await;
    let evil = r#"<script>alert("x")</script><img src=x onerror=alert(1)>"#;
    let (_, token) = h.run_plan(human_plan(json!({ "message": evil })), "starter").await;
    let body = h.get(&format!("/approvals/{token}")).await.text().await.expect("body");
    assert!(!body.contains("<script>") && !body.contains("<img src=x"), "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_on_every_answer() {
    let h = Harness::start().await;
    let (_, token) = h.run_plan(human_plan(json!({})), "starter").await;
    for path in [
        format!("/approvals/{token}"),
        format!("/approvals/{UNKNOWN}"),
        "/api/approvals".into(),
        "/nope".into(),
    ] {
        let r = h.get(&path).await;
        let hd = r.headers();
        let csp = hd
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            csp.contains("default-src 'none'")
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(
            hd.get("referrer-policy").map(|v| v.as_bytes()),
            Some(&b"no-referrer"[..]),
            "{path}"
        );
        assert_eq!(
            hd.get("x-frame-options").map(|v| v.as_bytes()),
            Some(&b"DENY"[..]),
            "{path}"
        );
        assert_eq!(
            hd.get("x-content-type-options").map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{path}"
        );
        assert_eq!(
            hd.get("cache-control").map(|v| v.as_bytes()),
            Some(&b"no-store"[..]),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_and_oversized_bodies_are_refused() {
    let h = Harness::start().await;
    let (id, token) = h.run_plan(human_plan(json!({})), "starter").await;
    let r = h
        .client
        .post(format!("{}/approvals/{token}", h.base))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("decision", "approve"), ("approver", "x")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = h
        .client
        .post(format!("{}/approvals/{token}", h.base))
        .header("Origin", "https://evil.example")
        .form(&[("decision", "approve"), ("approver", "x")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let big = "x".repeat(64 * 1024);
    let r = h.post_form(&token, "approve", "x", &big).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(h.count(&id, "ApprovalVoted"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guesses_are_rate_limited_per_address() {
    let h = Harness::start_with(|c| c.max_token_guesses = 5).await;
    let (_, token) = h.run_plan(human_plan(json!({})), "starter").await;
    for _ in 0..5 {
        assert_eq!(
            h.get(&format!("/approvals/{UNKNOWN}")).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    let r = h.get(&format!("/approvals/{UNKNOWN}")).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(
        h.get(&format!("/approvals/{token}")).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address is blocked, even with a real token"
    );
    assert_eq!(
        h.post_form(&token, "approve", "x", "").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_api_decides_and_lists_without_tokens() {
    let h = Harness::start().await;
    let (id, token) = h.run_plan(human_plan(json!({})), "starter").await;
    let pending: Value = h.get("/api/approvals?state=pending").await.json().await.expect("json");
    assert_eq!(pending["approvals"].as_array().map(Vec::len), Some(1));
    assert_eq!(pending["approvals"][0]["executionId"], id.as_str());
    let listed = pending.to_string()
        + &h.get("/api/executions").await.text().await.expect("body")
        + &h.get(&format!("/api/executions/{id}"))
            .await
            .text()
            .await
            .expect("body");
    assert!(!listed.contains(&token) && !listed.contains(&steppy_executors::human::token_hash(&token)));
    assert_eq!(
        h.get("/api/approvals?state=bogus").await.status(),
        StatusCode::BAD_REQUEST
    );
    let r = h
        .client
        .post(format!("{}/api/approvals/{token}/decision", h.base))
        .json(&json!({ "decision": "approve", "comment": "via bot", "approver": "chatops" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["outcome"], "approved");
    assert_eq!(h.finished(&id).await, ExecutionState::Succeeded);
    let pending: Value = h.get("/api/approvals?state=pending").await.json().await.expect("json");
    assert_eq!(pending["approvals"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_identity_header_overrides_typed_names() {
    let h = Harness::start_with(|c| c.identity_header = Some("X-Forwarded-Email".into())).await;
    let (id, token) = h
        .run_plan(human_plan(json!({ "approvers": ["ann@example.com"] })), "starter")
        .await;
    let page = h
        .client
        .get(format!("{}/approvals/{token}", h.base))
        .header("X-Forwarded-Email", "ann@example.com")
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("Deciding as") && !page.contains(r#"name="approver""#),
        "{page}"
    );
    // Typing an approver's name does not work without the proxy's header.
    assert_eq!(
        h.post_form(&token, "approve", "ann@example.com", "").await.status(),
        StatusCode::FORBIDDEN
    );
    let r = h
        .client
        .post(format!("{}/approvals/{token}", h.base))
        .header("X-Forwarded-Email", "ann@example.com")
        .form(&[("decision", "approve"), ("approver", "someone-else")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(h.finished(&id).await, ExecutionState::Succeeded);
    assert!(
        h.history(&id)
            .iter()
            .any(|(k, d)| k == "ApprovalDecided" && d["by"] == "ann@example.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_need_the_admin_token() {
    let plan = human_plan(json!({})).to_string();
    let off = Harness::start().await;
    let r = off
        .client
        .post(format!("{}/api/executions", off.base))
        .body(plan.clone())
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let secret = "admin-token-for-tests-0123456789";
    let h = Harness::start_with(|c| {
        c.admin_token = Some(steppy_human_approval_api::AdminToken::new(secret).expect("token"))
    })
    .await;
    let url = format!("{}/api/executions", h.base);
    assert_eq!(
        h.client
            .post(&url)
            .body(plan.clone())
            .send()
            .await
            .expect("POST")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.client
            .post(&url)
            .bearer_auth("wrong-token-0123456789")
            .body(plan.clone())
            .send()
            .await
            .expect("POST")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.client
            .post(&url)
            .bearer_auth(secret)
            .body("{")
            .send()
            .await
            .expect("POST")
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = h
        .client
        .post(&url)
        .bearer_auth(secret)
        .body(plan)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let abort = format!("{}/api/executions/{id}/abort", h.base);
    assert_eq!(
        h.client.post(&abort).send().await.expect("POST").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.client
            .post(&abort)
            .bearer_auth(secret)
            .send()
            .await
            .expect("POST")
            .status(),
        StatusCode::ACCEPTED
    );
    assert!(h.store.load(&id).expect("load").summary.abort_requested);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_client_decides_through_the_json_api() {
    let h = Harness::start().await;
    let (id, token) = h.run_plan(human_plan(json!({})), "starter").await;
    let (base, t) = (h.base.clone(), token.clone());
    let answer = post_decision(
        &base,
        &DecisionRequest {
            token: &t,
            verdict: Verdict::Reject,
            comment: Some("broken"),
            approver: "erin",
        },
    )
    .await
    .expect("answer");
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["outcome"], "rejected");
    assert_eq!(h.finished(&id).await, ExecutionState::Aborted);
    let (base, t) = (h.base.clone(), token);
    let again = post_decision(
        &base,
        &DecisionRequest {
            token: &t,
            verdict: Verdict::Approve,
            comment: None,
            approver: "fred",
        },
    )
    .await
    .expect("answer");
    assert_eq!(again.status, 409);
    assert!(
        again.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("already rejected by erin"),
        "{:?}",
        again.body
    );
}
