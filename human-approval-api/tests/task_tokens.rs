//! Redeeming AWS Step Functions task tokens over real HTTP on loopback: the real router and a
//! temp SQLite store, with [`FakeSfn`] in place of Step Functions. The fake is not AWS: it is
//! here to count the calls the API makes and to inject the errors Step Functions can answer
//! (no longer waiting, unavailable), which neither AWS nor moto produce on demand. The same flow
//! against moto's Step Functions is in `tests/task_tokens_moto.rs`.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use steppy_engine::store::TaskTokenState;
use steppy_human_approval_api::task_tokens::token_hash;
use steppy_human_approval_api::{ApiConfig, AppState, RedeemError, ResendReport};
use support::{Call, FakeSfn, Harness, human_plan};

/// A token shaped like Step Functions' (base64 with `+`, `/` and `=`), unique per call.
fn sfn_token() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("AQCEAAAAKgAAAAMAAAAAAAAAAd{n:04}+Gx/4Rk9pZ2lu+Yc2VjcmV0/dG9rZW4=")
}

/// `%`-encodes a query value the way a careful link builder would.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn start() -> (Harness, Arc<FakeSfn>) {
    start_with(|_| {}).await
}

async fn start_with(tune: impl FnOnce(&mut ApiConfig)) -> (Harness, Arc<FakeSfn>) {
    let fake = Arc::new(FakeSfn::default());
    (Harness::start_with_task_tokens(tune, fake.clone()).await, fake)
}

async fn post(h: &Harness, token: &str, decision: &str, approver: &str, comment: &str) -> reqwest::Response {
    h.client
        .post(format!("{}/humanConfirmation", h.base))
        .header("Sec-Fetch-Site", "same-origin")
        .header("Origin", "null")
        .form(&[
            ("taskToken", token),
            ("decision", decision),
            ("approver", approver),
            ("comment", comment),
        ])
        .send()
        .await
        .expect("POST")
}

async fn post_json(h: &Harness, body: Value) -> reqwest::Response {
    h.client
        .post(format!("{}/api/task-tokens/decision", h.base))
        .json(&body)
        .send()
        .await
        .expect("POST")
}

fn state_of(h: &Harness, token: &str) -> Option<TaskTokenState> {
    h.store
        .task_token_decision(&token_hash(token), 0)
        .expect("read")
        .map(|d| d.state)
}

