//! A feed's health and counters, shared with `GET /status`, client replies and tests. One per feed
//! (one broker's pool of connections): two feeds keep their own symbol states. Each connection of
//! the pool has its own [`ConnStatus`]; the feed-level `state` and `connected` summarise them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Per-symbol upstream state, readable by the client IO threads (`status` and subscribe replies).
pub mod upstream_state {
    /// Not subscribed upstream.
    pub const NONE: u8 = 0;
    /// Asked for, no data yet.
    pub const PENDING: u8 = 1;
    /// Data has arrived since the subscribe.
    pub const LIVE: u8 = 2;
    /// The broker rejected it (or does not list it).
    pub const REJECTED: u8 = 3;
}

/// Where the feed's connection is, for status output.
pub mod feed_state {
    /// Waiting for the next attempt (backoff).
    pub const BACKOFF: u8 = 0;
    /// Authorizing, resolving, connecting or in the WebSocket handshake.
    pub const CONNECTING: u8 = 1;
    /// Open.
    pub const OPEN: u8 = 2;
    /// Stopped for good: the broker refused the credentials. `last_error` says why.
    pub const STOPPED: u8 = 3;

    /// The state's name in `GET /status`.
    pub fn name(s: u8) -> &'static str {
        match s {
            CONNECTING => "connecting",
            OPEN => "open",
            STOPPED => "stopped",
            _ => "backoff",
        }
    }
}

/// One upstream connection of a feed.
#[derive(Debug, Default)]
pub struct ConnStatus {
    /// [`feed_state`].
    pub state: AtomicU8,
    /// Connection attempts (dials).
    pub attempts: AtomicU64,
    /// Successful connects.
    pub connects: AtomicU64,
    /// Symbols placed on this connection.
    pub symbols: AtomicU64,
    /// Last connection error.
    pub last_error: Mutex<String>,
}

/// See the module docs. Relaxed throughout: counters and flags that nothing else is published
/// through.
#[derive(Debug, Default)]
pub struct FeedStatus {
    /// Connected and past the handshake.
    pub connected: AtomicBool,
    /// [`feed_state`].
    pub state: AtomicU8,
    /// Connection attempts (dials), successful or not.
    pub attempts: AtomicU64,
    /// Successful connects (1 + reconnects).
    pub connects: AtomicU64,
    /// Messages received (heartbeats included).
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
    /// Per symbol id: the connection carrying it (meaningful while its state is not `NONE`).
    pub conn_of: Vec<AtomicU8>,
    /// Per connection ([`super::assign::MAX_CONNECTIONS`] slots; the first `conns_used` are open or
    /// being opened).
    pub conns: Vec<ConnStatus>,
    /// Connections the pool has opened so far.
    pub conns_used: AtomicUsize,
    /// Subscriptions asked for again because the broker rejected them or never confirmed them.
    pub resubscribes: AtomicU64,
    /// Market segments' status as the broker last reported it (Upstox `market_info`).
    pub market: Mutex<BTreeMap<String, String>>,
}

impl FeedStatus {
    /// Status for `symbols` ids.
    pub fn new(symbols: usize) -> Self {
        Self {
            symbols: (0..symbols).map(|_| AtomicU8::new(0)).collect(),
            conn_of: (0..symbols).map(|_| AtomicU8::new(0)).collect(),
            conns: (0..super::assign::MAX_CONNECTIONS)
                .map(|_| ConnStatus::default())
                .collect(),
            ..Self::default()
        }
    }

    /// Upstream state of a symbol.
    pub fn symbol_state(&self, id: u32) -> u8 {
        self.symbols
            .get(id as usize)
            .map_or(upstream_state::NONE, |s| s.load(Ordering::Relaxed))
    }

    /// Sets the upstream state of a symbol.
    pub fn set_symbol_state(&self, id: u32, st: u8) {
        if let Some(s) = self.symbols.get(id as usize) {
            s.store(st, Ordering::Relaxed);
        }
    }

    /// The connection's [`feed_state`].
    pub fn feed_state(&self) -> u8 {
        self.state.load(Ordering::Relaxed)
    }

    /// The connection carrying a symbol.
    pub fn conn_of(&self, id: u32) -> usize {
        self.conn_of
            .get(id as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed) as usize)
    }

    /// The connections in use.
    pub fn used_conns(&self) -> &[ConnStatus] {
        let n = self
            .conns_used
            .load(Ordering::Relaxed)
            .min(self.conns.len());
        &self.conns[..n]
    }

    /// Records connection `c`'s state and recomputes the feed's: `stopped` if any connection
    /// stopped (the broker refused the credentials), `open` when all are open, else `connecting`
    /// if any is, else `backoff`.
    pub(crate) fn set_conn_state(&self, c: usize, st: u8) {
        if let Some(cs) = self.conns.get(c) {
            cs.state.store(st, Ordering::Relaxed);
        }
        let states = || {
            self.used_conns()
                .iter()
                .map(|c| c.state.load(Ordering::Relaxed))
        };
        let all = if states().any(|s| s == feed_state::STOPPED) {
            feed_state::STOPPED
        } else if states().all(|s| s == feed_state::OPEN) {
            feed_state::OPEN
        } else if states().any(|s| s == feed_state::CONNECTING) {
            feed_state::CONNECTING
        } else {
            feed_state::BACKOFF
        };
        self.state.store(all, Ordering::Relaxed);
        self.connected
            .store(all == feed_state::OPEN, Ordering::Relaxed);
    }

    pub(crate) fn set_error(&self, c: usize, e: String) {
        if let Some(Ok(mut l)) = self.conns.get(c).map(|cs| cs.last_error.lock()) {
            l.clone_from(&e);
        }
        if let Ok(mut l) = self.last_error.lock() {
            *l = e;
        }
    }
}
