//! What the tests of every Steppy crate share, as one dev-only crate instead of `#[path]`
//! includes across crates:
//!
//! - [`moto`]: one moto server (a local AWS API) per test binary, SDK configurations that refuse
//!   any endpoint but loopback, and helpers that create projects, topics and queues in it.
//! - [`fakes`]: aws-smithy-mocks fakes of CodeBuild and CodePipeline, for what moto cannot do
//!   (builds that end FAULT or TIMED_OUT, throttling, pipeline approvals).
//!
//! Nothing here is linked into a release build: every crate lists it under
//! `[dev-dependencies]` only.

pub mod fakes;
pub mod moto;
