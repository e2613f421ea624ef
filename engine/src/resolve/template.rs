//! The template language of plan strings: `${scope.name}` is a reference, `$${` writes a
//! literal `${`, anything else is text. Scopes: `params`, `target`, `stage`, `execution`,
//! `wave` (what each may name, and where, is [`super::expand`]'s to say).
//!
//! Rendering is total over the pieces: each reference is looked up, and a lookup may also
//! *defer* (leave the reference for later: `${wave.failed}` is only known when the wave has
//! ended). A string with a deferred reference stays a template, so its literal `${` stay
//! escaped; a string without one is final.

use std::borrow::Cow;

/// One `${scope.name}` in a string; `offset` is the byte offset of its `$`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference<'a> {
    pub scope: &'a str,
    pub name: &'a str,
    pub offset: usize,
}

/// A malformed reference: an unclosed `${`, or one that is not `scope.name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub offset: usize,
    pub message: String,
}

/// One part of a template string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    /// `$${`: a literal `${`.
    Escape,
    Ref(Reference<'a>),
}

/// Whether `s` has anything to render (a reference or an escape): most strings do not, and
/// are used as they are.
pub fn is_template(s: &str) -> bool {
    s.contains("${")
}

/// The references of `s`, in order.
pub fn references(s: &str) -> Result<Vec<Reference<'_>>, Malformed> {
    Ok(pieces(s)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Ref(r) => Some(r),
            _ => None,
        })
        .collect())
}

fn pieces(s: &str) -> Result<Vec<Piece<'_>>, Malformed> {
    let mut out = Vec::new();
    let mut rest = 0;
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < bytes.len() {
        if s[i..].starts_with("$${") {
            if rest < i {
                out.push(Piece::Text(&s[rest..i]));
            }
            out.push(Piece::Escape);
            i += 3;
            rest = i;
        } else if s[i..].starts_with("${") {
            if rest < i {
                out.push(Piece::Text(&s[rest..i]));
            }
            let body_start = i + 2;
            let Some(len) = s[body_start..].find('}') else {
                return Err(Malformed {
                    offset: i,
                    message: "\"${\" is not closed by \"}\"".into(),
                });
            };
            let body = &s[body_start..body_start + len];
            let reference = parse_reference(body, i)?;
            out.push(Piece::Ref(reference));
            i = body_start + len + 1;
            rest = i;
        } else {
            i += 1;
        }
    }
    if rest < s.len() {
        out.push(Piece::Text(&s[rest..]));
    }
    Ok(out)
}

fn parse_reference(body: &str, offset: usize) -> Result<Reference<'_>, Malformed> {
    let malformed = |message: String| Malformed { offset, message };
    let Some((scope, name)) = body.split_once('.') else {
        return Err(malformed(format!(
            "\"${{{body}}}\" is not a reference: write ${{params.NAME}}, ${{target.FIELD}}, ${{stage.name}}, ${{execution.id}} or ${{wave.name}} (and $${{ for a literal \"${{\")"
        )));
    };
    let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !word(scope) || !word(name) {
        return Err(malformed(format!(
            "\"${{{body}}}\" is not a reference: scope and name are letters, digits, '_' and '-'"
        )));
    }
    Ok(Reference { scope, name, offset })
}

/// What a lookup found for one reference.
pub enum Found<'v> {
    Value(Cow<'v, str>),
    /// Leave the reference in place, to be rendered later.
    Defer,
}

/// The result of [`render`]: the new text, and whether it is still a template.
pub struct Rendered<'s> {
    pub text: Cow<'s, str>,
    pub deferred: bool,
}

