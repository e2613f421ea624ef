//! Where a plan comes from: a file (or `-`), or an S3 object (`s3://bucket/key`, read with
//! GetObject using the standard AWS configuration). Errors name the file or the bucket/key.
//! Plans are resolved with the command line's parameters, and target files are read relative
//! to the plan's directory; `s3://` target sets are read here too.

use std::path::Path;
use steppy_engine::plan::Plan;
use steppy_engine::resolve::{Inputs, Remote, RemoteTargets, Sources};
use steppy_engine::validate::{LoadError, Report};
use steppy_executors::aws::{dynamodb, s3};

/// Reads and validates the plan at `path` (a file path, `-`, or an `s3://` URL), resolved with
/// the command line's parameters.
pub fn load(path: &Path) -> Result<Plan, LoadError> {
    let origin = path.to_string_lossy().to_string();
    let bytes = read(path).map_err(|source| LoadError::Io {
        path: origin.clone(),
        source,
    })?;
    validate(path, &bytes).map_err(LoadError::Invalid)
}

/// Validates and resolves the plan text `bytes` read from `path`.
pub fn validate(path: &Path, bytes: &[u8]) -> Result<Plan, Report> {
    let origin = path.to_string_lossy().to_string();
    let base_dir = match path.parent() {
        Some(dir) if !s3::is_s3_url(&origin) && origin != "-" => Some(dir),
        _ => None,
    };
    let inputs = Inputs {
        params: super::setup::params(),
        sources: Sources {
            base_dir,
            remote: Some(&S3Targets),
        },
        execution_id: None,
    };
    steppy_engine::validate::validate_with(&origin, bytes, None, &inputs)
}

/// The bytes of the plan at `path`: a file, standard input (`-`), or an S3 object.
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let text = path.to_string_lossy();
    if !s3::is_s3_url(&text) {
        return steppy_engine::validate::read_source(path);
    }
    get_object(&text, steppy_engine::validate::MAX_PLAN_BYTES).map_err(std::io::Error::other)
}

/// One S3 object, at most `limit` bytes, on a short-lived runtime with its own AWS plumbing
/// (it must not leave connections or credential refreshes behind in the clients the engine's
/// runtime uses afterwards).
fn get_object(url: &str, limit: usize) -> Result<Vec<u8>, String> {
    let location = s3::parse(url).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let aws = steppy_executors::aws::Aws::from_environment(super::setup::aws().settings.clone());
    let object = runtime
        .block_on(async { s3::get(&s3::client(&aws).await, &location, None).await })
        .map_err(|e| e.to_string())?;
    if object.bytes.len() > limit {
        return Err(format!("{url} is larger than {limit} bytes"));
    }
    Ok(object.bytes.to_vec())
}

/// Target sets in S3 (`s3://bucket/key`, JSON or CSV by the key's extension) and in DynamoDB
/// (`dynamodb://TABLE`: every item).
struct S3Targets;

impl RemoteTargets for S3Targets {
    fn read(&self, url: &str) -> Result<Remote, String> {
        if url.starts_with("dynamodb://") {
            let Some(table) = dynamodb::table_of(url) else {
                return Err("write dynamodb://TABLE".into());
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let aws = steppy_executors::aws::Aws::from_environment(super::setup::aws().settings.clone());
            let rows = runtime
                .block_on(async { dynamodb::scan(&dynamodb::client(&aws).await, table).await })
                .map_err(|e| e.to_string())?;
            return Ok(Remote::Rows(rows));
        }
        let limit = steppy_engine::resolve::targets::MAX_TARGET_BYTES as usize;
        Ok(Remote::Document {
            name: url.to_string(),
            bytes: get_object(url, limit)?,
        })
    }
}
