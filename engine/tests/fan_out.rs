//! Parameters, interpolation, target sets and fan-out stages, from plan text to the runnable
//! plan (`steppy_engine::resolve`): what each renders to, and the diagnostic each mistake gets.

use steppy_engine::plan::{FanOutPart, Plan, StepKind};
use steppy_engine::resolve::{Inputs, Sources, WaveCounts, render_between_step};
use steppy_engine::validate::{Report, validate_text_with};

fn resolve(text: &str, params: &[(&str, &str)]) -> Result<Plan, Report> {
    let inputs = Inputs {
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        execution_id: Some("exec-1".into()),
        ..Inputs::default()
    };
    validate_text_with("plan.yaml", text, None, &inputs)
}

fn errors(r: Result<Plan, Report>) -> Vec<(usize, usize, String, Option<String>)> {
    r.expect_err("invalid")
        .diagnostics
        .into_iter()
        .map(|d| (d.line, d.column, d.message, d.suggestion))
        .collect()
}

fn message(step: &steppy_engine::plan::Step) -> &str {
    match &step.kind {
        StepKind::Notify(n) => &n.message,
        StepKind::Human(h) => &h.message,
        _ => "",
    }
}

const VERSIONED: &str = r#"
name: release ${params.version}
parameters:
  version: { pattern: "[0-9]+\\.[0-9]+\\.[0-9]+" }
  env: { enum: [dev, prod], default: dev }
stages:
  - name: build ${params.env}
    steps:
      - type: CodeBuild
        name: build
        codeBuildName: app-${params.env}
        sourceVersion: v${params.version}
      - type: Notify
        name: tell
        message: "${stage.name}: ${params.version} for ${execution.id}, costs $${HOME}"
"#;

#[test]
fn parameters_and_references_render() {
    let plan = resolve(VERSIONED, &[("version", "1.4.2")]).expect("valid");
    assert_eq!(plan.stages[0].name, "build dev");
    let StepKind::CodeBuild(b) = &plan.stages[0].steps[0].kind else {
        panic!("a build")
    };
    assert_eq!(b.code_build_name, "app-dev");
    assert_eq!(
        b.source_version.as_ref().map(|v| v.to_codebuild()).as_deref(),
        Some("v1.4.2")
    );
    assert_eq!(
        message(&plan.stages[0].steps[1]),
        "build dev: 1.4.2 for exec-1, costs ${HOME}"
    );
    let resolved = plan.resolved.expect("a snapshot");
    assert_eq!(resolved.execution_id, "exec-1");
    assert_eq!(plan.name.as_deref(), Some("release 1.4.2"));
    assert_eq!(resolved.params["env"], "dev");
    assert!(
        plan.parameters.is_empty(),
        "the runnable plan holds values, not declarations"
    );
}

#[test]
fn parameter_mistakes_are_errors_before_anything_runs() {
    let e = errors(resolve(VERSIONED, &[]));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].2.contains("\"version\" has no default and was not given"), "{e:?}");
    let e = errors(resolve(VERSIONED, &[("version", "1.4")]));
    assert!(e[0].2.contains("does not match its pattern"), "{e:?}");
    let e = errors(resolve(VERSIONED, &[("version", "1.4.2"), ("env", "prd")]));
    assert!(e[0].2.contains("none of its enum"), "{e:?}");
    assert_eq!(e[0].3.as_deref(), Some("prod"));
    let e = errors(resolve(VERSIONED, &[("version", "1.4.2"), ("verison", "1")]));
    assert!(e[0].2.contains("\"verison\" (given with --param"), "{e:?}");
    assert_eq!(e[0].3.as_deref(), Some("version"));
}

