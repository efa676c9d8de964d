//! A sink thread (one per lane, `super::lanes`): read the ring, batch the lane's positions,
//! commit rows and position together; on any failure reconnect, read the committed position back
//! and go on from there.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls, Statement};
use tickwire_shm::{Event, Reader};

use super::copy::{self, Batch};
use super::gap::Gap;
use super::lanes::{Lane, Progress};
use super::schema;
use super::{SinkConfig, SinkError, SinkStats};

/// First wait after a failure; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between attempts: a restarted server is found within this.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Sleep when the ring has nothing new (the sink is not latency-critical; 1 ms keeps it off a
/// busy core).
const IDLE: Duration = Duration::from_millis(1);
/// Encoded bytes sent to the server at a time while a batch fills.
const CHUNK: usize = 256 << 10;
/// Ticks read between checks of the batch's size and age.
const CHUNK_ROWS: usize = 1024;

/// The sink thread's state.
pub struct Worker {
    cfg: SinkConfig,
    reader: Reader,
    stats: Arc<SinkStats>,
    abandon: Arc<AtomicBool>,
    /// The shm file's incarnation, saved with every committed position.
    instance: i64,
    batch: Batch,
    /// Exchange and symbol by symbol id, filled on first sight (directory entries never change).
    names: Vec<Option<(String, String)>>,
    copy_sql: String,
    /// Ranges of positions reported lost since the last commit, disjoint and sorted: a lap met
    /// again after a failed commit (which rewinds to the committed position) counts only what
    /// it adds, such as the positions read and rolled back before the first report.
    reported: Vec<(u64, u64)>,
    /// Receive time of the newest tick read.
    newest_recv_ns: i64,
    /// Receive time of the newest tick read at the last commit (restored on resume).
    committed_recv_ns: i64,
    /// To the backfill thread (`super::backfill`); `None` without a journal.
    gaps: Option<mpsc::Sender<Gap>>,
    /// The positions this thread stores.
    lane: Lane,
    /// Its key in the state table.
    state_key: String,
    /// Every lane's progress, combined into `stats`.
    progress: Arc<Progress>,
    connected_once: bool,
    rate: (Instant, u64),
}

impl Worker {
    pub fn new(
        cfg: SinkConfig,
        reader: Reader,
        stats: Arc<SinkStats>,
        abandon: Arc<AtomicBool>,
        gaps: Option<mpsc::Sender<Gap>>,
        lane: Lane,
        progress: Arc<Progress>,
    ) -> Self {
        let copy_sql = schema::copy_sql(&cfg.table);
        let state_key = lane.state_key(cfg.table.as_str());
        Worker {
            instance: reader.instance(),
            cfg,
            reader,
            stats,
            abandon,
            batch: Batch::new(),
            names: Vec::new(),
            copy_sql,
            reported: Vec::new(),
            newest_recv_ns: 0,
            committed_recv_ns: 0,
            gaps,
            lane,
            state_key,
            progress,
            connected_once: false,
            rate: (Instant::now(), 0),
        }
    }

