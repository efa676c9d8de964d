//! The parts every running gateway has, whatever feeds it: the shm file, the router, the client IO
//! thread's gateway, each feed's status. `start` (live feeds) and `replay` (a journal) each
//! assemble these with [`assemble`], then add what feeds the router.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tickwire_engine::calendar::Market;
use tickwire_engine::doorbell::Doorbell;
use tickwire_engine::health::SymbolHealth;
use tickwire_engine::router::{
    FeedEnds, Inline, RingSizes, Router, RouterConfig, RouterRings, RouterStats,
};
use tickwire_engine::symbols::SymbolRegistry;
use tickwire_io::brokers::BrokerConfig;
use tickwire_io::feed::FeedStatus;
use tickwire_io::gateway::{
    Budget, FeedRef, Gateway, GatewayConfig, GatewayStats, Shared, ShmInfo,
};
use tickwire_io::replay::{Player, Progress};
use tickwire_shm::{Writer, WriterConfig};

use crate::store::pg::{JournalRun, Sink};

use super::start::{market, pinned_symbols, ClientAuth};
use super::EngineArgs;

/// What the gateway serves: the symbol registry, the feed serving each symbol, and each feed's
/// broker (its OpenAlgo name).
pub(super) struct Plan {
    pub registry: Arc<SymbolRegistry>,
    pub feed_of: Vec<u16>,
    pub brokers: Vec<&'static str>,
    /// The stamp of the catalog this run's journal segments start with (a live run that
    /// journals): the sink fills its gaps from those segments. `None` under replay.
    pub journal_run: Option<i64>,
}

/// The assembled parts, before anything feeds the router.
pub(super) struct Core {
    pub registry: Arc<SymbolRegistry>,
    pub market: Arc<Market>,
    pub statuses: Vec<Arc<FeedStatus>>,
    /// Each feed's end of its tick and demand rings.
    pub feed_ends: Vec<FeedEnds>,
    pub router: Router<Writer>,
    pub router_bell: Arc<Doorbell>,
    pub router_stats: Arc<RouterStats>,
    /// Not yet spawned.
    pub gateway: Gateway,
    pub addr: std::net::SocketAddr,
    pub clients: Arc<GatewayStats>,
    pub stop: Arc<AtomicBool>,
    /// The PostgreSQL sink (`--sink`), reading the shm file.
    pub sink: Option<Sink>,
}

/// Creates the shm file for `plan`'s registry, the gateway listening on `port` (with `market`,
/// the calendar its status reports), and the router between them. `upstream_bells` wake whoever reads the feeds' demand rings; `replay` makes the
/// status say the gateway replays a journal.
pub(super) fn assemble(
    plan: Plan,
    market: Arc<Market>,
    port: u16,
    auth: ClientAuth,
    e: &EngineArgs,
    upstream_bells: Vec<Arc<Doorbell>>,
    replay: Option<Arc<Progress>>,
) -> Result<Core, String> {
    let Plan {
        registry: reg,
        feed_of,
        brokers,
        journal_run,
    } = plan;
    let listener = Gateway::listen((e.listen, port).into()).map_err(|e| e.to_string())?;
    let n = reg.capacity();
    let wcfg = WriterConfig {
        ring_capacity: e.ring_capacity,
        symbol_capacity: n as u64,
    };
    let writer = Writer::create(&e.shm, &wcfg, &reg).map_err(|e| e.to_string())?;
    let view = writer.last_values();
    let (ring_capacity, symbol_capacity) = view.capacities();
    let shm = ShmInfo {
        path: writer.path().display().to_string(),
        ring_capacity,
        symbol_capacity,
        write_pos: Arc::new({
            let v = view.clone();
            move || v.write_position()
        }),
    };
    // After the file exists (the sink reads it like any strategy), before anything reports.
    let journal = journal_run
        .zip(e.journal.dir.as_ref())
        .map(|(catalog_ts, dir)| JournalRun {
            dir: dir.clone(),
            catalog_ts,
        });
    let sink = e.sink.start(&e.shm, journal)?;
    let last = Arc::new(view);
    // Made before the router: the client thread reports its counters and histograms.
    let router_stats: Arc<RouterStats> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    // 4,096 ticks (1.5 MB) per feed: enough to ride out a descheduled router at 1 M ticks/s for
    // 4 ms, small enough to stay in cache (65,536 slots were 25 MB of cold lines on every push). A
    // full ring makes the feed wait, never drop. Inline routing does not use it.
    // Deliveries carry ticks (392-byte slots): 8,192 is 3 MB, 8 ms at 1 M ticks/s; past that the
    // router conflates into `Latest` deliveries rather than wait.
    let sizes = RingSizes {
        feed: 1 << 12,
        upstream: 1 << 14,
        control: 1 << 16,
        deliveries: 1 << 13,
    };
    let (mut rings, ends) = RouterRings::one_each(sizes);
    let mut feed_ends = vec![FeedEnds {
        ticks: ends.feed,
        upstream: ends.upstream,
    }];
    for _ in 1..brokers.len() {
        feed_ends.push(rings.add_feed(sizes));
    }
    let pinned = pinned_symbols(e, &reg)?;
    let limits = e.limits.config(&e.per_key_limits)?;
    // Room for every authenticated client plus the pending budget (and slot 0, the pin holder):
    // a client past --max-clients still gets a slot, to be told why it is refused.
    let max_connections = limits.max_clients + e.max_pending + 1;
    let registry = reg;
    // One health table for every feed (each writes the symbols it serves) and the router.
    let health = Arc::new(SymbolHealth::new(n));
    let statuses: Vec<Arc<FeedStatus>> = brokers
        .iter()
        .map(|_| Arc::new(FeedStatus::with_health(health.clone())))
        .collect();
    let gcfg = GatewayConfig {
        broker: brokers.first().copied().unwrap_or_default().into(),
        addr: (e.listen, port).into(),
        api_keys: auth.api_keys,
        core: e.client_core,
        pinned,
        allowed_origins: e.allow_origin.clone(),
        pending: Budget {
            total: e.max_pending as usize,
            per_addr: e.max_pending_per_addr as usize,
        },
        limits,
        max_connections,
        ..GatewayConfig::default()
    };
    let rcfg = RouterConfig {
        symbols: n,
        flush_interval: Duration::from_millis(e.flush_ms),
        consumers_per_io: gcfg.max_connections,
        idle: e.idle,
        core: e.router_core,
        health: Some(health),
        ..RouterConfig::default()
    };
    let feed_of = Arc::new(feed_of);
    let shared = Shared {
        cfg: gcfg,
        registry: registry.clone(),
        feeds: brokers
            .iter()
            .zip(&statuses)
            .map(|(b, s)| FeedRef {
                broker: (*b).into(),
                status: s.clone(),
            })
            .collect(),
        feed_of: feed_of.clone(),
        stats: Arc::default(),
        limit_state: Default::default(),
        market: market.clone(),
        router: router_stats.clone(),
        shm: Some(shm),
        sink: sink.as_ref().map(Sink::stats),
        classes: Default::default(),
        replay,
    };
    let mut gateway = Gateway::new(listener, shared, ends.control, ends.deliveries, last)
        .map_err(|e| e.to_string())?;
    if let Some((store, mut watch)) = auth.keys {
        gateway
            .keys_file(store, Box::new(move || watch.changed()))
            .map_err(|e| format!("API keys verifier thread: {e}"))?;
    }
    let addr = gateway.local_addr().map_err(|e| e.to_string())?;
    let clients = gateway.stats();
    rings.delivery_bells.push(gateway.doorbell());
    rings.upstream_bells = upstream_bells;
    let router =
        Router::new(rcfg, rings, writer, feed_of.to_vec()).with_stats(router_stats.clone());
    let router_bell = router.doorbell();
    Ok(Core {
        registry,
        market,
        statuses,
        feed_ends,
        router,
        router_bell,
        router_stats,
        gateway,
        addr,
        clients,
        stop,
        sink,
    })
}

