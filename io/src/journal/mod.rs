//! The raw-frame journal: every upstream frame as received, and the control events that change
//! what frames mean, appended to checksummed segment files (`docs/journal-format.md`).
//!
//! - [`format`](mod@format): the bytes on disk, offset by offset.
//! - [`Appender`] (`append`): the feed thread's side, a copy into an SPSC byte ring that never
//!   blocks, allocates or makes a syscall.
//! - `writer`: the "tickwire-journal" thread draining the rings into segments.
//! - [`read`]: segments back, in order, a torn tail skipped and reported.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

mod append;
pub mod catalog;
pub mod format;
pub mod read;
mod writer;

pub use append::{Appender, Event};
pub use writer::{day_dir_name, trading_day};

/// Where and how the journal writes.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// Segments go under `dir/<YYYY-MM-DD IST trading day>/NNNNNN.twj`.
    pub dir: PathBuf,
    /// A segment is closed and the next opened before a record would take it past this size.
    pub segment_bytes: u64,
    /// When data is fsynced besides at segment close and stop.
    pub sync: SyncPolicy,
    /// Each appender's ring, bytes: what the disk may fall behind by before frames are dropped.
    pub ring_bytes: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            dir: PathBuf::from("journal"),
            segment_bytes: 256 << 20,
            sync: SyncPolicy::Never,
            ring_bytes: 8 << 20,
        }
    }
}

/// fsync policy. Data is always fsynced when a segment closes and at stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Only at segment close and stop: a crash loses what the OS had not written back.
    Never,
    /// At most this long after a write: a crash loses at most about this much.
    Every(Duration),
}

/// Counters, updated Relaxed: by the writer thread (frames, bytes, gaps, segments, errors, lost)
/// and by appenders when they drop a record (missed).
#[derive(Debug, Default)]
pub struct JournalStats {
    /// Frame records written.
    pub frames: AtomicU64,
    /// Record bytes written (headers of segments not counted).
    pub bytes: AtomicU64,
    /// Gap records written.
    pub gaps: AtomicU64,
    /// Records appenders dropped because their ring was full.
    pub missed: AtomicU64,
    /// Segments opened.
    pub segments: AtomicU64,
    /// Write, fsync or open errors (each logged).
    pub write_errors: AtomicU64,
    /// Records drained but not written because of an earlier write error.
    pub lost: AtomicU64,
}

/// What the journal and its writer thread share.
pub(crate) struct Shared {
    /// Appenders registered but not yet taken by the writer.
    new: Mutex<Vec<writer::Source>>,
    /// Catalog records ([`catalog`]) every segment starts with.
    catalog: Mutex<Arc<Vec<Vec<u8>>>>,
    stop: AtomicBool,
    stats: Arc<JournalStats>,
}

/// The journal: owns the writer thread.
pub struct Journal {
    shared: Arc<Shared>,
    ring_bytes: usize,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Journal {
    /// Creates the directory and starts the writer thread. Segments open with the first record.
    pub fn start(cfg: JournalConfig) -> io::Result<Journal> {
        std::fs::create_dir_all(&cfg.dir).map_err(|e| {
            io::Error::new(e.kind(), format!("journal dir {}: {e}", cfg.dir.display()))
        })?;
        let shared = Arc::new(Shared {
            new: Mutex::new(Vec::new()),
            catalog: Mutex::default(),
            stop: AtomicBool::new(false),
            stats: Arc::new(JournalStats::default()),
        });
        let ring_bytes = cfg.ring_bytes.max(format::RECORD_MIN);
        let w = writer::Writer::new(cfg, shared.clone());
        let thread = std::thread::Builder::new()
            .name("tickwire-journal".into())
            .spawn(move || w.run())?;
        Ok(Journal {
            shared,
            ring_bytes,
            thread: Some(thread),
        })
    }

    /// A new appender for `feed` (one per feed, used by one thread). `broker` names the feed in
    /// segment headers.
    pub fn appender(&mut self, feed: u8, broker: &str) -> Appender {
        let (prod, cons) = rtrb::RingBuffer::new(self.ring_bytes);
        let src = writer::Source {
            feed,
            broker: broker.to_string(),
            cons,
        };
        // Poisoned only if the writer panicked; the appender then just fills its ring.
        if let Ok(mut v) = self.shared.new.lock() {
            v.push(src);
        }
        Appender::new(prod, feed, self.shared.stats.clone())
    }

    /// Sets the catalog every segment opened from now on starts with: whole records from
    /// [`catalog::encode`]. Set it before the first appender, so that no segment lacks it.
    pub fn set_catalog(&mut self, records: Vec<Vec<u8>>) {
        if let Ok(mut c) = self.shared.catalog.lock() {
            *c = Arc::new(records);
        }
    }

    /// The counters.
    pub fn stats(&self) -> Arc<JournalStats> {
        self.shared.stats.clone()
    }

    /// Drains what was appended before this call, fsyncs, joins the thread; the first write
    /// error, naming the file, if there was one.
    pub fn stop(mut self) -> io::Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> io::Result<()> {
        let Some(t) = self.thread.take() else {
            return Ok(());
        };
        self.shared
            .stop
            .store(true, std::sync::atomic::Ordering::Release);
        t.thread().unpark();
        t.join()
            .map_err(|_| io::Error::other("journal writer thread panicked"))?
    }
}

impl Drop for Journal {
    /// Dropped without `stop`: stopped all the same (the error, if any, is logged by the writer).
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests;
