//! [`SoakError`]: what can stop a soak, one variant per part that can
//! fail, each naming what it was doing. Its `Display` is the one line the
//! command lines print after `alloc-soak: `.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a soak, or one of the library's steps, failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SoakError {
    /// The options cannot make a soak: a count of zero, keep-alive
    /// without an end marker, a template or an `--http` line that does not
    /// parse.
    Options(String),
    /// The output directory holds files the soak must not overwrite: an
    /// earlier soak's (without `--replace`), or files a soak did not write.
    Occupied(String),
    /// A file or directory of the soak's output could not be listed,
    /// created, written or deleted.
    File {
        /// What was being done: `list`, `create`, `write`, `write to`,
        /// `delete`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A `--binary` file could not be used for symbolisation.
    Binary(alloc_report::SymbolizeError),
    /// The admin endpoint: not reached, an error status, an answer that is
    /// not what was asked for (the message names the call).
    Admin(String),
    /// The server's open connections did not come back to the baseline
    /// (quiescence) in time.
    NotQuiescent {
        /// Open connections at the last look.
        open: u64,
        /// The connections expected: those before the soak, and the held.
        baseline: u64,
        /// How long the wait was.
        timeout: Duration,
    },
    /// A snapshot the endpoint served that does not continue the series or
    /// does not symbolise (the message names the cycles and the file).
    Snapshot(String),
    /// The load: the client could not start, too many cycles failed or
    /// the batch timed out, or a connection to hold open failed.
    Cycles(String),
    /// The work run beside a batch ([`SoakOptions::during_batch`](crate::soak::SoakOptions::during_batch))
    /// failed or panicked.
    BatchHook(String),
    /// The open-file limit could not be raised ([`crate::fd_limit::set`]).
    FdLimit(String),
}

impl SoakError {
    /// A [`SoakError::File`].
    pub(crate) fn file(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SoakError::File {
            action,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for SoakError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SoakError::Options(m)
            | SoakError::Occupied(m)
            | SoakError::Admin(m)
            | SoakError::Snapshot(m)
            | SoakError::Cycles(m)
            | SoakError::BatchHook(m)
            | SoakError::FdLimit(m) => f.write_str(m),
            SoakError::File {
                action,
                path,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            SoakError::Binary(e) => write!(f, "{e}"),
            SoakError::NotQuiescent {
                open,
                baseline,
                timeout,
            } => write!(
                f,
                "the server still has {open} open connections, not {baseline}, after {timeout:?}"
            ),
        }
    }
}

impl std::error::Error for SoakError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SoakError::File { source, .. } => Some(source),
            SoakError::Binary(e) => Some(e),
            _ => None,
        }
    }
}
