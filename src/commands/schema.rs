//! `steppy schema`: prints the plan JSON Schema embedded in the engine.

use crate::error::CliResult;

pub fn run() -> CliResult {
    println!("{}", steppy_engine::validate::SCHEMA_TEXT.trim_end());
    Ok(())
}
