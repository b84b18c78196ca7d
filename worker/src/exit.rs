//! Exit codes, and the error that carries one up to `main`.

use std::fmt;

/// Invalid configuration or usage (sysexits `EX_USAGE`).
pub(crate) const CONFIG: u8 = 64;
/// Invalid input data, such as a malformed bundle (sysexits `EX_DATAERR`).
pub(crate) const DATA: u8 = 65;
/// Anything else that went wrong while running.
pub(crate) const RUNTIME: u8 = 1;

/// An error whose exit code is decided where it is raised.
#[derive(Debug)]
pub(crate) struct Exit {
    pub(crate) code: u8,
    message: String,
}

impl Exit {
    pub(crate) fn config(message: impl Into<String>) -> anyhow::Error {
        Self {
            code: CONFIG,
            message: message.into(),
        }
        .into()
    }

    pub(crate) fn data(message: impl Into<String>) -> anyhow::Error {
        Self {
            code: DATA,
            message: message.into(),
        }
        .into()
    }

    pub(crate) fn runtime(message: impl Into<String>) -> anyhow::Error {
        Self {
            code: RUNTIME,
            message: message.into(),
        }
        .into()
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// The exit code for an error that reached `main`.
pub(crate) fn code_of(error: &anyhow::Error) -> u8 {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<Exit>())
        .map_or(RUNTIME, |exit| exit.code)
}
