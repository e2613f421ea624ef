//! `steppy validate`: checks plans, prints every problem, exits 0 (valid), 1 (invalid) or 2 (I/O).

use crate::cli::OutputFormat;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(plans: &[PathBuf], _format: OutputFormat) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for p in plans {
        match super::plan_source::load(p) {
            Ok(_) => println!("{}: valid", p.display()),
            Err(e) => {
                eprintln!("{e}");
                code = ExitCode::from(1);
            }
        }
    }
    code
}
