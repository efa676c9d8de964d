//! Assembling a running gateway: instrument masters → one registry, the shm file, the router, the
//! feed threads (each with its feeds; the router inline on the only one, or on its own thread) and
//! the client IO thread.
//!
//! Several feeds (brokers) can serve one gateway: each serves the exchanges it was given, and a
//! feed given none serves every exchange no other feed claims. A symbol belongs to exactly one
//! feed (`feed_of`), so demand for it goes to that feed alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tickwire_engine::calendar::{Calendar, Exchange, Market, MarketClock};
use tickwire_engine::clock::now_ns;
use tickwire_engine::idle::IdleStrategy;
use tickwire_engine::router::{Inline, RouterStats};
use tickwire_engine::symbols::SymbolRegistry;
use tickwire_io::brokers::{self, BrokerConfig, Listing};
use tickwire_io::feed::renew;
use tickwire_io::feed::watch::StaleConfig;
use tickwire_io::feed::{Feed, FeedConfig, FeedHours, FeedPoller, FeedStatus, FeedThread};
use tickwire_io::gateway::keys::KeyStore;
use tickwire_io::gateway::GatewayStats;
use tickwire_io::journal::{catalog, Journal};
use tickwire_shm::Writer;

use super::core::{assemble, Core, Plan};
use super::rollover::FeedCredentials;
use crate::store::pg::Sink;

/// How long a stopping gateway waits for its sink to store the ring's last ticks (the database
/// may be down; the sink's thread is left behind past this).
const SINK_GRACE: Duration = Duration::from_secs(10);
use super::{EngineArgs, RouterPlacement};

/// What one feed connects to.
pub struct Upstream {
    /// The broker and its credentials.
    pub broker: BrokerConfig,
    /// Feed settings.
    pub feed: FeedConfig,
    /// Instrument master URL or path (Fyers: several, comma-separated).
    pub instruments: String,
    /// OpenAlgo exchanges this feed serves; empty: every exchange no other feed claims.
    pub exchanges: Vec<String>,
}

/// The keys clients may authenticate with.
#[derive(Debug, Default)]
pub struct ClientAuth {
    /// Plain keys (`--api-key`).
    pub api_keys: Vec<String>,
    /// The keys file (`--keys-file`) and its watch (file changes and SIGHUP).
    pub keys: Option<(KeyStore, crate::reload::Watch)>,
}

impl From<Vec<String>> for ClientAuth {
    fn from(api_keys: Vec<String>) -> Self {
        Self {
            api_keys,
            keys: None,
        }
    }
}

/// Everything a running gateway needs to be watched and stopped.
pub struct Running {
    /// Client WebSocket address.
    pub addr: std::net::SocketAddr,
    /// The first feed's health (the only feed in most setups).
    pub feed: Arc<FeedStatus>,
    /// Every feed's health, in configuration order.
    pub feeds: Vec<Arc<FeedStatus>>,
    /// Client counters.
    pub clients: Arc<GatewayStats>,
    /// Router counters.
    pub router: Arc<RouterStats>,
    /// The registry.
    pub registry: Arc<SymbolRegistry>,
    /// Each feed's credentials and the way to hand it new ones (`serve`'s reload thread takes
    /// them; see `rollover`).
    pub credentials: Vec<FeedCredentials>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    router_thread: Option<JoinHandle<Writer>>,
    /// The journal writer, stopped (drained and synced) after the feed threads.
    journal: Option<Journal>,
    /// The PostgreSQL sink, stopped last: it stores what the ring still holds.
    sink: Option<Sink>,
}

impl Running {
    /// Stops and joins every thread, then marks the shm file closed.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(r) = self.router_thread.take() {
            if let Ok(mut w) = r.join() {
                w.close();
            }
        }
        if let Some(j) = self.journal.take() {
            if let Err(e) = j.stop() {
                tracing::error!("journal: {e}");
            }
        }
        if let Some(s) = self.sink.take() {
            s.stop(SINK_GRACE);
        }
    }
}

/// The feed serving `exchange`: the first that names it, else the first that names none.
fn route(ups: &[Upstream], exchange: &str) -> Option<usize> {
    ups.iter()
        .position(|u| u.exchanges.iter().any(|x| x == exchange))
        .or_else(|| ups.iter().position(|u| u.exchanges.is_empty()))
}

