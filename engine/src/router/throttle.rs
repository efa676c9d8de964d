//! The coalescing throttle: a dirty mark per symbol, flushed on a fixed interval.
//!
//! Between two flushes any number of ticks on a symbol set one mark; the flush hands out each marked
//! symbol once, and the consumer reads the symbol's *latest* value from the last-value table. So a
//! burst merges into its final value and nothing is dropped: the last value of every symbol that
//! changed in an interval is delivered. (OpenAlgo's old throttle kept the first tick of each window
//! and dropped the rest; this is the trailing-edge coalescer its removal commit asked for.)

use std::time::{Duration, Instant};

use crate::dirty::DirtySet;

/// See the module docs.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    next_flush: Instant,
    dirty: DirtySet,
}

impl Throttle {
    /// A throttle for `symbols` ids flushing every `interval`; zero means every tick goes out at once.
    pub fn new(symbols: usize, interval: Duration) -> Self {
        Self {
            interval,
            next_flush: Instant::now() + interval,
            dirty: DirtySet::with_capacity(symbols),
        }
    }

    /// True when the interval is zero: the router delivers each tick without marking.
    #[inline]
    pub fn is_immediate(&self) -> bool {
        self.interval.is_zero()
    }

    /// Marks `symbol` changed. Returns false if it was already marked this interval (merged).
    #[inline]
    pub fn mark(&mut self, symbol: u32) -> bool {
        self.dirty.insert(symbol)
    }

    /// Number of symbols waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.dirty.len()
    }

    /// How long until marked symbols are due (None: nothing marked).
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        (!self.dirty.is_empty()).then(|| self.next_flush.saturating_duration_since(now))
    }

    /// True when the flush interval has passed.
    #[inline]
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_flush
    }

    /// Hands every marked symbol to `deliver` once, in marking order, clears the marks and schedules
    /// the next flush one interval after `now`.
    pub fn flush(&mut self, now: Instant, mut deliver: impl FnMut(u32)) {
        self.dirty.drain_while(|s| {
            deliver(s);
            true
        });
        self.next_flush = now + self.interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_updates_in_an_interval_give_one_delivery() {
        let t0 = Instant::now();
        let mut th = Throttle::new(100, Duration::from_millis(50));
        let mut latest = [0u64; 100];
        for v in 1..=1000u64 {
            latest[7] = v;
            th.mark(7);
        }
        assert_eq!(th.pending(), 1);
        assert!(!th.due(t0));
        let mut got = vec![];
        th.flush(t0 + Duration::from_millis(50), |s| {
            got.push((s, latest[s as usize]))
        });
        assert_eq!(got, [(7, 1000)], "one delivery, carrying the last value");
    }

    #[test]
    fn nothing_is_lost_across_intervals() {
        let mut th = Throttle::new(10, Duration::from_millis(1));
        let mut now = Instant::now();
        let mut delivered = vec![];
        for interval in 0..5u32 {
            for s in 0..=interval {
                th.mark(s);
            }
            now += Duration::from_millis(1);
            assert!(th.due(now));
            th.flush(now, |s| delivered.push((interval, s)));
        }
        // every symbol marked in every interval appears exactly once for that interval
        assert_eq!(delivered.len(), 1 + 2 + 3 + 4 + 5);
        for interval in 0..5u32 {
            let mut syms: Vec<u32> = delivered
                .iter()
                .filter(|d| d.0 == interval)
                .map(|d| d.1)
                .collect();
            syms.sort();
            assert_eq!(syms, (0..=interval).collect::<Vec<_>>());
        }
    }

    #[test]
    fn zero_interval_is_immediate() {
        assert!(Throttle::new(1, Duration::ZERO).is_immediate());
        assert!(!Throttle::new(1, Duration::from_millis(50)).is_immediate());
    }
}
