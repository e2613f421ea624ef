//! `steppy approve TOKEN` / `steppy reject TOKEN`: vote on an approval from any process.
//! A decision is final; the first decisive vote wins.

use super::setup;
use std::path::PathBuf;
use std::process::ExitCode;
use steppy_engine::clock::system_now_ms;
use steppy_engine::store::{Decision, Vote};
use steppy_executors::human::{current_user, token_hash};

pub fn run(
    db: Option<PathBuf>,
    token: &str,
    approve: bool,
    comment: Option<String>,
    voter: Option<String>,
) -> ExitCode {
    let (store, _) = match setup::open(db) {
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
            println!("{}", describe(&d));
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
