//! Filling the sink's gaps from the journal: the "tickwire-backfill" thread.
//!
//! A gap ([`Gap`]) is a run of ring positions the shm ring overwrote before the sink stored
//! them. Their frames are in the journal `serve` writes: a replay of this run's segments through
//! the same parsers gives the same ticks with the same per-symbol sequence numbers
//! (`tickwire_io::replay`), so the lost ticks are the replayed ticks of the gap's receive-time
//! window that the table does not hold. Step by step, per gap:
//!
//! 1. **Wait until the gap has settled**: the sink has committed what it read after the gap up to
//!    [`SETTLE_NS`] past the gap's detection (or found the ring empty after that, or stopped).
//!    Every tick of the window that was not lost is then in the table, and the journal writer
//!    (which hands what it buffers to the OS whenever it is idle) has every frame of the window
//!    on disk.
//! 2. **Read what the table holds** in the window, `(exchange, symbol, seq)` of each row (the
//!    table's BRIN index on `recv_ts` keeps this to the window's blocks).
//! 3. **Replay this run** (its segments are those whose catalog carries the run's stamp,
//!    [`JournalRun`]) from its start to the window's end, counting sequence numbers as the
//!    router did, and `COPY` every tick of the window the table does not hold, in one
//!    transaction.
//! 4. **Check before committing**: if the journal itself missed frames of this run (gap
//!    records), sequence numbers after them cannot be matched; if the replay finds more unstored
//!    ticks than were lost, something else is missing too. Either way the transaction is rolled
//!    back and the gap stays reported as unfilled, rather than risk a tick stored twice. Finding
//!    fewer (frames the journal did not get) stores what was found and reports the rest.
//!
//! It runs beside the sink (its own thread and connection), so replaying a long run never holds
//! up the rows still arriving, and a filled gap is idempotent: filling it again finds every tick
//! already stored.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use tickwire_io::replay::{Player, ReplayError, Window};

use super::copy::{self, Batch};
use super::gap::Gap;
use super::lanes::Progress;
use super::schema::{self, TableName};
use super::{SinkError, SinkStats};

/// The journal of the run whose shm ring the sink reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalRun {
    /// The journal directory.
    pub dir: PathBuf,
    /// The stamp of the catalog this run's segments start with (`journal::catalog`): it tells
    /// this run's segments from earlier runs' in the same directory.
    pub catalog_ts: i64,
}

/// How far past a gap's detection the sink must have stored before the gap is filled: a tick
/// received before the detection but published after it (a descheduled router) must be in the
/// table first, or it would look lost.
pub const SETTLE_NS: i64 = 1_000_000_000;
/// How far before the newest tick the sink read before the gap the window starts: with several
/// feeds, ticks are published in arrival order at the router, not in receive-time order.
const SLACK_NS: i64 = 2_000_000_000;
/// Encoded bytes sent to the server at a time.
const CHUNK: usize = 256 << 10;
/// First wait after a database failure; doubles to 5 s.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const POLL: Duration = Duration::from_millis(20);
/// Database failures in a row on one span before it is reported unfilled.
const MAX_FAILURES: u32 = 5;
/// Replayed ticks between checks of whether the gateway gave up on the sink.
const ABANDON_CHECK: u64 = 1 << 16;

/// Why a gap was not filled.
enum FillError {
    /// The database: reconnect and try the gap again.
    Retry(SinkError),
    /// The journal cannot give the gap back: report it unfilled.
    GiveUp(String),
}

impl From<postgres::Error> for FillError {
    fn from(e: postgres::Error) -> Self {
        FillError::Retry(SinkError::Db(e))
    }
}

impl From<std::io::Error> for FillError {
    fn from(e: std::io::Error) -> Self {
        FillError::Retry(SinkError::Io(e))
    }
}

impl From<ReplayError> for FillError {
    fn from(e: ReplayError) -> Self {
        FillError::GiveUp(format!("replaying the journal: {e}"))
    }
}

/// The backfill thread's state.
pub(super) struct Backfill {
    pub db: postgres::Config,
    pub table: TableName,
    pub run: JournalRun,
    pub stats: Arc<SinkStats>,
    /// Gaps from the sink thread; closed when it stops (everything it read is committed).
    pub gaps: Receiver<Gap>,
    /// The sink lanes' progress (when each last found the ring empty).
    pub progress: Arc<Progress>,
    pub abandon: Arc<AtomicBool>,
}

