//! The tokens of decisions that could not be sent yet, in memory only: capabilities are never
//! written to disk, so after a restart such a decision waits for someone with the link.

use std::collections::HashMap;
use std::sync::Mutex;

/// Most tokens held in memory for a later resend.
const MAX_HELD: usize = 10_000;

/// Tokens of decisions that could not be sent yet, by hash, **in memory only** (so that
/// [`Redeemer::resend_pending`](super::Redeemer::resend_pending) can send them without a new request). Never printed.
#[derive(Default)]
pub struct HeldTokens(Mutex<HashMap<String, String>>);

impl HeldTokens {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn hold(&self, hash: &str, token: &str) {
        let mut map = self.map();
        if map.len() < MAX_HELD || map.contains_key(hash) {
            map.insert(hash.to_string(), token.to_string());
        }
    }

    pub(super) fn get(&self, hash: &str) -> Option<String> {
        self.map().get(hash).cloned()
    }

    pub(super) fn release(&self, hash: &str) {
        self.map().remove(hash);
    }

    /// How many tokens are held.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for HeldTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldTokens({} held)", self.len())
    }
}