fn audit(h: &Harness, token: &str) -> Vec<String> {
    h.store
        .task_token_audit(&token_hash(token))
        .expect("audit")
        .into_iter()
        .map(|a| a.outcome)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_never_redeems_and_post_approve_succeeds_once() {
    let (h, fake) = start().await;
    let token = sfn_token();
    for action in ["approve", "reject", ""] {
        let r = h
            .get(&format!("/humanConfirmation?taskToken={}&action={action}", enc(&token)))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let csp = r
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("form-action 'self'"),
            "{csp}"
        );
        let page = r.text().await.expect("body");
        assert!(page.contains("AWS Step Functions approval"), "{page}");
        assert!(
            page.contains(&format!(r#"name="taskToken" value="{token}""#)),
            "the form carries the token: {page}"
        );
        assert!(
            page.contains(r#"value="approve""#)
                && page.contains(r#"value="reject""#)
                && page.contains(r#"name="approver""#)
        );
        assert_eq!(
            page.contains("You followed the <strong>Approve</strong> link"),
            action == "approve"
        );
        assert_eq!(
            page.contains("You followed the <strong>Reject</strong> link"),
            action == "reject"
        );
    }
    assert!(fake.calls().is_empty(), "a GET never redeems");
    assert_eq!(state_of(&h, &token), None, "a GET records nothing");
    assert!(audit(&h, &token).is_empty());

    let r = post(&h, &token, "approve", "alice@example.com", "looks good").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(location, format!("humanConfirmation?taskToken={}", enc(&token)));
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let Call::Succeed { token: sent, output } = &calls[0] else {
        panic!("an approval is SendTaskSuccess: {calls:?}")
    };
    assert_eq!(sent, &token);
    assert_eq!(output["decision"], "approved");
    assert_eq!(output["approver"], "alice@example.com");
    assert_eq!(output["comment"], "looks good");
    assert!(
        output["decidedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
        "{output}"
    );
    assert_eq!(state_of(&h, &token), Some(TaskTokenState::Sent));
    assert_eq!(audit(&h, &token), ["claimed", "sent"]);

    // The page now says what was decided, and offers no buttons.
    let page = h
        .get(&format!("/humanConfirmation?taskToken={}&action=reject", enc(&token)))
        .await
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("Approval decided")
            && page.contains("alice@example.com")
            && page.contains("accepted by Step Functions"),
        "{page}"
    );
    assert!(
        !page.contains(r#"value="approve""#) && !page.contains(r#"value="reject""#),
        "{page}"
    );

    // The token is nowhere at rest: neither in the database nor its write-ahead log.
    for suffix in ["", "-wal"] {
        let bytes = std::fs::read(format!("{}{suffix}", h.store.path())).unwrap_or_default();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token is in the database{suffix}"
        );
    }
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_fails_the_task_with_steppy_rejected() {
    let (h, fake) = start().await;
    let token = sfn_token();
    assert_eq!(
        post(&h, &token, "reject", "bob", "not today").await.status(),
        StatusCode::SEE_OTHER
    );
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let Call::Fail {
        token: sent,
        error,
        cause,
    } = &calls[0]
    else {
        panic!("a rejection is SendTaskFailure: {calls:?}")
    };
    assert_eq!((sent.as_str(), error.as_str()), (token.as_str(), "Steppy.Rejected"));
    assert!(
        cause.starts_with("rejected by bob at ") && cause.ends_with(": not today"),
        "{cause}"
    );
    let page = h
        .get(&format!("/humanConfirmation?taskToken={}", enc(&token)))
        .await
        .text()
        .await
        .expect("body");
    assert!(page.contains("Rejected") && page.contains("not today"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_posts_make_exactly_one_call() {
    let (h, fake) = start().await;
    fake.set_delay(Duration::from_millis(300)); // the winner's send is in flight while the others arrive
    let h = Arc::new(h);
    let token = sfn_token();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (h, token) = (h.clone(), token.clone());
        let decision = if i % 2 == 0 { "approve" } else { "reject" };
        tasks.push(tokio::spawn(async move {
            post(&h, &token, decision, &format!("person{i}"), "").await.status()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.expect("task"));
    }
    let won = codes.iter().filter(|c| **c == StatusCode::SEE_OTHER).count();
    let conflicts = codes.iter().filter(|c| **c == StatusCode::CONFLICT).count();
    assert_eq!((won, conflicts), (1, 49), "{codes:?}");
    assert_eq!(fake.calls().len(), 1, "exactly one call to Step Functions");
    let outcomes = audit(&h, &token);
    assert_eq!(outcomes.iter().filter(|o| *o == "claimed").count(), 1);
    assert_eq!(
        outcomes.iter().filter(|o| *o == "conflict").count(),
        49,
        "every refused attempt is audited"
    );
    assert_eq!(outcomes.iter().filter(|o| *o == "sent").count(), 1);
    // A loser sees the decision that stands, in JSON too.
    let r = post_json(
        &h,
        json!({ "taskToken": token, "decision": "reject", "approver": "late" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "already-decided");
    assert_eq!(body["decision"]["delivery"], "sent");
    assert!(
        body["decision"]["approver"]
            .as_str()
            .is_some_and(|a| a.starts_with("person")),
        "{body}"
    );
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_longer_waiting_is_410_recorded_closed_and_counts_as_a_guess() {
    let (h, fake) = start_with(|c| c.max_token_guesses = 3).await;
    let token = sfn_token();
    fake.answer_next(Err(RedeemError::NoLongerWaiting(format!(
        "TaskTimedOut: token {token} timed out"
    ))));
    let r = post(&h, &token, "approve", "alice", "").await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.expect("body").contains("no longer waiting"));
    let d = h
        .store
        .task_token_decision(&token_hash(&token), 0)
        .expect("read")
        .expect("recorded");
    assert_eq!(d.state, TaskTokenState::Closed);
    let why = d.last_error.unwrap_or_default();
    assert!(
        why.contains("TaskTimedOut") && !why.contains(&token),
        "the reason is kept without the token: {why}"
    );
    // Again: answered from the record, without asking Step Functions.
    assert_eq!(
        post(&h, &token, "approve", "alice", "").await.status(),
        StatusCode::GONE
    );
    assert_eq!(fake.calls().len(), 1);
    assert_eq!(audit(&h, &token), ["claimed", "closed", "gone"]);
    // Three tokens Step Functions does not know: the address is then blocked (429).
    fake.answer_next(Err(RedeemError::NoLongerWaiting("InvalidToken: Invalid token".into())));
    assert_eq!(
        post(&h, &sfn_token(), "reject", "mallory", "").await.status(),
        StatusCode::GONE
    );
    let r = post(&h, &sfn_token(), "reject", "mallory", "").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(
        h.get(&format!("/humanConfirmation?taskToken={}", enc(&sfn_token())))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        fake.calls().len(),
        2,
        "a blocked address gets no call to Step Functions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_is_503_then_resent_exactly_once() {
    let (h, fake) = start().await;
    let token = sfn_token();
    fake.answer_next(Err(RedeemError::Unavailable(format!(
        "ThrottlingException for {token}"
    ))));
    let r = post(&h, &token, "reject", "bob", "broken build").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers().get("retry-after").map(|v| v.as_bytes()), Some(&b"30"[..]));
    assert!(r.text().await.expect("body").contains("is recorded"));
    assert_eq!(state_of(&h, &token), Some(TaskTokenState::Sending));
    let page = h
        .get(&format!("/humanConfirmation?taskToken={}", enc(&token)))
        .await
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("not delivered yet") && page.contains("Send the recorded decision again"),
        "{page}"
    );
    assert!(
        !page.contains(&format!("ThrottlingException for {token}")),
        "error texts lose the token"
    );
    // Another decision does not replace the recorded one, and costs no call.
    assert_eq!(
        post(&h, &token, "approve", "eve", "").await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(fake.calls().len(), 1);

    // The retry sends the same decision once; a second retry has nothing left to send.
    assert_eq!(
        resend(&h.state).await,
        ResendReport {
            sent: 1,
            ..Default::default()
        }
    );
    assert_eq!(resend(&h.state).await, ResendReport::default());
    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0], calls[1], "the retry sends exactly the recorded decision");
    let Call::Fail { error, cause, .. } = &calls[1] else {
        panic!("{calls:?}")
    };
    assert!(
        error == "Steppy.Rejected" && cause.contains("bob") && cause.contains("broken build"),
        "{cause}"
    );
    assert_eq!(state_of(&h, &token), Some(TaskTokenState::Sent));
    assert_eq!(
        post(&h, &token, "reject", "bob", "").await.status(),
        StatusCode::CONFLICT,
        "sent: nothing to resend"
    );
    assert_eq!(fake.calls().len(), 2);
    assert_eq!(
        audit(&h, &token),
        ["claimed", "unavailable", "conflict", "retry", "sent", "conflict"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_post_with_the_same_decision_resends_it() {
    let (h, fake) = start().await;
    let token = sfn_token();
    fake.answer_next(Err(RedeemError::Unavailable("connection refused".into())));
    let r = post_json(
        &h,
        json!({ "taskToken": token, "decision": "approve", "approver": "ann", "comment": "go" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        (body["code"].as_str(), body["decision"]["delivery"].as_str()),
        (Some("not-delivered"), Some("pending")),
        "{body}"
    );
    assert!(!body.to_string().contains(&token), "no token in answers");

    // A process restarted since holds no token: the retry reports it and sends nothing.
    let restarted = AppState::new(h.store.clone(), ApiConfig::new(h.base.clone())).with_task_tokens(fake.clone());
    assert_eq!(
        resend(&restarted).await,
        ResendReport {
            need_link: 1,
            ..Default::default()
        }
    );
    assert_eq!(fake.calls().len(), 1);

    // Someone with the link confirms: the recorded decision (ann's) is sent.
    let r = post_json(
        &h,
        json!({ "taskToken": token, "decision": "approve", "approver": "carl" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        (body["outcome"].as_str(), body["decision"]["approver"].as_str()),
        (Some("approved"), Some("ann"))
    );
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0], calls[1]);
    assert_eq!(resend(&h.state).await, ResendReport::default());
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_whose_plus_became_a_space_is_redeemed_with_the_plus() {
    let (h, fake) = start().await;
    let token = sfn_token();
    assert!(token.contains('+') && token.contains('/') && token.ends_with('='));
    // The link as `States.Format` builds it: the token pasted in, not URL-encoded.
    let r = h
        .get(&format!("/humanConfirmation?taskToken={token}&action=approve"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    assert!(
        page.contains(&format!(r#"value="{token}""#)),
        "the page carries the token with its +: {page}"
    );
    let mangled = token.replace('+', " ");
    assert_eq!(
        post(&h, &mangled, "approve", "alice", "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(
        matches!(&fake.calls()[..], [Call::Succeed { token: t, .. }] if *t == token),
        "{:?}",
        fake.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_garbage_tokens_are_400_and_never_sent() {
    let (h, fake) = start().await;
    let long = "A".repeat(2049);
    for q in [
        long.clone(),
        "AAAA%0ABBBB".into(),
        "AAAA%00".into(),
        "%C3%A9t%C3%A9".into(),
        "%FF%FE".into(),
        "AAAA%7F".into(),
    ] {
        let r = h.get(&format!("/humanConfirmation?taskToken={q}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
        let page = r.text().await.expect("body");
        assert!(page.contains("damaged") || page.contains("not valid"), "{page}");
    }
    for bad in [long.as_str(), "AA\nBB", "AA\u{0}", "été", "AA\u{1b}[31m"] {
        assert_eq!(
            post(&h, bad, "approve", "alice", "").await.status(),
            StatusCode::BAD_REQUEST,
            "{bad:?}"
        );
        let r = post_json(
            &h,
            json!({ "taskToken": bad, "decision": "approve", "approver": "alice" }),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(r.json::<Value>().await.expect("json")["code"], "bad-task-token");
    }
    let steppy = format!("stp_{}", "A".repeat(43));
    let r = post_json(
        &h,
        json!({ "taskToken": steppy, "decision": "approve", "approver": "alice" }),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a Steppy token is never sent to AWS"
    );
    assert_eq!(r.json::<Value>().await.expect("json")["code"], "steppy-token");
    assert_eq!(
        post(&h, &sfn_token(), "maybe", "alice", "").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(&h, "", "approve", "alice", "").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(&h, &sfn_token(), "approve", "", "").await.status(),
        StatusCode::BAD_REQUEST,
        "a name is needed"
    );
    let r = h
        .client
        .post(format!("{}/humanConfirmation", h.base))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[
            ("taskToken", sfn_token().as_str()),
            ("decision", "approve"),
            ("approver", "x"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(fake.calls().is_empty());
    assert_eq!(
        h.get("/healthz").await.status(),
        StatusCode::OK,
        "the service is still up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_comments_and_names_stays_text() {
    let (h, fake) = start().await;
    let token = sfn_token();
    let evil = r#"<script>alert("x")</script>"#;
    fake.answer_next(Err(RedeemError::Unavailable("down".into())));
    let r = post(&h, &token, "reject", "<img src=x onerror=alert(1)>", evil).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let notice = r.text().await.expect("body");
    let page = h
        .get(&format!("/humanConfirmation?taskToken={}", enc(&token)))
        .await
        .text()
        .await
        .expect("body");
    for body in [notice, page] {
        assert!(!body.contains("<script>") && !body.contains("<img src=x"), "{body}");
        assert!(
            body.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steppy_tokens_keep_the_legacy_page() {
    let (h, fake) = start().await;
    let (id, token) = h.run_plan(human_plan(json!({})), "starter").await;
    let r = h
        .get(&format!("/humanConfirmation?taskToken={token}&action=approve"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    assert!(
        page.contains("Ship release 1.2.3?") && page.contains(&format!("approvals/{token}")),
        "{page}"
    );
    assert!(!page.contains("AWS Step Functions approval"));
    assert_eq!(
        h.post_form(&token, "approve", "alice", "").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(h.finished(&id).await, steppy_engine::state::ExecutionState::Succeeded);
    assert!(
        fake.calls().is_empty(),
        "Steppy's own approvals never reach Step Functions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_redeemer_task_token_links_are_a_clear_404() {
    let h = Harness::start().await;
    let token = sfn_token();
    let r = h
        .get(&format!("/humanConfirmation?taskToken={}&action=approve", enc(&token)))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("not set up to redeem Step Functions task tokens")
    );
    assert_eq!(
        post(&h, &token, "approve", "alice", "").await.status(),
        StatusCode::NOT_FOUND
    );
    let r = post_json(
        &h,
        json!({ "taskToken": token, "decision": "approve", "approver": "alice" }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.expect("json")["code"], "task-tokens-disabled");
    assert_eq!(h.store.task_token_decision(&token_hash(&token), 0).expect("read"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_header_decides_who_and_refusals_are_audited() {
    let (h, fake) = start_with(|c| c.identity_header = Some("X-Forwarded-Email".into())).await;
    let token = sfn_token();
    let page = h
        .client
        .get(format!("{}/humanConfirmation?taskToken={}", h.base, enc(&token)))
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
    let r = post(&h, &token, "approve", "ann@example.com", "typed").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a typed name does not count");
    assert!(fake.calls().is_empty());
    let refused = h.store.task_token_audit(&token_hash(&token)).expect("audit");
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (
            refused[0].outcome.as_str(),
            refused[0].approver.as_deref(),
            refused[0].source.as_str()
        ),
        ("no-identity", Some("ann@example.com"), "127.0.0.1")
    );
    let r = h
        .client
        .post(format!("{}/humanConfirmation", h.base))
        .header("X-Forwarded-Email", "ann@example.com")
        .form(&[
            ("taskToken", token.as_str()),
            ("decision", "approve"),
            ("approver", "someone-else"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        matches!(&fake.calls()[..], [Call::Succeed { output, .. }] if output["approver"] == "ann@example.com"),
        "{:?}",
        fake.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_task_token_decisions_are_refused_and_audited() {
    let (h, fake) = start_with(|_| {}).await;
    let token = sfn_token();
    let r = h
        .client
        .post(format!("{}/humanConfirmation", h.base))
        .header("Origin", "null")
        .form(&[
            ("taskToken", token.as_str()),
            ("decision", "approve"),
            ("approver", "mallory"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = h
        .client
        .post(format!("{}/api/task-tokens/decision", h.base))
        .header("Sec-Fetch-Site", "cross-site")
        .json(&json!({ "taskToken": token, "decision": "reject", "approver": "mallory" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(fake.calls().is_empty(), "nothing was sent to Step Functions");
    let refused = h.store.task_token_audit(&token_hash(&token)).expect("audit");
    assert_eq!(
        refused.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>(),
        ["cross-site", "cross-site"]
    );
    assert!(
        refused
            .iter()
            .all(|a| a.approver.as_deref() == Some("mallory") && a.source == "127.0.0.1")
    );
}

/// What `Redeemer::resend_pending` of `state`'s redeemer did.
async fn resend(state: &AppState) -> ResendReport {
    let redeemer = state.task_tokens.as_ref().expect("task tokens on");
    redeemer.resend_pending().await.expect("resend")
}
