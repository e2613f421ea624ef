//! Plan validation: text in, a typed [`Plan`] or a [`Report`] of every problem out.
//! (Temporary surface: the full validator replaces the body, not the signatures.)

use crate::plan::Plan;
use std::path::Path;

/// The syntax a plan is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON, with `//` and `/* */` comments allowed.
    Json,
    /// YAML 1.2.
    Yaml,
}

/// One problem in a plan.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub message: String,
}

/// Every problem found in one plan.
#[derive(Debug, Clone)]
pub struct Report {
    pub origin: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{}: {}", self.origin, d.message)?;
        }
        Ok(())
    }
}

/// Why a plan file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(Report),
}

/// The plan JSON Schema, `schemas/plan.schema.json`, embedded at build time.
pub const SCHEMA_TEXT: &str = include_str!("../../../schemas/plan.schema.json");

/// Validates plan text named `origin` (a path, `-`, or a URL, used in messages).
/// `format` forces the syntax; `None` guesses it from the name and the content.
pub fn validate_bytes(origin: &str, bytes: &[u8], _format: Option<Format>) -> Result<Plan, Report> {
    serde_json::from_slice(bytes).map_err(|e| Report {
        origin: origin.to_string(),
        diagnostics: vec![Diagnostic { message: e.to_string() }],
    })
}

/// Reads and validates the plan file at `path`.
pub fn load_plan(path: &Path) -> Result<Plan, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.display().to_string(), source })?;
    validate_bytes(&path.display().to_string(), &bytes, None).map_err(LoadError::Invalid)
}
