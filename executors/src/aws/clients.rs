//! AWS configuration and clients: one base configuration, then one per (role, region).
//!
//! The base configuration is the standard AWS one (`aws_config::defaults`): profiles,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`…, SSO, instance roles, and `AWS_ENDPOINT_URL` (which is
//! how the tests point every client at a local moto server). It is loaded lazily on first use
//! so that building the executor registry stays synchronous and costs nothing for plans that
//! use no AWS step.
//!
//! A step runs in the region and under the role it names, else the plan's `defaults`, else the
//! base configuration's. A role is assumed with STS (`AssumeRoleProvider`); the configuration
//! holding it is cached per (role, region, session name), and its identity cache refreshes the
//! credentials before they expire. Action calls (StartBuild, Publish) use a session named after
//! the execution, so CloudTrail shows which execution started what; the shared build poller
//! uses one `steppy-poller` session per (role, region).

use super::plan_info::{PlanInfo, PlanInfoCache};
use super::poller::BuildPoller;
use super::settings::AwsSettings;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use steppy_engine::executor::{ExecError, StepContext};
use tokio::sync::OnceCell;

/// Most cached (role, region, session) configurations.
const MAX_CACHED_CONFIGS: usize = 1024;

/// Where an AWS call goes: a region, and the role to assume there (if any).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub region: String,
    pub role_arn: Option<String>,
}

impl Target {
    /// A short description for messages: `eu-west-1` or `eu-west-1 as arn:aws:iam::1:role/x`.
    pub fn describe(&self) -> String {
        match &self.role_arn {
            Some(role) => format!("{} as {role}", self.region),
            None => self.region.clone(),
        }
    }
}

/// Clients given instead of configured ones (tests and benchmarks with aws-smithy-mocks).
#[derive(Default, Clone)]
pub struct FixedClients {
    pub codebuild: Option<aws_sdk_codebuild::Client>,
    pub codepipeline: Option<aws_sdk_codepipeline::Client>,
    pub sns: Option<aws_sdk_sns::Client>,
}

/// Everything the AWS executors share: settings, configurations, clients, pollers.
pub struct Aws {
    pub settings: AwsSettings,
    base: OnceCell<SdkConfig>,
    configs: Mutex<HashMap<(Target, String), SdkConfig>>,
    pollers: Mutex<HashMap<Target, Arc<BuildPoller>>>,
    fixed: FixedClients,
    /// Plan defaults and names by execution.
    pub plans: PlanInfoCache,
    /// The URL the approval pages are actually served at, once `serve`/`run` know it; it wins
    /// over `settings.public_url` so that mailed links point where the pages are.
    served_at: Mutex<Option<String>>,
}

impl Aws {
    /// Uses the standard AWS configuration of the environment, loaded on first use.
    pub fn from_environment(settings: AwsSettings) -> Arc<Aws> {
        Arc::new(Aws::make(settings, OnceCell::new(), FixedClients::default()))
    }

    /// Uses `base` as the base configuration (tests pass one pointing at moto).
    pub fn with_config(settings: AwsSettings, base: SdkConfig) -> Arc<Aws> {
        Arc::new(Aws::make(
            settings,
            OnceCell::new_with(Some(base)),
            FixedClients::default(),
        ))
    }

    /// Uses the given clients for every target (tests and benchmarks with mocked clients).
    pub fn with_clients(settings: AwsSettings, base: SdkConfig, fixed: FixedClients) -> Arc<Aws> {
        Arc::new(Aws::make(settings, OnceCell::new_with(Some(base)), fixed))
    }

    fn make(settings: AwsSettings, base: OnceCell<SdkConfig>, fixed: FixedClients) -> Aws {
        Aws {
            settings,
            base,
            configs: Mutex::new(HashMap::new()),
            pollers: Mutex::new(HashMap::new()),
            fixed,
            plans: PlanInfoCache::default(),
            served_at: Mutex::new(None),
        }
    }

    /// Records where the approval pages are served (`steppy serve` / `steppy run` call this
    /// once their HTTP service is bound).
    pub fn set_served_at(&self, public_url: &str) {
        if let Ok(mut url) = self.served_at.lock() {
            *url = Some(public_url.to_string());
        }
    }

    /// The approve and reject links for `token`: on the served URL if known, else on
    /// `--public-url` / `STEPPY_PUBLIC_URL`.
    pub fn approval_links(&self, token: &str) -> (String, String) {
        let served = self.served_at.lock().ok().and_then(|u| u.clone());
        crate::human::approval_links(served.as_deref().unwrap_or(&self.settings.public_url), token)
    }

