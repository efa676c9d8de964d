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
    /// The path is not a regular file: a directory, a FIFO (opening one would block), a socket or
    /// a device.
    #[error("{path} is {kind}, not a tickwire shm file")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is, with its article: "a directory", "a FIFO", …
        kind: &'static str,
    },
    /// The file is shorter than a header.
    #[error("{path}: truncated: {len} bytes, the layout needs {need}")]
    Truncated {
        /// The path.
        path: PathBuf,
        /// Actual length.
        len: u64,
        /// Length the layout requires.
        need: u64,
    },
    /// The header's capacities need a longer file than this one (cut short, or a corrupt header).
    #[error(
        "{path}: header's ring_capacity {ring_capacity} and symbol_capacity {symbol_capacity} need a \
         file of {need} bytes but the file has {len}"
    )]
    Undersized {
        /// The path.
        path: PathBuf,
        /// The header's ring capacity.
        ring_capacity: u64,
        /// The header's symbol capacity.
        symbol_capacity: u64,
        /// Bytes those capacities need (u128: a corrupt header may ask for more than 2^64).
        need: u128,
        /// The file's length.
        len: u64,
    },
    /// A capacity in the header that no writer could have made.
    #[error("{path}: header's {field} is {found}, {why}")]
    BadCapacity {
        /// The path.
        path: PathBuf,
        /// Which field.
        field: &'static str,
        /// Its value.
        found: u64,
        /// What is wrong with it.
        why: &'static str,
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
    /// A writer holds the file: it is not replaced or removed under it.
    #[error(
        "{path} is in use by a live writer (pid {pid}{}); stop it first",
        stale_note(status)
    )]
    InUse {
        /// The path.
        path: PathBuf,
        /// The writer's pid, as the file records it (in the writer's PID namespace).
        pid: u32,
        /// Live, or stale (holds the file but has stopped heartbeating).
        status: crate::WriterStatus,
    },
    /// A file that is not a finished tickwire shm file is locked by some process (a writer still
    /// building it, under its temporary name).
    #[error("{path}: a process holds a lock on it (a writer still creating it?); not removed")]
    Locked {
        /// The path.
        path: PathBuf,
    },
    /// The path was replaced by another file while it was being checked for removal.
    #[error("{path} was replaced while being checked (a new writer?); not removed, try again")]
    Replaced {
        /// The path.
        path: PathBuf,
    },
    /// Not enough memory or filesystem space for the file a writer was asked to make.
    #[error(
        "{path}: ring capacity {ring_capacity} and symbol capacity {symbol_capacity} need a file \
         of {} ({need} bytes), but only {} is available ({limits}); choose a smaller ring capacity",
        Bytes(*need),
        Bytes(*available as u128)
    )]
    NoRoom {
        /// The path asked for.
        path: PathBuf,
        /// Ring slots asked for.
        ring_capacity: u64,
        /// Symbols asked for.
        symbol_capacity: u64,
        /// Bytes the file needs.
        need: u128,
        /// The smaller of the limits below.
        available: u64,
        /// Each limit checked, e.g. "MemAvailable 22.8 GiB, free on /dev/shm 23.5 GiB".
        limits: String,
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

fn stale_note(status: &crate::WriterStatus) -> String {
    match status {
        crate::WriterStatus::Stale { age_ms, .. } => {
            format!(", but no heartbeat for {age_ms} ms: stopped or hung")
        }
        _ => String::new(),
    }
}

/// A byte count for people: in binary units from 1 KiB up (the exact count is printed beside it
/// where it matters).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bytes(pub u128);

impl std::fmt::Display for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let mut v = self.0 as f64;
        let mut unit = None;
        for u in UNITS {
            if v < 1024.0 {
                break;
            }
            v /= 1024.0;
            unit = Some(u);
        }
        match unit {
            Some(u) => write!(f, "{v:.1} {u}"),
            None => write!(f, "{} bytes", self.0),
        }
    }
}
