//! The router thread: the only writer of shared state.
//!
//! ```text
//!  feed rings (Tick) ──►┐                      ┌──► Publish (shm ring + last-value table), every tick
//!                       │  seq, publish,       │
//!  control rings ──────►│  index, throttle ───►├──► delivery rings (one per client IO thread), throttled
//!  (Control)            │                      └──► upstream rings (one per feed), on demand changes
//! ```
//!
//! Per tick ([`Router::process_tick`]): stamp the per-symbol sequence, publish, and if a client
//! IO thread has clients on the symbol, hand it the tick (one [`Delivery`] per IO thread, whatever
//! the number of clients: the IO thread fans out to its own), or, with a flush interval, set the
//! symbol's throttle mark. That path indexes flat arrays only: no lock, no allocation, no
//! syscall. Clock reads and the flush happen once per pass over the rings, not per tick.
//!
//! Nothing waits on a consumer. A delivery ring that is full puts the symbol on that IO thread's
//! retry set (a [`DirtySet`]: bounded, coalescing) and the router moves on; the next pass sends
//! it as [`Delivery::Latest`] (the ticks that did not fit are conflated into their latest value).
//! The same holds for upstream commands: the wanted state per symbol is kept, and what the feed ring
//! could not take is sent later, merged with any newer change.

mod health;
mod index;
mod inline;
mod msg;
mod publish;
mod rings;
mod stats;
mod throttle;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use index::{DemandChange, Sub, SubscriptionIndex};
pub use inline::Inline;
pub use msg::{ConsumerId, Control, Delivery, Mode, ModeSet, Upstream};
pub use publish::{MemoryPublisher, Publish};
pub use rings::{FeedEnds, RingEnds, RingSizes, RouterRings};
use stats::Counters;
pub use stats::RouterStats;
pub use throttle::Throttle;

/// How soon a router with deliveries or demand held back by a full ring looks again.
const RETRY_WAIT: Duration = Duration::from_millis(1);

use crate::dirty::DirtySet;
use crate::doorbell::Doorbell;
use crate::health::SymbolHealth;
use crate::hist::Batch;
use crate::idle::{IdleStrategy, Idler};
use crate::tick::Tick;

/// Router settings.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    /// Symbol capacity (the registry's).
    pub symbols: usize,
    /// Coalescing interval; zero (the default) delivers every tick at once (client IO threads
    /// conflate for a client that falls behind).
    pub flush_interval: Duration,
    /// Consumer ids each client IO thread owns. The first id of each range
    /// (`k × consumers_per_io`) is that IO thread's *pin holder*: its subscriptions count for
    /// upstream demand but it is never delivered to (symbols kept flowing for shm-only readers).
    pub consumers_per_io: u32,
    /// Most items taken from one ring per pass, so one busy feed cannot starve the others.
    pub batch: usize,
    /// How often to call [`Publish::heartbeat`].
    pub heartbeat: Duration,
    /// What to do on an empty pass.
    pub idle: IdleStrategy,
    /// Core to pin the router thread to.
    pub core: Option<usize>,
    /// Per-symbol health the feeds judge: its state byte is copied into the published last values
    /// (the shm file) on each heartbeat, and a stale symbol's byte turns live with its next tick.
    pub health: Option<Arc<SymbolHealth>>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            symbols: crate::symbols::DEFAULT_CAPACITY,
            flush_interval: Duration::ZERO,
            consumers_per_io: 1024,
            batch: 256,
            heartbeat: Duration::from_millis(100),
            idle: IdleStrategy::default(),
            core: None,
            health: None,
        }
    }
}

/// Everything but the input rings, so a ring's read chunk and the state it feeds can be borrowed
/// at once.
struct Core<P> {
    cfg: RouterConfig,
    publisher: P,
    index: SubscriptionIndex,
    throttle: Throttle,
    seq: Vec<u64>,
    /// Per symbol: bit `k` set when client IO thread `k` has a client (not its pin holder) on it.
    io_mask: Vec<u64>,
    feed_of: Vec<u16>,
    upstream_mode: Vec<Option<Mode>>,
    upstream: Vec<rtrb::Producer<Upstream>>,
    pending_up: Vec<DirtySet>,
    deliveries: Vec<rtrb::Producer<Delivery>>,
    pending_out: Vec<DirtySet>,
    demand_scratch: Vec<DemandChange>,
    counters: Counters,
    /// Per symbol: the health byte last handed to the publisher (empty without `cfg.health`).
    health_shown: Vec<u8>,
    /// Receive times of the ticks published since the last pass ended (wire → shm).
    latency: Batch,
    /// When the first of those ticks came (inline: handed over before the pass runs).
    batch_start: Option<Instant>,
}

