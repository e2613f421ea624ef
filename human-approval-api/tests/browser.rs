//! The approval page in a real browser: headless Chromium (Debian's `chromium`, which
//! `scripts/test` installs up front with `scripts/install-chromium` where it is missing) renders it; the DOM must show the step message as
//! text, both buttons and the expiry, and a screenshot is written for people to look at
//! (`$CARGO_TARGET_TMPDIR/approval-page.png`).

mod support;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Harness, human_plan};

/// The `chromium` on PATH, if any. The test never installs it (installing is `scripts/test`'s
/// job, before any test runs).
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|b| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {b}"))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    })
}

/// Says loudly that the test did not run, and records it where `scripts/test` prints its
/// summary (`$CARGO_TARGET_TMPDIR/skipped-tests.txt`): a skip must not pass unseen.
fn record_skip(test: &str, why: &str) {
    use std::io::Write;
    eprintln!("\n!!!!!!!! SKIPPED {test}: {why} !!!!!!!!\n");
    let list = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(list) {
        let _ = writeln!(f, "{test}: {why}");
    }
}

fn run_chromium(chromium: &Path, profile: &Path, args: &[String]) -> std::process::Output {
    Command::new("timeout")
        .arg("120")
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_renders_in_chromium() {
    let Some(chromium) = chromium() else {
        record_skip(
            "the_page_renders_in_chromium",
            "chromium is not installed (scripts/install-chromium needs root and the Debian mirror)",
        );
        return;
    };
    let h = Harness::start().await;
    let message = "Ship release 1.2.3 to production?\nChangelog: faster builds, <script>alert(1)</script> stays text.";
    let plan = human_plan(
        json!({ "message": message, "approvers": ["ann@example.com", "ben@example.com"], "requiredApprovals": 2, "timeoutSeconds": 7200 }),
    );
    let (_, token) = h.run_plan(plan, "carol@example.com").await;
    let url = format!("{}/approvals/{token}?action=approve", h.base);
    let profile = tempfile::tempdir().expect("profile dir");
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("approval-page.png");
    let _ = std::fs::remove_file(&shot);

    let (c, p, u) = (chromium.clone(), profile.path().to_path_buf(), url.clone());
    let dom = tokio::task::spawn_blocking(move || run_chromium(&c, &p, &["--dump-dom".into(), u]))
        .await
        .expect("join");
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    assert!(dom.contains("Ship release 1.2.3 to production?"), "{dom}");
    assert!(
        dom.contains("&lt;script&gt;alert(1)&lt;/script&gt; stays text"),
        "the script tag is text: {dom}"
    );
    assert!(
        dom.contains(r#"id="approve""#) && dom.contains(">Approve</button>"),
        "{dom}"
    );
    assert!(
        dom.contains(r#"id="reject""#) && dom.contains(">Reject</button>"),
        "{dom}"
    );
    assert!(
        dom.contains(r#"id="expiry""#) && (dom.contains(" UTC (in 1 h 59 min)") || dom.contains(" UTC (in 2 h 0 min)")),
        "{dom}"
    );

    let (c, p, s) = (chromium, profile.path().to_path_buf(), shot.clone());
    let out = tokio::task::spawn_blocking(move || {
        run_chromium(
            &c,
            &p,
            &[
                format!("--screenshot={}", s.display()),
                "--window-size=1000,900".into(),
                url,
            ],
        )
    })
    .await
    .expect("join");
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "no screenshot at {} ({size} bytes): {}",
        shot.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("screenshot: {}", shot.display());
}
