//! Parallel `COPY` lanes (`--sink-lanes N`): one server backend parses and stores a `COPY` on
//! one core, so rates past what one backend takes need several connections at once.
//!
//! The ring's positions are cut into runs of [`RUN`] positions, dealt round robin: run `k`
//! (positions `k·RUN+1 ..= (k+1)·RUN`) belongs to lane `k mod N`. Each lane is a whole sink
//! (`super::worker`): its own shm reader, connection, transactions and state row, storing only
//! the positions of its runs and skipping the rest. Exactly once holds per lane by the one-lane
//! argument (rows and the lane's next position commit together; on resume the lane seeks to its
//! own committed position), and the lanes' positions partition the ring, so it holds for the
//! table. A lapped lane reports only its own positions as lost.
//!
//! [`Progress`] combines the lanes for `/status` and the backfill: a position is stored once
//! every lane is past it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::SinkStats;

/// Ring positions per run: long enough that a lane's `COPY` gets rows in long stretches, short
/// enough that at a few thousand ticks a second every lane has work within a second.
pub const RUN: u64 = 1024;

/// Most lanes: each holds a database connection and a thread.
pub const MAX_LANES: usize = 16;

/// One lane of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lane {
    /// 0-based.
    pub index: usize,
    /// Lanes in all (≥ 1).
    pub count: usize,
}

impl Lane {
    /// The only lane.
    pub const ONE: Lane = Lane { index: 0, count: 1 };

    /// True if ring position `pos` (≥ 1) is this lane's to store.
    #[inline]
    pub fn owns(&self, pos: u64) -> bool {
        self.count <= 1 || (pos.saturating_sub(1) / RUN) % self.count as u64 == self.index as u64
    }

    /// How many of the positions `from..=to` are this lane's.
    pub fn owned_in(&self, from: u64, to: u64) -> u64 {
        if from > to {
            return 0;
        }
        self.owned_to(to) - self.owned_to(from.saturating_sub(1))
    }

    /// How many of the positions `1..=x` are this lane's.
    fn owned_to(&self, x: u64) -> u64 {
        let (n, i) = (self.count.max(1) as u64, self.index as u64);
        let (whole, rest) = (x / RUN, x % RUN);
        // Of the whole runs 0..whole, those ≡ i (mod n); then the partial run `whole`.
        let ours = whole / n + u64::from(whole % n > i);
        ours * RUN + if whole % n == i { rest } else { 0 }
    }

    /// This lane's key in the state table: the ticks table's name for lane 0 (so one lane keeps
    /// the row it always had), `NAME#k` for lane k.
    pub fn state_key(&self, table: &str) -> String {
        match self.index {
            0 => table.to_owned(),
            k => format!("{table}#{k}"),
        }
    }
}

/// Each lane's progress, combined into the sink's counters.
#[derive(Debug)]
pub struct Progress {
    /// Per lane: the ring position below which it holds nothing uncommitted.
    pos: Vec<AtomicU64>,
    /// Per lane: the receive time of the newest tick it read with nothing uncommitted.
    recv_ns: Vec<AtomicI64>,
    /// Per lane: wall clock when it last found the ring empty with nothing uncommitted.
    caught_up: Vec<AtomicI64>,
}

impl Progress {
    /// For `lanes` lanes.
    pub fn new(lanes: usize) -> Progress {
        Progress {
            pos: (0..lanes).map(|_| AtomicU64::new(0)).collect(),
            recv_ns: (0..lanes).map(|_| AtomicI64::new(0)).collect(),
            caught_up: (0..lanes).map(|_| AtomicI64::new(0)).collect(),
        }
    }

