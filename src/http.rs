//! The HTTP service of `steppy serve` and `steppy run`: the human approval API crate's router
//! (approval pages, JSON decisions, read-only execution and approval views, admin endpoints).

pub use steppy_human_approval_api::serve;