#[test]
fn unknown_references_are_located_with_a_suggestion() {
    let plan = "parameters:\n  version: {default: '1'}\nstages:\n  - name: s\n    steps:\n      - type: Notify\n        name: n\n        message: deploy ${params.verison}\n";
    let e = errors(resolve(plan, &[]));
    assert_eq!((e[0].0, e[0].1), (8, 18), "{e:?}");
    assert!(e[0].2.contains("no parameter \"verison\""), "{e:?}");
    assert_eq!(e[0].3.as_deref(), Some("version"));

    let outside = "stages:\n  - name: s\n    steps:\n      - {type: Notify, name: n, message: 'to ${target.region}'}\n";
    let e = errors(resolve(outside, &[]));
    assert!(e[0].2.contains("only known in a fan-out stage"), "{e:?}");
    assert_eq!(e[0].0, 4);

    let scope = "stages:\n  - name: s\n    steps:\n      - {type: Notify, name: n, message: '${parms.x} ${params.x'}\n";
    let e = errors(resolve(scope, &[]));
    assert!(e[0].2.contains("not closed") || e[0].2.contains("no scope"), "{e:?}");
    let scope = "stages:\n  - name: s\n    steps:\n      - {type: Notify, name: n, message: '${parms.x}'}\n";
    assert_eq!(errors(resolve(scope, &[]))[0].3.as_deref(), Some("params"));
}

const TENANTS: &str = r#"
targets:
  tenants:
    - { id: t-1, tier: pool, account: "111111111111", region: eu-west-1 }
    - { id: t-2, tier: silo, account: "222222222222", region: us-east-1 }
    - { id: t-3, tier: pool, account: "333333333333", region: eu-west-1 }
    - { id: t-4, tier: pool, account: "444444444444", region: us-east-1 }
stages:
  - name: deploy
    forEach: tenants
    maxConcurrency: 2
    toleratedFailureCount: 1
    waves:
      - { name: canary, count: 1 }
      - { name: rest }
    betweenWaves:
      - { type: Wait, name: soak, seconds: 0 }
      - { type: Notify, name: summary, message: "${wave.name} (#${wave.index}): ${wave.succeeded} ok, ${wave.failed} failed, ${wave.remaining} to go; $${literal}" }
    steps:
      - type: CodeBuild
        name: build
        codeBuildName: app-${target.id}
        region: ${target.region}
        roleArn: arn:aws:iam::${target.account}:role/Deployer
"#;

#[test]
fn a_fan_out_stage_expands_into_waves_of_named_instances() {
    let plan = resolve(TENANTS, &[]).expect("valid");
    let names: Vec<(&str, Vec<&str>)> = plan
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.steps.iter().map(|st| st.name.as_str()).collect()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("deploy / canary", vec!["build [t-1]"]),
            ("deploy / after canary", vec!["soak", "summary"]),
            ("deploy / rest", vec!["build [t-2]", "build [t-3]", "build [t-4]"]),
        ]
    );
    let step = &plan.stages[2].steps[0];
    assert_eq!(step.options.region.as_deref(), Some("us-east-1"));
    assert_eq!(
        step.options.role_arn.as_deref(),
        Some("arn:aws:iam::222222222222:role/Deployer")
    );
    let fan_out = plan.stages[0].fan_out.as_ref().expect("fan-out");
    assert_eq!(
        (
            fan_out.targets,
            fan_out.tolerated_failures,
            fan_out.max_concurrency,
            fan_out.part
        ),
        (4, 1, Some(2), FanOutPart::Wave)
    );
    assert_eq!(
        plan.stages[1].fan_out.as_ref().map(|f| f.part),
        Some(FanOutPart::BetweenWaves)
    );
    let sets = &plan.resolved.as_ref().expect("snapshot").sets;
    assert_eq!(
        (sets[0].name.as_str(), sets[0].source.as_str(), sets[0].targets),
        ("tenants", "inline", 4)
    );

    // The wave's counts are rendered when the step starts; its literal `${` stays literal.
    let summary = &plan.stages[1].steps[1];
    assert!(message(summary).contains("${wave.succeeded}"), "{}", message(summary));
    let started = render_between_step(
        summary,
        WaveCounts {
            succeeded: 1,
            failed: 0,
            remaining: 3,
        },
    );
    assert_eq!(message(&started), "canary (#1): 1 ok, 0 failed, 3 to go; ${literal}");
}

