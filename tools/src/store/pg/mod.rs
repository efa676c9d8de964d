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
//!   ([`gap`]), reports it in `/status` and `/metrics` and calls [`gap::backfill`].

mod args;
pub mod copy;
pub mod gap;
pub mod schema;
mod worker;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

pub use args::SinkArgs;
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
    /// The journal directory, for [`gap::backfill`].
    pub journal: Option<PathBuf>,
}

/// A running sink thread.
pub struct Sink {
    stats: Arc<SinkStats>,
    stop: Arc<AtomicBool>,
    abandon: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Sink {
    /// Opens the shm file (its writer must be live) and starts the sink thread. The database
    /// need not be up: the thread connects, and keeps retrying, on its own.
    pub fn start(cfg: SinkConfig) -> Result<Sink, SinkError> {
        let reader = tickwire_shm::Reader::open(&cfg.shm).map_err(SinkError::Shm)?;
        let stats = Arc::new(SinkStats::new(cfg.table.as_str()));
        let stop = Arc::new(AtomicBool::new(false));
        let abandon = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::channel();
        let w = worker::Worker::new(cfg, reader, stats.clone(), abandon.clone());
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tickwire-sink".into())
            .spawn(move || {
                w.run(&s);
                let _ = tx.send(());
            })
            .map_err(SinkError::Io)?;
        Ok(Sink {
            stats,
            stop,
            abandon,
            done,
            thread: Some(thread),
        })
    }

    /// Its counters (for `/status` and `/metrics`).
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// Stores what the ring still holds and stops. Call after the shm writer has stopped, so
    /// nothing more arrives. Waits at most `grace` (the database may be down): past it the
    /// thread is told to give up, and what it had not committed is logged as lost.
    pub fn stop(mut self, grace: Duration) {
        self.stop.store(true, Ordering::Relaxed);
        match self.done.recv_timeout(grace) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::error!(
                    "sink: not done {} s after shutdown (database unreachable?): giving up",
                    grace.as_secs()
                );
                // Not joined: a connect or statement may block for its own timeout.
                self.abandon.store(true, Ordering::Relaxed);
            }
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
