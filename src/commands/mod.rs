//! One module per subcommand; [`dispatch`] routes a parsed command line to it.
//!
//! Exit codes: 0 success, 1 the plan or the release failed, 2 usage or I/O error.

mod schema;
mod validate;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

pub fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate { plans, format } => validate::run(&plans, format),
        Command::Schema => schema::run(),
    }
}
