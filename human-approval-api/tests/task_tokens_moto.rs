//! Task tokens end to end against moto (a local stand-in for the AWS APIs; nothing here reaches
//! real AWS): a plan with one `Human` step compiled by `steppy_engine::asl::compile`, run by
//! moto's Step Functions interpreter, which publishes the approval e-mail to SNS (read here
//! from a subscribed SQS queue). The approve link is opened (a page; the execution keeps
//! waiting), the decision is posted to the approval API over HTTP, and the API redeems the task
//! token with the real `SfnTaskTokens`: approved → SUCCEEDED, rejected → FAILED with
//! `Steppy.Rejected`.
//!
//! The approval and the rejection run in two regions (us-east-1, us-west-2), each with its own
//! topic, queue and approval API: a task token is redeemed in the region of its execution, so
//! one API redeems the tokens of one region. Executions are named (moto names unnamed ones
//! "None").

use steppy_test_support::moto as support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use steppy_engine::store::{Store, TaskTokenState};
use steppy_human_approval_api::task_tokens::token_hash;
use steppy_human_approval_api::{ApiConfig, AppState, SfnTaskTokens};
use support::{ACCOUNT, aws_config, moto, notifications, topic_with_queue, unique};

struct Api {
    base: String,
    store: Store,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// The approval API on loopback, redeeming task tokens on moto.
async fn serve(config: &aws_config::SdkConfig) -> Api {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("steppy.db")).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = AppState::new(store.clone(), ApiConfig::new(base.clone()))
        .with_task_tokens(Arc::new(SfnTaskTokens::from_config(config)));
    tokio::spawn(steppy_human_approval_api::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Api {
        base,
        store,
        client,
        _dir: dir,
    }
}

/// Turns on moto's Step Functions interpreter (otherwise executions never run their states).
async fn enable_interpreter() {
    let r = reqwest::Client::new()
        .post(format!("{}/moto-api/config", moto().url))
        .json(&json!({ "stepfunctions": { "execute_state_machine": true } }))
        .send()
        .await
        .expect("moto config");
    assert!(r.status().is_success(), "moto config answered {}", r.status());
}

/// The Step Functions client of `region` on moto.
async fn sfn(region: &str) -> aws_sdk_sfn::Client {
    let config = aws_config()
        .await
        .into_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build();
    aws_sdk_sfn::Client::new(&config)
}

/// Creates a state machine from a one-approval plan and starts a named execution of it.
/// Returns the execution ARN.
async fn start_approval(region: &str, api: &Api, topic: &str, message: &str) -> String {
    let plan: steppy_engine::Plan = serde_json::from_value(json!({
        "name": "moto approval",
        "stages": [{ "name": "Sign-off", "steps": [{ "type": "Human", "name": "Go / no-go", "message": message }] }]
    }))
    .expect("plan");
    let options = steppy_engine::asl::Options {
        topic_arn: Some(topic.to_string()),
        public_url: api.base.clone(),
        ..Default::default()
    };
    let compiled = steppy_engine::asl::compile(&plan, &options).expect("compile");
    let client = sfn(region).await;
    let machine = client
        .create_state_machine()
        .name(unique("approval"))
        .definition(compiled.to_text())
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/sfn"))
        .send()
        .await
        .expect("CreateStateMachine");
    let started = client
        .start_execution()
        .state_machine_arn(machine.state_machine_arn())
        .name(unique("run"))
        .input("{}")
        .send()
        .await
        .expect("StartExecution");
    started.execution_arn().to_string()
}

/// The approve and reject links of the one approval e-mail in `queue`.
async fn links(config: &aws_config::SdkConfig, queue: &str) -> (String, String) {
    let got = notifications(config, queue, 1, 60).await;
    assert_eq!(got.len(), 1, "one approval e-mail: {got:?}");
    let message = got[0]["Message"].as_str().expect("message text").to_string();
    let find = |label: &str| {
        message
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .map(str::trim)
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no '{label}' line in {message}"))
    };
    (find("Approve: "), find("Reject: "))
}

/// The task token in a `/humanConfirmation?taskToken=…&action=…` link.
fn token_of(link: &str) -> String {
    let query = link.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("taskToken="))
        .expect("taskToken in the link")
        .to_string()
}

