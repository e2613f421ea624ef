//! Steppy's human approval API: the pages people reach from the links in an approval e-mail,
//! the JSON API for the same decisions, and read-only views of executions and approvals.
//!
//! - [`routes`]: every route, in one table (the OpenAPI document is checked against it).
//! - [`state`] / [`config`]: the typed [`AppState`] every handler gets, and its settings.
//! - [`handlers`]: thin handlers; the store does the deciding (`Store::decide`), and
//!   [`batch`] group-commits concurrent decisions (`Store::decide_batch`).
//! - [`body_limit`]: request bodies limited per route, by what they announce and what arrives.
//! - [`page`]: the HTML (maud, auto-escaping), [`security`]: headers, same-origin and admin
//!   checks, [`guard`]: per-address limit on token guesses, [`redact`]: token-free targets,
//!   [`request_log`]: request ids and the access log (`tower-http`'s trace layer).
//! - [`serve`]: the accept loop: header, idle and body timeouts, a connection cap that leaves
//!   descriptors to the engine, accept errors waited out ([`ServeLimits`]).
//! - [`metrics`]: `GET /metrics` (Prometheus text): requests by route template, decisions,
//!   commit latency, and the store's executions and steps counted at each scrape.
//! - [`readiness`]: what `/readyz` says, from the engine's health or a store read.
//! - [`client`]: a small client for `POST /api/approvals/{token}/decision` (`steppy approve`).
//! - [`task_tokens`]: redeeming AWS Step Functions task tokens (`/humanConfirmation` links of
//!   state machines compiled by `steppy compile`): claimed in the store first, then sent.
//!
//! Invariants: a GET never changes state; a decision is final (first decisive vote wins);
//! tokens never appear in logs, referrers or API output; every refused attempt is audited.

pub mod batch;
pub mod body_limit;
pub mod client;
pub mod config;
pub mod error;
pub mod guard;
pub mod handlers;
pub mod identity;
pub mod metrics;
pub mod page;
pub mod readiness;
pub mod redact;
pub mod request_log;
pub mod routes;
pub mod security;
pub mod serve;
pub mod state;
pub mod task_tokens;
pub mod time;

pub use config::{AdminToken, AdminTokenError, ApiConfig};
pub use routes::{route_table, router};
pub use serve::limits::ServeLimits;
pub use serve::rlimit::{NofileLimit, nofile_limit, raise_nofile_limit};
pub use serve::{serve, serve_with};
pub use state::AppState;
pub use task_tokens::{RedeemError, Redeemer, ResendReport, SfnTaskTokens, TaskTokens};