/// The registry of every feed's instruments, each feed's own listings, and the feed of each symbol.
type Loaded = (SymbolRegistry, Vec<Vec<Listing>>, Vec<u16>);

/// Loads every feed's master (keeping the listings of the exchanges it serves), registers them in
/// one registry, and says which feed serves each symbol.
fn load(ups: &[Upstream]) -> Result<Loaded, String> {
    let mut per_feed = Vec::new();
    for (i, up) in ups.iter().enumerate() {
        let mut l = up.broker.listings(&up.instruments)?;
        l.retain(|l| route(ups, &l.exchange) == Some(i));
        per_feed.push(l);
    }
    let total: usize = per_feed.iter().map(Vec::len).sum();
    let mut reg = SymbolRegistry::with_capacity(total.max(1));
    for l in &per_feed {
        brokers::register(&mut reg, l);
    }
    let feed_of = (0..reg.len() as u32)
        .map(|id| {
            reg.info(id)
                .and_then(|i| route(ups, &i.exchange))
                .unwrap_or(0) as u16
        })
        .collect();
    Ok((reg, per_feed, feed_of))
}

/// Loads the instrument masters, assembles the gateway (`super::core`) and starts its router, feed
/// and client threads.
pub fn start(
    ups: Vec<Upstream>,
    port: u16,
    auth: ClientAuth,
    e: &EngineArgs,
) -> Result<Running, String> {
    if ups.is_empty() {
        return Err("no feed configured".into());
    }
    // A bad holidays file, --sink URL or table fails here, before the masters load (the sink
    // starts with the shm file, in `assemble`).
    let market = Arc::new(market(e)?);
    e.sink.config(&e.shm, None)?;
    let (reg, per_feed, feed_of) = load(&ups)?;
    // Feeds over feed threads, round robin; the router inline only when there is one thread.
    // Each thread's poller exists before the router, which rings it after demand changes.
    let threads_n = e.feed_threads.clamp(1, ups.len());
    let mut pollers = (0..threads_n)
        .map(|_| FeedPoller::new())
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| format!("feed thread poller: {e}"))?;
    // What a replay needs to rebuild this registry and the brokers' key tables: every segment
    // starts with it.
    // Its stamp also names this run's segments (the sink's backfill reads only those).
    let run_ts = now_ns();
    let catalog = catalog::encode(&reg, &feed_of, run_ts);
    let plan = Plan {
        registry: Arc::new(reg),
        feed_of,
        brokers: ups.iter().map(|u| u.broker.openalgo_name()).collect(),
        journal_run: Some(run_ts),
    };
    let bells = pollers.iter().map(FeedPoller::doorbell).collect();
    let Core {
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
        ..
    } = assemble(plan, market.clone(), port, auth, e, bells, None)?;

    let inline = threads_n == 1 && e.router == RouterPlacement::Inline;
    let (router_thread, mut inline_router) = if inline {
        if e.router_core.is_some() || e.idle != IdleStrategy::default() {
            tracing::warn!(
                "tickwire: --router-core and --idle apply to --router thread; the inline router \
                 runs on the feed thread (--feed-core) and sleeps in its poller"
            );
        }
        (None, Some(Box::new(router) as Box<dyn Inline>))
    } else {
        let t = router.spawn(stop.clone()).map_err(|e| e.to_string())?;
        (Some(t), None)
    };
    let mut journal = e.journal.start()?;
    if let Some(j) = journal.as_mut() {
        j.set_catalog(catalog);
    }
    let mut groups: Vec<Vec<Feed>> = (0..threads_n).map(|_| Vec::new()).collect();
    let mut names: Vec<Vec<&str>> = vec![Vec::new(); threads_n];
    let mut credentials = Vec::new();
    for (i, ((up, ends), listings)) in ups.iter().zip(feed_ends).zip(&per_feed).enumerate() {
        let mut cfg = up.feed.clone();
        cfg.per_connection = cfg.per_connection.or(e.upstream_symbols_per_connection);
        cfg.connections = cfg.connections.or(e.upstream_connections);
        cfg.confirm_after = Duration::from_millis(e.upstream_confirm_ms.max(1));
        cfg.stale = StaleConfig {
            floor: Duration::from_secs_f64(e.stale_floor_s),
            factor: e.stale_factor,
            stall_floor: Duration::from_secs_f64(e.stall_floor_s),
        };
        // The keys stay for new credentials: a renewed protocol is built from them.
        let keys = brokers::keys_by_id(listings, &registry);
        let (sender, inbox) = renew::channel(pollers[i % threads_n].doorbell());
        groups[i % threads_n].push(Feed {
            cfg,
            protocol: up.broker.factory(keys.clone()),
            ticks: ends.ticks,
            upstream: ends.upstream,
            status: statuses[i].clone(),
            router_bell: (!inline).then(|| router_bell.clone()),
            registry: registry.clone(),
            hours: Some(FeedHours {
                market: market.clone(),
                exchanges: exchanges_of(listings),
            }),
            renew: Some(inbox),
            journal: journal
                .as_mut()
                .map(|j| j.appender(i as u8, up.broker.openalgo_name())),
        });
        credentials.push(FeedCredentials {
            broker: up.broker.clone(),
            keys,
            sender,
            status: statuses[i].clone(),
        });
        names[i % threads_n].push(up.broker.name());
    }
    let mut threads = Vec::new();
    for (k, (feeds, poller)) in groups.into_iter().zip(pollers.drain(..)).enumerate() {
        let t = FeedThread {
            poller,
            feeds,
            inline_router: inline_router.take(),
            core: e.feed_core.get(k).copied(),
            name: names[k].join("+"),
        };
        threads.push(t.spawn(stop.clone()).map_err(|e| e.to_string())?);
    }
    threads.push(
        gateway
            .spawn(stop.clone(), router_bell)
            .map_err(|e| e.to_string())?,
    );
    Ok(Running {
        addr,
        feed: statuses[0].clone(),
        feeds: statuses,
        clients,
        router: router_stats,
        registry,
        credentials,
        stop,
        threads,
        router_thread,
        journal,
        sink,
    })
}

