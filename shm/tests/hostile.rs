//! Bad paths, bad headers and bad sizes get one clear error each, never a hang or a leftover file;
//! liveness comes from the writer's lock on the file, not from its pid; `remove` removes only what
//! no writer holds.

use std::io::{Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use tickwire_engine::symbols::SymbolRegistry;
use tickwire_shm::{OpenOptions, Reader, Removed, ShmError, Writer, WriterConfig, WriterStatus};

fn registry(n: u32) -> SymbolRegistry {
    let mut r = SymbolRegistry::with_capacity(n as usize);
    for i in 0..n {
        r.register("NSE", &format!("S{i}"), &format!("{}", 1000 + i))
            .unwrap();
    }
    r
}

fn cfg(ring: u64, symbols: u64) -> WriterConfig {
    WriterConfig {
        ring_capacity: ring,
        symbol_capacity: symbols,
    }
}

fn loose() -> OpenOptions {
    OpenOptions {
        require_live: false,
        ..OpenOptions::default()
    }
}

/// `f` on another thread, failing the test if it has not returned within 5 s (a blocked open).
fn within_5s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("{what} blocked for 5 s"))
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_fifo_is_refused_by_name_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success(), "mkfifo");
    let p = fifo.clone();
    let e = within_5s("Reader::open_with on a FIFO", move || {
        Reader::open_with(&p, loose()).err().unwrap()
    });
    assert!(
        matches!(e, ShmError::NotAFile { kind: "a FIFO", .. }),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!("{} is a FIFO, not a tickwire shm file", fifo.display())
    );
    let p = fifo.clone();
    let e = within_5s("remove on a FIFO", move || {
        tickwire_shm::remove(&p, true).err().unwrap()
    });
    assert!(matches!(e, ShmError::NotAFile { .. }), "{e}");
    assert!(fifo.exists(), "never removed");
}

#[test]
fn a_directory_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let e = Reader::open_with(dir.path(), loose()).err().unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "{} is a directory, not a tickwire shm file",
            dir.path().display()
        )
    );
    // A writer asked for a directory's path refuses before making anything.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let e = Writer::create(&sub, &cfg(16, 2), &registry(2))
        .err()
        .unwrap();
    assert!(matches!(e, ShmError::NotAFile { .. }), "{e}");
    assert_eq!(names_in(dir.path()), ["sub"], "no temporary file left");
}

#[test]
fn header_capacities_are_checked_against_the_file_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let mut w = Writer::create(&path, &cfg(16, 2), &registry(2)).unwrap();
    w.close();
    let len = std::fs::metadata(&path).unwrap().len();
    let copy = dir.path().join("copy");
    for (ring, want) in [
        // A power of two whose size overflows a u64: the old message was "ring_capacity is
        // 4611686018427387904, expected 4611686018427387904".
        (
            1u64 << 62,
            format!(
                "header's ring_capacity 4611686018427387904 and symbol_capacity 2 need a file of \
                 {} bytes but the file has {len}",
                12288u128 + (1u128 << 62) * 448
            ),
        ),
        // A size a file could have, but not this one.
        (
            1 << 40,
            format!(
                "header's ring_capacity 1099511627776 and symbol_capacity 2 need a file of {} \
                 bytes but the file has {len}",
                12288u128 + (1u128 << 40) * 448
            ),
        ),
        (
            1000,
            "header's ring_capacity is 1000, not a power of two of at least 2".to_string(),
        ),
    ] {
        std::fs::copy(&path, &copy).unwrap();
        patch(&copy, 24, &ring.to_le_bytes());
        let e = Reader::open_with(&copy, loose()).err().unwrap();
        assert_eq!(e.to_string(), format!("{}: {want}", copy.display()));
    }
    std::fs::copy(&path, &copy).unwrap();
    patch(&copy, 32, &0u64.to_le_bytes());
    let e = Reader::open_with(&copy, loose()).err().unwrap();
    assert!(
        e.to_string()
            .ends_with("header's symbol_capacity is 0, expected at least 1"),
        "{e}"
    );
}