/// The router; see the module docs.
pub struct Router<P> {
    feeds: Vec<rtrb::Consumer<Tick>>,
    controls: Vec<rtrb::Consumer<Control>>,
    core: Core<P>,
    stats: Arc<RouterStats>,
    last_heartbeat: Instant,
    delivery_bells: Vec<Arc<Doorbell>>,
    /// Delivery count when the delivery bells last rang.
    rung_at: u64,
    upstream_bells: Vec<Arc<Doorbell>>,
    /// Upstream command count when the upstream bells last rang.
    up_rung_at: u64,
    bell: Arc<Doorbell>,
    wake: WakeSlot,
}

/// How to wake the thread the router runs on: set once, by [`Router::run`] (unpark itself) or by
/// a host thread that runs the router inline (e.g. its poller's waker).
type WakeSlot = Arc<std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>>;

impl<P: Publish> Router<P> {
    /// A router over `rings`, publishing to `publisher`. `feed_of[symbol]` names the feed that serves
    /// each symbol (empty: feed 0 serves all).
    pub fn new(cfg: RouterConfig, rings: RouterRings, publisher: P, mut feed_of: Vec<u16>) -> Self {
        let n = cfg.symbols;
        feed_of.resize(n, 0);
        let consumers = rings.controls.len() * cfg.consumers_per_io as usize;
        let core = Core {
            index: SubscriptionIndex::new(n, consumers),
            throttle: Throttle::new(n, cfg.flush_interval),
            seq: vec![0; n],
            io_mask: vec![0; n],
            feed_of,
            upstream_mode: vec![None; n],
            pending_up: (0..rings.upstream.len())
                .map(|_| DirtySet::with_capacity(n))
                .collect(),
            upstream: rings.upstream,
            pending_out: (0..rings.deliveries.len())
                .map(|_| DirtySet::with_capacity(n))
                .collect(),
            deliveries: rings.deliveries,
            demand_scratch: Vec::new(),
            counters: Counters::default(),
            health_shown: match cfg.health {
                Some(_) => vec![0; n],
                None => Vec::new(),
            },
            latency: Batch::default(),
            batch_start: None,
            publisher,
            cfg,
        };
        let wake: WakeSlot = Arc::default();
        let w = wake.clone();
        let bell = Arc::new(Doorbell::new(move || {
            if let Some(f) = w.get() {
                f();
            }
        }));
        Self {
            feeds: rings.feeds,
            controls: rings.controls,
            core,
            stats: Arc::default(),
            last_heartbeat: Instant::now(),
            delivery_bells: rings.delivery_bells,
            rung_at: 0,
            upstream_bells: rings.upstream_bells,
            up_rung_at: 0,
            bell,
            wake,
        }
    }

    /// The router's doorbell: producers (feeds, client IO threads) ring it after pushing, so a
    /// parked router wakes at once.
    pub fn doorbell(&self) -> Arc<Doorbell> {
        self.bell.clone()
    }

    fn has_input(&self) -> bool {
        self.feeds.iter().any(|r| !r.is_empty()) || self.controls.iter().any(|r| !r.is_empty())
    }

    /// How long the router has no timed work: the next heartbeat, the next throttle flush with
    /// symbols marked, or a millisecond while deliveries or demand wait for room in a full ring.
    fn next_due(&self, now: Instant) -> Duration {
        let hb = (self.last_heartbeat + self.core.cfg.heartbeat).saturating_duration_since(now);
        let flush = self.core.throttle.wait(now).unwrap_or(hb);
        let waiting = self.core.pending_out.iter().any(|d| !d.is_empty())
            || self.core.pending_up.iter().any(|d| !d.is_empty());
        let retry = if waiting { RETRY_WAIT } else { hb };
        hb.min(flush).min(retry)
    }

