//! [`SourceMap`]: JSON pointer → byte span of the value, and of its key where it has one.

use std::collections::HashMap;

/// A byte range in the plan text, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end: end.max(start) }
    }
}

/// Where each value (and each object key) of a document came from, by JSON pointer (RFC 6901).
#[derive(Debug, Default)]
pub struct SourceMap {
    values: HashMap<String, Span>,
    keys: HashMap<String, Span>,
}

impl SourceMap {
    pub(crate) fn insert_value(&mut self, pointer: &str, span: Span) {
        self.values.insert(pointer.to_owned(), span);
    }

    pub(crate) fn insert_key(&mut self, pointer: &str, span: Span) {
        self.keys.insert(pointer.to_owned(), span);
    }

    /// The span of the value at `pointer`.
    pub fn value(&self, pointer: &str) -> Option<Span> {
        self.values.get(pointer).copied()
    }

    /// The span of the key naming the value at `pointer` (for object members).
    pub fn key(&self, pointer: &str) -> Option<Span> {
        self.keys.get(pointer).copied()
    }

    /// The best span for a problem with the value at `pointer`: the value itself, else the
    /// nearest ancestor that has one (a missing field is reported on its parent object).
    pub fn locate(&self, pointer: &str) -> Option<Span> {
        let mut p = pointer;
        loop {
            if let Some(span) = self.value(p) {
                return Some(span);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/` as RFC 6901 says.
pub fn pointer_push(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_tilde_and_slash() {
        assert_eq!(pointer_push("/a", "b/c~d"), "/a/b~1c~0d");
    }

    #[test]
    fn locate_falls_back_to_the_nearest_ancestor() {
        let mut map = SourceMap::default();
        map.insert_value("", Span::new(0, 10));
        map.insert_value("/stages", Span::new(2, 8));
        assert_eq!(map.locate("/stages/0/name"), Some(Span::new(2, 8)));
        assert_eq!(map.locate("/other"), Some(Span::new(0, 10)));
    }
}