/// A gateway assembled for a replay: the registry from the journal's catalog, the router to run
/// inline on the replay thread.
pub struct ReplayCore {
    /// The router, run by the replay thread.
    pub router: Box<dyn Inline>,
    /// Each recorded feed's status, by feed id.
    pub statuses: Vec<Arc<FeedStatus>>,
    /// Each feed's demand ring (drained: a replay subscribes nothing).
    pub feed_ends: Vec<FeedEnds>,
    /// The client IO thread's gateway, to spawn.
    pub gateway: Gateway,
    /// The router's doorbell (the gateway rings it).
    pub router_bell: Arc<Doorbell>,
    /// Client counters.
    pub clients: Arc<GatewayStats>,
    /// The client port's address.
    pub addr: std::net::SocketAddr,
    /// Stops the gateway thread.
    pub stop: Arc<AtomicBool>,
    /// The PostgreSQL sink (`--sink`): a replay can be stored like a live session.
    pub sink: Option<Sink>,
}

/// Assembles the gateway for `player`'s journal. The calendar is ignored (a replay's session is
/// whenever it runs), and the router runs inline.
pub fn replay_core(
    player: &Player,
    port: u16,
    api_keys: Vec<String>,
    e: &EngineArgs,
    progress: Arc<Progress>,
) -> Result<ReplayCore, String> {
    let mut e = e.clone();
    e.dev = true;
    let registry = player.registry().clone();
    let n = player
        .feeds()
        .iter()
        .map(|f| f.id as usize + 1)
        .max()
        .unwrap_or(1);
    let mut brokers = vec!["replay"; n];
    for f in player.feeds() {
        brokers[f.id as usize] =
            BrokerConfig::for_replay(&f.broker).map_or("replay", |b| b.openalgo_name());
    }
    let plan = Plan {
        registry,
        feed_of: player.feed_of().to_vec(),
        brokers,
        journal_run: None,
    };
    let market = Arc::new(market(&e)?);
    let c = assemble(
        plan,
        market,
        port,
        api_keys.into(),
        &e,
        Vec::new(),
        Some(progress),
    )?;
    Ok(ReplayCore {
        router: Box::new(c.router),
        statuses: c.statuses,
        feed_ends: c.feed_ends,
        gateway: c.gateway,
        router_bell: c.router_bell,
        clients: c.clients,
        addr: c.addr,
        stop: c.stop,
        sink: c.sink,
    })
}