    /// The base configuration, loading it from the environment the first time.
    pub async fn base(&self) -> &SdkConfig {
        self.base
            .get_or_init(|| async {
                // A silent endpoint must fail a call, not hold it forever: no AWS call Steppy
                // makes takes longer than this when the service answers at all.
                let timeouts = aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(std::time::Duration::from_secs(5))
                    .read_timeout(std::time::Duration::from_secs(20))
                    .operation_attempt_timeout(std::time::Duration::from_secs(30))
                    .build();
                aws_config::defaults(BehaviorVersion::latest())
                    .timeout_config(timeouts)
                    .load()
                    .await
            })
            .await
    }

    /// The plan facts of `ctx`'s execution.
    pub fn plan_info(&self, ctx: &StepContext) -> Result<Arc<PlanInfo>, ExecError> {
        self.plans.get(ctx)
    }

    /// The region and role a step runs with: the step's own, else the plan default, else the
    /// base configuration's region and credentials.
    pub async fn target_for(&self, ctx: &StepContext) -> Result<Target, ExecError> {
        let info = self.plan_info(ctx)?;
        let options = &ctx.step.options;
        let region = options.region.clone().or_else(|| info.defaults.region.clone());
        let role_arn = options.role_arn.clone().or_else(|| info.defaults.role_arn.clone());
        self.target(region, role_arn).await
    }

    /// A target from an optional region (falling back to the base configuration's) and role.
    pub async fn target(&self, region: Option<String>, role_arn: Option<String>) -> Result<Target, ExecError> {
        let region = match region {
            Some(r) => r,
            None => self.base().await.region().map(|r| r.to_string()).ok_or_else(|| {
                ExecError::new("no AWS region is configured: set `region` on the step or in the plan's defaults, or AWS_REGION, or a region in your AWS profile")
            })?,
        };
        Ok(Target {
            region,
            role_arn: role_arn.filter(|r| !r.is_empty()),
        })
    }

    /// The SDK configuration for `target`, assuming its role (session `session`) if it has one.
    pub async fn config(&self, target: &Target, session: &str) -> SdkConfig {
        let key = (target.clone(), session.to_string());
        if let Some(c) = self.configs.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return c.clone();
        }
        let base = self.base().await;
        let region = Region::new(target.region.clone());
        let mut builder = base.to_builder().region(region.clone());
        if let Some(role) = &target.role_arn {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name(session_name(session))
                .region(region)
                .configure(base)
                .build()
                .await;
            builder = builder.credentials_provider(SharedCredentialsProvider::new(provider));
        }
        let config = builder.build();
        let mut configs = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        // One entry per execution that assumes a role: keep a long `serve` from growing
        // without bound (dropped entries are rebuilt, and re-assume the role, on next use).
        if configs.len() >= MAX_CACHED_CONFIGS {
            configs.clear();
        }
        configs.entry(key).or_insert(config).clone()
    }

    pub async fn codebuild(&self, target: &Target, session: &str) -> aws_sdk_codebuild::Client {
        match &self.fixed.codebuild {
            Some(c) => c.clone(),
            None => aws_sdk_codebuild::Client::new(&self.config(target, session).await),
        }
    }

    pub async fn codepipeline(&self, target: &Target, session: &str) -> aws_sdk_codepipeline::Client {
        match &self.fixed.codepipeline {
            Some(c) => c.clone(),
            None => aws_sdk_codepipeline::Client::new(&self.config(target, session).await),
        }
    }

    pub async fn sns(&self, target: &Target, session: &str) -> aws_sdk_sns::Client {
        match &self.fixed.sns {
            Some(c) => c.clone(),
            None => aws_sdk_sns::Client::new(&self.config(target, session).await),
        }
    }

    /// The shared build poller for `target` (created on first use).
    pub async fn build_poller(&self, target: &Target) -> Arc<BuildPoller> {
        if let Some(p) = self.pollers.lock().unwrap_or_else(|p| p.into_inner()).get(target) {
            return p.clone();
        }
        let client = self.codebuild(target, "steppy-poller").await;
        let poller = BuildPoller::new(client, self.settings.poll_interval, target.describe());
        self.pollers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(target.clone())
            .or_insert(poller)
            .clone()
    }
}

/// The STS session name for an execution: `steppy-<execution id>`, limited to what STS accepts
/// (2–64 characters of `[A-Za-z0-9+=,.@-]`).
pub fn session_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if cleaned.len() < 2 {
        format!("steppy{cleaned}")
    } else {
        cleaned
    }
}

/// The session name for action calls of execution `execution_id`.
pub fn execution_session(execution_id: &str) -> String {
    session_name(&format!("steppy-{execution_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_sts() {
        let s = execution_session("0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        assert_eq!(s, "steppy-0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        assert!(session_name(&"x".repeat(100)).len() <= 64);
        assert_eq!(session_name("a b/c"), "a-b-c");
    }
}
