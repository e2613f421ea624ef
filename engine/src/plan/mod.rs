//! The release-plan model: what a plan *is*, once it has been validated.
//!
//! Nothing here parses or checks text; [`crate::validate`] does that and hands back a [`Plan`].
//! The structure mirrors `schemas/plan.schema.json` field for field.

mod model;

pub use model::*;
