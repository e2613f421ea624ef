//! The HTTP service of `steppy serve` and `steppy run`: the human approval API crate's router
//! (approval pages, JSON decisions, read-only execution and approval views, admin endpoints),
//! served by its accept loop under `ServeLimits` (header, idle and body timeouts, a connection
//! cap that leaves descriptors to the engine; `steppy serve --max-connections` sets the cap).

pub use steppy_human_approval_api::{serve, serve_with};
