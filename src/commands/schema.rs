//! `steppy schema`: prints the plan JSON Schema embedded in the engine.

use std::process::ExitCode;

pub fn run() -> ExitCode {
    println!("{}", steppy_engine::validate::SCHEMA_TEXT.trim_end());
    ExitCode::SUCCESS
}
