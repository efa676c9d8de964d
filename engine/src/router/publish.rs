//! Where the router puts every tick: the [`Publish`] trait (the shm writer in production) and a
//! [`MemoryPublisher`] for tests and benchmarks.

use crate::tick::Tick;

/// Where the router puts every tick: in production the shm writer, in tests a [`MemoryPublisher`].
pub trait Publish {
    /// Publish one tick (already stamped with its sequence) to the ring and the last-value table.
    fn publish(&mut self, tick: &Tick);
    /// Called about every [`RouterConfig::heartbeat`](super::RouterConfig::heartbeat) so readers can tell the writer is alive.
    fn heartbeat(&mut self, now_ns: i64);
    /// As [`Publish::publish`], for the last tick the router has at hand (the end of a ring chunk,
    /// of a frame): a reader is probably waiting for it, so the shm writer pushes its lines to the
    /// shared cache at once. Doing that for every tick would cost throughput.
    fn publish_last(&mut self, tick: &Tick) {
        self.publish(tick);
    }
    /// A symbol's health changed (`crate::health::state`): the shm writer stores the byte in the
    /// symbol's last-value entry for readers.
    fn health(&mut self, _symbol: u32, _state: u8) {}
}

/// A [`Publish`] that keeps the last values in memory: for tests and for benchmarking the router
/// apart from shared memory.
#[derive(Debug)]
pub struct MemoryPublisher {
    /// Last value per symbol id, merged as the shm table merges.
    pub last: Vec<Tick>,
    /// Ticks published.
    pub published: u64,
}

impl MemoryPublisher {
    /// Room for `symbols` ids.
    pub fn new(symbols: usize) -> Self {
        Self {
            last: vec![Tick::default(); symbols],
            published: 0,
        }
    }
}

impl Publish for MemoryPublisher {
    #[inline]
    fn publish(&mut self, tick: &Tick) {
        if let Some(l) = self.last.get_mut(tick.symbol_id as usize) {
            l.merge_from(tick);
        }
        self.published += 1;
    }
    fn heartbeat(&mut self, _now_ns: i64) {}
}