    /// The shared counters.
    pub fn stats(&self) -> Arc<RouterStats> {
        self.stats.clone()
    }

    /// Counts into `stats` (made before the router, so the client thread can report them).
    pub fn with_stats(mut self, stats: Arc<RouterStats>) -> Self {
        self.stats = stats;
        self
    }

    /// The publisher (to inspect it in tests and benches).
    pub fn publisher(&self) -> &P {
        &self.core.publisher
    }

    /// The subscription index (read-only).
    pub fn index(&self) -> &SubscriptionIndex {
        &self.core.index
    }

    /// The tick path: stamp, publish, mark. Public so benchmarks can time it alone.
    #[inline]
    pub fn process_tick(&mut self, tick: Tick) {
        self.core.on_tick(tick, false);
    }

    /// One pass over every ring: controls, then up to `batch` ticks per feed, then the flush, retries
    /// and heartbeat if due. Returns how many items it handled (0 = idle pass).
    pub fn poll(&mut self, now: Instant) -> usize {
        let batch = self.core.cfg.batch;
        let mut work = 0;
        for (io, ring) in self.controls.iter_mut().enumerate() {
            for _ in 0..batch {
                let Ok(c) = ring.pop() else { break };
                self.core.on_control(io, c);
                work += 1;
            }
        }
        for ring in &mut self.feeds {
            let n = ring.slots().min(batch);
            if n == 0 {
                continue;
            }
            // `n` <= slots(), so the chunk is always available.
            if let Ok(chunk) = ring.read_chunk(n) {
                let (a, b) = chunk.as_slices();
                for (i, t) in a.iter().chain(b).enumerate() {
                    self.core.on_tick(*t, i + 1 == n);
                }
                chunk.commit_all();
                work += n;
            }
        }
        if self.core.throttle.due(now) {
            self.core.flush(now);
        }
        work += self.core.retry();
        if now.duration_since(self.last_heartbeat) >= self.core.cfg.heartbeat {
            self.last_heartbeat = now;
            self.core.publisher.heartbeat(crate::clock::now_ns());
            self.core.show_health();
        }
        // Compared with the count at the last ring, not at the start of this pass: deliveries
        // made by `Inline::tick` between passes need the bell too.
        if self.core.counters.deliveries != self.rung_at {
            self.rung_at = self.core.counters.deliveries;
            for b in &self.delivery_bells {
                b.ring();
            }
        }
        if self.core.counters.upstream_cmds != self.up_rung_at {
            self.up_rung_at = self.core.counters.upstream_cmds;
            for b in &self.upstream_bells {
                b.ring();
            }
        }
        if work > 0 || !self.core.latency.is_empty() {
            self.publish_stats();
            // One pair of clock reads per non-empty pass, after its writes: the pass time, and
            // the wire → shm figure of every tick it (or the inline feed before it) published.
            let end = Instant::now();
            let start = self.core.batch_start.take().map_or(now, |s| s.min(now));
            let pass = end.saturating_duration_since(start).as_nanos() as u64;
            self.stats.router_pass.record(pass);
            if !self.core.latency.is_empty() {
                self.core
                    .latency
                    .flush(&self.stats.wire_to_shm, crate::clock::now_ns());
            }
        }
        work
    }

    fn publish_stats(&self) {
        let c = self.core.counters;
        let s = &self.stats;
        s.ticks.store(c.ticks, Ordering::Relaxed);
        s.deliveries.store(c.deliveries, Ordering::Relaxed);
        s.delivery_retries
            .store(c.delivery_retries, Ordering::Relaxed);
        s.upstream_cmds.store(c.upstream_cmds, Ordering::Relaxed);
        s.bad_symbol.store(c.bad_symbol, Ordering::Relaxed);
        s.bad_control.store(c.bad_control, Ordering::Relaxed);
        s.flushes.store(c.flushes, Ordering::Relaxed);
    }