/// Renders `s`, looking each reference up with `lookup` (whose `Err` is the caller's own
/// problem type, returned for the first reference that fails).
pub fn render<'s, 'v, E>(
    s: &'s str,
    mut lookup: impl FnMut(&Reference<'s>) -> Result<Found<'v>, E>,
    malformed: impl FnOnce(Malformed) -> E,
) -> Result<Rendered<'s>, E> {
    if !is_template(s) {
        return Ok(Rendered {
            text: Cow::Borrowed(s),
            deferred: false,
        });
    }
    let pieces = pieces(s).map_err(malformed)?;
    let mut found = Vec::with_capacity(pieces.len());
    let mut deferred = false;
    for piece in &pieces {
        if let Piece::Ref(r) = piece {
            let f = lookup(r)?;
            deferred |= matches!(f, Found::Defer);
            found.push(Some(f));
        } else {
            found.push(None);
        }
    }
    let mut out = String::with_capacity(s.len());
    for (piece, f) in pieces.iter().zip(found) {
        match (piece, f) {
            (Piece::Text(t), _) => out.push_str(t),
            (Piece::Escape, _) if deferred => out.push_str("$${"),
            (Piece::Escape, _) => out.push_str("${"),
            (Piece::Ref(r), Some(Found::Defer)) => {
                out.push_str("${");
                out.push_str(r.scope);
                out.push('.');
                out.push_str(r.name);
                out.push('}');
            }
            // A value is data, never a reference: in a string that stays a template, its `${`
            // is escaped so that the later rendering writes it as it is.
            (Piece::Ref(_), Some(Found::Value(v))) if deferred => out.push_str(&v.replace("${", "$${")),
            (Piece::Ref(_), Some(Found::Value(v))) => out.push_str(&v),
            (Piece::Ref(_), None) => {}
        }
    }
    Ok(Rendered {
        text: Cow::Owned(out),
        deferred,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &str, values: &[(&str, &str, Option<&str>)]) -> Result<(String, bool), String> {
        render(
            s,
            |r| {
                values
                    .iter()
                    .find(|(scope, name, _)| *scope == r.scope && *name == r.name)
                    .map(|(_, _, v)| match v {
                        Some(v) => Found::Value(Cow::Owned(v.to_string())),
                        None => Found::Defer,
                    })
                    .ok_or_else(|| format!("unknown {}.{}", r.scope, r.name))
            },
            |m| m.message,
        )
        .map(|r| (r.text.into_owned(), r.deferred))
    }

    #[test]
    fn references_are_replaced_and_escapes_written_literally() {
        let v = [("params", "version", Some("1.4.2")), ("target", "id", Some("t-1"))];
        assert_eq!(
            all("deploy ${params.version} to ${target.id}", &v),
            Ok(("deploy 1.4.2 to t-1".into(), false))
        );
        assert_eq!(
            all("cost: $${HOME} ${params.version}", &v),
            Ok(("cost: ${HOME} 1.4.2".into(), false))
        );
        assert_eq!(all("no template", &v), Ok(("no template".into(), false)));
        assert_eq!(all("$5 and $ {x} stay", &v), Ok(("$5 and $ {x} stay".into(), false)));
    }

    #[test]
    fn a_value_is_never_read_as_a_reference() {
        let v = [("params", "p", Some("${target.id}")), ("wave", "failed", None)];
        assert_eq!(all("${params.p}", &v), Ok(("${target.id}".into(), false)));
        // Still a template (a deferred reference): the value's `${` and the escape stay escaped.
        assert_eq!(
            all("${params.p} $${x} ${wave.failed}", &v),
            Ok(("$${target.id} $${x} ${wave.failed}".into(), true))
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(all("${params.version", &[]).unwrap_err().contains("not closed"));
        assert!(all("${version}", &[]).unwrap_err().contains("not a reference"));
        assert!(all("${params.}", &[]).unwrap_err().contains("not a reference"));
        assert!(all("${params.a b}", &[]).unwrap_err().contains("not a reference"));
        assert_eq!(all("${params.nope}", &[]), Err("unknown params.nope".into()));
    }

    #[test]
    fn references_lists_them_with_offsets() {
        let refs = references("a ${params.x} $${no} ${target.region}").unwrap();
        assert_eq!(
            refs.iter().map(|r| (r.scope, r.name, r.offset)).collect::<Vec<_>>(),
            vec![("params", "x", 2), ("target", "region", 21)]
        );
    }
}
