//! `steppy serve --watch s3://bucket/prefix/`: every new plan object under the prefix is
//! validated and started exactly once.
//!
//! A plan object is a key ending in `.json`, `.jsonc`, `.yaml` or `.yml` (but not
//! `.errors.json`). It is identified by its key and its version id, or its ETag in a bucket
//! without versioning — so a new key, a new version, or new content under the same key is a
//! new plan (re-uploading identical content to an unversioned bucket is not).
//!
//! Exactly once: the (source, key, version) row is written in the same transaction as the
//! execution ([`Store::submit_from_intake`]); a restarted or concurrent watcher finds the row
//! and skips the object. An invalid plan is not started: the validator's report goes beside it
//! as `<key>.errors.json` and to the notification topic, and the object is recorded as
//! refused (after reporting, so a crash in between reports twice rather than never).

use super::clients::Aws;
use super::s3::{self, S3Error, S3Location};
use crate::sns::{Message, publish};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use steppy_engine::executor::ExecError;
use steppy_engine::executor::Registry;
use steppy_engine::scheduler::check_runnable;
use steppy_engine::source::Span;
use steppy_engine::store::{Store, StoreError};
use steppy_engine::validate::{Code, Diagnostic, Report};

/// What a scan did with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Started {
        key: String,
        version: String,
        execution_id: String,
    },
    Refused {
        key: String,
        version: String,
        problems: Vec<String>,
    },
    /// It could not be read or recorded this time (nothing was recorded: the next scan tries
    /// again); one bad object does not hold up the others.
    Skipped {
        key: String,
        version: String,
        error: String,
    },
}

/// True if `key` names a plan object.
pub fn is_plan_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    !lower.ends_with(".errors.json")
        && [".json", ".jsonc", ".yaml", ".yml"]
            .iter()
            .any(|ext| lower.ends_with(ext))
}

/// The validator's report as JSON (the `<key>.errors.json` content): the same document as one
/// plan of `steppy validate --format json` (`origin`, `valid`, `errors` with code, pointer,
/// line, column, message and help).
pub fn report_json(report: &Report) -> serde_json::Value {
    let mut value = serde_json::to_value(report).unwrap_or_else(|_| json!({ "origin": report.origin }));
    value["valid"] = json!(false);
    value
}

