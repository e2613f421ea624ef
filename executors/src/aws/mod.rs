//! Shared AWS plumbing for the AWS step executors ([`crate::codebuild`], [`crate::codepipeline`],
//! [`crate::sns`]) and the S3 intake.
//!
//! - [`settings`]: what the person running Steppy configured (topic, public URL, poll interval).
//! - [`clients`]: one base SDK configuration (standard AWS configuration: profiles,
//!   environment, `AWS_ENDPOINT_URL`), per-(role, region) configurations with assumed-role
//!   credentials cached and refreshed, and the SDK clients built from them.
//! - [`plan_info`]: the plan-level facts an attempt needs (defaults, plan and stage names).
//! - [`errors`]: SDK errors as clear sentences, sorted into throttling, transient and permanent.
//! - [`arn`]: reading regions and accounts out of ARNs.
//! - [`poller`]: one batched BatchGetBuilds poller per (role, region).
//! - [`s3`]: `s3://bucket/key` locations, reading and writing objects.
//! - [`dynamodb`]: target sets read from a DynamoDB table (`dynamodb://TABLE`).
//! - [`intake`]: `steppy serve --watch s3://bucket/prefix/`.
//! - [`iam`]: the least-privilege IAM policy a plan needs.
//! - [`backoff`]: the retry delays used on throttling and transient errors.
//! - [`sfn`]: AWS Step Functions for the `sfn` engine: deploy, start by name, history.

pub mod arn;
pub mod backoff;
pub mod clients;
pub mod dynamodb;
pub mod errors;
pub mod iam;
pub mod intake;
pub mod plan_info;
pub mod poller;
pub mod s3;
pub mod settings;
pub mod sfn;

pub use clients::{Aws, Target};
pub use settings::AwsSettings;