    /// Lane `i` has stored (or skipped, as another lane's) every position below `pos` and every
    /// tick up to the one received at `recv_ns`. Updates `stats.committed_pos` and
    /// `stats.last_tick_ns` to the slowest lane's.
    pub fn done(&self, i: usize, pos: u64, recv_ns: i64, stats: &SinkStats) {
        self.pos[i].store(pos, Ordering::Relaxed);
        if recv_ns > 0 {
            // Release: the gaps the lane sent before this are visible to an Acquire reader.
            self.recv_ns[i].store(recv_ns, Ordering::Release);
        }
        let min_pos = self.pos.iter().map(|p| p.load(Ordering::Relaxed)).min();
        let min_recv = self.recv_ns.iter().map(|p| p.load(Ordering::Relaxed)).min();
        stats
            .committed_pos
            .store(min_pos.unwrap_or(0), Ordering::Relaxed);
        stats
            .last_tick_ns
            .store(min_recv.unwrap_or(0), Ordering::Relaxed);
    }

    /// Lane `i` found the ring empty at `now_ns` with nothing uncommitted.
    pub fn caught_up(&self, i: usize, now_ns: i64) {
        self.caught_up[i].store(now_ns, Ordering::Release);
    }

    /// When every lane had last found the ring empty with nothing uncommitted: the slowest's.
    pub fn caught_up_ns(&self) -> i64 {
        self.caught_up
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// The receive time every lane has stored (or skipped) everything up to: the slowest's.
    pub fn done_recv_ns(&self) -> i64 {
        self.recv_ns
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `owned_in` by brute force.
    fn slow(l: Lane, from: u64, to: u64) -> u64 {
        (from..=to).filter(|&p| l.owns(p)).count() as u64
    }

    #[test]
    fn runs_are_dealt_round_robin() {
        let l1 = Lane { index: 1, count: 2 };
        assert!(!l1.owns(1) && !l1.owns(RUN));
        assert!(l1.owns(RUN + 1) && l1.owns(2 * RUN));
        assert!(!l1.owns(2 * RUN + 1));
        assert!(Lane::ONE.owns(1) && Lane::ONE.owns(u64::MAX));
    }

    #[test]
    fn owned_counts_match_brute_force() {
        let spans = [
            (1, 1),
            (1, RUN),
            (5, 3 * RUN + 7),
            (RUN, RUN + 1),
            (2 * RUN + 1, 9 * RUN),
            (17, 17 * RUN + 17),
            (3 * RUN + 2, 3 * RUN + 900),
            (1, 40 * RUN),
        ];
        for count in 1..=4 {
            for index in 0..count {
                let l = Lane { index, count };
                for &(a, b) in &spans {
                    assert_eq!(l.owned_in(a, b), slow(l, a, b), "{l:?} {a}..={b}");
                }
                assert_eq!(l.owned_in(9, 3), 0);
            }
        }
    }

    #[test]
    fn lanes_partition_every_span() {
        for count in 1..=5 {
            let total: u64 = (0..count)
                .map(|index| Lane { index, count }.owned_in(300, 12_345))
                .sum();
            assert_eq!(total, 12_345 + 1 - 300);
        }
    }

    #[test]
    fn state_keys() {
        assert_eq!(Lane::ONE.state_key("ticks"), "ticks");
        assert_eq!(
            Lane { index: 2, count: 3 }.state_key("md.ticks"),
            "md.ticks#2"
        );
    }

    #[test]
    fn progress_is_the_slowest_lane() {
        let s = SinkStats::new("t");
        let p = Progress::new(2);
        p.done(0, 50, 500, &s);
        assert_eq!(
            s.committed_pos.load(Ordering::Relaxed),
            0,
            "lane 1 not started"
        );
        p.done(1, 40, 400, &s);
        assert_eq!(s.committed_pos.load(Ordering::Relaxed), 40);
        assert_eq!(s.last_tick_ns.load(Ordering::Relaxed), 400);
        p.caught_up(0, 7);
        assert_eq!(p.caught_up_ns(), 0);
        p.caught_up(1, 9);
        assert_eq!(p.caught_up_ns(), 7);
    }
}
