//! What the router counts: [`RouterStats`], shared with status pages, `/metrics` and tests, and
//! its private running counts.

use std::sync::atomic::AtomicU64;

use crate::hist::Histogram;

/// Counters the router publishes for status pages and tests (Relaxed: monotonic counters that
/// nothing synchronises on).
#[derive(Debug, Default)]
pub struct RouterStats {
    /// Ticks taken from feed rings and published.
    pub ticks: AtomicU64,
    /// Deliveries pushed to client IO rings.
    pub deliveries: AtomicU64,
    /// Times a delivery ring was full and the symbol went to the retry set.
    pub delivery_retries: AtomicU64,
    /// Upstream commands pushed to feeds.
    pub upstream_cmds: AtomicU64,
    /// Ticks whose symbol id was outside the registry (a feed bug; counted, not published).
    pub bad_symbol: AtomicU64,
    /// Control messages with an out-of-range or foreign consumer or symbol id.
    pub bad_control: AtomicU64,
    /// Throttle flushes.
    pub flushes: AtomicU64,
    /// Wire → shm: from a tick's receive time (`Tick::recv_ts_ns`, read by the feed once per
    /// broker message) to the end of the router pass that published it. The clock is read once
    /// per non-empty pass, after publishing, not per tick: each tick's figure is overstated by at
    /// most the rest of its pass (`router_pass` says how long passes take).
    pub wire_to_shm: Histogram,
    /// Time of each non-empty router pass: from its first tick (inline: the first tick the feed
    /// handed over since the last pass) or the start of the ring pass, to its end.
    pub router_pass: Histogram,
}

/// The router's own counts, copied into [`RouterStats`] after each pass with work.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counters {
    pub(super) ticks: u64,
    pub(super) deliveries: u64,
    pub(super) delivery_retries: u64,
    pub(super) upstream_cmds: u64,
    pub(super) bad_symbol: u64,
    pub(super) bad_control: u64,
    pub(super) flushes: u64,
}
