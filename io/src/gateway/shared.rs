//! What the client IO thread is configured with ([`GatewayConfig`]), counts ([`GatewayStats`])
//! and shares with the rest of the process ([`Shared`]: registry, feeds, limits).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickwire_engine::hist::Histogram;
use tickwire_engine::router::RouterStats;
use tickwire_engine::symbols::SymbolRegistry;

use super::{Budget, LimitConfig, LimitState, LimitStats};
use crate::feed::FeedStatus;

/// Gateway settings.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Listen address (OpenAlgo's default is 127.0.0.1:8765).
    pub addr: SocketAddr,
    /// Accepted API keys.
    pub api_keys: Vec<String>,
    /// Broker name reported on auth and `get_broker_info` (the first feed's); market data names
    /// the broker of its symbol's feed ([`FeedRef::broker`]).
    pub broker: String,
    /// `user_id` reported on auth.
    pub user_id: String,
    /// First consumer id this IO thread owns.
    pub consumer_base: u32,
    /// Connections (= consumer ids) this IO thread serves, slot 0 (the pin holder) included: room
    /// for `limits.max_clients` authenticated clients plus the pending budget, so a client past
    /// the limit still gets a slot to be told why it is refused.
    pub max_connections: u32,
    /// Most time between protocol Pings to a quiet client (it is pinged after a third of its idle
    /// timeout when that is shorter); silence, Pongs included, is judged by the idle timeout.
    pub ping_interval: Duration,
    /// Unauthenticated connections are closed (4401) after this.
    pub auth_grace: Duration,
    /// Connections not yet authenticated, in total and per remote address: past it the oldest
    /// pending one makes room (`admission.rs`), so a flood of idle connections cannot hold the
    /// slots of clients with a key.
    pub pending: Budget,
    /// Browser origins allowed to open a WebSocket (empty: any). Requests without `Origin` (not
    /// from a browser) and the gateway's own origin are always allowed.
    pub allowed_origins: Vec<String>,
    /// Client limits (sizes, rates, counts) and per-key overrides.
    pub limits: LimitConfig,
    /// A client's send backlog (bytes the kernel has not taken) above which its updates are
    /// conflated per symbol instead of queued.
    pub high_water: usize,
    /// The backlog under which a conflating client gets its latest values and then every update
    /// again.
    pub low_water: usize,
    /// Core to pin to.
    pub core: Option<usize>,
    /// Symbols kept subscribed upstream (in depth mode) whether or not any client wants them, for
    /// strategies that read only shared memory. Held by the reserved consumer id `consumer_base`.
    pub pinned: Vec<u32>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8765)),
            api_keys: Vec::new(),
            broker: "zerodha".into(),
            user_id: "tickwire".into(),
            consumer_base: 0,
            max_connections: 1024,
            ping_interval: Duration::from_secs(20),
            auth_grace: Duration::from_secs(15),
            pending: Budget::default(),
            allowed_origins: Vec::new(),
            limits: LimitConfig::default(),
            high_water: 256 << 10,
            low_water: 64 << 10,
            core: None,
            pinned: Vec::new(),
        }
    }
}

/// Counters for status output and tests.
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Market-data messages sent.
    pub messages: AtomicU64,
    /// Times a client's backlog passed the high-water mark (it then conflates until drained).
    pub slow_skips: AtomicU64,
    /// Updates a conflating client only marked (it gets the latest value later).
    pub conflated: AtomicU64,
    /// Connections refused: every slot held by an authenticated client.
    pub refused: AtomicU64,
    /// Unauthenticated connections dropped to make room for new ones (`GatewayConfig::pending`).
    pub evicted: AtomicU64,
    /// Client limit violations by kind.
    pub limits: LimitStats,
    /// WebSocket frame bytes of market data handed to client sockets.
    pub bytes_out: AtomicU64,
    /// Wire → client: from a tick's receive time to the end of the client IO thread's pass that
    /// wrote it to its sessions (one clock read per pass, one value per delivered tick, not per
    /// client).
    pub wire_to_client: Histogram,
}