    /// Runs passes until `stop` is set, idling per the config on empty passes; then drains what the
    /// rings still hold, flushes once more and returns the publisher (so the caller can mark the shm
    /// file closed).
    pub fn run(mut self, stop: &AtomicBool) -> P {
        let mut idler = Idler::new(self.core.cfg.idle);
        let me = std::thread::current();
        let _ = self.wake.set(Box::new(move || me.unpark()));
        // Relaxed: `stop` carries no data; the flag only has to become visible eventually.
        while !stop.load(Ordering::Relaxed) {
            if self.poll(Instant::now()) > 0 {
                idler.reset();
            } else if idler.next_sleeps() {
                // Announce the nap, then look once more: a producer that pushed before seeing
                // the announcement is found here, one that pushes after it rings the bell.
                self.bell.will_sleep();
                if !self.has_input() {
                    idler.idle();
                }
                self.bell.awake();
            } else {
                idler.idle();
            }
        }
        self.drain();
        self.core.publisher
    }

    /// Ends an inline run (see [`Inline`]): drains the rings, flushes and retries once more, as
    /// [`Router::run`] does before it returns.
    fn drain(&mut self) {
        while self.poll(Instant::now()) > 0 {}
        self.core.flush(Instant::now());
        self.core.retry();
        self.publish_stats();
    }

    /// Starts the router on its own thread, pinned to `cfg.core`. A pinning failure is reported
    /// on stderr and the router runs unpinned rather than not at all.
    pub fn spawn(self, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<P>>
    where
        P: Send + 'static,
    {
        let core = self.core.cfg.core;
        std::thread::Builder::new()
            .name("tickwire-router".into())
            .spawn(move || {
                if let Err(e) = crate::affinity::pin_current(core) {
                    tracing::warn!("router: {e}; running unpinned");
                }
                self.run(&stop)
            })
    }
}

impl<P: Publish> Core<P> {
    #[inline]
    /// `last`: the final tick of what is at hand (see [`Publish::publish_last`]).
    fn on_tick(&mut self, mut t: Tick, last: bool) {
        let s = t.symbol_id;
        let Some(seq) = self.seq.get_mut(s as usize) else {
            self.counters.bad_symbol += 1;
            return;
        };
        *seq += 1;
        t.seq = *seq;
        self.live_again(s);
        self.latency.add(t.recv_ts_ns);
        if last {
            self.publisher.publish_last(&t);
        } else {
            self.publisher.publish(&t);
        }
        self.counters.ticks += 1;
        let mask = self.io_mask[s as usize];
        if mask != 0 {
            if self.throttle.is_immediate() {
                let d = Delivery::Tick(t);
                deliver(
                    &mut self.deliveries,
                    &mut self.pending_out,
                    &mut self.counters,
                    mask,
                    d,
                );
            } else {
                self.throttle.mark(s);
            }
        }
    }

    fn io_of(&self, consumer: ConsumerId) -> usize {
        (consumer / self.cfg.consumers_per_io) as usize
    }

    fn flush(&mut self, now: Instant) {
        let Core {
            throttle,
            io_mask,
            deliveries,
            pending_out,
            counters,
            ..
        } = self;
        throttle.flush(now, |s| {
            let d = Delivery::Latest(s);
            deliver(deliveries, pending_out, counters, io_mask[s as usize], d)
        });
        self.counters.flushes += 1;
    }

    /// Retries what full rings refused earlier, as [`Delivery::Latest`].
    fn retry(&mut self) -> usize {
        let mut work = 0;
        for io in 0..self.pending_out.len() {
            if self.pending_out[io].is_empty() {
                continue;
            }
            let ring = &mut self.deliveries[io];
            let counters = &mut self.counters;
            self.pending_out[io].drain_while(|symbol| {
                let ok = ring.push(Delivery::Latest(symbol)).is_ok();
                if ok {
                    counters.deliveries += 1;
                    work += 1;
                }
                ok
            });
        }
        for feed in 0..self.pending_up.len() {
            let (modes, ring) = (&self.upstream_mode, &mut self.upstream[feed]);
            let counters = &mut self.counters;
            self.pending_up[feed].drain_while(|symbol| {
                let cmd = match modes[symbol as usize] {
                    Some(mode) => Upstream::Subscribe { symbol, mode },
                    None => Upstream::Unsubscribe { symbol },
                };
                let ok = ring.push(cmd).is_ok();
                if ok {
                    counters.upstream_cmds += 1;
                    work += 1;
                }
                ok
            });
        }
        work
    }

