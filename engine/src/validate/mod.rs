//! Plan validation: text in, a typed [`Plan`] or a [`Report`] of *every* problem out.
//!
//! The pipeline, in order:
//! 1. bytes → text: size limit, UTF-8 (a BOM is tolerated, in JSON and YAML);
//! 2. text → JSON value plus source map ([`crate::source`]), JSON with comments or YAML; every
//!    integral float (`1.0`, `-0`) becomes the integer it equals, as JSON Schema counts it
//!    ([`numbers`]);
//! 3. structure against the JSON Schema ([`schema`]), and the rules a schema cannot express
//!    ([`rules`], [`names`]): both run, so one pass reports everything;
//! 4. value → [`Plan`] (serde), which cannot fail once 3 passed, but is checked all the same;
//! 5. the plan as written → the plan an execution runs ([`crate::resolve`]: parameters, target
//!    sets, interpolation, fan-out), with [`Inputs`] ([`validate_with`]; the default for
//!    [`validate_bytes`]: no parameters given, no remote target sources).

mod diagnostic;
mod names;
mod numbers;
mod rules;
mod schema;
mod suggest;

pub use crate::source::Format;
pub use diagnostic::{Code, Diagnostic, Paint, Report};
pub use rules::{MAX_STAGES, MAX_STEPS, MAX_STEPS_PER_STAGE, Shape};
pub use schema::{SCHEMA_TEXT, schema, step_types};
pub use suggest::closest;

use crate::plan::Plan;
use crate::resolve::Inputs;
use crate::source::{self, LineIndex, Span};
use std::path::Path;
use std::sync::Arc;

/// What a byte-order mark is replaced with: as many spaces as its UTF-8 bytes.
const BOM_BLANK: &str = "   ";

/// Largest plan file Steppy reads, in bytes.
pub const MAX_PLAN_BYTES: usize = 16 * 1024 * 1024;

/// Why a plan file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (missing, unreadable): a usage or I/O error, not a bad plan.
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The plan was read and is invalid.
    #[error("{0}")]
    Invalid(Report),
}

/// Validates plan text named `origin` (a path, `-`, or a URL, used in messages).
/// `format` forces the syntax; `None` picks it from the name, else from the content.
pub fn validate_bytes(origin: &str, bytes: &[u8], format: Option<Format>) -> Result<Plan, Report> {
    let fail = |text: &str, format, diagnostics| Err(Report::new(origin, Arc::from(text), format, diagnostics));
    if bytes.len() > MAX_PLAN_BYTES {
        let d = Diagnostic::new(
            Code::TooLarge,
            "",
            Span::default(),
            format!("the plan is {} bytes; the limit is {MAX_PLAN_BYTES}", bytes.len()),
        )
        .with_help("split the release into several plans");
        return fail("", format, vec![d]);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let prefix = String::from_utf8_lossy(valid);
            let at = prefix.len();
            let d = Diagnostic::new(
                Code::Encoding,
                "",
                Span::new(at, at),
                format!("the plan is not UTF-8 text: byte {at} is invalid"),
            )
            .with_help("save the plan as UTF-8 (is this a binary file?)");
            let (line, column) = LineIndex::new(&prefix).line_col(&prefix, at);
            let mut report = Report::new(origin, Arc::from(&*prefix), format, vec![d]);
            if let Some(d) = report.diagnostics.first_mut() {
                (d.line, d.column) = (line, column);
            }
            return Err(report);
        }
    };
    validate_text(origin, text, format)
}

/// Validates plan text; see [`validate_bytes`].
pub fn validate_text(origin: &str, text: &str, format: Option<Format>) -> Result<Plan, Report> {
    validate_text_with(origin, text, format, &Inputs::default())
}

/// Validates plan bytes and resolves the plan with `inputs` (parameters, target sources):
/// the runnable plan, or every problem. See [`crate::resolve`].
pub fn validate_with(origin: &str, bytes: &[u8], format: Option<Format>, inputs: &Inputs<'_>) -> Result<Plan, Report> {
    match std::str::from_utf8(bytes) {
        Ok(text) if bytes.len() <= MAX_PLAN_BYTES => validate_text_with(origin, text, format, inputs),
        _ => validate_bytes(origin, bytes, format),
    }
}

/// Validates plan text and resolves it with `inputs`; see [`validate_with`].
pub fn validate_text_with(
    origin: &str,
    text: &str,
    format: Option<Format>,
    inputs: &Inputs<'_>,
) -> Result<Plan, Report> {
    // A byte-order mark is not part of the plan; blank it out so byte offsets stay true, parse
    // what follows it, and count the columns of the first line from after it, as editors do.
    let (text, start): (Arc<str>, usize) = match text.strip_prefix('\u{feff}') {
        Some(rest) => (Arc::from(format!("{BOM_BLANK}{rest}")), BOM_BLANK.len()),
        None => (Arc::from(text), 0),
    };
    let format = format.unwrap_or_else(|| Format::detect(origin, &text));
    let report = |diagnostics| {
        let mut report = Report::new(origin, text.clone(), Some(format), diagnostics);
        for d in report.diagnostics.iter_mut().filter(|d| d.line == 1) {
            d.column = d.column.saturating_sub(start).max(1);
        }
        report
    };

    let mut doc = match source::parse(&text, start, format) {
        Ok(doc) => doc,
        Err(e) => {
            let mut d = Diagnostic::new(Code::Syntax, "", e.span, e.message);
            d.help = e.help;
            return Err(report(vec![d]));
        }
    };
    numbers::integral_floats_to_integers(&mut doc.value);
    let mut diagnostics = schema::check(&doc.value, &doc.map);
    diagnostics.extend(rules::check(&doc.value, &doc.map));
    if !diagnostics.is_empty() {
        return Err(report(diagnostics));
    }
    let plan = <Plan as serde::Deserialize>::deserialize(&doc.value).map_err(|e| {
        let d = Diagnostic::new(
            Code::InvalidValue,
            "",
            Span::default(),
            format!("the plan does not fit Steppy's model: {e}"),
        )
        .with_help("this is a gap between the schema and Steppy; please report the plan");
        report(vec![d])
    })?;
    crate::resolve::resolve(&doc.value, &doc.map, plan, inputs).map_err(report)
}

/// Reads and validates the plan file at `path` (default parameters, target files relative to
/// it); `-` reads standard input.
pub fn load_plan(path: &Path) -> Result<Plan, LoadError> {
    let origin = path.display().to_string();
    let bytes = read_source(path).map_err(|source| LoadError::Io {
        path: origin.clone(),
        source,
    })?;
    // Target files are relative to the plan.
    let inputs = Inputs {
        sources: crate::resolve::Sources {
            base_dir: path.parent().filter(|_| path.as_os_str() != "-"),
            remote: None,
        },
        ..Inputs::default()
    };
    validate_with(&origin, &bytes, None, &inputs).map_err(LoadError::Invalid)
}

/// The bytes of a plan file, or of standard input for `-`, reading at most one byte past
/// [`MAX_PLAN_BYTES`] so that a huge input is refused without being held in memory.
pub fn read_source(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let limit = MAX_PLAN_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(path)?.take(limit).read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}
