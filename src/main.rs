//! `steppy`: the command-line program. Parses arguments and hands each subcommand to
//! [`commands`]; all real work lives in the engine and executor crates.

mod cli;
mod commands;
mod http;
mod progress;
mod terminal;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    commands::dispatch(cli)
}
