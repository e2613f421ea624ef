//! YAML → [`Document`], built from `yaml-rust2`'s marked events with an explicit stack (no
//! recursion on the input's nesting), resolving plain scalars with the YAML 1.2 core schema.

use super::{Document, LineIndex, MAX_DEPTH, SourceMap, Span, SpanNode, SyntaxError, too_deep};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Most values a plan may expand to, aliases included (stops "billion laughs" documents).
const MAX_NODES: usize = 2_000_000;

pub fn parse(text: &str) -> Result<Document, SyntaxError> {
    Builder::new(text).run()
}

/// A collection being filled: its values and their span trees, in the same order.
enum Frame {
    Seq {
        items: Vec<Value>,
        spans: Vec<SpanNode>,
        start: usize,
        anchor: usize,
    },
    Map {
        members: Map<String, Value>,
        spans: Vec<SpanNode>,
        start: usize,
        anchor: usize,
        key: Option<(String, Span)>,
    },
}

struct Builder<'a> {
    text: &'a str,
    ascii: bool,
    lines: LineIndex,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    root: Option<(Value, SpanNode)>,
    documents: usize,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str) -> Self {
        Builder {
            text,
            ascii: text.is_ascii(),
            lines: LineIndex::new(text),
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            root: None,
            documents: 0,
        }
    }

    fn run(mut self) -> Result<Document, SyntaxError> {
        let mut parser = Parser::new_from_str(self.text);
        loop {
            let (event, mark) = parser.next_token().map_err(|e| {
                let at = self.offset(e.marker());
                SyntaxError {
                    span: Span::new(at, at + 1),
                    message: format!("invalid YAML: {}", e.info()),
                    help: Some("check the indentation and the `:` and `-` before this point".into()),
                }
            })?;
            let at = self.offset(&mark);
            match event {
                Event::StreamEnd => break,
                Event::DocumentStart => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(SyntaxError {
                            span: Span::new(at, at + 3),
                            message: "the file holds more than one YAML document".into(),
                            help: Some("a plan file holds one plan; remove the second `---`".into()),
                        });
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    let value = resolve(&text, style, tag.as_ref(), at)?;
                    let end = self.scalar_end(at, &text, style);
                    self.complete(value, SpanNode::leaf(Span::new(at, end)), anchor)?;
                }
                Event::SequenceStart(anchor, _) => {
                    self.check_key_position(at)?;
                    self.push(
                        Frame::Seq {
                            items: Vec::new(),
                            spans: Vec::new(),
                            start: at,
                            anchor,
                        },
                        at,
                    )?;
                }
                Event::MappingStart(anchor, _) => {
                    self.check_key_position(at)?;
                    self.push(
                        Frame::Map {
                            members: Map::new(),
                            spans: Vec::new(),
                            start: at,
                            anchor,
                            key: None,
                        },
                        at,
                    )?;
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let frame = self.stack.pop().ok_or_else(|| internal(at))?;
                    let end = self.container_end(at);
                    let (value, children, start, anchor) = match frame {
                        Frame::Seq {
                            items,
                            spans,
                            start,
                            anchor,
                        } => (Value::Array(items), spans, start, anchor),
                        Frame::Map {
                            members,
                            spans,
                            start,
                            anchor,
                            ..
                        } => (Value::Object(members), spans, start, anchor),
                    };
                    let node = SpanNode {
                        span: Span::new(start, end),
                        key: None,
                        children,
                    };
                    self.complete(value, node, anchor)?;
                }
                Event::Alias(id) => {
                    let Some((value, count)) = self.anchors.get(&id).cloned() else {
                        return Err(SyntaxError {
                            span: Span::new(at, at + 1),
                            message: "this alias names no anchor defined before it".into(),
                            help: Some("define `&name` before using `*name`".into()),
                        });
                    };
                    self.nodes += count;
                    self.complete(value, SpanNode::leaf(Span::new(at, at + 1)), 0)?;
                }
                Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            }
        }
        match self.root.take() {
            Some((value, spans)) => Ok(Document {
                value,
                map: SourceMap::new(spans),
            }),
            None => Err(SyntaxError {
                span: Span::new(0, self.text.len()),
                message: "the plan is empty".into(),
                help: Some("a plan is a mapping with `stages:`, a list of stages with `name:` and `steps:`".into()),
            }),
        }
    }

    fn push(&mut self, frame: Frame, at: usize) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(Span::new(at, at + 1)));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// A collection cannot be a mapping key.
    fn check_key_position(&self, at: usize) -> Result<(), SyntaxError> {
        match self.stack.last() {
            Some(Frame::Map { key: None, .. }) => Err(complex_key(at)),
            _ => Ok(()),
        }
    }

    /// Files a finished value into its parent (or as the root).
    fn complete(&mut self, value: Value, mut node: SpanNode, anchor: usize) -> Result<(), SyntaxError> {
        let span = node.span;
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                span,
                message: format!("the plan expands to more than {MAX_NODES} values"),
                help: Some("aliases (`*name`) copy their anchor; a plan rarely needs them".into()),
            });
        }
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), count_nodes(&value)));
        }
        match self.stack.last_mut() {
            None => self.root = Some((value, node)),
            Some(Frame::Seq { items, spans, .. }) => {
                items.push(value);
                spans.push(node);
            }
            Some(Frame::Map {
                key: key @ None,
                members,
                ..
            }) => {
                let Value::String(name) = value else {
                    return match value {
                        Value::Object(_) | Value::Array(_) => Err(complex_key(span.start)),
                        other => Err(SyntaxError {
                            span,
                            message: format!("keys must be text, but this key is {other}"),
                            help: Some("quote the key".into()),
                        }),
                    };
                };
                if members.contains_key(&name) {
                    return Err(SyntaxError {
                        span,
                        message: format!("duplicate key \"{name}\""),
                        help: Some("each key may appear once in a mapping; remove or rename one".into()),
                    });
                }
                *key = Some((name, span));
            }
            Some(Frame::Map {
                key: key @ Some(_),
                members,
                spans,
                ..
            }) => {
                let (name, key_span) = key.take().ok_or_else(|| internal(span.start))?;
                node.key = Some(key_span);
                members.insert(name, value);
                spans.push(node);
            }
        }
        Ok(())
    }

    /// Byte offset of a marker (its `line` is 1-based, its `col` a 0-based character count).
    fn offset(&self, mark: &Marker) -> usize {
        if self.ascii {
            return mark.index().min(self.text.len());
        }
        let line_start = self.lines.line_start(mark.line());
        let rest = &self.text[line_start..];
        rest.char_indices()
            .nth(mark.col())
            .map_or(self.text.len(), |(i, _)| line_start + i)
    }

    /// Where a scalar ends in the source: after its text (plus quotes), or at the end of its
    /// line if that comes first. Looks only that far ahead, so a long line costs nothing extra.
    fn scalar_end(&self, start: usize, text: &str, style: TScalarStyle) -> usize {
        let quotes = matches!(style, TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted) as usize * 2;
        let mut end = (start + text.len() + quotes).max(start + 1).min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        match self.text.get(start..end).and_then(|s| s.find('\n')) {
            Some(i) => start + i,
            None => end,
        }
    }

    /// The end of a block collection is reported at the next token; end it on the previous
    /// non-blank line instead, so that an underline covers the collection, not what follows.
    fn container_end(&self, at: usize) -> usize {
        let before = &self.text[..at.min(self.text.len())];
        before.trim_end().len()
    }
}

