//! Benchmark: validating a 10,000-step plan (100 stages x 100 steps of every type), from text to
//! typed plan, in JSON and in YAML. Goal: under 100 ms in a release build.
//!
//! Run: `cargo bench -p steppy-engine --bench validate`

use serde_json::json;
use std::time::{Duration, Instant};
use steppy_engine::validate::validate_text;

fn big_plan(stages: usize, steps: usize) -> serde_json::Value {
    let step = |i: usize, j: usize| match j % 6 {
        0 => json!({"type": "CodeBuild", "name": format!("build {j}"), "codeBuildName": format!("project-{i}-{j}"),
                    "sourceVersion": {"type": "tag", "value": "v1.2.3"},
                    "environmentVariableOverrides": [{"name": "STAGE", "value": i.to_string()}],
                    "retry": {"maxAttempts": 3}, "roleArn": "arn:aws:iam::123456789012:role/Deployer", "region": "eu-west-1"}),
        1 => {
            json!({"type": "CodePipeline", "name": format!("pipeline {j}"), "codePipelineName": "deploy", "autoApprove": true,
                    "variables": {"VERSION": "1.2.3"}})
        }
        2 => json!({"type": "Wait", "name": format!("soak {j}"), "seconds": 600}),
        3 => json!({"type": "Notify", "name": format!("notify {j}"), "message": "deploying", "subject": "release",
                    "topicArn": "arn:aws:sns:eu-west-1:123456789012:releases"}),
        4 => {
            json!({"type": "Human", "name": format!("approve {j}"), "message": "ok?", "approvers": ["a@example.com", "b@example.com"],
                    "requiredApprovals": 2, "timeoutSeconds": 86400})
        }
        _ => {
            json!({"type": "CodeBuildNoWait", "name": format!("kick {j}"), "codeBuildName": "docs", "sourceVersion": "main"})
        }
    };
    let stages: Vec<_> = (0..stages)
        .map(|i| json!({"name": format!("stage {i}"), "steps": (0..steps).map(|j| step(i, j)).collect::<Vec<_>>()}))
        .collect();
    json!({"name": "bench", "defaults": {"region": "us-east-1"}, "stages": stages})
}

/// The plan in block-style YAML, as people write it (strings double-quoted, which is valid YAML).
fn block_yaml(value: &serde_json::Value) -> String {
    fn emit(value: &serde_json::Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match value {
            serde_json::Value::Object(members) => {
                for (k, v) in members {
                    match v {
                        serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            emit(v, indent + 2, out);
                        }
                        scalar => out.push_str(&format!("{pad}{k}: {scalar}\n")),
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    out.push_str(&format!("{pad}-\n"));
                    emit(item, indent + 2, out);
                }
            }
            scalar => out.push_str(&format!("{pad}{scalar}\n")),
        }
    }
    let mut out = String::new();
    emit(value, 0, &mut out);
    out
}

fn measure(label: &str, origin: &str, text: &str) -> Duration {
    // Warm up (compiles the schema once, as a long-running process would have).
    validate_text(origin, text, None).expect("the bench plan is valid");
    let mut times: Vec<Duration> = (0..20)
        .map(|_| {
            let start = Instant::now();
            let plan = validate_text(origin, text, None).expect("valid");
            let elapsed = start.elapsed();
            assert_eq!(plan.step_count(), 10_000);
            elapsed
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "validate {label:<9} 10,000 steps, {:>5.1} MiB: median {:>6.1} ms, min {:>6.1} ms, max {:>6.1} ms (goal < 100 ms)",
        text.len() as f64 / (1024.0 * 1024.0),
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    median
}

fn main() {
    let plan = big_plan(100, 100);
    let json_text = serde_json::to_string_pretty(&plan).expect("serializes");
    // YAML is JSON's superset: flow style is valid YAML, and exercises the YAML reader.
    let yaml_text = serde_json::to_string(&plan).expect("serializes");
    let cold = Instant::now();
    validate_text("cold.json", &json_text, None).expect("valid");
    println!(
        "validate first call (schema compiled once per process): {:.1} ms",
        cold.elapsed().as_secs_f64() * 1e3
    );
    measure("json", "plan.json", &json_text);
    measure("yaml", "plan.yaml", &block_yaml(&plan));
    measure("yaml-flow", "plan.yaml", &yaml_text);
}