    /// Recomputes which IO threads have clients on `symbol` (after a subscription change).
    fn update_io_mask(&mut self, symbol: crate::symbols::SymbolId) {
        let per_io = self.cfg.consumers_per_io;
        let mut mask = 0u64;
        for sub in self.index.subscribers(symbol) {
            if !is_pin_holder(sub.consumer, per_io) {
                mask |= 1 << ((sub.consumer / per_io) as u64).min(63);
            }
        }
        self.io_mask[symbol as usize] = mask;
    }

    fn on_control(&mut self, io: usize, c: Control) {
        let consumer = match c {
            Control::Subscribe { consumer, .. }
            | Control::Unsubscribe { consumer, .. }
            | Control::UnsubscribeAll { consumer } => consumer,
        };
        let symbol_ok = |s: u32| (s as usize) < self.cfg.symbols;
        let ok = self.io_of(consumer) == io
            && (consumer as usize) < (io + 1) * self.cfg.consumers_per_io as usize
            && match c {
                Control::Subscribe { symbol, .. } | Control::Unsubscribe { symbol, .. } => {
                    symbol_ok(symbol)
                }
                Control::UnsubscribeAll { .. } => true,
            }
            && self.index.in_range(consumer, 0);
        if !ok {
            self.counters.bad_control += 1;
            return;
        }
        match c {
            Control::Subscribe {
                consumer,
                symbol,
                mode,
            } => {
                let ch = self.index.subscribe(consumer, symbol, mode);
                self.on_demand(ch);
                self.update_io_mask(symbol);
                // The new subscriber gets the current value at once, if there is one: its IO
                // thread reads the latest value now, after which every tick follows in order.
                if self.seq[symbol as usize] > 0
                    && !is_pin_holder(consumer, self.cfg.consumers_per_io)
                {
                    let d = Delivery::Latest(symbol);
                    deliver(
                        &mut self.deliveries,
                        &mut self.pending_out,
                        &mut self.counters,
                        1 << io,
                        d,
                    );
                }
            }
            Control::Unsubscribe {
                consumer,
                symbol,
                modes,
            } => {
                let ch = self.index.unsubscribe(consumer, symbol, modes);
                self.on_demand(ch);
                self.update_io_mask(symbol);
            }
            Control::UnsubscribeAll { consumer } => {
                let mut scratch = std::mem::take(&mut self.demand_scratch);
                self.index.unsubscribe_all(consumer, |ch| scratch.push(ch));
                for ch in scratch.drain(..) {
                    self.on_demand(ch);
                    self.update_io_mask(ch.symbol);
                }
                self.demand_scratch = scratch;
            }
        }
    }

    fn on_demand(&mut self, ch: DemandChange) {
        if ch.before == ch.after {
            return;
        }
        let s = ch.symbol as usize;
        self.upstream_mode[s] = ch.after;
        let feed = self.feed_of[s] as usize;
        if let Some(p) = self.pending_up.get_mut(feed) {
            p.insert(ch.symbol);
        }
    }
}

/// The first consumer id of each IO thread's range holds pinned subscriptions and gets no deliveries.
#[inline]
fn is_pin_holder(consumer: ConsumerId, per_io: u32) -> bool {
    consumer.is_multiple_of(per_io)
}

/// Pushes `d` to every IO thread in `mask`; a full ring sends the symbol to that IO thread's retry
/// set instead (it then gets [`Delivery::Latest`]), and a symbol already waiting there is not sent
/// again meanwhile (the retry carries its latest value).
#[inline]
fn deliver(
    rings: &mut [rtrb::Producer<Delivery>],
    pending: &mut [DirtySet],
    counters: &mut Counters,
    mut mask: u64,
    d: Delivery,
) {
    let symbol = d.symbol();
    while mask != 0 {
        let io = mask.trailing_zeros() as usize;
        mask &= mask - 1;
        let (Some(ring), Some(p)) = (rings.get_mut(io), pending.get_mut(io)) else {
            continue;
        };
        if p.contains(symbol) {
            continue;
        }
        if ring.push(d).is_ok() {
            counters.deliveries += 1;
        } else {
            p.insert(symbol);
            counters.delivery_retries += 1;
        }
    }
}

#[cfg(test)]
mod tests;
