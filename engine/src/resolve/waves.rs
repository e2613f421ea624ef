//! Slicing a fan-out stage's targets into waves, in their listed order: `count` targets, or
//! `percent` of all of them rounded up (a 10% wave of 5 targets is 1, never 0); the last wave
//! may have neither and takes the rest. A wave that would be empty (the earlier ones took
//! everything) is left out; targets that no wave takes are an error.

use crate::plan::Wave;
use std::ops::Range;

/// One non-empty wave: its name, 1-based index among the waves as written, and its targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub name: String,
    pub index: u32,
    pub range: Range<usize>,
}

/// The waves of `total` targets. No waves: one wave, `all`, of everything.
pub fn slice(total: usize, waves: &[Wave]) -> Result<Vec<Slice>, String> {
    if waves.is_empty() {
        return Ok(vec![Slice {
            name: "all".into(),
            index: 1,
            range: 0..total,
        }]);
    }
    let mut out = Vec::new();
    let mut start = 0;
    for (i, wave) in waves.iter().enumerate() {
        let last = i + 1 == waves.len();
        let wanted = match (wave.count, wave.percent) {
            (Some(n), _) => n as usize,
            (None, Some(p)) => ((p * total as f64) / 100.0 - 1e-9).ceil().max(1.0) as usize,
            (None, None) if last => total - start,
            (None, None) => {
                return Err(format!(
                    "wave \"{}\" has neither count nor percent; only the last wave takes the rest",
                    wave.name
                ));
            }
        };
        let end = (start + wanted).min(total);
        if end > start {
            out.push(Slice {
                name: wave.name.clone(),
                index: i as u32 + 1,
                range: start..end,
            });
        }
        start = end;
    }
    if start < total {
        return Err(format!(
            "the waves take {start} of the {total} targets; leave count and percent off the last wave so that it takes the rest"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(name: &str, count: Option<u32>, percent: Option<f64>) -> Wave {
        Wave {
            name: name.into(),
            count,
            percent,
        }
    }

    fn sizes(total: usize, waves: &[Wave]) -> Vec<(String, usize)> {
        slice(total, waves)
            .unwrap()
            .into_iter()
            .map(|s| (s.name, s.range.len()))
            .collect()
    }

    #[test]
    fn counts_percents_and_the_rest() {
        let waves = [
            w("canary", Some(1), None),
            w("ten", None, Some(10.0)),
            w("rest", None, None),
        ];
        assert_eq!(
            sizes(30, &waves),
            [("canary".into(), 1), ("ten".into(), 3), ("rest".into(), 26)]
        );
        // 10% of 5 rounds up to 1; 10% of 100 is exactly 10, not 11.
        assert_eq!(
            sizes(5, &waves),
            [("canary".into(), 1), ("ten".into(), 1), ("rest".into(), 3)]
        );
        assert_eq!(sizes(101, &waves)[1], ("ten".into(), 11));
        assert_eq!(
            sizes(100, &[w("ten", None, Some(10.0)), w("rest", None, None)])[0].1,
            10
        );
        assert_eq!(sizes(3, &[]), [("all".into(), 3)]);
    }

    #[test]
    fn a_wave_that_would_be_empty_is_left_out() {
        let waves = [
            w("canary", Some(1), None),
            w("ten", None, Some(10.0)),
            w("rest", None, None),
        ];
        let s = slice(2, &waves).unwrap();
        assert_eq!(
            s.iter().map(|s| (s.index, s.range.clone())).collect::<Vec<_>>(),
            [(1, 0..1), (2, 1..2)]
        );
        assert_eq!(sizes(1, &waves), [("canary".into(), 1)]);
    }

    #[test]
    fn targets_left_over_or_a_rest_wave_before_the_last_are_errors() {
        let e = slice(10, &[w("a", Some(2), None), w("b", Some(3), None)]).unwrap_err();
        assert!(e.contains("take 5 of the 10"), "{e}");
        let e = slice(10, &[w("a", None, None), w("b", Some(3), None)]).unwrap_err();
        assert!(e.contains("only the last wave"), "{e}");
    }
}
