//! `steppy`: the command-line program. Parses arguments and hands each subcommand to
//! [`commands`]; all real work lives in the engine and executor crates.

mod cli;
mod commands;
mod http;
mod progress;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of our output goes away
    // (`steppy history ID | head`) instead of failing on the write.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::Cli::parse();
    commands::dispatch(cli)
}
