//! The engine flags `serve`, `demo`, `replay` and the benchmarks share ([`EngineArgs`]): the
//! client port's address, the shm file, threads and cores, upstream limits, staleness, the
//! journal, the sink, client limits, the market calendar.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use tickwire_engine::idle::IdleStrategy;
use tickwire_io::gateway::LimitOverrides;

use super::{feeds, journal, LimitArgs};

/// Flags shared by `serve` and `demo`.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Address the client port listens on (`0.0.0.0` or a LAN address exposes it beyond this
    /// machine: clients then send API keys over plain WebSocket, so keep it behind a TLS proxy).
    #[arg(long, default_value = "127.0.0.1")]
    pub listen: std::net::IpAddr,
    /// shm file the router writes.
    #[arg(long = "shm", default_value = tickwire_shm::DEFAULT_PATH)]
    pub shm: PathBuf,
    /// At most one update per symbol per this many ms to WebSocket clients (latest value wins);
    /// 0 (the default) sends every update at once, conflating only for a client that falls
    /// behind.
    #[arg(long, default_value_t = 0)]
    pub flush_ms: u64,
    /// shm ring slots (power of two). With `--sink` the default is 524,288 (2.6 s at 200,000
    /// ticks/s: room for the database's pauses).
    #[arg(long, default_value_t = 1 << 16)]
    pub ring_capacity: u64,
    /// Where the router runs: `inline` (on the feed thread: each parsed tick goes straight into
    /// the router, no thread hand-off; with one feed thread) or `thread` (its own thread, fed by
    /// SPSC rings; `--router-core` and `--idle` apply). With `--feed-threads` above 1 the router
    /// always runs on its own thread.
    #[arg(long, value_enum, default_value_t = RouterPlacement::Inline)]
    pub router: RouterPlacement,
    /// Idle strategy of the router: spin, yield, park, park:SPINS:MICROS.
    #[arg(long, default_value = "park")]
    pub idle: IdleStrategy,
    /// CPU for the router thread.
    #[arg(long)]
    pub router_core: Option<usize>,
    /// CPU for each feed thread, comma-separated (the first for feed thread 0, …).
    #[arg(long, value_delimiter = ',')]
    pub feed_core: Vec<usize>,
    /// Feed IO threads; each multiplexes the connections of the feeds it is given (feeds are
    /// dealt round robin; a feed's connections stay on one thread). More threads than feeds are
    /// not started.
    #[arg(long, default_value_t = 1)]
    pub feed_threads: usize,
    /// Most upstream connections per feed (default: the broker's documented limit).
    #[arg(long)]
    pub upstream_connections: Option<usize>,
    /// Most instruments per upstream connection (default: the broker's documented limit); a feed
    /// opens another connection when its connections are full.
    #[arg(long)]
    pub upstream_symbols_per_connection: Option<usize>,
    /// A subscribed instrument with no data this many ms after its subscribe is asked for again
    /// (then after doubling delays, up to 5 minutes); an instrument the broker rejected likewise.
    #[arg(long, default_value_t = 15_000)]
    pub upstream_confirm_ms: u64,
    /// A subscribed instrument is `stale` when its exchange is open, its connection is up, and it
    /// has not updated for max(this many seconds, --stale-factor × its learned usual interval).
    #[arg(long, default_value_t = 15.0, value_parser = feeds::positive_secs)]
    pub stale_floor_s: f64,
    /// How many of its usual intervals an instrument may stay quiet before it is `stale` (the
    /// interval is learned per instrument, so rarely traded ones are not flagged).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub stale_factor: u32,
    /// An upstream connection that delivers no data for max(this many seconds, --stale-factor ×
    /// its usual interval) while its market is open is `stalled`, and is reconnected.
    #[arg(long, default_value_t = 30.0, value_parser = feeds::positive_secs)]
    pub stall_floor_s: f64,
    /// The raw-frame journal.
    #[command(flatten)]
    pub journal: journal::JournalArgs,
    /// The PostgreSQL sink.
    #[command(flatten)]
    pub sink: crate::store::pg::SinkArgs,
    /// CPU for the client IO thread.
    #[arg(long)]
    pub client_core: Option<usize>,
    /// Keep these symbols subscribed upstream for shared-memory readers even when no WebSocket
    /// client wants them: EXCHANGE:SYMBOL, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub subscribe: Vec<String>,
    /// Keep every instrument of the master subscribed (depth mode) for shared-memory readers.
    #[arg(long)]
    pub subscribe_all: bool,
    /// Browser origins allowed to open a client WebSocket (repeatable or comma-separated; `*`:
    /// any). Default: any. Clients that send no `Origin` (OpenAlgo's SDKs and every non-browser
    /// client) and the gateway's own origin are always allowed.
    #[arg(long, value_delimiter = ',')]
    pub allow_origin: Vec<String>,
    /// Connections not yet authenticated, in total: past this the oldest pending connection is
    /// dropped to make room, so idle connections cannot lock out clients with a key.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_pending: u32,
    /// Connections not yet authenticated from one remote address.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_pending_per_addr: u32,
    /// Client limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Per-API-key limit overrides (from the config file's `[limits.per_key.NAME]`); the
    /// `--limit-override` flags go over them.
    #[arg(skip)]
    pub per_key_limits: BTreeMap<String, LimitOverrides>,
    /// Ignore the market calendar: feeds stay connected and every exchange reads open, whatever
    /// the time (development, mock brokers). `demo` always runs this way unless
    /// `--market-hours`.
    #[arg(long)]
    pub dev: bool,
    /// Market holidays: a file, or a directory of per-year files (`docs/market-hours.md`).
    /// Default: the holidays built into tickwire (NSE's 2026 list).
    #[arg(long)]
    pub holidays: Option<PathBuf>,
    /// Start the market calendar's clock at this instant (RFC 3339, e.g.
    /// `2026-12-07T09:14:00+05:30`); it runs forward from there. For tests.
    #[arg(long, hide = true, value_parser = parse_market_now)]
    pub market_now: Option<i64>,
}

/// The shm ring's default size when a sink reads it: 2.6 s at 200,000 ticks/s (235 MB), room for
/// the database's pauses (`docs/storage.md`, "Throughput").
pub const SINK_RING_CAPACITY: u64 = 1 << 19;

impl EngineArgs {
    /// With `--sink` and no ring size given (flag or config file), the ring gets
    /// `SINK_RING_CAPACITY` slots, not the default 65,536: a database pauses for longer than a
    /// strategy does.
    pub fn size_ring_for_sink(&mut self, ring_given: bool) {
        if self.sink.url.is_some() && !ring_given {
            self.ring_capacity = self.ring_capacity.max(SINK_RING_CAPACITY);
        }
    }
}

/// `--market-now`: RFC 3339 → Unix nanoseconds.
fn parse_market_now(s: &str) -> Result<i64, String> {
    tickwire_engine::calendar::civil::parse_rfc3339(s)
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 time such as 2026-12-07T09:14:00+05:30"))
}

/// `--router`: the thread the router runs on.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterPlacement {
    /// Its own thread (pinned with `--router-core`, idling per `--idle`).
    Thread,
    /// The feed thread's loop (`--router-core` and `--idle` then do not apply).
    Inline,
}
