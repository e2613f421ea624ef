//! `steppy approve TOKEN` / `steppy reject TOKEN`: vote on an approval from any process.
//! A decision is final; the first decisive vote wins.

use super::setup;
use crate::terminal::say;
use std::path::PathBuf;
use std::process::ExitCode;
use steppy_engine::clock::system_now_ms;
use steppy_engine::store::{Decision, OpenMode, Vote};
use steppy_executors::human::{current_user, token_hash};

pub fn run(
    db: Option<PathBuf>,
    token: &str,
    approve: bool,
    comment: Option<String>,
    voter: Option<String>,
    server: Option<String>,
) -> ExitCode {
    if let Some(server) = server {
        return over_http(
            &server,
            token,
            approve,
            comment.as_deref(),
            &voter.unwrap_or_else(current_user),
        );
    }
    let (store, _) = match setup::open(db, OpenMode::Existing) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let vote = Vote {
        approve,
        voter: voter.unwrap_or_else(current_user),
        comment,
    };
    match store.vote(&token_hash(token), &vote, system_now_ms()) {
        Ok(d) => {
            say!("{}", describe(&d));
            ExitCode::SUCCESS
        }
        Err(e) => setup::store_fail(&e),
    }
}

/// One sentence about what a vote did.
pub fn describe(d: &Decision) -> String {
    let a = &d.approval;
    match (d.decisive, a.state.as_str()) {
        (true, state) => format!("{state}: \"{}\" (execution {})", a.message, a.execution_id),
        (false, _) => format!(
            "vote recorded: {} of {} approvals so far",
            a.approvals_so_far, a.required
        ),
    }
}

/// Decides through a running server's JSON API (`--server URL`).
fn over_http(server: &str, token: &str, approve: bool, comment: Option<&str>, voter: &str) -> ExitCode {
    match steppy_human_approval_api::client::post_decision(server, token, approve, comment, voter) {
        Ok(answer) if answer.status == 200 => {
            let a = &answer.body["approval"];
            match answer.body["outcome"].as_str() {
                Some("recorded") => say!(
                    "vote recorded: {} of {} approvals so far",
                    a["votes"]
                        .as_array()
                        .map_or(0, |v| v.iter().filter(|v| v["approve"] == true).count()),
                    a["required"]
                ),
                Some(state) => say!(
                    "{state}: \"{}\" (execution {})",
                    a["message"].as_str().unwrap_or(""),
                    a["executionId"].as_str().unwrap_or("")
                ),
                None => say!("{}", answer.body),
            }
            ExitCode::SUCCESS
        }
        Ok(answer) => setup::fail(
            1,
            answer.body["error"]
                .as_str()
                .unwrap_or("the server refused the decision"),
        ),
        Err(why) => setup::fail(2, &why),
    }
}
