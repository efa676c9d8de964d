//! What a tick sink (the PostgreSQL sink, `tickwire serve --sink`) reports to `/status` and
//! `/metrics`: counters it keeps in atomics, read by a scrape, never locked by the tick path (the
//! sink is a shm reader on its own thread; nothing here is touched by the feed or router).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

/// A sink's counters. Ring positions are the shm ring's (`tickwire_shm::Reader::position`).
#[derive(Debug, Default)]
pub struct SinkStats {
    /// The table rows go to.
    pub table: String,
    /// True while the sink holds a working database connection.
    pub connected: AtomicBool,
    /// Rows committed since start.
    pub rows: AtomicU64,
    /// Transactions committed since start.
    pub commits: AtomicU64,
    /// Committed rows per second over the last second or so.
    pub rows_per_s: AtomicU64,
    /// The next ring position to store, as committed (every position below it is in the table
    /// or was reported lost); 0 until the sink first reads its state.
    pub committed_pos: AtomicU64,
    /// Receive time (ns since the epoch) of the newest committed tick; 0 before the first.
    pub last_tick_ns: AtomicI64,
    /// Times the ring overwrote ticks before the sink stored them.
    pub gaps: AtomicU64,
    /// Ticks lost in those gaps.
    pub lost: AtomicU64,
    /// Ticks of those gaps stored from the journal (`serve --journal`, the default).
    pub backfilled: AtomicU64,
    /// Ticks of those gaps that could not be filled (no journal, the journal missed them too, or
    /// its replay did not match): missing from the table for good.
    pub unfilled: AtomicU64,
    /// Gaps waiting to be filled from the journal.
    pub backfill_pending: AtomicU64,
    /// The newest gap, as ring positions `[from, to]` (inclusive); `(0, 0)`: none.
    pub last_gap: Mutex<(u64, u64)>,
    /// Connections made after the first (each after a failure).
    pub reconnects: AtomicU64,
    /// The newest error, empty if none.
    pub last_error: Mutex<String>,
}

impl SinkStats {
    /// A sink writing to `table`.
    pub fn new(table: &str) -> Self {
        Self {
            table: table.into(),
            ..Self::default()
        }
    }

    /// Ticks published but not yet committed, given the writer's position `write_pos`.
    pub fn lag_ticks(&self, write_pos: u64) -> u64 {
        (write_pos + 1).saturating_sub(self.committed_pos.load(Ordering::Relaxed).max(1))
    }

    /// Age of the newest committed tick at `now_ns`, in ms (`None` before the first commit).
    pub fn lag_ms(&self, now_ns: i64) -> Option<u64> {
        let t = self.last_tick_ns.load(Ordering::Relaxed);
        (t > 0).then(|| ((now_ns - t).max(0) / 1_000_000) as u64)
    }

    /// The `/status` `"sink"` object.
    pub fn json(&self, write_pos: u64, now_ns: i64) -> Value {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let gap = self.last_gap.lock().map(|g| *g).unwrap_or_default();
        let err = self
            .last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        json!({
            "table": self.table,
            "connected": self.connected.load(Ordering::Relaxed),
            "rows": ld(&self.rows),
            "commits": ld(&self.commits),
            "rows_per_s": ld(&self.rows_per_s),
            "committed_pos": ld(&self.committed_pos),
            "lag_ticks": self.lag_ticks(write_pos),
            "lag_ms": self.lag_ms(now_ns),
            "gaps": ld(&self.gaps),
            "lost": ld(&self.lost),
            "backfilled": ld(&self.backfilled),
            "unfilled": ld(&self.unfilled),
            "backfill_pending": ld(&self.backfill_pending),
            "last_gap": (gap != (0, 0)).then(|| json!({"from": gap.0, "to": gap.1})),
            "reconnects": ld(&self.reconnects),
            "last_error": (!err.is_empty()).then_some(err),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_what_is_published_and_not_committed() {
        let s = SinkStats::new("ticks");
        assert_eq!(s.lag_ticks(10), 10, "nothing committed yet");
        s.committed_pos.store(8, Ordering::Relaxed);
        assert_eq!(s.lag_ticks(10), 3, "positions 8, 9, 10");
        assert_eq!(s.lag_ticks(7), 0);
        assert_eq!(s.lag_ms(5), None);
        s.last_tick_ns.store(1_000_000, Ordering::Relaxed);
        assert_eq!(s.lag_ms(3_500_000), Some(2));
        *s.last_gap.lock().unwrap() = (4, 9);
        let j = s.json(10, 3_500_000);
        assert_eq!(j["last_gap"]["to"], 9);
        assert_eq!(j["last_error"], Value::Null);
    }
}