/// `DescribeExecution`: status, error, cause.
async fn status(region: &str, execution: &str) -> Value {
    let d = sfn(region)
        .await
        .describe_execution()
        .execution_arn(execution)
        .send()
        .await
        .expect("DescribeExecution");
    json!({ "status": d.status().as_str(), "error": d.error(), "cause": d.cause() })
}

/// Waits (up to 60 s) for the execution to leave RUNNING.
async fn finished(region: &str, execution: &str) -> Value {
    for _ in 0..600 {
        let d = status(region, execution).await;
        if d["status"] != "RUNNING" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("execution {execution} still RUNNING after 60 s");
}

/// An SDK configuration for moto in `region`, an approval API redeeming that region's task
/// tokens, and a topic with a queue subscribed.
async fn in_region(region: &'static str) -> (aws_config::SdkConfig, Api, String, String) {
    let config = aws_config()
        .await
        .into_builder()
        .region(aws_config::Region::new(region))
        .build();
    let api = serve(&config).await;
    let (topic, queue) = topic_with_queue(&config, &unique("approvals")).await;
    (config, api, topic, queue)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_and_reject_links_redeem_task_tokens_on_moto() {
    enable_interpreter().await;

    // 1. Approved: the link shows a page and decides nothing; the form's POST redeems the token.
    let region = "us-east-1";
    let (config, api, topic, queue) = in_region(region).await;
    let execution = start_approval(region, &api, &topic, "Ship 1.2.3?").await;
    let (approve, reject) = links(&config, &queue).await;
    assert!(
        approve.starts_with(&format!("{}/humanConfirmation?taskToken=", api.base))
            && approve.ends_with("&action=approve"),
        "{approve}"
    );
    assert!(reject.ends_with("&action=reject"), "{reject}");
    let token = token_of(&approve);
    assert_eq!(token, token_of(&reject));
    let page = api.client.get(&approve).send().await.expect("GET");
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.expect("page");
    assert!(
        page.contains("AWS Step Functions approval") && page.contains(&format!(r#"value="{token}""#)),
        "{page}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status(region, &execution).await["status"],
        "RUNNING",
        "opening the link decides nothing"
    );
    assert_eq!(
        api.store.task_token_decision(&token_hash(&token), 0).expect("read"),
        None
    );

    let r = api
        .client
        .post(format!("{}/humanConfirmation", api.base))
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[
            ("taskToken", token.as_str()),
            ("decision", "approve"),
            ("approver", "alice@example.com"),
            ("comment", "ship it"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let done = finished(region, &execution).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let recorded = api
        .store
        .task_token_decision(&token_hash(&token), 0)
        .expect("read")
        .expect("recorded");
    assert_eq!(
        (recorded.state, recorded.approver.as_str()),
        (TaskTokenState::Sent, "alice@example.com")
    );
    // The same link again: answered from the record (409), Step Functions is not asked twice.
    let r = api
        .client
        .post(format!("{}/api/task-tokens/decision", api.base))
        .json(&json!({ "taskToken": token, "decision": "reject", "approver": "mallory" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // 2. A token Step Functions never issued: moto answers InvalidToken, the API 410.
    let bogus = "00000000-0000-4000-8000-000000000000";
    let r = api
        .client
        .post(format!("{}/api/task-tokens/decision", api.base))
        .json(&json!({ "taskToken": bogus, "decision": "approve", "approver": "eve" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::GONE);
    let recorded = api
        .store
        .task_token_decision(&token_hash(bogus), 0)
        .expect("read")
        .expect("recorded");
    assert_eq!(recorded.state, TaskTokenState::Closed);
    assert!(
        recorded
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("InvalidToken")),
        "{recorded:?}"
    );

    // 3. Rejected, through the JSON API: the execution fails with Steppy.Rejected.
    let region = "us-west-2";
    let (config, api, topic, queue) = in_region(region).await;
    let execution = start_approval(region, &api, &topic, "Ship 1.2.4?").await;
    let (_, reject) = links(&config, &queue).await;
    let token = token_of(&reject);
    assert_eq!(
        api.client.get(&reject).send().await.expect("GET").status(),
        StatusCode::OK
    );
    let r = api.client.post(format!("{}/api/task-tokens/decision", api.base))
        .json(&json!({ "taskToken": token, "decision": "reject", "approver": "bob@example.com", "comment": "tests are red" }))
        .send().await.expect("POST");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["outcome"], "rejected");
    let done = finished(region, &execution).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "Steppy.Rejected", "{done}");
}
