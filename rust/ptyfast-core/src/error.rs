//! The one error type of the core. Every fallible kernel returns [`Result`]; the binding crate
//! maps [`Error`] to `ptyfast.PtyfastError` (a `ValueError` subclass), so nothing a user passes
//! in can reach a panic.

use std::fmt;

/// Why a kernel refused its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An argument has the wrong shape, size or value. `name` is the argument as the Python API
    /// spells it; `expected` and `got` describe the mismatch.
    InvalidArgument {
        name: &'static str,
        expected: String,
        got: String,
    },
    /// A kernel was called in a way the core does not (yet) support.
    Unsupported(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(
        name: &'static str,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        Error::InvalidArgument {
            name,
            expected: expected.into(),
            got: got.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument {
                name,
                expected,
                got,
            } => write!(f, "{name} must be {expected}, got {got}"),
            Error::Unsupported(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result of every fallible kernel.
pub type Result<T> = std::result::Result<T, Error>;
