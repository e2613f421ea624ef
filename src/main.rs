//! `steppy`: the command-line program. Parses arguments and hands each subcommand to
//! [`commands`]; all real work lives in the engine and executor crates. Errors come back as
//! one [`error::CliError`], printed and turned into the exit code here and nowhere else.

mod cli;
mod commands;
mod error;
mod http;
mod logging;
mod progress;
mod terminal;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    match commands::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}
