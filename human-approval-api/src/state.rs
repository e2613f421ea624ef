//! [`AppState`]: what every handler can reach (the store, the settings, the guess limiter, and
//! optionally the Step Functions client that redeems task tokens).

use crate::config::ApiConfig;
use crate::guard::GuessLimiter;
use crate::task_tokens::{HeldTokens, TaskTokens};
use std::sync::Arc;
use steppy_engine::store::Store;

/// The typed state shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ApiConfig>,
    pub guesses: Arc<GuessLimiter>,
    /// Decisions are group-committed through this queue.
    pub decisions: Arc<crate::batch::Decisions>,
    /// Redeems AWS Step Functions task tokens (`/humanConfirmation` links of compiled state
    /// machines). `None`: such links answer 404.
    pub task_tokens: Option<Arc<dyn TaskTokens>>,
    /// Tokens of task-token decisions not sent yet, in memory only (see `task_tokens`).
    pub held_task_tokens: Arc<HeldTokens>,
}

impl AppState {
    pub fn new(store: Store, config: ApiConfig) -> AppState {
        let guesses = Arc::new(GuessLimiter::new(config.max_token_guesses, config.guess_window));
        AppState {
            store,
            config: Arc::new(config),
            guesses,
            decisions: Arc::default(),
            task_tokens: None,
            held_task_tokens: Arc::default(),
        }
    }

    /// Redeems Step Functions task tokens with `tokens`, e.g.
    /// `Arc::new(SfnTaskTokens::from_config(&sdk_config))`.
    pub fn with_task_tokens(mut self, tokens: Arc<dyn TaskTokens>) -> AppState {
        self.task_tokens = Some(tokens);
        self
    }
}
