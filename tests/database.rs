//! The database file as the commands treat it: another application's SQLite file is refused
//! untouched, read commands never create a database where there is none, open errors name the
//! path and say why, and `serve` refuses a damaged database before doing anything.

mod support;

use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// A small SQLite file of another application, in rollback-journal mode, as `sqlite3` makes it.
fn foreign_database(path: &Path) {
    let status = Command::new("sqlite3")
        .arg(path)
        .arg("PRAGMA application_id = 1234; CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('mine');")
        .status()
        .expect("run sqlite3");
    assert!(status.success());
}

/// The same, with application id 0 (most applications never set one).
fn unmarked_foreign_database(path: &Path) {
    let status = Command::new("sqlite3")
        .arg(path)
        .arg("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('mine');")
        .status()
        .expect("run sqlite3");
    assert!(status.success());
}

fn sqlite3(path: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(path)
        .arg(sql)
        .output()
        .expect("run sqlite3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn wait_plan(sb: &Sandbox) -> std::path::PathBuf {
    sb.write_plan(
        &json!({ "stages": [ { "name": "s", "steps": [ { "type": "Wait", "name": "w", "seconds": 3600 } ] } ] }),
    )
}

#[test]
fn another_applications_sqlite_file_is_refused_and_left_untouched() {
    for make in [foreign_database, unmarked_foreign_database] {
        let sb = Sandbox::new();
        make(&sb.db());
        let before = std::fs::read(sb.db()).expect("read");
        let plan = wait_plan(&sb);
        for args in [
            vec!["list"],
            vec!["status", "x"],
            vec!["submit", plan.to_str().expect("utf-8")],
            vec!["resume"],
        ] {
            let (status, out, err) = sb.output(&args);
            assert_eq!(status.code(), Some(2), "{args:?}: {out}{err}");
            assert!(
                err.contains(&format!("{} is not a Steppy database", sb.db().display())),
                "{args:?}: {err}"
            );
        }
        assert_eq!(std::fs::read(sb.db()).expect("read"), before, "the file was modified");
        assert!(!sb.dir.path().join("steppy.db-wal").exists(), "WAL was switched on");
        assert_eq!(sqlite3(&sb.db(), "PRAGMA journal_mode"), "delete");
        assert_eq!(
            sqlite3(&sb.db(), "SELECT name FROM sqlite_schema WHERE type = 'table'"),
            "notes"
        );
    }
}

#[test]
fn steppy_marks_its_databases_and_adopts_those_of_earlier_versions() {
    let sb = Sandbox::new();
    let plan = wait_plan(&sb);
    let (status, out, err) = sb.output(&["submit", plan.to_str().expect("utf-8")]);
    assert!(status.success(), "{err}");
    let id = out.trim().to_string();
    // 0x53545059, "STPY".
    assert_eq!(sqlite3(&sb.db(), "PRAGMA application_id"), "1398034521");
    // A database written before the mark existed: Steppy's tables, application id 0.
    sqlite3(&sb.db(), "PRAGMA application_id = 0");
    let (status, out, err) = sb.output(&["list"]);
    assert!(status.success(), "{err}");
    assert!(out.contains(&id), "{out}");
    let (status, _, err) = sb.output(&["abort", &id]);
    assert!(status.success(), "{err}");
    assert_eq!(sqlite3(&sb.db(), "PRAGMA application_id"), "1398034521");
}

#[test]
fn read_commands_on_a_missing_database_say_so_and_create_nothing() {
    let sb = Sandbox::new();
    let dir = sb.dir.path().join("no").join("such");
    let db = dir.join("steppy.db");
    for args in [
        &["list"][..],
        &["status", "x"],
        &["history", "x"],
        &["list", "--format", "json"],
        &["approve", "stp_x"],
        &["abort", "x"],
        &["resume"],
    ] {
        let (status, out, err) = sb.output(&[&["--db", db.to_str().expect("utf-8")][..], args].concat());
        assert_eq!(status.code(), Some(2), "{args:?}: {out}{err}");
        assert!(
            err.contains(&format!("there is no Steppy database at {}", db.display())),
            "{args:?}: {err}"
        );
        assert!(!out.contains("no executions"), "{args:?}: {out}");
        assert!(!sb.dir.path().join("no").exists(), "{args:?} created a directory");
    }
    // An empty file (a mistyped `touch`) is no database either, and stays empty.
    std::fs::write(sb.db(), b"").expect("touch");
    let (status, _, err) = sb.output(&["list"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("there is no Steppy database at"), "{err}");
    assert_eq!(std::fs::metadata(sb.db()).expect("stat").len(), 0);
}

#[test]
fn read_commands_write_nothing_to_an_existing_database() {
    let sb = Sandbox::new();
    let plan = wait_plan(&sb);
    let (status, out, err) = sb.output(&["submit", plan.to_str().expect("utf-8")]);
    assert!(status.success(), "{err}");
    let id = out.trim().to_string();
    let before = std::fs::read(sb.db()).expect("read");
    for args in [&["list"][..], &["status", &id], &["history", &id]] {
        let (status, _, err) = sb.output(args);
        assert!(status.success(), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(sb.db()).expect("read"), before);
}

/// Runs `steppy` as an unprivileged user when the tests run as root (root may write anywhere),
/// so that a directory's permissions mean something.
fn unprivileged(sb: &Sandbox, args: &[&str]) -> (Option<i32>, String, String) {
    use std::os::unix::process::CommandExt;
    let mut c = sb.steppy(args);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        c.uid(65534).gid(65534);
    }
    let o = c.output().expect("spawn steppy");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn a_database_in_a_read_only_directory_gets_an_error_with_the_path_and_the_reason() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let plan = wait_plan(&sb);
    let (status, _, err) = sb.output(&["submit", plan.to_str().expect("utf-8")]);
    assert!(status.success(), "{err}");
    // The file may be written, its directory not: SQLite cannot create its -wal and -shm files.
    std::fs::set_permissions(sb.db(), std::fs::Permissions::from_mode(0o666)).expect("chmod file");
    std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o555)).expect("chmod dir");
    let shown = sb.db().display().to_string();
    for args in [
        &["list"][..],
        &["abort", "x"],
        &["submit", plan.to_str().expect("utf-8")],
    ] {
        let (code, out, err) = unprivileged(&sb, args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(
            err.contains(&format!("cannot open the database {shown}")),
            "{args:?}: {err}"
        );
        assert!(err.contains("must be writable"), "{args:?}: the reason: {err}");
    }
    std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod back");
    // A database file that cannot be created: the operating system's reason, with the path.
    let (code, _, err) = sb.output(&["--db", "/proc/steppy-test.db", "list"]);
    assert_eq!(code.code(), Some(2), "{err}");
    assert!(
        err.contains("there is no Steppy database at /proc/steppy-test.db"),
        "{err}"
    );
    let (code, _, err) = sb.output(&["--db", "/proc/steppy-test.db", "submit", plan.to_str().expect("utf-8")]);
    assert_eq!(code.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot open the database /proc/steppy-test.db: cannot create the file in /proc"),
        "{err}"
    );
}

/// Overwrites `count` pages in the middle of the database file with junk.
fn damage_pages(db: &Path, count: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let page = 4096u64;
    let pages = std::fs::metadata(db).expect("stat").len() / page;
    assert!(
        pages > count + 4,
        "the database is too small to damage its middle: {pages} pages"
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(db)
        .expect("open for damage");
    f.seek(SeekFrom::Start((pages / 2) * page)).expect("seek");
    f.write_all(&vec![0xA5; (count * page) as usize]).expect("write junk");
    f.sync_all().expect("sync");
}

#[test]
fn serve_refuses_a_damaged_database_at_start() {
    let sb = Sandbox::new();
    let text = "x".repeat(4000);
    let plan = sb.write_plan(
        &json!({ "name": "big", "description": text, "stages": [ { "name": "s", "description": text, "steps": [
        { "type": "Wait", "name": "w", "seconds": 3600 },
        { "type": "Notify", "name": "n", "message": text }
    ] } ] }),
    );
    for _ in 0..25 {
        let (status, _, err) = sb.output(&["submit", plan.to_str().expect("utf-8")]);
        assert!(status.success(), "{err}");
    }
    // Every process has closed the database, so its log is folded into the file.
    assert!(std::fs::metadata(sb.dir.path().join("steppy.db-wal")).map_or(true, |m| m.len() == 0));
    damage_pages(&sb.db(), 4);
    let mut serve = sb
        .steppy(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = serve.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = serve.kill();
            let _ = serve.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let mut out = String::new();
    use std::io::Read;
    let _ = serve.stderr.take().expect("stderr").read_to_string(&mut err);
    let _ = serve.stdout.take().expect("stdout").read_to_string(&mut out);
    let status = status.unwrap_or_else(|| panic!("serve kept running on a damaged database: {out}{err}"));
    assert_eq!(status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains(&format!(
            "the database {} is damaged (integrity check:",
            sb.db().display()
        )),
        "{err}"
    );
    assert!(!out.contains("running"), "serve started steps: {out}");
}
