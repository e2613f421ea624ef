//! Plan text to JSON value plus source spans.
