//! [`SourceMap`]: where each part of a document came from, as a tree of byte spans that
//! parallels the JSON value (array elements and object members in the same order), so that
//! building it costs one small node per value — no pointer strings, no hashing — and a JSON
//! pointer is resolved by walking value and tree together, only when a problem needs a place.

use serde_json::Value;

/// A byte range in the plan text, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }

    /// The same span `by` bytes later.
    pub fn shifted(self, by: usize) -> Span {
        Span {
            start: self.start + by,
            end: self.end + by,
        }
    }
}

/// The spans of one value: itself, the key that names it (object members), and its children.
#[derive(Debug, Default)]
pub struct SpanNode {
    pub span: Span,
    pub key: Option<Span>,
    pub children: Vec<SpanNode>,
}

impl SpanNode {
    pub fn leaf(span: Span) -> Self {
        SpanNode {
            span,
            key: None,
            children: Vec::new(),
        }
    }
}

/// Where each value (and each object key) of a document came from.
#[derive(Debug, Default)]
pub struct SourceMap {
    root: SpanNode,
}

impl SourceMap {
    pub fn new(root: SpanNode) -> Self {
        SourceMap { root }
    }

    /// Moves every span `by` bytes later: the document was parsed from a suffix of the text.
    /// Walks the tree with an explicit stack, like everything that follows the input's nesting.
    pub fn shift(&mut self, by: usize) {
        let mut todo = vec![&mut self.root];
        while let Some(node) = todo.pop() {
            node.span = node.span.shifted(by);
            node.key = node.key.map(|k| k.shifted(by));
            todo.extend(node.children.iter_mut());
        }
    }

    /// The nodes along `pointer` in `value`, from the root, as far as the pointer resolves.
    fn walk<'m>(&'m self, value: &Value, pointer: &str) -> (Vec<&'m SpanNode>, bool) {
        let mut path = vec![&self.root];
        let (mut node, mut value) = (&self.root, value);
        for token in pointer.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            let index = match value {
                Value::Array(items) => token.parse::<usize>().ok().filter(|&i| i < items.len()),
                Value::Object(members) => members.keys().position(|k| *k == token),
                _ => None,
            };
            let (Some(i), Some(child)) = (index, index.and_then(|i| node.children.get(i))) else {
                return (path, false);
            };
            value = match value {
                Value::Array(items) => &items[i],
                Value::Object(members) => members.values().nth(i).unwrap_or(value),
                _ => value,
            };
            node = child;
            path.push(node);
        }
        (path, true)
    }

    /// The span of the value at `pointer`.
    pub fn value(&self, value: &Value, pointer: &str) -> Option<Span> {
        match self.walk(value, pointer) {
            (path, true) => path.last().map(|n| n.span),
            _ => None,
        }
    }

    /// The span of the key naming the value at `pointer` (for object members).
    pub fn key(&self, value: &Value, pointer: &str) -> Option<Span> {
        match self.walk(value, pointer) {
            (path, true) => path.last().and_then(|n| n.key),
            _ => None,
        }
    }

    /// The best span for a problem with the value at `pointer`: the value itself, else the
    /// nearest ancestor that exists (a missing field is reported on its parent object).
    pub fn locate(&self, value: &Value, pointer: &str) -> Span {
        self.walk(value, pointer)
            .0
            .last()
            .map_or_else(Span::default, |n| n.span)
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
    use serde_json::json;

    #[test]
    fn pointers_escape_tilde_and_slash() {
        assert_eq!(pointer_push("/a", "b/c~d"), "/a/b~1c~0d");
    }

    #[test]
    fn pointers_resolve_through_arrays_and_objects_and_fall_back_to_ancestors() {
        let value = json!({"a": 1, "b/c": [10, 20]});
        let leaf = |s, e| SpanNode::leaf(Span::new(s, e));
        let mut a = leaf(1, 2);
        a.key = Some(Span::new(0, 1));
        let mut bc = SpanNode {
            span: Span::new(5, 9),
            key: Some(Span::new(3, 4)),
            children: vec![leaf(6, 7), leaf(8, 9)],
        };
        bc.key = Some(Span::new(3, 4));
        let map = SourceMap::new(SpanNode {
            span: Span::new(0, 10),
            key: None,
            children: vec![a, bc],
        });
        assert_eq!(map.value(&value, "/b~1c/1"), Some(Span::new(8, 9)));
        assert_eq!(map.key(&value, "/a"), Some(Span::new(0, 1)));
        assert_eq!(map.value(&value, "/missing"), None);
        assert_eq!(map.locate(&value, "/b~1c/7/x"), Span::new(5, 9));
        assert_eq!(map.locate(&value, "/zzz"), Span::new(0, 10));
    }
}