/// Why a scan, or taking in one object, failed.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("the intake record: {0}")]
    Store(#[from] StoreError),
    #[error("the errors report could not be written: {0}")]
    Report(#[from] serde_json::Error),
    /// Publishing the refusal to the topic failed.
    #[error("{}", .0.message)]
    Notify(ExecError),
}

/// A watcher of one `s3://bucket/prefix/`.
pub struct Intake {
    aws: Arc<Aws>,
    store: Store,
    registry: Arc<Registry>,
    location: S3Location,
    source: String,
}

impl Intake {
    /// Watches `url` (`s3://bucket/prefix/`), recording into `store`, checking plans against
    /// `registry`.
    pub fn new(aws: Arc<Aws>, store: Store, registry: Arc<Registry>, url: &str) -> Result<Intake, IntakeError> {
        let location = s3::parse(url)?;
        Ok(Intake {
            source: format!("s3://{}/{}", location.bucket, location.key),
            aws,
            store,
            registry,
            location,
        })
    }

    /// Takes in every plan object not seen before; returns what it did. Fails only if the
    /// prefix cannot be listed or the database cannot be read.
    pub async fn scan(&self) -> Result<Vec<Taken>, IntakeError> {
        let client = s3::client(&self.aws).await;
        let mut taken = Vec::new();
        for obj in s3::list_latest(&client, &self.location.bucket, &self.location.key).await? {
            if !is_plan_key(&obj.key) {
                continue;
            }
            let seen = self.store.intake_outcome(&self.source, &obj.key, &obj.version)?;
            if seen.is_some() {
                continue;
            }
            match self.take(&client, &obj).await {
                Ok(Some(t)) => taken.push(t),
                Ok(None) => {}
                Err(error) => taken.push(Taken::Skipped {
                    key: obj.key.clone(),
                    version: obj.version.clone(),
                    error: error.to_string(),
                }),
            }
        }
        Ok(taken)
    }

    async fn take(&self, client: &aws_sdk_s3::Client, obj: &s3::Listed) -> Result<Option<Taken>, IntakeError> {
        let loc = S3Location {
            bucket: self.location.bucket.clone(),
            key: obj.key.clone(),
        };
        let version = obj
            .version
            .strip_prefix("etag:")
            .is_none()
            .then_some(obj.version.as_str());
        let object = s3::get(client, &loc, version).await?;
        let now = steppy_engine::clock::system_now_ms();
        let checked = steppy_engine::validate::validate_bytes(&loc.to_string(), &object.bytes, None).and_then(|plan| {
            check_runnable(&self.registry, &plan).map(|()| plan).map_err(|why| {
                let d = Diagnostic::new(Code::InvalidValue, "", Span::default(), why.to_string());
                Report::new(&loc.to_string(), Arc::from(""), None, vec![d])
            })
        });
        match checked {
            Ok(plan) => {
                let id = self
                    .store
                    .submit_from_intake(&plan, &self.source, &obj.key, &obj.version, now)?;
                Ok(id.map(|execution_id| Taken::Started {
                    key: obj.key.clone(),
                    version: obj.version.clone(),
                    execution_id,
                }))
            }
            Err(report) => {
                self.report(client, &loc, &report).await?;
                self.store.refuse_intake(&self.source, &obj.key, &obj.version, now)?;
                let problems = report.diagnostics.iter().map(|d| d.message.clone()).collect();
                Ok(Some(Taken::Refused {
                    key: obj.key.clone(),
                    version: obj.version.clone(),
                    problems,
                }))
            }
        }
    }

    /// Writes `<key>.errors.json` and publishes the errors to the configured topic (if any).
    async fn report(&self, client: &aws_sdk_s3::Client, loc: &S3Location, report: &Report) -> Result<(), IntakeError> {
        let errors_at = S3Location {
            bucket: loc.bucket.clone(),
            key: format!("{}.errors.json", loc.key),
        };
        let body = serde_json::to_vec_pretty(&report_json(report))?;
        s3::put(client, &errors_at, body, "application/json").await?;
        if let Some(topic) = self.aws.settings.topic_arn.clone() {
            let region = super::arn::region(&topic).map(str::to_string);
            let target = self.aws.target(region, None).await.map_err(IntakeError::Notify)?;
            let sns = self.aws.sns(&target, "steppy-intake").await;
            let message = Message {
                topic_arn: topic,
                subject: Some(format!("Steppy did not start {loc}: the plan is invalid")),
                body: format!("{report}\nThe full report is at {errors_at}.\n"),
                attributes: vec![("source".into(), loc.to_string())],
                dedup_key: format!("intake:{loc}"),
                group: "steppy-intake".into(),
            };
            publish(&sns, &message).await.map_err(IntakeError::Notify)?;
        }
        Ok(())
    }

    /// Scans every `interval` until `shutdown` resolves; `on_taken` hears about each object
    /// taken in, `on_error` about each failed scan (which is tried again next interval).
    pub async fn run(
        &self,
        interval: Duration,
        shutdown: impl Future<Output = ()>,
        on_taken: impl Fn(&Taken),
        on_error: impl Fn(&str),
    ) {
        tokio::pin!(shutdown);
        loop {
            match self.scan().await {
                Ok(taken) => taken.iter().for_each(&on_taken),
                Err(e) => on_error(&e.to_string()),
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_keys() {
        assert!(is_plan_key("releases/2026/input.json"));
        assert!(is_plan_key("a/plan.YAML"));
        assert!(!is_plan_key("releases/input.json.errors.json"));
        assert!(!is_plan_key("releases/readme.md"));
    }
}
