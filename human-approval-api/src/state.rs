//! [`AppState`]: what every handler can reach (the store, the settings, the guess limiters, and
//! the metrics, and
//! optionally the engine's health and the Step Functions client that redeems task tokens).

use crate::config::ApiConfig;
use crate::guard::GuessLimiter;
use crate::metrics::Metrics;
use crate::readiness::StoreProbe;
use crate::task_tokens::{Redeemer, TaskTokens};
use std::sync::Arc;
use steppy_engine::health::Health;
use steppy_engine::store::Store;

/// The typed state shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ApiConfig>,
    pub guesses: Arc<GuessLimiter>,
    /// Wrong admin tokens per address (the same window, [`ApiConfig::max_admin_token_guesses`]).
    pub admin_guesses: Arc<GuessLimiter>,
    /// Decisions are group-committed through this queue.
    pub decisions: Arc<crate::batch::Decisions>,
    /// Redeems AWS Step Functions task tokens (`/humanConfirmation` links of compiled state
    /// machines). `None`: such links answer 404.
    pub task_tokens: Option<Redeemer>,
    /// The engine's liveness and the database's writability, for `/readyz`. `None`: no engine
    /// runs in this process, and `/readyz` only checks that the store can be read.
    pub health: Option<Arc<Health>>,
    /// The store read of `/readyz` without an engine.
    pub store_probe: Arc<StoreProbe>,
    /// What `/metrics` reports besides the store's counts.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(store: Store, config: ApiConfig) -> AppState {
        let guesses = Arc::new(GuessLimiter::new(config.max_token_guesses, config.guess_window));
        let admin_guesses = Arc::new(GuessLimiter::new(config.max_admin_token_guesses, config.guess_window));
        AppState {
            store,
            config: Arc::new(config),
            guesses,
            admin_guesses,
            decisions: Arc::default(),
            task_tokens: None,
            health: None,
            store_probe: Arc::default(),
            metrics: Arc::default(),
        }
    }

    /// Redeems Step Functions task tokens with `tokens`, e.g.
    /// `Arc::new(SfnTaskTokens::from_config(&sdk_config))`.
    pub fn with_task_tokens(self, tokens: Arc<dyn TaskTokens>) -> AppState {
        let redeemer = Redeemer::new(self.store.clone(), tokens);
        self.with_redeemer(redeemer)
    }

    /// Redeems Step Functions task tokens with `redeemer` (built on this state's store).
    pub fn with_redeemer(mut self, redeemer: Redeemer) -> AppState {
        self.task_tokens = Some(redeemer);
        self
    }

    /// Reports the engine's `health` on `/readyz` (the engine in this process updates it).
    pub fn with_health(mut self, health: Arc<Health>) -> AppState {
        self.health = Some(health);
        self
    }
}
