//! State names: sanitising plan names into what ASL accepts (at most 80 characters, none of
//! `<>{}[]?*"#%\^|~`$&,;:/`, no control characters) and keeping every name of the state machine
//! unique (ASL requires unique names across all branches).

use std::collections::BTreeSet;

/// The longest state name ASL accepts, in characters.
pub const MAX_NAME_CHARS: usize = 80;

const FORBIDDEN: &[char] = &[
    '<', '>', '{', '}', '[', ']', '?', '*', '"', '#', '%', '\\', '^', '|', '~', '`', '$', '&', ',', ';', ':', '/',
];

/// `name` with each forbidden or control character replaced by `_`, whitespace runs collapsed,
/// cut to [`MAX_NAME_CHARS`] characters; `state` if nothing is left.
pub fn sanitise(name: &str) -> String {
    let mut out = String::new();
    let mut last_space = false;
    for c in name.trim().chars() {
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
            continue;
        }
        last_space = false;
        out.push(if c.is_control() || FORBIDDEN.contains(&c) {
            '_'
        } else {
            c
        });
    }
    let cut: String = out.chars().take(MAX_NAME_CHARS).collect();
    let cut = cut.trim_end().to_string();
    if cut.is_empty() { "state".to_string() } else { cut }
}

/// Hands out sanitised, unique state names in the order they are asked for (so the same plan
/// always gets the same names).
#[derive(Debug, Default)]
pub struct Names {
    taken: BTreeSet<String>,
}

impl Names {
    /// A new unique name for `wanted`: its sanitised form, or that form with ` 2`, ` 3`…
    /// (the base shortened so that the whole stays within [`MAX_NAME_CHARS`]).
    pub fn allocate(&mut self, wanted: &str) -> String {
        let base = sanitise(wanted);
        if self.taken.insert(base.clone()) {
            return base;
        }
        let mut n: u64 = 2;
        loop {
            let suffix = format!(" {n}");
            let room = MAX_NAME_CHARS - suffix.chars().count();
            let head: String = base.chars().take(room).collect();
            let candidate = format!("{}{suffix}", head.trim_end());
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_and_control_characters_become_underscores() {
        assert_eq!(
            sanitise("Stage 1: build/test {x} $HOME & \"q\""),
            "Stage 1_ build_test _x_ _HOME _ _q_"
        );
        assert_eq!(sanitise("a\u{7}b\u{0}c"), "a_b_c");
        assert_eq!(sanitise("tabs\tand\n\nnewlines"), "tabs and newlines");
    }

    #[test]
    fn long_names_are_cut_to_80_characters() {
        let long = "é".repeat(200);
        assert_eq!(sanitise(&long).chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn empty_names_get_a_placeholder() {
        assert_eq!(sanitise("   "), "state");
        assert_eq!(sanitise(""), "state");
    }

    #[test]
    fn duplicates_get_numbered_and_stay_within_the_limit() {
        let mut names = Names::default();
        assert_eq!(names.allocate("step2"), "step2");
        assert_eq!(names.allocate("step2"), "step2 2");
        assert_eq!(names.allocate("step2"), "step2 3");
        assert_eq!(names.allocate("step:2"), "step_2");
        let long = "x".repeat(100);
        let first = names.allocate(&long);
        let second = names.allocate(&long);
        assert_eq!(first.chars().count(), 80);
        assert_eq!(second.chars().count(), 80);
        assert!(second.ends_with(" 2"));
        assert_ne!(first, second);
    }

    #[test]
    fn every_sanitised_name_is_acceptable() {
        for raw in ["a<b>c", "[x]", "?*", "#%^|~`", "a,b;c", "\u{1b}[31m"] {
            let s = sanitise(raw);
            assert!(
                s.chars().all(|c| !c.is_control() && !FORBIDDEN.contains(&c)),
                "{raw:?} -> {s:?}"
            );
        }
    }
}
