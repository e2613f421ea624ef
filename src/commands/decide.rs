//! `steppy approve TOKEN` / `steppy reject TOKEN`: vote on an approval from any process.
//! A decision is final; the first decisive vote wins.

use super::setup;
use crate::cli::DecisionArgs;
use crate::error::{CliError, CliResult};
use crate::terminal::say;
use std::path::PathBuf;
use steppy_engine::clock::system_now_ms;
use steppy_engine::store::{Decision, OpenMode, Verdict, Vote};
use steppy_executors::human::{current_user, token_hash};
use steppy_human_approval_api::client::{DecisionRequest, post_decision};

pub fn run(db: Option<PathBuf>, verdict: Verdict, args: DecisionArgs) -> CliResult {
    let voter = args.voter.unwrap_or_else(current_user);
    if let Some(server) = args.server {
        let request = DecisionRequest {
            token: &args.token,
            verdict,
            comment: args.comment.as_deref(),
            approver: &voter,
        };
        return over_http(&server, &request);
    }
    let (store, _) = setup::open(db, OpenMode::Existing)?;
    let vote = Vote {
        approve: verdict.approves(),
        voter,
        comment: args.comment,
    };
    let d = store.vote(&token_hash(&args.token), &vote, system_now_ms())?;
    say!("{}", describe(&d));
    Ok(())
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
fn over_http(server: &str, request: &DecisionRequest<'_>) -> CliResult {
    let answer = setup::runtime()?
        .block_on(post_decision(server, request))
        .map_err(CliError::trouble)?;
    match answer {
        answer if answer.status == 200 => {
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
            Ok(())
        }
        answer => Err(CliError::failed(
            answer.body["error"]
                .as_str()
                .unwrap_or("the server refused the decision"),
        )),
    }
}