impl Backfill {
    /// Fills gaps as they settle, until the sink thread has stopped and every gap is handled (or
    /// the sink is told to give up).
    pub fn run(self) {
        let mut queue: VecDeque<Gap> = VecDeque::new();
        let mut sink_running = true;
        let mut db: Option<Client> = None;
        let mut delay = MIN_BACKOFF;
        let mut failures = 0;
        loop {
            sink_running &= self.take_gaps(&mut queue);
            self.stats
                .backfill_pending
                .store(queue.len() as u64, Ordering::Relaxed);
            if self.abandon.load(Ordering::Relaxed) {
                for g in queue {
                    self.unfilled(&g, "the gateway stopped before it was filled");
                }
                self.stats.backfill_pending.store(0, Ordering::Relaxed);
                return;
            }
            if queue.is_empty() {
                if !sink_running {
                    return;
                }
                std::thread::sleep(POLL);
                continue;
            }
            // Every gap queued is filled together (adjacent gaps' windows overlap, and each lane
            // reports its own share of one lap), once the sink has settled past the newest. A
            // lane reports a gap before it stores anything after it, so once it has settled past
            // a time, every gap it found before then is in the channel: take those, and check
            // again if there were any.
            let span = loop {
                let span = Span::of(&queue);
                if sink_running && !self.settled(span.detected_ns) {
                    break None;
                }
                let before = queue.len();
                sink_running &= self.take_gaps(&mut queue);
                if queue.len() == before {
                    break Some(span);
                }
            };
            let Some(span) = span else {
                std::thread::sleep(POLL);
                continue;
            };
            let client = match db.as_mut() {
                Some(c) => c,
                None => match self.db.connect(NoTls) {
                    Ok(c) => db.insert(c),
                    Err(e) => {
                        self.retry_later(&SinkError::Db(e), &mut delay);
                        continue;
                    }
                },
            };
            match self.fill(client, &span) {
                Ok(found) => {
                    delay = MIN_BACKOFF;
                    failures = 0;
                    self.stats.backfilled.fetch_add(found, Ordering::Relaxed);
                    tracing::info!(
                        "sink: {found} of the {} ticks lost at ring positions {}..={} stored \
                         from the journal",
                        span.lost,
                        span.from,
                        span.to
                    );
                    if found < span.lost {
                        self.stats
                            .unfilled
                            .fetch_add(span.lost - found, Ordering::Relaxed);
                        tracing::warn!(
                            "sink: {} lost ticks were not in the journal either: missing from \
                             table {}",
                            span.lost - found,
                            self.table.as_str()
                        );
                    }
                }
                Err(FillError::GiveUp(why)) => {
                    delay = MIN_BACKOFF;
                    failures = 0;
                    for g in &queue {
                        self.unfilled(g, &why);
                    }
                }
                Err(FillError::Retry(e)) if failures + 1 >= MAX_FAILURES => {
                    // The same statement failing again and again (a row the table refuses):
                    // later gaps must not wait behind this one forever.
                    db = None;
                    failures = 0;
                    for g in &queue {
                        self.unfilled(g, &format!("{MAX_FAILURES} attempts failed, the last: {e}"));
                    }
                }
                Err(FillError::Retry(e)) => {
                    db = None;
                    failures += 1;
                    self.retry_later(&e, &mut delay);
                    continue;
                }
            }
            queue.clear();
        }
    }