fn count_nodes(value: &Value) -> usize {
    let mut count = 0;
    let mut todo = vec![value];
    while let Some(v) = todo.pop() {
        count += 1;
        match v {
            Value::Array(items) => todo.extend(items),
            Value::Object(members) => todo.extend(members.values()),
            _ => {}
        }
    }
    count
}

/// Resolves a scalar with the YAML 1.2 core schema: quoted and block scalars are text; plain
/// ones may be null, a boolean, an integer or a float.
fn resolve(text: &str, style: TScalarStyle, tag: Option<&Tag>, at: usize) -> Result<Value, SyntaxError> {
    if let Some(tag) = tag
        && tag.handle == "!!"
        && tag.suffix == "str"
    {
        return Ok(Value::String(text.to_owned()));
    }
    if style != TScalarStyle::Plain {
        return Ok(Value::String(text.to_owned()));
    }
    Ok(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "-.inf" | ".nan" | ".NaN" | ".NAN" => {
            return Err(SyntaxError {
                span: Span::new(at, at + text.len()),
                message: format!("{text} is not a number a plan can use"),
                help: Some("use a finite number, or quote it to make it text".into()),
            });
        }
        _ => {
            if let Some(n) = integer(text) {
                Value::Number(n)
            } else if looks_like_float(text) {
                match text.parse::<f64>().ok().and_then(Number::from_f64) {
                    Some(n) => Value::Number(n),
                    None => Value::String(text.to_owned()),
                }
            } else {
                Value::String(text.to_owned())
            }
        }
    })
}

