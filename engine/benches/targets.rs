//! Benchmark: resolving and validating a plan whose fan-out stage reads its targets from a CSV
//! file (account, region, tier per target; one CodeBuild step per target with four references),
//! at 1,000, 10,000 and 100,000 targets: parse, check, read the CSV, render and expand. Goal:
//! 100,000 targets in under 1 s in a release build, and time per target flat from 10,000 up.
//!
//! Run: `cargo bench -p steppy-engine --bench targets`

use std::time::{Duration, Instant};
use steppy_engine::resolve::{Inputs, Sources};
use steppy_engine::validate::validate_text_with;

const PLAN: &str = r#"
parameters:
  version: { default: "1.2.3" }
targets:
  tenants: { from: tenants.csv }
stages:
  - name: deploy
    forEach: tenants
    maxConcurrency: 1000
    toleratedFailurePercentage: 1
    steps:
      - type: CodeBuild
        name: deploy
        codeBuildName: deploy-${target.tier}
        sourceVersion: v${params.version}
        region: ${target.region}
        roleArn: arn:aws:iam::${target.account}:role/Deployer
"#;

fn csv(targets: usize) -> String {
    let mut out = String::from("id,tier,account,region\n");
    for i in 0..targets {
        let tier = if i % 10 == 0 { "silo" } else { "pool" };
        out.push_str(&format!(
            "t-{i:06},{tier},{:012},eu-west-{}\n",
            100_000_000_000u64 + i as u64,
            1 + i % 3
        ));
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut per_target = Vec::new();
    for targets in [1_000usize, 10_000, 100_000] {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("tenants.csv"), csv(targets)).expect("csv");
        let inputs = Inputs {
            sources: Sources {
                base_dir: Some(dir.path()),
                remote: None,
            },
            ..Inputs::default()
        };
        let runs = if targets >= 100_000 { 3 } else { 7 };
        let times: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let plan = validate_text_with("plan.yaml", PLAN, None, &inputs).expect("valid");
                let took = t.elapsed();
                assert_eq!(plan.step_count(), targets);
                took
            })
            .collect();
        let m = median(times);
        let each = m.as_secs_f64() / targets as f64;
        per_target.push(each);
        println!(
            "{targets:>7} targets: {:>8.1} ms median of {runs}, {:.2} µs per target",
            m.as_secs_f64() * 1e3,
            each * 1e6
        );
    }
    println!(
        "per-target time at 100,000 / at 10,000: {:.2} (goal ≤ 1.3)",
        per_target[2] / per_target[1]
    );
}
