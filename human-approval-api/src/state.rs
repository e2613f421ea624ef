//! [`AppState`]: what every handler can reach (the store, the settings, the guess limiter).

use crate::config::ApiConfig;
use crate::guard::GuessLimiter;
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
}

impl AppState {
    pub fn new(store: Store, config: ApiConfig) -> AppState {
        let guesses = Arc::new(GuessLimiter::new(config.max_token_guesses, config.guess_window));
        AppState { store, config: Arc::new(config), guesses, decisions: Arc::default() }
    }
}
