//! Is there room for a new file? Checked before anything is created.
//!
//! The file is sized with `ftruncate`, which succeeds for any size a filesystem allows (tmpfs
//! hands out pages only when touched), so a ring capacity of 2^40 slots would otherwise create a
//! 492 TB sparse file and fail only at `mmap`, or later, when the writer's stores touch pages that
//! cannot be had and the kernel kills it. Two limits, the smaller wins:
//!
//! * `MemAvailable` (`/proc/meminfo`): the file is shared memory and is meant to stay in memory;
//!   the writer touches the whole ring within one lap. Counted whatever the filesystem, because a
//!   ring bigger than memory would page on every lap even on a disk-backed path.
//! * the free space of the filesystem that will hold the file (`statvfs` of its directory, blocks
//!   available to unprivileged users): a tmpfs's `size=` limit, or a disk's free space.
//!
//! The whole file size is compared, though the directory and last-value table are only touched
//! for the symbols in use: a check that errs on the safe side. A limit that cannot be read is left
//! out; with neither, nothing is refused here and the OS has the last word.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::Bytes;
use crate::layout::Geometry;
use crate::ShmError;

/// `MemAvailable` in bytes, if `/proc/meminfo` says.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Bytes available to unprivileged users on the filesystem holding `dir`.
fn fs_available(dir: &Path) -> Option<u64> {
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: zeroed is a valid statvfs (plain integers); statvfs writes only into `st`, and `c` is
    // a NUL-terminated string that outlives the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    (st.f_bavail as u64).checked_mul(st.f_frsize as u64)
}

/// Refuses a file of `geo.file_size` bytes at `path` if memory or its filesystem cannot hold it.
pub(crate) fn check_room(path: &Path, geo: &Geometry) -> Result<(), ShmError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let limits = [
        ("MemAvailable".to_string(), mem_available()),
        (format!("free in {}", dir.display()), fs_available(dir)),
    ];
    let Some(available) = limits.iter().filter_map(|l| l.1).min() else {
        return Ok(());
    };
    if geo.file_size <= available {
        return Ok(());
    }
    let limits = limits
        .iter()
        .filter_map(|(what, v)| v.map(|v| format!("{what} {}", Bytes(v as u128))))
        .collect::<Vec<_>>()
        .join(", ");
    Err(ShmError::NoRoom {
        path: path.to_owned(),
        ring_capacity: geo.ring_capacity,
        symbol_capacity: geo.symbol_capacity,
        need: geo.file_size as u128,
        available,
        limits,
    })
}