    /// Moves the gaps sent so far into `queue`; false once every lane has stopped.
    fn take_gaps(&self, queue: &mut VecDeque<Gap>) -> bool {
        loop {
            match self.gaps.try_recv() {
                Ok(g) => queue.push_back(g),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// True once every lane has stored everything received up to [`SETTLE_NS`] past
    /// `detected_ns` (Acquire: a lane's gaps sent before its progress are in the channel).
    fn settled(&self, detected_ns: i64) -> bool {
        let past = detected_ns.saturating_add(SETTLE_NS);
        self.progress.done_recv_ns() >= past || self.progress.caught_up_ns() >= past
    }

    fn retry_later(&self, e: &SinkError, delay: &mut Duration) {
        tracing::warn!("sink backfill: {e}; retrying in {} ms", delay.as_millis());
        if let Ok(mut m) = self.stats.last_error.lock() {
            *m = format!("backfill: {e}");
        }
        let until = std::time::Instant::now() + *delay;
        while std::time::Instant::now() < until && !self.abandon.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
        }
        *delay = (*delay * 2).min(Duration::from_secs(5));
    }

    fn unfilled(&self, g: &Gap, why: &str) {
        self.stats.unfilled.fetch_add(g.len(), Ordering::Relaxed);
        let msg = format!(
            "sink: ring positions {}..={} ({} ticks) not filled from the journal: {why}; they \
             are missing from table {}",
            g.from,
            g.to,
            g.len(),
            self.table.as_str()
        );
        tracing::error!("{msg}");
        if let Ok(mut m) = self.stats.last_error.lock() {
            *m = msg;
        }
    }

    /// Stores the ticks of `span` the table lacks; returns how many.
    fn fill(&self, db: &mut Client, span: &Span) -> Result<u64, FillError> {
        let lo = match span.after_recv_ns {
            0 => i64::MIN,
            t => t - SLACK_NS,
        };
        let hi = span.detected_ns;
        let window = Window {
            from_ns: None,
            to_ns: Some(hi),
        };
        let mut player = Player::open_run(&self.run.dir, self.run.catalog_ts, window)?;
        let reg = player.registry().clone();
        // What the table holds in the window, by symbol id and seq. The column is µs: the
        // bounds are widened to whole µs, the exact window is applied to the replayed ticks.
        let sql = format!(
            "SELECT exchange, symbol, seq FROM {} WHERE recv_ts >= $1 AND recv_ts <= $2",
            self.table.sql()
        );
        let (a, b) = (instant(lo.saturating_sub(1_000)), instant(hi + 1_000));
        let mut stored = HashSet::new();
        let mut rows = db.query_raw(&sql, [&a as &dyn postgres::types::ToSql, &b])?;
        while let Some(r) = rows.next()? {
            let (x, s, seq): (&str, &str, i64) = (r.get(0), r.get(1), r.get(2));
            if let Some(id) = reg.lookup(x, s) {
                stored.insert((id, seq as u64));
            }
        }
        drop(rows);
        let mut tx = db.transaction()?;
        let mut w = tx.copy_in(&schema::copy_sql(&self.table))?;
        w.write_all(&copy::HEADER)?;
        let mut batch = Batch::new();
        let mut found = 0u64;
        let mut seen = 0u64;
        player.for_each_tick(|x, s, t| -> Result<(), FillError> {
            seen += 1;
            if seen.is_multiple_of(ABANDON_CHECK) && self.abandon.load(Ordering::Relaxed) {
                return Err(FillError::GiveUp(
                    "the gateway stopped before the replay reached the gap".into(),
                ));
            }
            if t.recv_ts_ns > lo && t.recv_ts_ns <= hi && !stored.contains(&(t.symbol_id, t.seq)) {
                batch.push(x, s, t);
                found += 1;
                if batch.unsent().len() >= CHUNK {
                    w.write_all(batch.unsent())?;
                    batch.sent();
                }
            }
            Ok(())
        })?;
        let st = player.stats();
        if st.gaps > 0 {
            // Dropping the transaction rolls it back.
            return Err(FillError::GiveUp(format!(
                "the journal itself missed {} records of this run ({} gap records), so \
                 sequence numbers after them cannot be matched",
                st.missed, st.gaps
            )));
        }
        if found > span.lost {
            return Err(FillError::GiveUp(format!(
                "the replay finds {found} ticks of the window missing from the table, more than \
                 the {} lost: not storing any (a tick could be stored twice)",
                span.lost
            )));
        }
        w.write_all(batch.unsent())?;
        w.write_all(&copy::TRAILER)?;
        w.finish()?;
        tx.commit()?;
        Ok(found)
    }
}

/// Gaps filled together.
struct Span {
    from: u64,
    to: u64,
    lost: u64,
    /// The earliest `after_recv_ns` (0, no lower bound, if any gap has none).
    after_recv_ns: i64,
    /// The latest detection.
    detected_ns: i64,
}

impl Span {
    fn of(gaps: &VecDeque<Gap>) -> Span {
        let after = gaps.iter().map(|g| g.after_recv_ns);
        Span {
            from: gaps.iter().map(|g| g.from).min().unwrap_or(0),
            to: gaps.iter().map(|g| g.to).max().unwrap_or(0),
            lost: gaps.iter().map(Gap::len).sum(),
            after_recv_ns: if after.clone().any(|a| a == 0) {
                0
            } else {
                after.min().unwrap_or(0)
            },
            detected_ns: gaps.iter().map(|g| g.detected_ns).max().unwrap_or(0),
        }
    }
}

/// ns since the epoch as a `timestamptz` parameter (times before the epoch clamp to it).
fn instant(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)
}
