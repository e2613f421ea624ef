//! Steppy's human approval API: the pages people reach from the links in an approval e-mail,
//! the JSON API for the same decisions, and read-only views of executions and approvals.
//!
//! - [`routes`]: every route, in one table (the OpenAPI document is checked against it).
//! - [`state`] / [`config`]: the typed [`AppState`] every handler gets, and its settings.
//! - [`handlers`]: thin handlers; the store does the deciding (`Store::decide`), and
//!   [`batch`] group-commits concurrent decisions (`Store::decide_batch`).
//! - [`page`]: the HTML (maud, auto-escaping), [`security`]: headers, same-origin and admin
//!   checks, [`guard`]: per-address limit on token guesses, [`redact`]: token-free logging.
//! - [`client`]: a small client for `POST /api/approvals/{token}/decision` (`steppy approve`).
//! - [`task_tokens`]: redeeming AWS Step Functions task tokens (`/humanConfirmation` links of
//!   state machines compiled by `steppy compile`): claimed in the store first, then sent.
//!
//! Invariants: a GET never changes state; a decision is final (first decisive vote wins);
//! tokens never appear in logs, referrers or API output; every refused attempt is audited.

pub mod batch;
pub mod client;
pub mod config;
pub mod error;
pub mod guard;
pub mod handlers;
pub mod identity;
pub mod page;
pub mod redact;
pub mod routes;
pub mod security;
pub mod state;
pub mod task_tokens;
pub mod time;

pub use config::{AdminToken, ApiConfig};
pub use routes::{route_table, router};
pub use state::AppState;
pub use task_tokens::{resend_loop, resend_pending, RedeemError, ResendReport, SfnTaskTokens, TaskTokens};

use std::future::Future;
use std::net::SocketAddr;

/// Serves `state`'s router on `listener` until `shutdown` resolves, with each request's peer
/// address available (for the guess limiter and the audit trail).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
