//! Where a plan comes from: a file (or `-`), or an S3 object (`s3://bucket/key`, read with
//! GetObject using the standard AWS configuration). Errors name the file or the bucket/key.

use std::path::Path;
use steppy_engine::plan::Plan;
use steppy_engine::validate::LoadError;
use steppy_executors::aws::s3;

/// Reads and validates the plan at `path` (a file path, `-`, or an `s3://` URL).
pub fn load(path: &Path) -> Result<Plan, LoadError> {
    let origin = path.to_string_lossy().to_string();
    let bytes = read(path).map_err(|source| LoadError::Io {
        path: origin.clone(),
        source,
    })?;
    steppy_engine::validate::validate_bytes(&origin, &bytes, None).map_err(LoadError::Invalid)
}

/// The bytes of the plan at `path`: a file, standard input (`-`), or an S3 object.
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let text = path.to_string_lossy();
    if !s3::is_s3_url(&text) {
        return steppy_engine::validate::read_source(path);
    }
    let location = s3::parse(&text).map_err(std::io::Error::other)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Its own AWS plumbing: this short-lived runtime must not leave connections or credential
    // refreshes behind in the clients the engine's runtime uses afterwards.
    let aws = steppy_executors::aws::Aws::from_environment(super::setup::aws().settings.clone());
    let object = runtime
        .block_on(async { s3::get(&s3::client(&aws).await, &location, None).await })
        .map_err(std::io::Error::other)?;
    if object.bytes.len() > steppy_engine::validate::MAX_PLAN_BYTES {
        return Err(std::io::Error::other(format!(
            "{text} is larger than {} bytes",
            steppy_engine::validate::MAX_PLAN_BYTES
        )));
    }
    Ok(object.bytes.to_vec())
}
