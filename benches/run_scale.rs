//! How the cost of `steppy run` grows with the work (issue 12): whole processes, as a user runs
//! them, of plans of `Wait 0` steps at 10,000 and 100,000 steps, in two shapes each. Not a
//! test: run it with `cargo bench --bench run_scale` (all cases) or `-- CASE…` (some), against
//! the release binary (`BENCH_STEPPY=PATH` to measure another).
//!
//! Cases (`name`: shape):
//! - `stages-100x100`, `stages-1000x100`: 100 or 1,000 stages of 100 steps;
//! - `wide-10x1000`, `wide-10x10000`: 10 stages of 1,000 or 10,000 steps;
//! - `fanout-10000`, `fanout-100000`: one fan-out stage over 10,000 or 100,000 inline
//!   targets, `maxConcurrency: 1000`.
//!
//! For each it writes the plan to a temporary directory, runs `steppy --db DB run PLAN` with
//! stdout to `/dev/null`, and reports the wall time, the peak resident memory of that process
//! (`wait4`'s `ru_maxrss`), the time per step, and the wall time of `steppy --db DB status ID`
//! and `status ID --format json` (median of three). It exits 1 if a run or a status fails.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// One measured shape.
struct Case {
    name: &'static str,
    plan: fn() -> serde_json::Value,
    steps: usize,
}

fn wait_step(name: String) -> serde_json::Value {
    serde_json::json!({ "type": "Wait", "name": name, "seconds": 0 })
}

fn stages(count: usize, width: usize) -> serde_json::Value {
    let stages: Vec<_> = (0..count)
        .map(|s| {
            let steps: Vec<_> = (0..width).map(|i| wait_step(format!("w{s}-{i}"))).collect();
            serde_json::json!({ "name": format!("stage {s}"), "steps": steps })
        })
        .collect();
    serde_json::json!({ "name": format!("scale {count}x{width}"), "stages": stages })
}

fn fan_out(targets: usize) -> serde_json::Value {
    let list: Vec<_> = (0..targets)
        .map(|i| serde_json::json!({ "id": format!("t-{i:06}"), "region": "eu-west-1" }))
        .collect();
    serde_json::json!({
        "name": format!("fan-out over {targets}"),
        "targets": { "all": list },
        "stages": [{
            "name": "deploy",
            "forEach": "all",
            "maxConcurrency": 1000,
            "steps": [wait_step("soak ${target.id}".into())]
        }]
    })
}

const CASES: &[Case] = &[
    Case {
        name: "stages-100x100",
        plan: || stages(100, 100),
        steps: 10_000,
    },
    Case {
        name: "stages-1000x100",
        plan: || stages(1000, 100),
        steps: 100_000,
    },
    Case {
        name: "wide-10x1000",
        plan: || stages(10, 1000),
        steps: 10_000,
    },
    Case {
        name: "wide-10x10000",
        plan: || stages(10, 10_000),
        steps: 100_000,
    },
    Case {
        name: "fanout-10000",
        plan: || fan_out(10_000),
        steps: 10_000,
    },
    Case {
        name: "fanout-100000",
        plan: || fan_out(100_000),
        steps: 100_000,
    },
];

/// A finished process: how long it took, its peak RSS, whether it succeeded.
struct Ran {
    wall: Duration,
    peak_rss_kb: i64,
    ok: bool,
    stdout: String,
}

/// Runs `cmd` to its end, measuring wall time and (through `wait4`) its peak resident memory.
fn measure(mut cmd: Command, keep_stdout: bool) -> std::io::Result<Ran> {
    cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
    cmd.stdout(if keep_stdout { Stdio::piped() } else { Stdio::null() });
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        use std::io::Read;
        out.read_to_string(&mut stdout)?;
    }
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; `pid` is our own unreaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals; the child is reaped here, not by `Child` (never waited).
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if reaped != pid {
        return Err(std::io::Error::last_os_error());
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok(Ran {
        wall,
        peak_rss_kb: usage.ru_maxrss,
        ok,
        stdout,
    })
}

fn steppy_binary() -> std::path::PathBuf {
    std::env::var_os("BENCH_STEPPY").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/steppy"),
        Into::into,
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn run_case(case: &Case, steppy: &Path) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let plan_path = dir.path().join("plan.json");
    let db = dir.path().join("steppy.db");
    std::fs::write(&plan_path, (case.plan)().to_string()).map_err(|e| format!("writing the plan: {e}"))?;
    let mut run = Command::new(steppy);
    run.arg("--db").arg(&db).arg("run").arg(&plan_path);
    let ran = measure(run, false).map_err(|e| format!("running steppy: {e}"))?;
    if !ran.ok {
        return Err(format!("{}: steppy run failed", case.name));
    }
    let mut list = Command::new(steppy);
    list.arg("--db").arg(&db).args(["list", "--format", "json"]);
    let listed = measure(list, true).map_err(|e| format!("steppy list: {e}"))?;
    let listed: serde_json::Value =
        serde_json::from_str(&listed.stdout).map_err(|e| format!("steppy list --format json: {e}"))?;
    let id = listed
        .as_array()
        .and_then(|a| a.first())
        .and_then(|e| e["id"].as_str())
        .ok_or("steppy list shows no execution")?
        .to_string();
    let times = |json: bool| -> Result<Duration, String> {
        let mut walls = Vec::new();
        for _ in 0..3 {
            let mut status = Command::new(steppy);
            status.arg("--db").arg(&db).args(["status", &id]);
            if json {
                status.args(["--format", "json"]);
            }
            let s = measure(status, false).map_err(|e| format!("steppy status: {e}"))?;
            if !s.ok {
                return Err(format!("{}: steppy status failed", case.name));
            }
            walls.push(s.wall);
        }
        Ok(median(walls))
    };
    let (text, json) = (times(false)?, times(true)?);
    println!(
        "{:<16} {:>7} steps  run {:>7.2} s  {:>6.1} µs/step  peak {:>5} MB  status {:>4} ms (json {:>4} ms)",
        case.name,
        case.steps,
        ran.wall.as_secs_f64(),
        ran.wall.as_secs_f64() * 1e6 / case.steps as f64,
        ran.peak_rss_kb / 1024,
        text.as_millis(),
        json.as_millis()
    );
    Ok(())
}

fn main() -> ExitCode {
    let steppy = steppy_binary();
    if !steppy.exists() {
        eprintln!(
            "{} does not exist: build it with `cargo build --release` (or set BENCH_STEPPY)",
            steppy.display()
        );
        return ExitCode::from(2);
    }
    let wanted: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let mut failed = false;
    for case in CASES
        .iter()
        .filter(|c| wanted.is_empty() || wanted.iter().any(|w| w == c.name))
    {
        if let Err(e) = run_case(case, &steppy) {
            eprintln!("{e}");
            failed = true;
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
