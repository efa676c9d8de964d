//! Removing a shm file no writer holds (`tickwire shm rm`).
//!
//! A writer leaves its file at its path when it exits, marked closed (or, if it was killed, still
//! marked live but no longer locked). Removing it is safe once nobody holds it: readers that still
//! map it keep their mapping and see the state they saw. Removing a held file would orphan the
//! writer and its readers (a new reader could no longer find it), so that is refused.

use std::path::Path;

use crate::liveness::{self, Holder};
use crate::{file, OpenOptions, Reader, ShmError, WriterStatus};

/// What was removed.
#[derive(Debug)]
pub enum Removed {
    /// A file its writer closed, at `closed_at_ns` (ns since the epoch).
    Closed {
        /// When the writer closed it.
        closed_at_ns: i64,
    },
    /// A file whose writer went away without closing it.
    Dead {
        /// The writer's pid, as the file records it.
        pid: u32,
    },
    /// Not a readable tickwire shm file, removed because `force` was given; why it was not one.
    Forced(ShmError),
}

/// Removes the shm file at `path` unless a writer holds it.
///
/// Refused: a missing path; a directory, FIFO or other non-file, always; a file whose writer is
/// live or stale (holds the file but stopped heartbeating: stop it first), always; a regular file
/// that is not a tickwire shm file, unless `force` (then still refused if any process holds a lock
/// on it, as a writer does on the temporary file it is building). The path is removed only if it
/// still names the file that was checked.
pub fn remove(path: &Path, force: bool) -> Result<Removed, ShmError> {
    let (f, len) = file::open_regular(path)?;
    let id = file::identity(&f.metadata().map_err(|e| file::io_error(path, e))?);
    let probe = f.try_clone().map_err(|e| file::io_error(path, e))?;
    let loose = OpenOptions {
        require_live: false,
        ..OpenOptions::default()
    };
    let removed = match Reader::from_file(path.to_owned(), f, len, loose) {
        Ok(r) => {
            let info = r.info();
            match info.status {
                WriterStatus::Closed => Removed::Closed {
                    closed_at_ns: info.heartbeat_ns,
                },
                WriterStatus::Dead { pid } => Removed::Dead { pid },
                status @ (WriterStatus::Live | WriterStatus::Stale { .. }) => {
                    return Err(ShmError::InUse {
                        path: path.to_owned(),
                        pid: info.writer_pid,
                        status,
                    })
                }
            }
        }
        Err(e) if force && is_format_error(&e) => {
            if liveness::probe(&probe) == Holder::Held {
                return Err(ShmError::Locked {
                    path: path.to_owned(),
                });
            }
            Removed::Forced(e)
        }
        Err(e) => return Err(e),
    };
    // A new writer may have renamed its file over the path since it was opened: remove only the
    // file that was checked. (A rename in the instant between this check and the unlink is not
    // caught; a new writer's file is then removed from the path, and its writer keeps running.)
    let now = std::fs::metadata(path).map_err(|e| file::io_error(path, e))?;
    if file::identity(&now) != id {
        return Err(ShmError::Replaced {
            path: path.to_owned(),
        });
    }
    std::fs::remove_file(path).map_err(|e| file::io_error(path, e))?;
    Ok(removed)
}

/// The errors that say "this regular file is not a (whole) tickwire shm file".
fn is_format_error(e: &ShmError) -> bool {
    matches!(
        e,
        ShmError::Truncated { .. }
            | ShmError::Undersized { .. }
            | ShmError::BadCapacity { .. }
            | ShmError::BadMagic { .. }
            | ShmError::Version { .. }
            | ShmError::Layout { .. }
    )
}
