//! When two names are the same to a reader: equal after Unicode normalization (NFC) and
//! lower-casing. `"Deploy"` and `"deploy"`, or `"é"` written as one character and as `e` plus a
//! combining accent, look alike (or identical) in progress lines and history, so one plan must
//! not use both where names identify a stage or a step.

use std::borrow::Cow;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// The form under which names are compared: lower-case, NFC. Borrowed for the common
/// lower-case ASCII name.
pub fn folded(name: &str) -> Cow<'_, str> {
    if name.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(name.to_lowercase().nfc().collect())
}

/// How two names with the same [`folded`] form differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sameness {
    /// Byte for byte the same.
    Identical,
    /// Only by upper and lower case.
    Case,
    /// Only by how accented letters are encoded (composed or decomposed).
    Normalization,
    /// By both.
    CaseAndNormalization,
}

impl Sameness {
    /// The words for a message: "… only by {describe}".
    pub fn describe(self) -> &'static str {
        match self {
            Sameness::Identical => "nothing",
            Sameness::Case => "upper and lower case",
            Sameness::Normalization => "Unicode normalization (an accent written as one character or as two)",
            Sameness::CaseAndNormalization => "case and Unicode normalization",
        }
    }
}

/// How `a` and `b`, whose [`folded`] forms are equal, differ.
pub fn sameness(a: &str, b: &str) -> Sameness {
    if a == b {
        return Sameness::Identical;
    }
    if nfc(a) == nfc(b) {
        Sameness::Normalization
    } else if a.to_lowercase() == b.to_lowercase() {
        Sameness::Case
    } else {
        Sameness::CaseAndNormalization
    }
}

/// `s` in NFC, borrowed when it already is.
fn nfc(s: &str) -> Cow<'_, str> {
    match is_nfc_quick(s.chars()) {
        IsNormalized::Yes => Cow::Borrowed(s),
        _ => Cow::Owned(s.nfc().collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_over_case_and_normalization() {
        let composed = "d\u{e9}ploiement";
        let decomposed = "de\u{301}ploiement";
        assert_eq!(folded(composed), folded(decomposed));
        assert_eq!(folded("Deploy"), folded("deploy"));
        assert_ne!(folded("deploy"), folded("deploy 2"));
        assert!(matches!(folded("plain name"), Cow::Borrowed(_)));
        assert_eq!(sameness("a", "a"), Sameness::Identical);
        assert_eq!(sameness("Deploy", "deploy"), Sameness::Case);
        assert_eq!(sameness(composed, decomposed), Sameness::Normalization);
        assert_eq!(sameness("D\u{e9}ploiement", decomposed), Sameness::CaseAndNormalization);
    }
}