#[test]
fn a_file_bigger_than_memory_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let e = Writer::create(&path, &cfg(1 << 40, 10), &registry(10))
        .err()
        .unwrap();
    assert!(matches!(e, ShmError::NoRoom { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("ring capacity 1099511627776")
            && msg.contains("need a file of 448.0 TiB (492581209260032 bytes)")
            && msg.contains("is available (MemAvailable"),
        "{msg}"
    );
    assert!(names_in(dir.path()).is_empty(), "nothing left behind");
    // Past what any file can hold: refused by arithmetic, not by overflowing it.
    let e = Writer::create(&path, &cfg(1 << 62, 10), &registry(10))
        .err()
        .unwrap();
    assert!(e.to_string().contains("more than a file can hold"), "{e}");
    assert!(names_in(dir.path()).is_empty(), "nothing left behind");
}

#[test]
fn liveness_is_the_writers_lock_not_its_pid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let w = Writer::create(&path, &cfg(16, 2), &registry(2)).unwrap();
    let r = Reader::open(&path).unwrap();
    assert_eq!(r.writer_status(), WriterStatus::Live);
    // A copy says "live" in its header, names a running process (this one) and a fresh heartbeat,
    // but nobody holds it: the pid test said live, the lock says dead.
    let copy = dir.path().join("copy");
    std::fs::copy(&path, &copy).unwrap();
    let c = Reader::open_with(&copy, loose()).unwrap();
    assert_eq!(
        c.writer_status(),
        WriterStatus::Dead {
            pid: std::process::id()
        }
    );
    // Held but silent: stale.
    w.heartbeat(1);
    assert!(
        matches!(r.writer_status(), WriterStatus::Stale { .. }),
        "{:?}",
        r.writer_status()
    );
    // Closing lets go of the lock and says so, even while a last-value view keeps the mapping.
    let view = w.last_values();
    let before = tickwire_engine::clock::now_ns();
    drop(w);
    assert_eq!(r.writer_status(), WriterStatus::Closed);
    let closed_at = r.info().heartbeat_ns;
    assert!(closed_at >= before, "the close is stamped in the heartbeat");
    drop(view);
    // Nothing holds it any more: a new writer may replace it.
    let w2 = Writer::create(&path, &cfg(16, 2), &registry(2)).unwrap();
    assert_eq!(
        Reader::open(&path).unwrap().writer_status(),
        WriterStatus::Live
    );
    drop(w2);
}

#[test]
fn remove_takes_only_what_no_writer_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let mut w = Writer::create(&path, &cfg(16, 2), &registry(2)).unwrap();
    let e = tickwire_shm::remove(&path, true).err().unwrap();
    assert!(matches!(e, ShmError::InUse { .. }), "{e}");
    assert!(
        e.to_string().contains("is in use by a live writer (pid"),
        "{e}"
    );
    assert!(path.exists());

    // A dead writer's file (a copy nobody holds).
    let dead = dir.path().join("dead");
    std::fs::copy(&path, &dead).unwrap();
    assert!(matches!(
        tickwire_shm::remove(&dead, false),
        Ok(Removed::Dead { .. })
    ));
    assert!(!dead.exists());

    w.close();
    assert!(matches!(
        tickwire_shm::remove(&path, false),
        Ok(Removed::Closed { .. })
    ));
    assert!(!path.exists());
    assert!(matches!(
        tickwire_shm::remove(&path, false),
        Err(ShmError::Missing { .. })
    ));

    // Not a tickwire file: only with force, and never while some process holds a lock on it.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    assert!(matches!(
        tickwire_shm::remove(&junk, false),
        Err(ShmError::BadMagic { .. })
    ));
    let holder = std::fs::File::open(&junk).unwrap();
    // SAFETY: flock on a descriptor `holder` keeps open; no memory is involved.
    let rc = unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "lock the junk file");
    assert!(matches!(
        tickwire_shm::remove(&junk, true),
        Err(ShmError::Locked { .. })
    ));
    drop(holder);
    assert!(matches!(
        tickwire_shm::remove(&junk, true),
        Ok(Removed::Forced(ShmError::BadMagic { .. }))
    ));
    assert!(!junk.exists());

    let e = tickwire_shm::remove(dir.path(), true).err().unwrap();
    assert!(matches!(e, ShmError::NotAFile { .. }), "{e}");
}