/// `--subscribe` and `--subscribe-all`, as symbol ids.
pub(super) fn pinned_symbols(e: &EngineArgs, reg: &SymbolRegistry) -> Result<Vec<u32>, String> {
    let mut pinned = Vec::new();
    if e.subscribe_all {
        pinned.extend(0..reg.len() as u32);
    }
    for key in &e.subscribe {
        let (x, s) = tickwire_engine::symbols::split_key(key)
            .ok_or_else(|| format!("--subscribe {key:?}: expected EXCHANGE:SYMBOL"))?;
        pinned.push(
            reg.lookup(x, s)
                .ok_or_else(|| format!("--subscribe {key}: not in the instrument master"))?,
        );
    }
    Ok(pinned)
}

/// The market calendar from `--dev`, `--holidays` and `--market-now`.
pub(super) fn market(e: &EngineArgs) -> Result<Market, String> {
    let calendar = match &e.holidays {
        Some(p) => Calendar::load(p).map_err(|e| format!("--holidays: {e}"))?,
        None => Calendar::builtin(),
    };
    let clock = match e.market_now {
        Some(ns) => MarketClock::starting_at(ns),
        None => MarketClock::real(),
    };
    let m = Market::new(calendar, clock, e.dev);
    let (year, _, _) = tickwire_engine::clock::civil_from_days(clock.now_s().div_euclid(86_400));
    if e.dev {
        tracing::info!("tickwire: --dev: market hours ignored, feeds always connected");
    } else if !m.calendar().knows_year(year) {
        tracing::warn!(
            "tickwire: no market holidays known for {year}: only weekends close the markets; \
             give --holidays a file for {year} (docs/market-hours.md)"
        );
    }
    Ok(m)
}

/// The calendar exchanges of a feed's instruments (names the calendar does not know are left
/// out; a feed with none of its exchanges known is always connected).
fn exchanges_of(listings: &[Listing]) -> Vec<Exchange> {
    let mut xs: Vec<Exchange> = listings
        .iter()
        .filter_map(|l| Exchange::parse(&l.exchange))
        .collect();
    xs.sort();
    xs.dedup();
    xs
}
