//! Steppy's engine.
//!
//! - [`plan`]: the typed release-plan model (stages of steps) that every other part reads.
//! - [`source`]: turns plan text (JSON with comments, or YAML) into a JSON value plus a map from
//!   JSON pointers back to byte spans, so that every later error can point at the source.
//! - [`validate`]: checks a plan against `schemas/plan.schema.json` and the rules a schema cannot
//!   express, and reports every problem at once as source-located [`validate::Diagnostic`]s.

pub mod plan;
pub mod source;
pub mod validate;

pub use plan::Plan;
pub use validate::{load_plan, Diagnostic, LoadError, Report};
