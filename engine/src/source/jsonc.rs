//! JSON with comments → [`Document`], through the `jsonc-parser` AST (which keeps byte ranges).

use super::{Document, MAX_DEPTH, SourceMap, Span, SpanNode, SyntaxError, too_deep};
use jsonc_parser::ast;
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, CommentCollectionStrategy, ParseOptions};
use serde_json::{Map, Value};

/// Plain JSON plus comments and trailing commas; none of JSON5's other liberties.
fn options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

pub fn parse(text: &str) -> Result<Document, SyntaxError> {
    let collect = CollectOptions {
        comments: CommentCollectionStrategy::Off,
        tokens: false,
    };
    let parsed = jsonc_parser::parse_to_ast(text, &collect, &options()).map_err(|e| {
        let range = e.range();
        SyntaxError {
            span: Span::new(range.start, range.end),
            message: format!("invalid JSON: {}", lowercase_first(&e.kind().to_string())),
            help: Some("plans are JSON (comments and trailing commas allowed) or YAML (.yaml/.yml)".into()),
        }
    })?;
    let Some(root) = parsed.value else {
        return Err(SyntaxError {
            span: Span::new(0, text.len()),
            message: "the plan is empty".into(),
            help: Some("a plan is an object: { \"stages\": [ { \"name\": ..., \"steps\": [ ... ] } ] }".into()),
        });
    };
    let (value, spans) = convert(root, 0)?;
    Ok(Document {
        value,
        map: SourceMap::new(spans),
    })
}

/// The value of `node` and its span tree.
fn convert(node: ast::Value<'_>, depth: usize) -> Result<(Value, SpanNode), SyntaxError> {
    let range = node.range();
    let span = Span::new(range.start, range.end);
    if depth > MAX_DEPTH {
        return Err(too_deep(span));
    }
    let mut spans = SpanNode::leaf(span);
    let value = match node {
        ast::Value::NullKeyword(_) => Value::Null,
        ast::Value::BooleanLit(b) => Value::Bool(b.value),
        ast::Value::StringLit(s) => Value::String(s.value.into_owned()),
        ast::Value::NumberLit(n) => Value::Number(number(n.value, span)?),
        ast::Value::Array(array) => {
            let mut items = Vec::with_capacity(array.elements.len());
            spans.children.reserve(array.elements.len());
            for element in array.elements {
                let (item, item_spans) = convert(element, depth + 1)?;
                items.push(item);
                spans.children.push(item_spans);
            }
            Value::Array(items)
        }
        ast::Value::Object(object) => {
            let mut members = Map::with_capacity(object.properties.len());
            spans.children.reserve(object.properties.len());
            for prop in object.properties {
                let key_range = prop.name.range();
                let key_span = Span::new(key_range.start, key_range.end);
                let key = prop.name.into_string();
                if members.contains_key(&key) {
                    return Err(SyntaxError {
                        span: key_span,
                        message: format!("duplicate key \"{key}\""),
                        help: Some("each key may appear once in an object; remove or rename one".into()),
                    });
                }
                let (member, mut member_spans) = convert(prop.value, depth + 1)?;
                member_spans.key = Some(key_span);
                members.insert(key, member);
                spans.children.push(member_spans);
            }
            Value::Object(members)
        }
    };
    Ok((value, spans))
}

fn number(text: &str, span: Span) -> Result<serde_json::Number, SyntaxError> {
    serde_json::from_str::<serde_json::Number>(text).map_err(|_| SyntaxError {
        span,
        message: format!("the number {text} cannot be represented"),
        help: Some("numbers in a plan are integers or decimals of ordinary size".into()),
    })
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_trailing_commas_are_accepted_and_spans_recorded() {
        let text = "{\n  // a comment\n  \"a\": [1, /* two */ 2,],\n}";
        let doc = parse(text).unwrap();
        assert_eq!(doc.value, serde_json::json!({"a": [1, 2]}));
        let span = doc.map.value(&doc.value, "/a/1").unwrap();
        assert_eq!(&text[span.start..span.end], "2");
        let key = doc.map.key(&doc.value, "/a").unwrap();
        assert_eq!(&text[key.start..key.end], "\"a\"");
    }

    #[test]
    fn duplicate_keys_are_refused_at_the_second_key() {
        let text = "{\"a\": 1, \"a\": 2}";
        let err = parse(text).unwrap_err();
        assert_eq!(err.span.start, 9);
        assert!(err.message.contains("duplicate key"));
    }

    #[test]
    fn json5_liberties_are_refused() {
        for text in ["{a: 1}", "{'a': 1}", "{\"a\": 0x10}", "{\"a\": +1}", "{\"a\": NaN}"] {
            assert!(parse(text).is_err(), "{text} should be refused");
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing() {
        let text = "[".repeat(200_000);
        assert!(parse(&text).is_err());
        let text = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("nested more than"), "{}", err.message);
    }
}
