//! Plan text in, a JSON value plus a [`SourceMap`] out.
//!
//! Plans are written as JSON (with `//` and `/* */` comments, so that the original Steppy's
//! commented example pastes unchanged) or as YAML. Both are read into the same
//! `serde_json::Value`, and every value and key is remembered by its JSON pointer with the byte
//! span it came from: that is what lets a schema error at `/stages/0/steps/1/seconds` point at a
//! line and column.
//!
//! Hostile nesting cannot overflow the stack: the JSON parser stops at 512 levels on its own, the
//! YAML reader is event-driven, and both conversions refuse anything deeper than [`MAX_DEPTH`].

mod jsonc;
mod lines;
mod map;
mod yaml;

pub use lines::LineIndex;
pub use map::{SourceMap, Span, SpanNode, pointer_push};

/// Deepest nesting of arrays and objects a plan may have. A real plan needs 6.
pub const MAX_DEPTH: usize = 64;

/// The syntax a plan is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON, with `//` and `/* */` comments and trailing commas allowed.
    Json,
    /// YAML 1.2 (core schema), one document.
    Yaml,
}

impl Format {
    /// Picks the format from a file name (`.yaml`/`.yml`), else from the first meaningful
    /// character of the text: JSON plans start with `{` (or `[`, or a comment).
    pub fn detect(origin: &str, text: &str) -> Format {
        let lower = origin.to_ascii_lowercase();
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            return Format::Yaml;
        }
        if lower.ends_with(".json") || lower.ends_with(".jsonc") || lower.ends_with(".json5") {
            return Format::Json;
        }
        match text.trim_start_matches('\u{feff}').trim_start().chars().next() {
            Some('{' | '[' | '/') | None => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// A parsed document: its value, and where each part of it came from.
#[derive(Debug)]
pub struct Document {
    pub value: serde_json::Value,
    pub map: SourceMap,
}

/// A syntax error: where, and what is wrong there.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

fn too_deep(span: Span) -> SyntaxError {
    SyntaxError {
        span,
        message: format!("the plan is nested more than {MAX_DEPTH} levels deep"),
        help: Some("a plan nests plan → stages → steps → fields; look for unbalanced brackets".into()),
    }
}

/// Parses the document that starts at byte `start` of `text` as `format`; everything before
/// `start` (a blanked-out byte-order mark) is not part of it. Spans count from the start of
/// `text`, so they stay true to the file.
pub fn parse(text: &str, start: usize, format: Format) -> Result<Document, SyntaxError> {
    let body = text.get(start..).unwrap_or_default();
    let parsed = match format {
        Format::Json => jsonc::parse(body),
        Format::Yaml => yaml::parse(body),
    };
    if start == 0 {
        return parsed;
    }
    match parsed {
        Ok(mut doc) => {
            doc.map.shift(start);
            Ok(doc)
        }
        Err(mut e) => {
            e.span = e.span.shifted(start);
            Err(e)
        }
    }
}
