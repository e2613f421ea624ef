//! The release-plan model: what a plan *is*, once it has been validated.
//!
//! Nothing here parses or checks text; [`crate::validate`] does that and hands back a [`Plan`].
//! The structure mirrors `schemas/plan.schema.json` field for field.

mod model;
pub mod step_type;

pub use model::*;
pub use step_type::StepType;
