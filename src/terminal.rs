//! Lines for people, on standard output or standard error. Whatever Steppy prints that may hold
//! outside text (names, messages, reasons, comments, keys, errors from services) goes through
//! [`out`] or [`err`] (or the [`say!`] and [`say_err!`] macros), which escape control
//! characters with [`printable`]: an approval comment cannot clear the screen, retitle the
//! terminal or forge a line. JSON output is not printed here: serde escapes it.

use std::io::Write;
use steppy_engine::text::printable;

/// Prints one line on standard output, control characters escaped. A closed output is ignored
/// (the commands that only print restore SIGPIPE's default and end on it).
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", printable(text));
    let _ = stdout.flush();
}

/// Prints one line on standard error, control characters escaped.
pub fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}", printable(text));
}

/// Prints text that Steppy laid out on several lines (a plan report: one problem a line, its
/// messages already escaped) on standard error, each line escaped: the layout stays, and a
/// CR or an escape sequence inside a line is shown, not obeyed.
pub fn err_lines(text: &str) {
    let mut stderr = std::io::stderr().lock();
    for line in text.lines() {
        let _ = writeln!(stderr, "{}", printable(line));
    }
}

/// `println!` for lines that may hold outside text: [`out`].
macro_rules! say {
    ($($arg:tt)*) => { $crate::terminal::out(&format!($($arg)*)) };
}

/// `eprintln!` for lines that may hold outside text: [`err`].
macro_rules! say_err {
    ($($arg:tt)*) => { $crate::terminal::err(&format!($($arg)*)) };
}

pub(crate) use {say, say_err};