fn integer(text: &str) -> Option<Number> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        u64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u64>().ok()?
    } else {
        return None;
    };
    if negative {
        let n = i64::try_from(magnitude).ok()?.checked_neg()?;
        Some(Number::from(n))
    } else {
        Some(Number::from(magnitude))
    }
}

fn looks_like_float(text: &str) -> bool {
    let t = text.trim_start_matches(['-', '+']);
    !t.is_empty()
        && t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && t.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'.')
}

fn complex_key(at: usize) -> SyntaxError {
    SyntaxError {
        span: Span::new(at, at + 1),
        message: "keys must be plain text, not lists or mappings".into(),
        help: Some("write `key: value` with a text key".into()),
    }
}

fn internal(at: usize) -> SyntaxError {
    SyntaxError {
        span: Span::new(at, at + 1),
        message: "the YAML reader lost its place here".into(),
        help: Some("please report this plan as a bug".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_yaml_becomes_json_with_spans() {
        let text = "stages:\n  - name: one\n    steps:\n      - type: Wait\n        seconds: 5\n";
        let doc = parse(text).unwrap();
        assert_eq!(
            doc.value,
            json!({"stages": [{"name": "one", "steps": [{"type": "Wait", "seconds": 5}]}]})
        );
        let span = doc.map.value(&doc.value, "/stages/0/steps/0/seconds").unwrap();
        assert_eq!(&text[span.start..span.end], "5");
        let key = doc.map.key(&doc.value, "/stages/0/name").unwrap();
        assert_eq!(&text[key.start..key.end], "name");
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let doc = parse("a: yes\nb: true\nc: '5'\nd: 5\ne: 1.5\nf: ~\ng: 0x10\nh: v1.2\n").unwrap();
        assert_eq!(
            doc.value,
            json!({"a": "yes", "b": true, "c": "5", "d": 5, "e": 1.5, "f": null, "g": 16, "h": "v1.2"})
        );
    }

    #[test]
    fn non_ascii_text_keeps_byte_spans_right() {
        let text = "name: \"déploiement\"\nseconds: 7\n";
        let doc = parse(text).unwrap();
        let span = doc.map.value(&doc.value, "/seconds").unwrap();
        assert_eq!(&text[span.start..span.end], "7");
    }

    #[test]
    fn hostile_documents_are_refused() {
        assert!(parse(&"[".repeat(200_000)).is_err());
        assert!(parse("a: 1\na: 2\n").unwrap_err().message.contains("duplicate key"));
        assert!(
            parse("a: 1\n---\nb: 2\n")
                .unwrap_err()
                .message
                .contains("more than one")
        );
        assert!(parse("").unwrap_err().message.contains("empty"));
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
        assert!(parse(bomb).unwrap_err().message.contains("expands to more than"));
    }
}
