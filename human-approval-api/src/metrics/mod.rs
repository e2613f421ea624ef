//! The service's metrics, in the text format Prometheus scrapes (`prometheus-client`'s
//! OpenMetrics text), for `GET /metrics`.
//!
//! Two kinds: [`Metrics`] counts what this process did (HTTP requests by route template and
//! status, approval decisions, decision commit latency), and [`store`] turns what the
//! database holds (executions by state, step attempts and outcomes by step type) into series
//! at each scrape, so they are right across restarts and whichever process ran the steps.
//! No label ever holds a raw path, a query or a token: routes are templates
//! (`/approvals/{token}`), everything unmatched is `unmatched`.

pub mod http;
pub mod store;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;
use steppy_engine::store::{Tallies, Verdict};

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One HTTP request: its route template, method and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: String,
    pub status: u16,
}

/// One recorded approval decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub decision: &'static str,
}

/// What this process counted since it started.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    decision_commit: Histogram,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let http_requests = Family::<RequestLabels, Counter>::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        // 1 ms to about 16 s: a lone commit is one fsync, a busy batch a few.
        let decision_commit = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let mut registry = Registry::with_prefix("steppy");
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        registry.register(
            "approval_decisions",
            "Approval decisions recorded over HTTP (approval links and the JSON API), by decision",
            decisions.clone(),
        );
        registry.register_with_unit(
            "decision_commit",
            "Time from a decision being queued to its batch being committed",
            Unit::Seconds,
            decision_commit.clone(),
        );
        Metrics {
            registry,
            http_requests,
            decisions,
            decision_commit,
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, labels: &RequestLabels) {
        self.http_requests.get_or_create(labels).inc();
    }

    /// Counts one recorded decision and how long its commit took.
    pub fn decision(&self, decision: Verdict, commit: Duration) {
        let labels = DecisionLabels {
            decision: decision.as_str(),
        };
        self.decisions.get_or_create(&labels).inc();
        self.decision_commit.observe(commit.as_secs_f64());
    }

    /// The text of `/metrics`: this process's series, then the store's (`tallies`).
    pub fn render(&self, tallies: &Tallies) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode_registry(&mut out, &self.registry)?;
        encode_registry(&mut out, &store::registry(tallies))?;
        encode_eof(&mut out)?;
        Ok(out)
    }
}
