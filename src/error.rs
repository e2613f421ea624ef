//! The command line's one error path (cargo's `CliError` is the model): every command returns
//! [`CliResult`]; `main` prints the error, if it has something to say, and exits with its code,
//! in one place.
//!
//! Exit codes: 0 success, 1 the plan or the release failed ([`Exit::Failed`]), 2 usage, I/O,
//! AWS or database trouble ([`Exit::Trouble`]).

use std::fmt;
use std::process::ExitCode;
use steppy_engine::store::StoreError;
use steppy_engine::validate::LoadError;

/// What a command returns: `Ok` exits 0.
pub type CliResult = Result<(), CliError>;

/// Why a command did not succeed, as its exit code tells scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 1: the plan is invalid, the release failed, was aborted or rejected, a request was refused.
    Failed = 1,
    /// 2: the command could not do its work (usage, I/O, AWS or the database).
    Trouble = 2,
}

/// A command's failure: its exit code and what to print on standard error (nothing when the
/// command has said it already, as a failed release's progress does).
#[derive(Debug)]
pub struct CliError {
    exit: Exit,
    message: Option<Message>,
}

#[derive(Debug)]
enum Message {
    /// One line, printed as `steppy: LINE` with control characters escaped.
    Line(String),
    /// A report of several lines (an invalid plan's problems), each escaped.
    Lines(String),
}

impl CliError {
    /// Exit 1 with `message`.
    pub fn failed(message: impl fmt::Display) -> CliError {
        CliError {
            exit: Exit::Failed,
            message: Some(Message::Line(message.to_string())),
        }
    }

    /// Exit 2 with `message`.
    pub fn trouble(message: impl fmt::Display) -> CliError {
        CliError {
            exit: Exit::Trouble,
            message: Some(Message::Line(message.to_string())),
        }
    }

    /// Exit 1 with an invalid plan's report, one problem a line.
    pub fn invalid_plan(report: &dyn fmt::Display) -> CliError {
        CliError {
            exit: Exit::Failed,
            message: Some(Message::Lines(format!("the plan is not valid:\n{report}"))),
        }
    }

    /// Exit with `exit`; the command has already said why.
    pub fn said(exit: Exit) -> CliError {
        CliError { exit, message: None }
    }

    /// The exit code this error ends the process with.
    #[cfg(test)]
    pub fn exit(&self) -> Exit {
        self.exit
    }

    /// Prints the message now (if any) and keeps only the exit code: for a command that goes on
    /// after one failure and reports the worst at the end.
    pub fn print_now(self) -> CliError {
        self.print();
        CliError::said(self.exit)
    }

    /// Prints the message to standard error and returns the process's exit code.
    pub fn report(self) -> ExitCode {
        self.print();
        ExitCode::from(self.exit as u8)
    }

    fn print(&self) {
        match &self.message {
            Some(Message::Line(line)) => crate::terminal::err(&format!("steppy: {line}")),
            Some(Message::Lines(lines)) => crate::terminal::err_lines(&format!("steppy: {lines}")),
            None => {}
        }
    }
}

/// The worse of two outcomes (the higher exit code; its message printed last): for commands
/// that do two independent jobs, like `resume` with local and Step Functions executions.
pub fn worse(a: CliResult, b: CliResult) -> CliResult {
    match (a, b) {
        (Ok(()), other) | (other, Ok(())) => other,
        (Err(a), Err(b)) if a.exit > b.exit => {
            b.print();
            Err(a)
        }
        (Err(a), Err(b)) => {
            a.print();
            Err(b)
        }
    }
}

/// Database trouble exits 2; a refused request (unknown execution, decided approval) exits 1.
impl From<StoreError> for CliError {
    fn from(e: StoreError) -> CliError {
        if e.is_database_trouble() {
            CliError::trouble(e)
        } else {
            CliError::failed(e)
        }
    }
}

/// An unreadable plan exits 2; an invalid one exits 1 with its report.
impl From<LoadError> for CliError {
    fn from(e: LoadError) -> CliError {
        match e {
            e @ LoadError::Io { .. } => CliError::trouble(e),
            e => CliError::invalid_plan(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worse_outcome_wins_whichever_comes_first() {
        assert!(worse(Ok(()), Ok(())).is_ok());
        assert_eq!(
            worse(Err(CliError::said(Exit::Failed)), Ok(())).unwrap_err().exit(),
            Exit::Failed
        );
        assert_eq!(
            worse(Ok(()), Err(CliError::said(Exit::Trouble))).unwrap_err().exit(),
            Exit::Trouble
        );
        let a = worse(Err(CliError::said(Exit::Trouble)), Err(CliError::said(Exit::Failed)));
        assert_eq!(a.unwrap_err().exit(), Exit::Trouble);
        let b = worse(Err(CliError::said(Exit::Failed)), Err(CliError::said(Exit::Trouble)));
        assert_eq!(b.unwrap_err().exit(), Exit::Trouble);
    }

    #[test]
    fn store_errors_split_into_trouble_and_refusals() {
        let locked = StoreError::Locked("another process holds the lock".into());
        assert_eq!(CliError::from(locked).exit(), Exit::Trouble);
        let unknown = StoreError::UnknownExecution("x".into());
        assert_eq!(CliError::from(unknown).exit(), Exit::Failed);
    }

    #[test]
    fn exit_codes_are_the_documented_numbers() {
        assert_eq!(Exit::Failed as u8, 1);
        assert_eq!(Exit::Trouble as u8, 2);
    }
}
