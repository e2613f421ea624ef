//! Text from outside (plan names, messages, comments, reasons, S3 keys) made safe to print on a
//! terminal or in a log line.
//!
//! Anyone holding an approval link can post a comment, and anyone who can upload a plan names
//! its steps: printed raw, an `ESC [2J` clears the operator's screen, an OSC sequence renames
//! the terminal, and a CR or LF forges a whole line (`... execution FAKE SUCCEEDED`). Every
//! terminal and log path goes through [`printable`], which keeps ordinary text (any script,
//! emoji) and writes control characters as visible escapes.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for characters that must not reach a terminal or a log line as they are: C0 and C1
/// controls (tab, CR and LF included: one printed item stays one line), DEL, and the Unicode
/// bidirectional overrides and isolates that reorder what is shown.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// `text` with every control character written as an escape (`\n`, `\r`, `\t`, `\u{1b}`):
/// safe to print on one line of a terminal or a log. Borrowed when nothing needed escaping.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(printable("release 2.4 ✓ déploiement"), "release 2.4 ✓ déploiement");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(
            printable("x\r\nexecution FAKE SUCCEEDED"),
            "x\\r\\nexecution FAKE SUCCEEDED"
        );
        assert_eq!(printable("\u{1b}]0;owned\u{7}"), "\\u{1b}]0;owned\\u{7}");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(printable("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(printable("tab\there"), "tab\\there");
    }
}
