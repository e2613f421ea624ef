//! Steppy's engine.
//!
//! - [`asl`]: compiles a plan to Amazon States Language for AWS Step Functions (issue #6).
//! - [`plan`]: the typed release-plan model (stages of steps) that every other part reads.
//! - [`source`]: turns plan text (JSON with comments, or YAML) into a JSON value plus a map from
//!   JSON pointers back to byte spans, so that every later error can point at the source.
//! - [`validate`]: checks a plan against `schemas/plan.schema.json` and the rules a schema cannot
//!   express, and reports every problem at once as source-located [`validate::Diagnostic`]s.
//! - [`state`]: execution and step states and the one function per kind deciding legal transitions.
//! - [`executor`]: the [`executor::Executor`] trait every step type implements, and the registry.
//! - [`store`]: the SQLite store (history, current state, leases, approvals).
//! - [`scheduler`]: the engine that drives executions durably, stage by stage.
//! - [`events`], [`clock`], [`fault`]: event types, a tokio-friendly wall clock, crash injection.
//! - [`health`]: whether the engine can do its work now (driver liveness, database writability).
//! - [`unknown_name`]: the error of parsing a name (a state, an event type) Steppy does not know.
//! - [`text`]: outside text made safe for terminals and logs (control characters escaped).
//! - `testing` (feature `testing`): a scriptable executor for tests and benchmarks.

pub mod asl;
pub mod plan;
pub mod resolve;
pub mod source;
pub mod validate;

pub mod clock;
pub mod events;
pub mod executor;
pub mod fault;
pub mod health;
pub mod scheduler;
pub mod state;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
pub mod unknown_name;

pub use plan::Plan;
pub use validate::{Diagnostic, LoadError, Report, load_plan};