#[test]
fn where_selects_and_fan_out_mistakes_name_a_target() {
    let pool = TENANTS.replace(
        "forEach: tenants",
        "forEach: { targets: tenants, where: { tier: pool } }",
    );
    let plan = resolve(&pool, &[]).expect("valid");
    let ids: Vec<&str> = plan
        .stages
        .iter()
        .flat_map(|s| s.steps.iter().map(|s| s.name.as_str()))
        .collect();
    assert_eq!(ids, ["build [t-1]", "soak", "summary", "build [t-3]", "build [t-4]"]);

    let lacking = TENANTS.replace(
        "{ id: t-3, tier: pool, account: \"333333333333\", region: eu-west-1 }",
        "{ id: t-3, tier: pool, account: \"333333333333\" }",
    );
    let e = errors(resolve(&lacking, &[]));
    assert_eq!(e.len(), 1, "one diagnostic for the string, not one per target: {e:?}");
    assert!(e[0].2.contains("target \"t-3\" has no field \"region\""), "{e:?}");
    assert_eq!(e[0].0, 23, "{e:?}");

    let bad_region = TENANTS.replace("region: us-east-1 }", "region: useast1 }");
    let e = errors(resolve(&bad_region, &[]));
    assert!(e[0].2.contains("not an AWS region name for target \"t-2\""), "{e:?}");

    let unknown_set = TENANTS.replace("forEach: tenants", "forEach: tenant");
    let e = errors(resolve(&unknown_set, &[]));
    assert!(e[0].2.contains("no target set \"tenant\""), "{e:?}");
    assert_eq!(e[0].3.as_deref(), Some("tenants"));

    let none = TENANTS.replace(
        "forEach: tenants",
        "forEach: { targets: tenants, where: { tier: gold } }",
    );
    assert!(
        errors(resolve(&none, &[]))[0]
            .2
            .contains("selects none of the 4 targets")
    );

    let counts_in_wave = TENANTS.replace("codeBuildName: app-${target.id}", "codeBuildName: app-${wave.failed}");
    assert!(
        errors(resolve(&counts_in_wave, &[]))[0]
            .2
            .contains("use it in \"betweenWaves\"")
    );

    let dup = TENANTS.replace("id: t-4", "id: t-1");
    assert!(
        errors(resolve(&dup, &[]))[0]
            .2
            .contains("has the id \"t-1\" of target 1 again")
    );

    let no_fan_out =
        "stages:\n  - name: s\n    maxConcurrency: 2\n    steps:\n      - {type: Wait, name: w, seconds: 0}\n";
    assert!(errors(resolve(no_fan_out, &[]))[0].2.contains("is for a fan-out stage"));
}

#[test]
fn target_files_are_relative_to_the_plan() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("tenants.csv"),
        "id,region\r\nt-1,eu-west-1\r\nt-2,us-east-1\r\n",
    )
    .expect("csv");
    let plan = "targets:\n  tenants: { from: tenants.csv }\nstages:\n  - name: deploy\n    forEach: tenants\n    steps:\n      - {type: Notify, name: n, message: 'to ${target.region}'}\n";
    let inputs = Inputs {
        sources: Sources {
            base_dir: Some(dir.path()),
            remote: None,
        },
        ..Inputs::default()
    };
    let plan = validate_text_with("plan.yaml", plan, None, &inputs).expect("valid");
    let messages: Vec<&str> = plan.stages[0].steps.iter().map(message).collect();
    assert_eq!(messages, ["to eu-west-1", "to us-east-1"]);
    assert_eq!(plan.stages[0].name, "deploy", "no waves: one stage under its own name");
    let snapshot = &plan.resolved.expect("snapshot").sets[0];
    assert_eq!((snapshot.source.as_str(), snapshot.targets), ("tenants.csv", 2));
    assert!(snapshot.read_at_ms > 0);
}

#[test]
fn a_plan_without_templates_is_unchanged() {
    let text = "stages:\n  - name: s\n    steps:\n      - {type: Notify, name: n, message: 'costs $5 {x}'}\n";
    let plan = resolve(text, &[]).expect("valid");
    assert!(plan.resolved.is_none());
    assert_eq!(message(&plan.stages[0].steps[0]), "costs $5 {x}");
    let e = errors(resolve(text, &[("x", "1")]));
    assert!(e[0].2.contains("not a parameter of this plan"), "{e:?}");
}
