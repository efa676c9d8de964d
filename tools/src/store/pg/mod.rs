//! The PostgreSQL sink (`tickwire serve --sink postgres://…`): every tick the gateway publishes,
//! one row each, in a PostgreSQL table (`docs/storage.md`, "PostgreSQL sink").
//!
//! ```text
//!  router ──► shm ring ──► sink thread ("tickwire-sink") ──COPY (binary)──► PostgreSQL
//!                          (a shm reader like any strategy)
//! ```
//!
//! - The sink reads the shm ring like any strategy ([`tickwire_shm::Reader`]): it never slows
//!   the gateway; a slow or absent database only makes the sink fall behind in the ring.
//! - Rows go in batches, each one transaction: the rows by binary `COPY` ([`copy`]) and, in the
//!   same transaction, the next ring position to store into the state table ([`schema`]). A
//!   transaction commits both or neither, so after any failure (the server restarting, the
//!   connection dropping, a commit whose reply was lost) the sink reconnects (backoff doubling
//!   from 100 ms to 5 s), reads the committed position back and seeks the ring there: every tick
//!   is stored exactly once.
//! - If the ring overwrote ticks before they were stored, the sink counts and logs the lost range
//!   ([`gap`]), reports it in `/status` and `/metrics`, and a second thread fills it from the
//!   journal ([`backfill`]).

mod args;
pub mod backfill;
pub mod copy;
pub mod gap;
pub mod lanes;
pub mod schema;
mod worker;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

pub use args::{SinkArgs, DEFAULT_LANES};
pub use backfill::JournalRun;
pub use tickwire_io::gateway::SinkStats;

use schema::TableName;

/// Why the sink failed (a failure inside the running sink is logged and retried; only a bad
/// setting stops `serve` from starting).
#[derive(Debug)]
pub enum SinkError {
    /// A bad `--sink` URL or table name.
    Config(String),
    /// The database refused or lost the connection, or a statement failed.
    Db(postgres::Error),
    /// Writing the `COPY` stream.
    Io(std::io::Error),
    /// The ticks table exists with other columns.
    Schema(String),
    /// Opening the shm file.
    Shm(tickwire_shm::ShmError),
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkError::Config(m) | SinkError::Schema(m) => f.write_str(m),
            SinkError::Db(e) => {
                // The server's own message (`db error` alone says nothing).
                match e.as_db_error() {
                    Some(d) => write!(f, "database: {}: {}", d.severity(), d.message()),
                    None => write!(f, "database: {e}"),
                }
            }
            SinkError::Io(e) => write!(f, "COPY stream: {e}"),
            SinkError::Shm(e) => write!(f, "shm: {e}"),
        }
    }
}

impl std::error::Error for SinkError {}

impl From<postgres::Error> for SinkError {
    fn from(e: postgres::Error) -> Self {
        SinkError::Db(e)
    }
}

impl From<std::io::Error> for SinkError {
    fn from(e: std::io::Error) -> Self {
        SinkError::Io(e)
    }
}

/// What a sink runs with (`postgres::Config`'s `Debug` leaves the password out).
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// Connection settings (from the URL).
    pub db: postgres::Config,
    /// The ticks table.
    pub table: TableName,
    /// The shm file to read.
    pub shm: PathBuf,
    /// A batch is committed at this many rows…
    pub batch_rows: usize,
    /// … or this long after its first row, whichever comes first.
    pub flush: Duration,
    /// `COPY` connections in parallel ([`lanes`]), 1 to [`lanes::MAX_LANES`].
    pub lanes: usize,
    /// This run's journal, to fill gaps from ([`backfill`]); `None`: gaps stay unfilled.
    pub journal: Option<JournalRun>,
}

/// A running sink thread.
pub struct Sink {
    stats: Arc<SinkStats>,
    stop: Arc<AtomicBool>,
    abandon: Arc<AtomicBool>,
    /// One message per thread as it ends.
    done: mpsc::Receiver<()>,
    threads: Vec<JoinHandle<()>>,
}

impl Sink {
    /// Opens the shm file (its writer must be live) and starts the sink thread. The database
    /// need not be up: the thread connects, and keeps retrying, on its own.
    pub fn start(cfg: SinkConfig) -> Result<Sink, SinkError> {
        let stop = Arc::new(AtomicBool::new(false));
        let abandon = Arc::new(AtomicBool::new(false));
        let r = Sink::spawn(cfg, stop.clone(), abandon.clone());
        if r.is_err() {
            // A thread that could not be made: those already running stop at once.
            stop.store(true, Ordering::Relaxed);
            abandon.store(true, Ordering::Relaxed);
        }
        r
    }

    fn spawn(
        cfg: SinkConfig,
        stop: Arc<AtomicBool>,
        abandon: Arc<AtomicBool>,
    ) -> Result<Sink, SinkError> {
        let n = cfg.lanes.clamp(1, lanes::MAX_LANES);
        let readers = (0..n)
            .map(|_| tickwire_shm::Reader::open(&cfg.shm))
            .collect::<Result<Vec<_>, _>>()
            .map_err(SinkError::Shm)?;
        let stats = Arc::new(SinkStats::new(cfg.table.as_str()));
        let progress = Arc::new(lanes::Progress::new(n));
        let (done_tx, done) = mpsc::channel();
        let mut threads = Vec::new();
        let mut gaps = None;
        if let Some(run) = cfg.journal.clone() {
            let (tx, rx) = mpsc::channel();
            gaps = Some(tx);
            let b = backfill::Backfill {
                db: cfg.db.clone(),
                table: cfg.table.clone(),
                run,
                stats: stats.clone(),
                gaps: rx,
                progress: progress.clone(),
                abandon: abandon.clone(),
            };
            let d = done_tx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("tickwire-backfill".into())
                    .spawn(move || {
                        b.run();
                        let _ = d.send(());
                    })
                    .map_err(SinkError::Io)?,
            );
        }
        for (index, reader) in readers.into_iter().enumerate() {
            let w = worker::Worker::new(
                cfg.clone(),
                reader,
                stats.clone(),
                abandon.clone(),
                gaps.clone(),
                lanes::Lane { index, count: n },
                progress.clone(),
            );
            let (s, d) = (stop.clone(), done_tx.clone());
            let name = match n {
                1 => "tickwire-sink".to_string(),
                _ => format!("tickwire-sink-{index}"),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || {
                        w.run(&s);
                        let _ = d.send(());
                    })
                    .map_err(SinkError::Io)?,
            );
        }
        // The backfill sees the channel close once every lane has stopped.
        drop(gaps);
        drop(done_tx);
        Ok(Sink {
            stats,
            stop,
            abandon,
            done,
            threads,
        })
    }

    /// Its counters (for `/status` and `/metrics`).
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// Stores what the ring still holds, fills the gaps still pending, and stops. Call after the
    /// shm writer and the journal have stopped, so nothing more arrives. Waits at most `grace`
    /// (the database may be down): past it the threads are told to give up, and what they had
    /// not committed is logged as lost.
    pub fn stop(mut self, grace: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let deadline = std::time::Instant::now() + grace;
        let mut ended = 0;
        while ended < self.threads.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.done.recv_timeout(left) {
                Ok(()) => ended += 1,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    tracing::error!(
                        "sink: not done {} s after shutdown (database unreachable, or a long \
                         backfill?): giving up",
                        grace.as_secs()
                    );
                    // Not joined: a connect or statement may block for its own timeout.
                    self.abandon.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // Dropped without `stop` (start-up failed after the sink began): let the thread go.
        self.stop.store(true, Ordering::Relaxed);
        self.abandon.store(true, Ordering::Relaxed);
    }
}
