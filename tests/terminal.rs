//! Outside text (a reject comment posted by anyone holding the link, a plan's messages) reaches
//! the terminal only with its control characters escaped: no screen clearing, no terminal title
//! changes, no forged lines.

mod support;

use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use support::*;

const FORGED: &str = "\r\nexecution FAKE SUCCEEDED";

/// No escape sequence, bell or carriage return, and no line that a CR/LF in outside text made.
fn assert_clean(what: &str, text: &str) {
    for bad in ['\u{1b}', '\u{7}', '\r', '\u{9b}'] {
        assert!(!text.contains(bad), "{what} printed U+{:04X} raw:\n{text}", bad as u32);
    }
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("execution FAKE")),
        "{what} printed a forged line:\n{text}"
    );
}

#[test]
fn comments_and_messages_are_printed_with_control_characters_escaped() {
    let sb = Sandbox::new();
    let plan = sb.write_plan(&json!({ "name": "release", "stages": [ { "name": "sign-off", "steps": [
        { "type": "Notify", "name": "n", "message": format!("hello \u{1b}[31mred\u{1b}]0;owned\u{7}{FORGED}") },
        { "type": "Human", "name": "h", "message": format!("ship \u{1b}[2J it?{FORGED}") }
    ] } ] }));
    let mut run = sb
        .steppy(&["run", plan.to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(run.stdout.take().expect("stdout")).lines();
    let mut shown = String::new();
    let mut token = None;
    for line in lines.by_ref() {
        let line = line.expect("line");
        shown.push_str(&line);
        shown.push('\n');
        if let Some(t) = token_in(&line) {
            token = Some(t);
            break;
        }
    }
    let token = token.unwrap_or_else(|| panic!("no approval token shown:\n{shown}"));
    let comment = format!("no \u{1b}[2J\u{1b}]0;pwned\u{7}{FORGED}");
    let (status, out, err) = sb.output(&["reject", &token, "--comment", &comment, "--as", "ops"]);
    assert!(status.success(), "{out}{err}");
    assert_clean("reject", &out);
    for line in lines.map_while(Result::ok) {
        shown.push_str(&line);
        shown.push('\n');
    }
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut run.stderr.take().expect("stderr"), &mut err);
    assert_eq!(run.wait().expect("wait").code(), Some(1), "{shown}{err}");
    assert!(shown.contains("ABORTED"), "{shown}");
    assert!(shown.contains("\\u{1b}[2J"), "the comment is shown, escaped: {shown}");
    assert_clean("run", &shown);
    assert_clean("run (stderr)", &err);

    let id = sb.only_execution_id();
    for args in [&["status", &id][..], &["history", &id], &["list"]] {
        let (status, out, err) = sb.output(args);
        assert!(status.success(), "{args:?}: {err}");
        assert_clean(&format!("{args:?}"), &out);
    }
    let (_, out, _) = sb.output(&["status", &id]);
    assert!(
        out.contains("no \\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\r\\nexecution FAKE SUCCEEDED"),
        "{out}"
    );
}