/// Per client class (the API key's name: operators set limits per key, so the label's
/// cardinality is the number of keys, bounded): folded in by the client IO thread every 100 ms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounts {
    /// Times one of its clients started conflating (its backlog passed the high-water mark).
    pub conflations: u64,
    /// Updates not queued to one of its clients, only marked (it got the latest value later).
    pub queue_drops: u64,
}

/// What `/status` says about the shm file.
#[derive(Clone)]
pub struct ShmInfo {
    /// Its path.
    pub path: String,
    /// Ring slots.
    pub ring_capacity: u64,
    /// Symbols it has room for.
    pub symbol_capacity: u64,
    /// The writer's ring position now.
    pub write_pos: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for ShmInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmInfo")
            .field("path", &self.path)
            .field("write_pos", &(self.write_pos)())
            .finish()
    }
}

/// What the gateway thread shares with the rest of the process.
pub struct Shared {
    /// Settings.
    pub cfg: GatewayConfig,
    /// Names → ids.
    pub registry: Arc<SymbolRegistry>,
    /// The upstream feeds (one per broker), in the order they were configured.
    pub feeds: Vec<FeedRef>,
    /// Per symbol id: the index in `feeds` of the feed that serves it.
    pub feed_of: Arc<Vec<u16>>,
    /// Counters.
    pub stats: Arc<GatewayStats>,
    /// Client counts per key and the limits' log lines.
    pub limit_state: LimitState,
    /// The market calendar and its clock: each exchange's session in `/status`.
    pub market: Arc<tickwire_engine::calendar::Market>,
    /// The router's counters and histograms (`/status`, `/metrics`).
    pub router: Arc<RouterStats>,
    /// The shm file, when there is one.
    pub shm: Option<ShmInfo>,
    /// The tick sink's counters (`serve --sink`), when one runs.
    pub sink: Option<Arc<super::SinkStats>>,
    /// Conflation counts per client class ([`ClassCounts`]), by API key name.
    pub classes: Mutex<BTreeMap<Arc<str>, ClassCounts>>,
    /// Set when the gateway replays a journal (`tickwire replay`): `/status` says so.
    pub replay: Option<Arc<crate::replay::Progress>>,
}

/// One upstream feed as the gateway reports it.
#[derive(Clone, Debug)]
pub struct FeedRef {
    /// The broker's name as OpenAlgo reports it (`zerodha`, `upstox`, `fyers`).
    pub broker: String,
    /// Its health, connections and per-symbol upstream state.
    pub status: Arc<FeedStatus>,
}

impl Shared {
    /// The feed that serves `symbol` (the first feed for an id outside the map).
    pub fn feed(&self, symbol: u32) -> &FeedRef {
        &self.feeds[self.feed_index(symbol)]
    }

    /// The index in `feeds` of the feed that serves `symbol`.
    pub fn feed_index(&self, symbol: u32) -> usize {
        let i = self.feed_of.get(symbol as usize).copied().unwrap_or(0) as usize;
        i.min(self.feeds.len() - 1)
    }

    /// True when the broker of some feed refused its credentials.
    pub fn any_credentials_rejected(&self) -> bool {
        self.feeds.iter().any(|f| f.status.credentials_rejected())
    }

    /// Per-symbol health (one table for every feed).
    pub fn health(&self) -> &tickwire_engine::health::SymbolHealth {
        &self.feeds[0].status.health
    }

    /// The upstream state of `symbol` (`crate::feed::upstream_state`).
    pub fn symbol_state(&self, symbol: u32) -> u8 {
        self.feed(symbol).status.symbol_state(symbol)
    }

    /// True when every feed is connected.
    pub fn all_connected(&self) -> bool {
        self.feeds.iter().all(|f| {
            f.status
                .connected
                .load(std::sync::atomic::Ordering::Relaxed)
        })
    }
}
