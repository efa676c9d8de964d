//! Opening a path as a shm file without trusting what is there, and the writer's temporary file.
//!
//! A shm path lives in a shared directory (`/dev/shm`) and on a command line: it may name a FIFO
//! (whose `open` blocks until a writer appears), a directory, a socket or a device. Each is refused
//! by name before anything is read, and the open itself is non-blocking, so a path swapped for a
//! FIFO between the check and the open still cannot hang a reader.

use std::fs::{File, FileType, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::ShmError;

/// What a non-regular file is, with its article; `None` for a regular file.
pub(crate) fn kind(t: FileType) -> Option<&'static str> {
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else {
        Some("not a regular file")
    }
}

/// `Missing` for a path that does not exist, `Io` otherwise.
pub(crate) fn io_error(path: &Path, source: io::Error) -> ShmError {
    match source.kind() {
        io::ErrorKind::NotFound => ShmError::Missing {
            path: path.to_owned(),
        },
        _ => ShmError::Io {
            path: path.to_owned(),
            source,
        },
    }
}

/// Refuses a path that exists and is not a regular file (symbolic links are followed).
pub(crate) fn check_kind(path: &Path) -> Result<(), ShmError> {
    match std::fs::metadata(path) {
        Ok(m) => match kind(m.file_type()) {
            None => Ok(()),
            Some(kind) => Err(ShmError::NotAFile {
                path: path.to_owned(),
                kind,
            }),
        },
        Err(e) => Err(io_error(path, e)),
    }
}

/// Opens `path` read-only as a candidate shm file: refuses anything but a regular file, never
/// blocks. Returns the file and its length.
pub(crate) fn open_regular(path: &Path) -> Result<(File, u64), ShmError> {
    check_kind(path)?;
    // O_NONBLOCK: if the path became a FIFO after the check, the open returns instead of waiting
    // for a writer; on a regular file it changes nothing (reads and mmap ignore it).
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    let meta = file.metadata().map_err(|e| io_error(path, e))?;
    if let Some(kind) = kind(meta.file_type()) {
        return Err(ShmError::NotAFile {
            path: path.to_owned(),
            kind,
        });
    }
    Ok((file, meta.len()))
}

/// `(device, inode)` of an open file or a path: tells whether a path still names the file opened.
pub(crate) fn identity(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

/// The writer's temporary file: removed when dropped unless [`TmpFile::keep`] was called after the
/// rename. Any failure between creating it and renaming it into place (no room for `set_len`, the
/// mapping refused, the rename refused) would otherwise leave it behind, possibly huge, in a
/// directory nobody cleans.
pub(crate) struct TmpFile {
    path: PathBuf,
    armed: bool,
}

impl TmpFile {
    /// Creates `path` (a leftover of the same name, from a crashed writer that had this pid, is
    /// removed first), read-write, and arms the guard.
    pub(crate) fn create(path: PathBuf) -> io::Result<(Self, File)> {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // create_new (O_EXCL, which also refuses to follow a symbolic link): in a shared directory
        // another user could have planted a link under the name.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((Self { path, armed: true }, file))
    }

    /// The temporary name.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file was renamed into place: nothing to remove any more.
    pub(crate) fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