    /// Runs until `stop` is set and everything published has been stored (or the sink is told
    /// to give up).
    pub fn run(mut self, stop: &AtomicBool) {
        let mut delay = MIN_BACKOFF;
        loop {
            match self.session(stop, &mut delay) {
                Ok(()) => return,
                Err(e) => {
                    self.stats.connected.store(false, Ordering::Relaxed);
                    self.stats.rows_per_s.store(0, Ordering::Relaxed);
                    let msg = e.to_string();
                    tracing::warn!(
                        "sink: {msg}; retrying in {} ms from the committed position",
                        delay.as_millis()
                    );
                    if let Ok(mut m) = self.stats.last_error.lock() {
                        *m = msg;
                    }
                }
            }
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if self.abandon.load(Ordering::Relaxed) {
                    let from = self.stats.committed_pos.load(Ordering::Relaxed).max(1);
                    tracing::error!(
                        "sink: stopped without storing ring positions {from}..={} of this shm \
                         file in table {}",
                        self.reader.write_position(),
                        self.cfg.table.as_str()
                    );
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection's life: set up, resume, then one transaction per batch until stopped or
    /// failed.
    fn session(&mut self, stop: &AtomicBool, delay: &mut Duration) -> Result<(), SinkError> {
        let mut db = self.cfg.db.connect(NoTls)?;
        // A commit does not wait for its WAL to reach the disk (the server flushes it within
        // 3 × wal_writer_delay): the rows and the position commit atomically either way, so a
        // server crash that loses the newest commits loses their positions with them, and the
        // sink stores those ticks again from the ring (or the journal).
        db.batch_execute("SET synchronous_commit = off")?;
        schema::ensure(&mut db, &self.cfg.table)?;
        let save = db.prepare(schema::SAVE_STATE_SQL)?;
        let state = schema::load_state(&mut db, &self.state_key)?;
        let pos = self.resume(state);
        let lane = match self.lane.count {
            1 => String::new(),
            n => format!(" (lane {} of {n})", self.lane.index + 1),
        };
        if self.connected_once {
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!("sink: reconnected{lane}; resuming at ring position {pos}");
        } else {
            tracing::info!(
                "sink: connected{lane}, writing table {} from ring position {pos}",
                self.cfg.table.as_str()
            );
        }
        self.connected_once = true;
        self.stats.connected.store(true, Ordering::Relaxed);
        *delay = MIN_BACKOFF;
        loop {
            // No transaction stays open while the ring is quiet.
            let stopping = stop.load(Ordering::Relaxed);
            let read = self.fill();
            if self.batch.rows() == 0 {
                // Nothing of this lane's uncommitted: everything read is stored or another
                // lane's.
                self.progress.done(
                    self.lane.index,
                    self.reader.position(),
                    self.newest_recv_ns,
                    &self.stats,
                );
                if read == 0 {
                    // The ring is empty too: what the backfill waits for.
                    let now = tickwire_engine::clock::now_ns();
                    self.progress.caught_up(self.lane.index, now);
                    if stopping {
                        return Ok(());
                    }
                    self.sample_rate();
                    std::thread::sleep(IDLE);
                }
                continue;
            }
            self.transaction(&mut db, &save, stop)?;
        }
    }

    /// One batch: `COPY` streamed as the ring is read (the server parses a chunk while the next
    /// is encoded), then the next position to store, then commit. Any error drops the
    /// transaction, which rolls it back.
    fn transaction(
        &mut self,
        db: &mut Client,
        save: &Statement,
        stop: &AtomicBool,
    ) -> Result<(), SinkError> {
        let mut tx = db.transaction()?;
        let mut w = tx.copy_in(&self.copy_sql)?;
        w.write_all(&copy::HEADER)?;
        loop {
            if self.batch.unsent().len() >= CHUNK || self.batch.rows() >= self.cfg.batch_rows {
                w.write_all(self.batch.unsent())?;
                self.batch.sent();
            }
            let full = self.batch.rows() >= self.cfg.batch_rows;
            let old = self
                .batch
                .started()
                .is_some_and(|t| t.elapsed() >= self.cfg.flush);
            if full || old {
                break;
            }
            if self.fill() == 0 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(IDLE);
            }
        }
        w.write_all(self.batch.unsent())?;
        self.batch.sent();
        w.write_all(&copy::TRAILER)?;
        w.finish()?;
        let next = self.reader.position();
        tx.execute(save, &[&self.state_key, &self.instance, &(next as i64)])?;
        tx.commit()?;
        let s = &self.stats;
        s.rows
            .fetch_add(self.batch.rows() as u64, Ordering::Relaxed);
        s.commits.fetch_add(1, Ordering::Relaxed);
        self.progress
            .done(self.lane.index, next, self.newest_recv_ns, s);
        self.committed_recv_ns = self.newest_recv_ns;
        // Every range reported lies below `next` now: settled.
        self.reported.clear();
        self.batch.clear();
        self.sample_rate();
        Ok(())
    }

    /// Seeks the ring to the committed position of this shm file (its start if the state is
    /// another file's, or none), dropping any uncommitted batch. Returns the position.
    fn resume(&mut self, state: Option<(i64, u64)>) -> u64 {
        self.batch.clear();
        self.newest_recv_ns = self.committed_recv_ns;
        let w = self.reader.write_position();
        let pos = match state {
            Some((inst, pos)) if inst == self.instance && pos <= w + 1 => pos,
            Some((inst, pos)) if inst == self.instance => {
                tracing::warn!(
                    "sink: committed position {pos} is past the ring's newest ({w}): starting \
                     this shm file from its first position"
                );
                1
            }
            // This file's first commit: all of it, from position 1 (if the ring has already
            // overwritten the start, the reader reports the lost positions as a gap).
            _ => 1,
        };
        self.reader.seek(pos);
        self.progress.done(self.lane.index, pos, 0, &self.stats);
        pos
    }

    /// Reads up to a chunk's worth of ticks, the lane's into the batch (fewer if the ring has
    /// nothing new or the batch is full); returns how many ticks it read, the lane's or not.
    fn fill(&mut self) -> usize {
        let mut read = 0;
        while read < CHUNK_ROWS && self.batch.rows() < self.cfg.batch_rows {
            match self.reader.next() {
                None => break,
                Some(Event::Tick(t)) => {
                    read += 1;
                    self.newest_recv_ns = t.recv_ts_ns;
                    if self.lane.owns(self.reader.position() - 1) {
                        let (x, s) = name_of(&mut self.names, &self.reader, t.symbol_id);
                        self.batch.push(x, s, &t);
                    }
                }
                Some(Event::Lagged { lost }) => {
                    read += 1;
                    self.gap(lost);
                }
            }
        }
        read
    }

    /// The ring overwrote `lost` positions just before the reader's: count (the lane's own),
    /// log, report, and hand to the backfill thread.
    fn gap(&mut self, lost: u64) {
        let to = self.reader.position() - 1;
        let from = self.reader.position() - lost;
        if lost == 0 {
            return;
        }
        let own = self.lane.owned_in(from, to) - already(&self.reported, self.lane, from, to);
        add_range(&mut self.reported, from, to);
        if own == 0 {
            return;
        }
        let gap = Gap {
            shm_instance: self.instance,
            from,
            to,
            lost: own,
            after_recv_ns: self.newest_recv_ns,
            detected_ns: tickwire_engine::clock::now_ns(),
        };
        self.stats.gaps.fetch_add(1, Ordering::Relaxed);
        self.stats.lost.fetch_add(gap.len(), Ordering::Relaxed);
        if let Ok(mut g) = self.stats.last_gap.lock() {
            *g = (from, to);
        }
        tracing::warn!(
            "sink: the shm ring overwrote positions {from}..={to} ({} ticks) before they were \
             stored: they are missing from table {}",
            gap.len(),
            self.cfg.table.as_str()
        );
        let queued = self.gaps.as_ref().is_some_and(|tx| tx.send(gap).is_ok());
        if !queued {
            self.stats.unfilled.fetch_add(gap.len(), Ordering::Relaxed);
            tracing::warn!("sink: no journal to fill them from (--no-journal)");
        }
    }

    /// Rows per second committed, over about a second.
    fn sample_rate(&mut self) {
        let el = self.rate.0.elapsed();
        if el >= Duration::from_secs(1) {
            let rows = self.stats.rows.load(Ordering::Relaxed);
            let r = (rows - self.rate.1) as f64 / el.as_secs_f64();
            self.stats.rows_per_s.store(r as u64, Ordering::Relaxed);
            self.rate = (Instant::now(), rows);
        }
    }
}

/// How many of `lane`'s positions in `from..=to` the disjoint `ranges` already cover.
fn already(ranges: &[(u64, u64)], lane: Lane, from: u64, to: u64) -> u64 {
    ranges
        .iter()
        .map(|&(a, b)| lane.owned_in(a.max(from), b.min(to)))
        .sum()
}

/// Adds `from..=to` to the sorted, disjoint `ranges`, merging what overlaps or touches it.
fn add_range(ranges: &mut Vec<(u64, u64)>, from: u64, to: u64) {
    let (mut a, mut b) = (from, to);
    ranges.retain(|&(x, y)| {
        let apart = y.saturating_add(1) < a || b.saturating_add(1) < x;
        if !apart {
            a = a.min(x);
            b = b.max(y);
        }
        apart
    });
    let at = ranges.partition_point(|&(x, _)| x < a);
    ranges.insert(at, (a, b));
}

/// The exchange and symbol of `id`, read from the shm directory once.
fn name_of<'a>(
    names: &'a mut Vec<Option<(String, String)>>,
    reader: &Reader,
    id: u32,
) -> (&'a str, &'a str) {
    let i = id as usize;
    if names.len() <= i {
        names.resize(i + 1, None);
    }
    let n = names[i].get_or_insert_with(|| match reader.symbol(id) {
        Some(n) => (n.exchange, n.symbol),
        // The writer publishes a directory entry before any tick of it: not expected.
        None => (String::new(), format!("#{id}")),
    });
    (&n.0, &n.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lap_met_again_after_a_rollback_counts_only_what_it_adds() {
        let one = Lane::ONE;
        let mut r = Vec::new();
        // First report: positions 50..=80.
        assert_eq!(already(&r, one, 50, 80), 0);
        add_range(&mut r, 50, 80);
        // The commit failed; the lane rewound to 20 and finds 20..=95 lost: 20..=49 and
        // 81..=95 are new.
        assert_eq!(30 + 15, 95 - 20 + 1 - already(&r, one, 20, 95));
        add_range(&mut r, 20, 95);
        assert_eq!(r, [(20, 95)]);
        add_range(&mut r, 200, 210);
        add_range(&mut r, 96, 99);
        assert_eq!(r, [(20, 99), (200, 210)]);
        assert_eq!(already(&r, one, 90, 205), 10 + 6);
        let l1 = Lane { index: 1, count: 2 };
        assert_eq!(already(&[(1, 4096)], l1, 1, 4096), 2048);
    }
}
