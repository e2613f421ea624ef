//! The log of `steppy` (mostly `steppy serve`): one `tracing` subscriber, installed once at
//! start, writing to standard error, human-readable lines by default or one JSON object a line
//! (`--log-format json`) for log shippers. `RUST_LOG` filters it (`tracing-subscriber`'s
//! `EnvFilter` syntax); without it Steppy's own events at `info` and up are shown, and other
//! libraries' (the AWS SDK's, hyper's) only from `warn` up.
//!
//! What is logged here is for operators; the progress lines of `steppy run` and `steppy serve`
//! on standard output are a view for people, not a log, and stay as they are.

use crate::cli::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset or empty: Steppy's crates (`steppy`, `steppy_engine`,
/// `steppy_executors`, `steppy_human_approval_api`, and the `steppy::…` targets of their
/// events) at `info`, every other library at `warn`.
pub const DEFAULT_FILTER: &str = "warn,steppy=info";

/// Installs the subscriber for the whole process. A `RUST_LOG` that does not parse is reported
/// and the default used.
pub fn init(format: LogFormat) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("steppy: RUST_LOG: {e}; using {DEFAULT_FILTER}");
            EnvFilter::new(DEFAULT_FILTER)
        }),
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    if let Err(e) = installed {
        eprintln!("steppy: cannot start the log: {e}");
    }
}
