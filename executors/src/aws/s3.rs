//! S3 locations (`s3://bucket/key`) and the few S3 calls Steppy makes: read a plan object,
//! write an errors report beside it, list the plan objects under a prefix.
//!
//! Errors name the bucket and key. Against a local endpoint (`AWS_ENDPOINT_URL`) path-style
//! addressing is used, since `bucket.127.0.0.1` does not resolve.

use super::clients::Aws;
use super::errors::{AwsError, classify};
use aws_sdk_s3::primitives::ByteStream;

/// A bucket and a key (or key prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Why an S3 URL could not be read or an S3 call failed; every message names the object.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("\"{url}\" is not an S3 URL (expected s3://bucket/key)")]
    NotAnS3Url { url: String },
    #[error("\"{url}\" names no bucket (expected s3://bucket/key)")]
    NoBucket { url: String },
    /// The call failed (classified: throttled, transient or permanent).
    #[error(transparent)]
    Call(#[from] AwsError),
    /// The object's body broke off while it was read.
    #[error("GetObject of {at} failed while downloading: {reason}")]
    Download { at: S3Location, reason: String },
}

/// True if `text` is an `s3://` URL rather than a file path.
pub fn is_s3_url(text: &str) -> bool {
    text.starts_with("s3://")
}

/// Parses `s3://bucket/key`. The key may be empty (a whole bucket) or a prefix.
pub fn parse(url: &str) -> Result<S3Location, S3Error> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| S3Error::NotAnS3Url { url: url.to_string() })?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(S3Error::NoBucket { url: url.to_string() });
    }
    Ok(S3Location {
        bucket: bucket.to_string(),
        key: key.to_string(),
    })
}

/// An object's content and identity.
#[derive(Debug, Clone)]
pub struct S3Object {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

/// An S3 client for the base configuration's region (or us-east-1).
pub async fn client(aws: &Aws) -> aws_sdk_s3::Client {
    let base = aws.base().await;
    let mut builder = aws_sdk_s3::config::Builder::from(base);
    if base.region().is_none() {
        builder = builder.region(aws_config::Region::new("us-east-1"));
    }
    if base.endpoint_url().is_some() {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// Reads `loc` (a given `version` of it, if set).
pub async fn get(client: &aws_sdk_s3::Client, loc: &S3Location, version: Option<&str>) -> Result<S3Object, S3Error> {
    let what = format!("GetObject of {loc}");
    let out = client
        .get_object()
        .bucket(&loc.bucket)
        .key(&loc.key)
        .set_version_id(version.filter(|v| *v != "null").map(str::to_string))
        .send()
        .await
        .map_err(|e| classify(&what, &e))?;
    let etag = out.e_tag().map(|e| e.trim_matches('"').to_string());
    let version_id = out.version_id().map(str::to_string);
    let bytes = out
        .body
        .collect()
        .await
        .map_err(|e| S3Error::Download {
            at: loc.clone(),
            reason: e.to_string(),
        })?
        .into_bytes()
        .to_vec();
    Ok(S3Object {
        bytes,
        etag,
        version_id,
    })
}

/// Writes `body` to `loc`.
pub async fn put(
    client: &aws_sdk_s3::Client,
    loc: &S3Location,
    body: Vec<u8>,
    content_type: &str,
) -> Result<(), S3Error> {
    let what = format!("PutObject of {loc}");
    client
        .put_object()
        .bucket(&loc.bucket)
        .key(&loc.key)
        .content_type(content_type)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| classify(&what, &e))?;
    Ok(())
}

/// The latest version of one object under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    /// The version id, or (in a bucket without versioning) the ETag.
    pub version: String,
}

/// The latest version of every object under `prefix` (ListObjectVersions, all pages).
pub async fn list_latest(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<Listed>, S3Error> {
    let what = format!("ListObjectVersions of s3://{bucket}/{prefix}");
    let mut out = Vec::new();
    let (mut key_marker, mut version_marker): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = client
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| classify(&what, &e))?;
        for v in page.versions() {
            if v.is_latest() != Some(true) {
                continue;
            }
            let Some(key) = v.key() else { continue };
            let version = match v.version_id() {
                Some(id) if id != "null" => id.to_string(),
                _ => format!("etag:{}", v.e_tag().unwrap_or_default().trim_matches('"')),
            };
            out.push(Listed {
                key: key.to_string(),
                version,
            });
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() {
            break;
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls() {
        assert_eq!(
            parse("s3://b/plans/input.json").ok(),
            Some(S3Location {
                bucket: "b".into(),
                key: "plans/input.json".into()
            })
        );
        assert_eq!(
            parse("s3://b").ok(),
            Some(S3Location {
                bucket: "b".into(),
                key: "".into()
            })
        );
        assert!(matches!(parse("s3:///k"), Err(S3Error::NoBucket { .. })));
        assert!(matches!(parse("/tmp/plan.json"), Err(S3Error::NotAnS3Url { .. })));
        assert!(is_s3_url("s3://b/k") && !is_s3_url("plan.json"));
    }
}
