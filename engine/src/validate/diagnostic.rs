//! [`Diagnostic`] (one problem, located) and [`Report`] (every problem of one plan), with their
//! two renderings: for people (a source snippet with a marker, through `miette`) and for
//! machines (JSON).

use crate::source::{Format, LineIndex, Span};
use crate::text::printable;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// What kind of problem a diagnostic reports; stable names for scripts reading `--format json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// Unreadable input: not UTF-8, too large.
    Encoding,
    /// Not JSON or YAML.
    Syntax,
    /// A field no schema knows.
    UnknownField,
    /// A `type` that is no step type.
    UnknownType,
    /// A required field is absent.
    MissingField,
    /// A value of the wrong JSON type.
    WrongType,
    /// A number, length or count outside its bounds.
    OutOfRange,
    /// A value not among the allowed ones, or of the wrong shape.
    InvalidValue,
    /// A name used twice where it must be unique.
    DuplicateName,
    /// The plan is beyond what Steppy runs.
    TooLarge,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Encoding => "encoding",
            Code::Syntax => "syntax",
            Code::UnknownField => "unknown-field",
            Code::UnknownType => "unknown-type",
            Code::MissingField => "missing-field",
            Code::WrongType => "wrong-type",
            Code::OutOfRange => "out-of-range",
            Code::InvalidValue => "invalid-value",
            Code::DuplicateName => "duplicate-name",
            Code::TooLarge => "too-large",
        }
    }
}

/// One problem in a plan: what, where (JSON pointer and source position), and how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    /// JSON pointer (RFC 6901) of the value at fault; `""` is the whole plan.
    pub pointer: String,
    /// 1-based line of the fault in the source.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// Why the plan is wrong here.
    pub message: String,
    /// How to fix it, when there is something to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The word probably meant, for a misspelled field or step type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
    #[serde(skip)]
    pub span: Span,
}

impl Diagnostic {
    /// A diagnostic whose line and column are filled in by [`Report::new`]. Messages quote the
    /// plan's own text (names, values), so control characters in them are escapes
    /// ([`printable`]): a report is printed on a terminal or in a CI log.
    pub fn new(code: Code, pointer: impl Into<String>, span: Span, message: impl Into<String>) -> Self {
        let message = printable_owned(message.into());
        Diagnostic {
            code,
            pointer: pointer.into(),
            line: 0,
            column: 0,
            message,
            help: None,
            suggestion: None,
            span,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(printable_owned(help.into()));
        self
    }

    /// Records the word probably meant and says so in the help line.
    pub fn with_suggestion(mut self, word: &str, more: &str) -> Self {
        self.help = Some(format!("did you mean \"{word}\"?{more}"));
        self.suggestion = Some(word.to_owned());
        self
    }
}

/// `text` with control characters escaped, reusing it when there were none.
fn printable_owned(text: String) -> String {
    match printable(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

/// Every problem found in one plan, with the text they point into.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where the plan came from: a path, `-` for standard input, or a URL.
    pub origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    #[serde(rename = "errors")]
    pub diagnostics: Vec<Diagnostic>,
    #[serde(skip)]
    text: Arc<str>,
}

/// How [`Report::render`] draws: with ANSI colors (a terminal) or plain text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    Color,
    Plain,
}

impl Report {
    /// Sorts `diagnostics` by position and fills in their lines and columns.
    pub fn new(origin: &str, text: Arc<str>, format: Option<Format>, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
        diagnostics.dedup_by(|a, b| a.pointer == b.pointer && a.message == b.message);
        let lines = LineIndex::new(&text);
        for d in &mut diagnostics {
            (d.line, d.column) = lines.line_col(&text, d.span.start);
        }
        Report {
            origin: printable(origin).into_owned(),
            format,
            diagnostics,
            text,
        }
    }

    /// The report for people: each problem with `file:line:column`, the pointer, the source
    /// line with a marker under the fault, and a help line; in ANSI colors or plain.
    pub fn render(&self, paint: Paint) -> String {
        use miette::{GraphicalReportHandler, GraphicalTheme};
        let theme = match paint {
            Paint::Color => GraphicalTheme::unicode(),
            Paint::Plain => GraphicalTheme::unicode_nocolor(),
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_context_lines(1)
            .with_width(100);
        let source = Arc::new(miette::NamedSource::new(&self.origin, shown_source(&self.text)));
        let mut out = String::new();
        for d in &self.diagnostics {
            let located = Located {
                diagnostic: d,
                source: source.clone(),
                origin: &self.origin,
            };
            // Writing into a String cannot fail; a failed render must not hide the problem.
            if handler.render_report(&mut out, &located).is_err() {
                out.push_str(&format!("{}:{}:{}: {}\n", self.origin, d.line, d.column, d.message));
            }
        }
        let n = self.diagnostics.len();
        out.push_str(&format!(
            "{}: {} {}\n",
            self.origin,
            n,
            if n == 1 { "error" } else { "errors" }
        ));
        out
    }
}

impl fmt::Display for Report {
    /// One line per problem, compiler style: `file:line:column: pointer: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.diagnostics {
            writeln!(
                f,
                "{}:{}:{}: {}: {}",
                self.origin,
                d.line,
                d.column,
                display_pointer(&d.pointer),
                d.message
            )?;
        }
        Ok(())
    }
}

/// The plan text as the report shows it: every control character but line breaks and tabs
/// (which the renderer lays out) becomes `?`, one per byte, so the spans still fit and a
/// comment holding `ESC [2J` cannot clear the screen of whoever reads the report.
fn shown_source(text: &Arc<str>) -> Arc<str> {
    let unsafe_at = |(i, c): (usize, char)| {
        crate::text::needs_escape(c) && c != '\n' && c != '\t' && !(c == '\r' && text[i + 1..].starts_with('\n'))
    };
    if !text.char_indices().any(unsafe_at) {
        return text.clone();
    }
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if unsafe_at((i, c)) {
            out.extend(std::iter::repeat_n('?', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    Arc::from(out)
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() { "/" } else { pointer }
}

/// A diagnostic bound to its source, in the shape `miette` renders.
struct Located<'a> {
    diagnostic: &'a Diagnostic,
    source: Arc<miette::NamedSource<Arc<str>>>,
    origin: &'a str,
}

impl fmt::Debug for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.diagnostic;
        write!(f, "{}:{}:{}: {}", self.origin, d.line, d.column, d.message)
    }
}

impl std::error::Error for Located<'_> {}

impl miette::Diagnostic for Located<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diagnostic.code.as_str()))
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source.as_ref())
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let d = self.diagnostic;
        let len = d.span.end.saturating_sub(d.span.start);
        let label = format!("at {}", display_pointer(&d.pointer));
        Some(Box::new(std::iter::once(miette::LabeledSpan::new(
            Some(label),
            d.span.start,
            len,
        ))))
    }
}
