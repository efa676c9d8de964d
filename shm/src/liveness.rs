//! Whether a writer holds the file: an advisory lock, not a process id.
//!
//! The writer takes `flock(LOCK_EX)` on its file once, before renaming it into place, and holds it
//! for its lifetime; the kernel drops the lock when the writer's last reference to the open file
//! goes away, however the process ends (a SIGKILL included). A reader asks with a non-blocking
//! `flock(LOCK_SH | LOCK_NB)` on its own descriptor: refused means a writer holds the file, granted
//! means none does, and the reader lets go at once. The lock belongs to the open file, not to a
//! process, so the answer is the same from any PID namespace that sees the file (a strategy in a
//! container sharing `/dev/shm`), where the writer's pid means nothing or names another process.
//!
//! A reader never blocks the writer: the writer locks once, on its private temporary file, before
//! any reader can open it, and never asks again. `flock`, not `fcntl` locks: the Python reader's
//! `fcntl.flock` is the same call, and the two kinds do not see each other.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// What the lock test found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// A writer holds the file.
    Held,
    /// Nobody holds it: its writer has gone.
    Free,
    /// The test itself failed (a filesystem without `flock`): no evidence either way.
    Unknown,
}

fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock takes a descriptor and flags and touches no memory; the descriptor is
        // open for as long as `file` is borrowed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The writer's side: takes the exclusive lock, without waiting (a fresh private file is never
/// locked, so refusal means something is badly wrong and is an error, not a wait).
pub(crate) fn hold(file: &File) -> io::Result<()> {
    flock(file, libc::LOCK_EX | libc::LOCK_NB)
}

/// The writer's side at close: lets go, so the file reads as closed, not held, even while this
/// process still maps it.
pub(crate) fn release(file: &File) {
    let _ = flock(file, libc::LOCK_UN);
}

/// The reader's side: does a writer hold the file `file` is open on? Never waits, and holds
/// nothing afterwards.
pub(crate) fn probe(file: &File) -> Holder {
    match flock(file, libc::LOCK_SH | libc::LOCK_NB) {
        Ok(()) => {
            release(file);
            Holder::Free
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Holder::Held,
        Err(_) => Holder::Unknown,
    }
}
