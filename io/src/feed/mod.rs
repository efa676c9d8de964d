//! Feed IO threads: one per broker connection. Each owns a `mio::Poll`, connects and re-connects
//! with backoff, subscribes as the router asks, parses frames straight into ticks and pushes them
//! into its SPSC ring to the router.

pub mod backoff;
pub mod kite_feed;
pub mod stream;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

/// Per-symbol upstream state, readable by the client IO threads (`status` and subscribe replies).
pub mod upstream_state {
    /// Not subscribed upstream.
    pub const NONE: u8 = 0;
    /// Asked for, no data yet.
    pub const PENDING: u8 = 1;
    /// Data has arrived since the subscribe.
    pub const LIVE: u8 = 2;
    /// The broker rejected it.
    pub const REJECTED: u8 = 3;
}

/// A feed's health and counters, shared with status pages and tests. Relaxed throughout: counters
/// and flags that nothing else is published through.
#[derive(Debug, Default)]
pub struct FeedStatus {
    /// Connected and past the handshake.
    pub connected: AtomicBool,
    /// Successful connects (1 + reconnects).
    pub connects: AtomicU64,
    /// Binary frames received (heartbeats included).
    pub frames: AtomicU64,
    /// Ticks pushed to the router.
    pub ticks: AtomicU64,
    /// Packets rejected by the parser.
    pub parse_errors: AtomicU64,
    /// Times the ring to the router was full and the feed waited (never dropped).
    pub ring_waits: AtomicU64,
    /// Error messages from the broker.
    pub broker_errors: AtomicU64,
    /// Last connection error, for status output.
    pub last_error: Mutex<String>,
    /// Per symbol id: [`upstream_state`].
    pub symbols: Vec<AtomicU8>,
}

impl FeedStatus {
    /// Status for `symbols` ids.
    pub fn new(symbols: usize) -> Self {
        Self {
            symbols: (0..symbols).map(|_| AtomicU8::new(0)).collect(),
            ..Self::default()
        }
    }

    /// Upstream state of a symbol.
    pub fn symbol_state(&self, id: u32) -> u8 {
        self.symbols
            .get(id as usize)
            .map_or(upstream_state::NONE, |s| s.load(Ordering::Relaxed))
    }

    pub(crate) fn set_error(&self, e: String) {
        if let Ok(mut l) = self.last_error.lock() {
            *l = e;
        }
    }
}
