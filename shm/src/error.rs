//! Errors of the shm file: each says what was found and what was expected.

use std::path::PathBuf;

/// Why a shm file cannot be created, opened or read.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// No file at the path: the writer has not started, or the path is wrong.
    #[error("{path}: no such shm file (is the writer running? check --path)")]
    Missing {
        /// The path tried.
        path: PathBuf,
    },
    /// An OS error on the file.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is shorter than its header says it must be.
    #[error("{path}: truncated: {len} bytes, the layout needs {need}")]
    Truncated {
        /// The path.
        path: PathBuf,
        /// Actual length.
        len: u64,
        /// Length the layout requires.
        need: u64,
    },
    /// Not a tickwire shm file (or not finished being created).
    #[error("{path}: not a tickwire shm file (magic {found:#018x})")]
    BadMagic {
        /// The path.
        path: PathBuf,
        /// The first 8 bytes.
        found: u64,
    },
    /// Written by another major layout version.
    #[error(
        "{path}: layout version {found_major}.{found_minor}, this reader understands {expected}.x"
    )]
    Version {
        /// The path.
        path: PathBuf,
        /// File's major version.
        found_major: u16,
        /// File's minor version.
        found_minor: u16,
        /// Reader's major version.
        expected: u16,
    },
    /// A size or offset in the header disagrees with this build's layout.
    #[error("{path}: header field {field} is {found}, expected {expected}")]
    Layout {
        /// The path.
        path: PathBuf,
        /// Which field.
        field: &'static str,
        /// Its value.
        found: u64,
        /// The value this build computes.
        expected: u64,
    },
    /// No live writer: the data will not change.
    #[error("{path}: no live writer: {status}")]
    NotLive {
        /// The path.
        path: PathBuf,
        /// What was found.
        status: crate::WriterStatus,
    },
    /// Bad writer configuration.
    #[error("invalid shm configuration: {0}")]
    Config(String),
    /// A last-value entry kept changing while being read (the writer rewrote it on every attempt).
    #[error("symbol {symbol}: last value kept changing during {attempts} read attempts")]
    Contended {
        /// The symbol id.
        symbol: u32,
        /// Attempts made.
        attempts: u32,
    },
}
