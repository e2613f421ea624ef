//! Numbers as JSON Schema counts them. To the schema `1.0` and `-0` are the integers 1 and 0, so
//! they pass `"type": "integer"`; serde would then refuse them for a `u64` field. Every integral
//! float of the document becomes the integer it equals before any check runs, so the schema and
//! Steppy's model agree; a fractional number (`1.5`) stays a float and the schema reports it.

use serde_json::{Number, Value};

/// 2^64 and -2^63: the integral floats in `[-2^63, 2^64)` are exactly some `i64` or `u64`.
const U64_END: f64 = 18_446_744_073_709_551_616.0;
const I64_START: f64 = -9_223_372_036_854_775_808.0;

/// Rewrites every integral float in `value` (`1.0`, `-0`, `3e2`) as an integer. Walks with an
/// explicit stack (no recursion on the input's nesting).
pub fn integral_floats_to_integers(value: &mut Value) {
    let mut todo = vec![value];
    while let Some(v) = todo.pop() {
        match v {
            Value::Number(n) => {
                if let Some(integer) = n.as_f64().filter(|_| n.is_f64()).and_then(integral) {
                    *n = integer;
                }
            }
            Value::Array(items) => todo.extend(items.iter_mut()),
            Value::Object(members) => todo.extend(members.values_mut()),
            _ => {}
        }
    }
}

/// The integer equal to `f`, if `f` is integral and fits an `i64` or a `u64`.
fn integral(f: f64) -> Option<Number> {
    if !f.is_finite() || f.fract() != 0.0 {
        return None;
    }
    if (0.0..U64_END).contains(&f) {
        // Integral and inside the range: the cast is exact (-0.0 becomes 0).
        Some(Number::from(f as u64))
    } else if (I64_START..0.0).contains(&f) {
        Some(Number::from(f as i64))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integral_floats_become_integers_and_fractions_stay() {
        let mut v: Value =
            serde_json::from_str(r#"{"a": 1.0, "b": -0, "c": [3e2, 1.5, -2.0], "d": 1e300, "e": 7}"#).unwrap();
        integral_floats_to_integers(&mut v);
        assert_eq!(v, json!({"a": 1, "b": 0, "c": [300, 1.5, -2], "d": 1e300, "e": 7}));
        assert!(v["a"].is_u64() && v["b"].is_u64() && v["c"][2].is_i64());
    }
}
