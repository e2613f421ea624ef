//! The approval pages and API as `steppy serve` and `steppy run` start them: settings from the
//! command line and environment, a bound listener, and the public URL links are built on.

use crate::cli::WebArgs;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use steppy_engine::executor::BoxFuture;
use steppy_engine::store::Store;
use steppy_human_approval_api::{AdminToken, ApiConfig, AppState, RedeemError, Redeemer, SfnTaskTokens, TaskTokens};

/// A listener bound for the approval service, with the URL people reach it at.
pub struct Web {
    pub listener: tokio::net::TcpListener,
    pub state: AppState,
    pub public_url: String,
}

/// Binds `listen` and builds the service's state. `Err` is a sentence for the user.
///
/// First raises the soft descriptor limit to the hard one (`steppy serve` and `steppy run`
/// both come here): the service caps its connections below the soft limit minus a reserve for
/// the engine, so the default soft limit of 1,024 would leave it few.
pub async fn bind(store: Store, listen: &str, args: &WebArgs) -> Result<Web, WebError> {
    if let Err(e) = steppy_human_approval_api::raise_nofile_limit() {
        tracing::warn!(target: "steppy::serve", "cannot raise the open-file limit (the approval service takes fewer connections): {e}");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| WebError::Listen {
            listen: listen.to_string(),
            source,
        })?;
    let bound: SocketAddr = listener.local_addr().map_err(WebError::LocalAddr)?;
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{bound}"));
    let mut config = ApiConfig::new(public_url.clone());
    config.identity_header = args.identity_header.clone().filter(|h| !h.trim().is_empty());
    config.admin_token = admin_token(args)?;
    config.access_log = args.access_log;
    Ok(Web {
        listener,
        state: AppState::new(store, config),
        public_url: public_url.trim_end_matches('/').to_string(),
    })
}

/// The admin token from `--admin-token-file`, else `STEPPY_ADMIN_TOKEN`, else none.
fn admin_token(args: &WebArgs) -> Result<Option<AdminToken>, WebError> {
    let text = match &args.admin_token_file {
        Some(path) => std::fs::read_to_string(path).map_err(|source| WebError::AdminTokenFile {
            path: path.clone(),
            source,
        })?,
        None => match std::env::var("STEPPY_ADMIN_TOKEN") {
            Ok(t) if !t.trim().is_empty() => t,
            _ => return Ok(None),
        },
    };
    Ok(Some(AdminToken::new(&text)?))
}

/// Why the approval service could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot listen on {listen}: {source}")]
    Listen { listen: String, source: std::io::Error },
    #[error("cannot read the listening address: {0}")]
    LocalAddr(std::io::Error),
    #[error("cannot read the admin token file {}: {source}", path.display())]
    AdminTokenFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    AdminToken(#[from] steppy_human_approval_api::AdminTokenError),
}

/// The service's state, redeeming AWS Step Functions task tokens (`/humanConfirmation` links of
/// compiled plans and of the original Steppy) with the standard AWS configuration. Decisions
/// recorded but not delivered are sent again every 30 seconds; those a restart left without
/// their token are reported (they go out when someone posts the link again).
pub async fn with_task_tokens(state: AppState) -> AppState {
    let redeemer = Redeemer::new(state.store.clone(), Arc::new(LazySfn::default()));
    if let Ok(report) = redeemer.resend_pending().await
        && report.need_link > 0
    {
        tracing::warn!(
            target: "steppy::serve",
            "{} Step Functions decision(s) were recorded but not delivered before a restart; they are sent when someone opens the link and confirms again",
            report.need_link
        );
    }
    tokio::spawn(redeemer.clone().resend_loop(Duration::from_secs(30)));
    state.with_redeemer(redeemer)
}

/// [`SfnTaskTokens`] built on the first redemption: a service that never sees a Step Functions
/// link never loads the AWS configuration (which may probe the network for a region).
#[derive(Default)]
struct LazySfn {
    client: tokio::sync::OnceCell<SfnTaskTokens>,
}

impl LazySfn {
    async fn get(&self) -> &SfnTaskTokens {
        self.client
            .get_or_init(|| async { SfnTaskTokens::from_config(super::setup::aws().base().await) })
            .await
    }
}

impl TaskTokens for LazySfn {
    fn succeed<'a>(&'a self, token: &'a str, output_json: &'a str) -> BoxFuture<'a, Result<(), RedeemError>> {
        Box::pin(async move { self.get().await.succeed(token, output_json).await })
    }

    fn fail<'a>(&'a self, token: &'a str, error: &'a str, cause: &'a str) -> BoxFuture<'a, Result<(), RedeemError>> {
        Box::pin(async move { self.get().await.fail(token, error, cause).await })
    }
}
