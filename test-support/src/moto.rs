//! Test harness for the AWS executors: one moto server (a local AWS API) per test binary,
//! started with `scripts/moto` on 127.0.0.1 and a random port, stopped when the binary exits.
//!
//! Every SDK configuration the tests use comes from [`aws_config`], which refuses any endpoint
//! that is not loopback and uses dummy credentials: nothing here can reach real AWS.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use steppy_engine::executor::Notices;

pub const REGION: &str = "us-east-1";
/// moto's default account.
pub const ACCOUNT: &str = "123456789012";

pub struct Moto {
    pub url: String,
    _child: Mutex<Child>,
}

/// The repository root: the nearest directory above the crate holding `scripts/moto` (this
/// harness is shared by the tests of every crate in the workspace).
pub fn root() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .find(|d| d.join("scripts/moto").is_file())
        .map(PathBuf::from)
        .unwrap_or(crate_dir)
}

/// Panics unless `url` is an http(s) URL on a loopback host.
pub fn assert_loopback(url: &str) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or("");
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]") || host.starts_with("127.");
    assert!(
        loopback,
        "refusing to run AWS tests against {url}: the endpoint must be a loopback address"
    );
}

/// The moto server of this test binary (started on first use).
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let mut child = Command::new(root().join("scripts/moto"))
            .env("STEPPY_MOTO_WATCH_PID", std::process::id().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/moto (it needs python3)");
        let stdout = child.stdout.take().expect("moto stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the moto URL");
        let url = line.trim().to_string();
        assert!(!url.is_empty(), "scripts/moto printed no URL");
        assert_loopback(&url);
        Moto {
            url,
            _child: Mutex::new(child),
        }
    })
}

/// An SDK configuration pointing every client at moto, with dummy credentials.
pub async fn aws_config() -> SdkConfig {
    let url = &moto().url;
    assert_loopback(url);
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "steppy-tests"))
        .load()
        .await
}

/// A name unique to this test run (moto is shared by the tests of a binary).
pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).expect("random");
    format!("{prefix}-{:08x}", u32::from_le_bytes(b))
}

/// Notices kept in memory: lines and approval tokens.
#[derive(Default)]
pub struct Recorded {
    pub lines: Mutex<Vec<String>>,
    pub tokens: Mutex<Vec<String>>,
}

impl Notices for Recorded {
    fn notice(&self, _: &str, step: &str, line: &str) {
        self.lines.lock().expect("lines").push(format!("{step}: {line}"));
    }
    fn approval_token(&self, _: &str, _: &str, token: &str) {
        self.tokens.lock().expect("tokens").push(token.to_string());
    }
}

pub fn recorded() -> Arc<Recorded> {
    Arc::new(Recorded::default())
}

/// Creates a CodeBuild project in moto.
pub async fn create_project(config: &SdkConfig, name: &str) {
    use aws_sdk_codebuild::types::*;
    let cb = aws_sdk_codebuild::Client::new(config);
    cb.create_project()
        .name(name)
        .source(
            ProjectSource::builder()
                .r#type(SourceType::S3)
                .location("bucket/source.zip")
                .build()
                .expect("source"),
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::NoArtifacts)
                .build()
                .expect("artifacts"),
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .build()
                .expect("environment"),
        )
        .service_role(format!("arn:aws:iam::{ACCOUNT}:role/codebuild"))
        .send()
        .await
        .expect("create project in moto");
}

/// A topic with an SQS queue subscribed to it (what an email subscriber gets is what the queue
/// gets: the SNS envelope's `Subject` and `Message`). Returns (topic ARN, queue URL).
pub async fn topic_with_queue(config: &SdkConfig, name: &str) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    let topic = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("create topic")
        .topic_arn()
        .expect("topic arn")
        .to_string();
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("queue url")
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let queue_arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn")
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("subscribe");
    (topic, queue)
}

/// The SNS notifications in `queue` (envelopes: `Subject`, `Message`, `MessageAttributes`),
/// waiting up to `secs` for at least `want`.
pub async fn notifications(config: &SdkConfig, queue: &str, want: usize, secs: u64) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while out.len() < want && std::time::Instant::now() < deadline {
        let got = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in got.messages() {
            let body = m.body().unwrap_or_default();
            out.push(serde_json::from_str(body).expect("an SNS envelope"));
            if let Some(h) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue)
                    .receipt_handle(h)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
    out
}

/// The builds moto holds for `project`, oldest first: (build id, start time in epoch ms).
/// Counting these counts StartBuild calls (moto starts a build per call, idempotency token or
/// not).
pub async fn builds_of(config: &SdkConfig, project: &str) -> Vec<(String, i64)> {
    let cb = aws_sdk_codebuild::Client::new(config);
    let ids = cb
        .list_builds_for_project()
        .project_name(project)
        .send()
        .await
        .expect("list builds")
        .ids()
        .to_vec();
    if ids.is_empty() {
        return Vec::new();
    }
    let read = cb
        .batch_get_builds()
        .set_ids(Some(ids))
        .send()
        .await
        .expect("read builds");
    let mut out: Vec<(String, i64)> = read
        .builds()
        .iter()
        .map(|b| {
            (
                b.id().unwrap_or_default().to_string(),
                b.start_time().and_then(|t| t.to_millis().ok()).unwrap_or(0),
            )
        })
        .collect();
    out.sort_by_key(|(id, at)| (*at, id.clone()));
    out
}

/// When SNS accepted the message of an envelope (its `Timestamp`), in epoch ms.
pub fn published_ms(envelope: &Value) -> Option<i64> {
    use aws_sdk_sqs::primitives::{DateTime, DateTimeFormat};
    let at = envelope["Timestamp"].as_str()?;
    DateTime::from_str(at, DateTimeFormat::DateTime).ok()?.to_millis().ok()
}
