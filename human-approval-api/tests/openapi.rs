//! `schemas/approval-api.openapi.json` matches the service: every route is documented, and
//! every documented path+method answers (not 404/405) when called with real values over HTTP.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeSet;
use support::{FakeSfn, Harness, human_plan};

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/approval-api.openapi.json");
    let text = std::fs::read_to_string(path).expect("read the OpenAPI document");
    serde_json::from_str(&text).expect("the OpenAPI document is JSON")
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = document();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1"
    );
    let routes: BTreeSet<(String, String)> = steppy_human_approval_api::route_table().into_iter().collect();
    let docs = documented(&doc);
    let undocumented: Vec<_> = routes.difference(&docs).collect();
    let unrouted: Vec<_> = docs.difference(&routes).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    assert!(unrouted.is_empty(), "documented but not routed: {unrouted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers() {
    // With a fake Step Functions (it only answers "taken"), so the task-token routes answer too.
    let h = Harness::start_with_task_tokens(|_| {}, std::sync::Arc::new(FakeSfn::default())).await;
    let (id, token) = h.run_plan(human_plan(json!({})), "starter").await;
    let mut ops: Vec<(String, String)> = documented(&document()).into_iter().collect();
    ops.sort_by_key(|(m, _)| m != "GET"); // look before deciding
    for (method, path) in ops {
        let url = format!("{}{}", h.base, path.replace("{token}", &token).replace("{id}", &id));
        let url = if (method.as_str(), path.as_str()) == ("GET", "/humanConfirmation") {
            format!("{url}?taskToken={token}")
        } else {
            url
        };
        let request = match method.as_str() {
            "GET" => h.client.get(&url),
            "POST" if path == "/approvals/{token}" => h
                .client
                .post(&url)
                .form(&[("decision", "approve"), ("approver", "ann")]),
            "POST" if path == "/humanConfirmation" => h.client.post(&url).form(&[
                ("taskToken", "AAAA+form/token=="),
                ("decision", "approve"),
                ("approver", "ann"),
            ]),
            "POST" if path == "/api/task-tokens/decision" => h
                .client
                .post(&url)
                .json(&json!({ "taskToken": "AAAA+json/token==", "decision": "approve", "approver": "ann" })),
            "POST" => h
                .client
                .post(&url)
                .json(&json!({ "decision": "approve", "approver": "ann" })),
            other => panic!("no request recipe for {other}"),
        };
        let status = request.send().await.expect("request").status();
        assert!(
            status != 404 && status != 405 && status != 400,
            "{method} {path} answered {status}"
        );
    }
}
