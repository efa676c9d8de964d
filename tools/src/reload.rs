//! Reloading while running: SIGHUP, and files watched for changes.
//!
//! The gateway re-reads its keys file and its credentials (config file, credentials file) when
//! one of them changes on disk or when it gets SIGHUP, the Unix convention for "re-read your
//! configuration". Both are polled (once a second, off the tick path) rather than delivered by
//! inotify: a poll sees an editor's rename-over-the-file the same as an in-place write, works on
//! every filesystem (NFS, bind mounts, config maps), and needs no extra crate.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// SIGHUPs received since start.
static HUPS: AtomicU64 = AtomicU64::new(0);

/// Counts SIGHUPs from now on (call once, before threads start).
#[allow(unsafe_code)]
pub fn install_sighup() -> std::io::Result<()> {
    // SAFETY: the handler only does an atomic add, which is async-signal-safe.
    unsafe {
        signal_hook::low_level::register(signal_hook::consts::SIGHUP, || {
            HUPS.fetch_add(1, Ordering::Relaxed);
        })
    }
    .map(|_| ())
}

/// SIGHUPs received so far: a watcher compares it with the count it last acted on.
pub fn hups() -> u64 {
    HUPS.load(Ordering::Relaxed)
}

/// What identifies one version of a file: modification time, length and inode (a rename over
/// the file changes the inode even within one mtime tick).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Version {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn version(path: &Path) -> Option<Version> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Version {
        modified: m.modified().ok(),
        len: m.len(),
        ino: m.ino(),
    })
}

/// One watched file, plus SIGHUP.
#[derive(Debug)]
pub struct Watch {
    path: PathBuf,
    seen: Option<Version>,
    hups: u64,
}

impl Watch {
    /// Watches `path` from its current version (a file that does not exist yet counts as a
    /// version too: its appearance is a change).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            seen: version(&path),
            hups: hups(),
            path,
        }
    }

    /// The watched path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True once per change of the file or per batch of SIGHUPs since the last call.
    pub fn changed(&mut self) -> bool {
        let now = version(&self.path);
        let h = hups();
        let changed = now != self.seen || h != self.hups;
        self.seen = now;
        self.hups = h;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_and_a_rename_are_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut w = Watch::new(&p);
        assert!(!w.changed());
        std::fs::write(&p, "a").unwrap();
        assert!(w.changed(), "created");
        assert!(!w.changed());
        std::fs::write(&p, "bb").unwrap();
        assert!(w.changed(), "rewritten");
        let q = dir.path().join("g");
        std::fs::write(&q, "cc").unwrap();
        std::fs::rename(&q, &p).unwrap();
        assert!(w.changed(), "renamed over (same length)");
        assert!(!w.changed());
    }
}
