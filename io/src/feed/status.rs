//! A feed's health and counters, shared with `GET /status`, client replies and tests. One per feed
//! (one broker's pool of connections): two feeds keep their own symbol states. Each connection of
//! the pool has its own [`ConnStatus`]; the feed-level `state` and `connected` summarise them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use std::sync::{Arc, Mutex};
use tickwire_engine::clock::now_ns;
use tickwire_engine::health::SymbolHealth;

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
    /// Stopped for good: the configuration cannot work (a bad URL, a bad CA file). `last_error`
    /// says why.
    pub const STOPPED: u8 = 3;
    /// Not connected on purpose: the markets it carries are shut (market hours).
    pub const CLOSED: u8 = 4;
    /// The broker refused the credentials (expired or wrong token): waiting for new ones (a
    /// reload), retried rarely meanwhile. `last_error` says what the broker said.
    pub const CREDENTIALS_REJECTED: u8 = 5;
    /// Found stalled (open, its market open, but no data for far longer than usual) and dropped:
    /// waiting to dial again. `last_error` says how long it was quiet.
    pub const STALLED: u8 = 6;

    /// The state's name in `GET /status`.
    pub fn name(s: u8) -> &'static str {
        match s {
            CONNECTING => "connecting",
            OPEN => "open",
            STOPPED => "stopped",
            CLOSED => "closed",
            CREDENTIALS_REJECTED => "credentials_rejected",
            STALLED => "stalled",
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
    /// When `state` last changed (ns since the epoch; 0: never).
    pub since_ns: AtomicI64,
    /// Last connection error.
    pub last_error: Mutex<LastError>,
    /// Times it was found stalled and reconnected.
    pub stalls: AtomicU64,
}

/// The last error of a connection or feed, with when it happened and when a connect cleared it:
/// status output shows an error that still holds apart from one the feed has recovered from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastError {
    /// What happened ("" when nothing did).
    pub message: String,
    /// When (ns since the epoch).
    pub at_ns: i64,
    /// When the connection was open again afterwards (0: not yet, the error still holds).
    pub cleared_ns: i64,
}

impl LastError {
    /// True when there is an error that no connect has cleared yet.
    pub fn holds(&self) -> bool {
        !self.message.is_empty() && self.cleared_ns == 0
    }
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
    /// When `state` last changed (ns since the epoch).
    pub since_ns: AtomicI64,
    /// Last connection error, for status output.
    pub last_error: Mutex<LastError>,
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
    /// While the feed is closed for market hours: when it dials again (Unix seconds; 0 when not
    /// closed or not known).
    pub reopens_at_s: AtomicI64,
    /// Per symbol id: its health (fresh, stale, …), shared by every feed of the process and the
    /// router; this feed writes the slots of the symbols it serves.
    pub health: Arc<SymbolHealth>,
    /// Its symbols by health state ([`tickwire_engine::health::state`]), as of the last check.
    pub by_health: [AtomicU64; 7],
    /// Times a connection was found stalled (open, market open, no data for far longer than
    /// usual) and reconnected.
    pub stalls: AtomicU64,
}

impl FeedStatus {
    /// Status for `symbols` ids, with health slots of its own.
    pub fn new(symbols: usize) -> Self {
        Self::with_health(Arc::new(SymbolHealth::new(symbols)))
    }

    /// Status for as many ids as `health` has, writing the process-wide `health`.
    pub fn with_health(health: Arc<SymbolHealth>) -> Self {
        let symbols = health.len();
        Self {
            health,
            symbols: (0..symbols).map(|_| AtomicU8::new(0)).collect(),
            conn_of: (0..symbols).map(|_| AtomicU8::new(0)).collect(),
            conns: (0..super::assign::MAX_CONNECTIONS)
                .map(|_| ConnStatus::default())
                .collect(),
            since_ns: AtomicI64::new(now_ns()),
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

    /// True while a connection of the feed waits after a refusal of its credentials.
    pub fn credentials_rejected(&self) -> bool {
        self.feed_state() == feed_state::CREDENTIALS_REJECTED
    }

    /// Records connection `c`'s state and recomputes the feed's: `stopped` if any connection
    /// stopped (its configuration cannot work), else `credentials_rejected` if the broker refused
    /// the credentials on any, `open` when all are open, `closed` when all are closed for market
    /// hours, else `connecting` if any is, else `backoff`.
    pub(crate) fn set_conn_state(&self, c: usize, st: u8) {
        let now = now_ns();
        if let Some(cs) = self.conns.get(c) {
            if cs.state.swap(st, Ordering::Relaxed) != st
                || cs.since_ns.load(Ordering::Relaxed) == 0
            {
                cs.since_ns.store(now, Ordering::Relaxed);
            }
            if st == feed_state::OPEN {
                clear(&cs.last_error, now);
            }
        }
        let states = || {
            self.used_conns()
                .iter()
                .map(|c| c.state.load(Ordering::Relaxed))
        };
        let all = if states().any(|s| s == feed_state::STOPPED) {
            feed_state::STOPPED
        } else if states().any(|s| s == feed_state::CREDENTIALS_REJECTED) {
            feed_state::CREDENTIALS_REJECTED
        } else if states().all(|s| s == feed_state::OPEN) {
            feed_state::OPEN
        } else if states().all(|s| s == feed_state::CLOSED) {
            feed_state::CLOSED
        } else if states().any(|s| s == feed_state::CONNECTING) {
            feed_state::CONNECTING
        } else {
            feed_state::BACKOFF
        };
        if self.state.swap(all, Ordering::Relaxed) != all {
            self.since_ns.store(now, Ordering::Relaxed);
        }
        self.connected
            .store(all == feed_state::OPEN, Ordering::Relaxed);
        if all == feed_state::OPEN {
            clear(&self.last_error, now);
        }
    }

    /// A replay (`crate::replay`) feeds this feed's symbols from a journal: it shows connected
    /// (its first connection open) for as long as the replay serves.
    pub fn set_replaying(&self) {
        self.set_conn_state(0, feed_state::OPEN);
    }

    pub(crate) fn set_error(&self, c: usize, e: String) {
        let at_ns = now_ns();
        let err = LastError {
            message: e,
            at_ns,
            cleared_ns: 0,
        };
        if let Some(Ok(mut l)) = self.conns.get(c).map(|cs| cs.last_error.lock()) {
            l.clone_from(&err);
        }
        if let Ok(mut l) = self.last_error.lock() {
            *l = err;
        }
    }

    /// When the upstream that would carry `id` went down, if it is down: the symbol's own
    /// connection once it has one, else the feed's (no connection open at all). `None` while
    /// it is open, or while the first connection is still to be opened on demand.
    pub fn down_since(&self, id: u32) -> Option<i64> {
        let used = self.used_conns();
        if used.is_empty() {
            return None;
        }
        if self.symbol_state(id) != upstream_state::NONE {
            let c = used.get(self.conn_of(id))?;
            return (c.state.load(Ordering::Relaxed) != feed_state::OPEN)
                .then(|| c.since_ns.load(Ordering::Relaxed));
        }
        let open = used
            .iter()
            .any(|c| c.state.load(Ordering::Relaxed) == feed_state::OPEN);
        (!open).then(|| self.since_ns.load(Ordering::Relaxed))
    }
}

/// Marks a held error as cleared by a connect at `now`.
fn clear(e: &Mutex<LastError>, now: i64) {
    if let Ok(mut l) = e.lock() {
        if l.holds() {
            l.cleared_ns = now;
        }
    }
}
