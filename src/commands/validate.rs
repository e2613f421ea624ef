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
                // 2 for a plan that could not be read (a missing file or S3 object), else 1.
                let worst = if matches!(e, steppy_engine::validate::LoadError::Io { .. }) { 2 } else { 1 };
                if code != ExitCode::from(2) {
                    code = ExitCode::from(worst);
                }
            }
        }
    }
    code
}
