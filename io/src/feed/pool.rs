//! One feed: a broker's pool of upstream connections. Demand changes from the router are placed on
//! connections ([`Assign`]: up to the broker's instrument limit each, opening another connection up
//! to its connection limit), each connection re-subscribes its own symbols when it reconnects, so
//! losing one connection gaps only the symbols it carried. Symbols the broker rejects or never
//! confirms are asked for again on a doubling schedule ([`Retries`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Registry, Token};
use tickwire_engine::doorbell::Doorbell;
use tickwire_engine::router::{Inline, Mode, Upstream};
use tickwire_engine::symbols::{SymbolId, SymbolRegistry};
use tickwire_engine::Tick;

use super::assign::{Assign, Retries, Waiting};
use super::conn::{AuthNote, Conn, Ctx};
use super::hours::{FeedHours, Gate};
use super::protocol::{BrokerProtocol, Limits};
use super::renew::{RenewInbox, Renewal};
use super::status::{feed_state, upstream_state, FeedStatus};
use super::thread::FeedConfig;
use super::watch::Watch;

/// Makes one protocol instance per connection (each holds that connection's broker-side state;
/// shared tables such as the instrument map sit behind an `Arc`).
pub type ProtocolFactory = Box<dyn Fn() -> Box<dyn BrokerProtocol> + Send>;

/// How often the retry schedule is looked at.
const RETRY_CHECK: Duration = Duration::from_millis(100);

/// One broker feed: what a feed thread is given for it.
pub struct Feed {
    /// Settings.
    pub cfg: FeedConfig,
    /// The broker's protocol, one instance per connection.
    pub protocol: ProtocolFactory,
    /// Ticks to the router (unused when the router runs inline on the feed thread).
    pub ticks: rtrb::Producer<Tick>,
    /// Demand changes from the router.
    pub upstream: rtrb::Consumer<Upstream>,
    /// Shared status.
    pub status: Arc<FeedStatus>,
    /// Rung after each frame's ticks are pushed to `ticks`, so a parked router wakes at once.
    pub router_bell: Option<Arc<Doorbell>>,
    /// Symbol names, for log lines.
    pub registry: Arc<SymbolRegistry>,
    /// Market hours: the feed connects only while its exchanges (nearly) trade. `None`: always
    /// connected.
    pub hours: Option<FeedHours>,
    /// New credentials, while the gateway runs ([`super::renew`]); `None`: never renewed.
    pub renew: Option<RenewInbox>,
    /// Where every frame as received, and every connect, disconnect and subscription change, is
    /// recorded (`crate::journal`); `None`: not journaled.
    pub journal: Option<crate::journal::Appender>,
}

/// A [`Feed`] at work on a feed thread.
pub(super) struct Pool {
    feed: Feed,
    /// Answers `knows`, `limits` and `name` without a connection.
    proto: Box<dyn BrokerProtocol>,
    limits: Limits,
    assign: Assign,
    retries: Retries,
    conns: Vec<Conn>,
    /// Symbols wanted while every connection was full, with their modes: placed as room appears.
    parked: std::collections::BTreeMap<SymbolId, Mode>,
    /// "Pool full" lines logged so far (the first few are).
    full_logged: u32,
    /// What the log last said about the credentials (a refusal once until a connection opens or
    /// new credentials come, not once per rare retry).
    auth_note: AuthNote,
    /// Token of connection `c` is `base + c`.
    base: usize,
    next_retry_check: Instant,
    /// Market hours, when the feed follows them.
    gate: Option<Gate>,
    /// Stale symbols and stalled connections.
    watch: Watch,
}

impl Pool {
    /// The pool for `feed`; its connections get tokens from `base` on. Connection 0 dials at once,
    /// unless the market calendar says the feed's exchanges are shut.
    pub fn new(feed: Feed, base: usize) -> Self {
        let proto = (feed.protocol)();
        let mut limits = proto.limits();
        if let Some(n) = feed.cfg.per_connection {
            limits.per_connection = n;
        }
        if let Some(n) = feed.cfg.connections {
            limits.connections = n;
        }
        let assign = Assign::new(feed.status.symbols.len(), limits);
        let now = Instant::now();
        let gate = feed.hours.clone().map(|h| Gate::new(h, now));
        let watch = Watch::new(feed.status.symbols.len(), now);
        let mut me = Self {
            retries: Retries::new(feed.cfg.confirm_after, feed.cfg.retry_max),
            feed,
            proto,
            limits,
            assign,
            conns: Vec::new(),
            parked: Default::default(),
            full_logged: 0,
            auth_note: AuthNote::Quiet,
            base,
            next_retry_check: now,
            watch,
            gate,
        };
        me.open_conn();
        if me.gate.as_ref().is_some_and(|g| !g.open) {
            me.announce_closed();
        }
        me
    }

    /// True while market hours keep the feed disconnected.
    fn market_closed(&self) -> bool {
        self.gate.as_ref().is_some_and(|g| !g.open)
    }

    /// The markets shut: every connection closes and waits.
    fn market_closes(&mut self, registry: &Registry) {
        for c in &mut self.conns {
            if let (true, Some(j)) = (c.is_open(), self.feed.journal.as_mut()) {
                super::record::disconnect(j, c.idx, "market hours");
            }
            c.market_close(registry, &self.feed.status);
        }
        // A refusal at the next session is news again: logged, as clients are told.
        self.auth_note = AuthNote::Quiet;
        self.announce_closed();
    }

    /// Marks the feed `closed` with when it reopens, and says so once.
    fn announce_closed(&mut self) {
        let status = &*self.feed.status;
        for c in 0..self.conns.len() {
            if status.conns[c].state.load(Ordering::Relaxed) != feed_state::STOPPED {
                status.set_conn_state(c, feed_state::CLOSED);
            }
        }
        let Some(g) = &self.gate else { return };
        let next = g.hours.next_connect();
        status
            .reopens_at_s
            .store(next.unwrap_or(0), Ordering::Relaxed);
        let when = next.map_or("no session within a year".into(), |s| {
            format!(
                "connecting at {}",
                tickwire_engine::clock::rfc3339_utc(s.saturating_mul(1_000_000_000))
            )
        });
        tracing::info!(
            "{} feed: closed (market hours: {} shut); {when}",
            self.proto.name(),
            g.hours.names()
        );
    }

    /// The markets open: every connection dials.
    fn market_opens(&mut self) {
        for c in &mut self.conns {
            c.market_reopen();
        }
        self.feed.status.reopens_at_s.store(0, Ordering::Relaxed);
        if let Some(g) = &self.gate {
            tracing::info!(
                "{} feed: market hours ({} open soon or open): connecting",
                self.proto.name(),
                g.hours.names()
            );
        }
    }

    fn open_conn(&mut self) {
        let idx = self.conns.len();
        let conn = Conn::new(
            idx,
            Token(self.base + idx),
            (self.feed.protocol)(),
            &self.feed.cfg,
        );
        self.conns.push(conn);
        self.feed
            .status
            .conns_used
            .store(self.conns.len(), Ordering::Relaxed);
        if self.market_closed() {
            self.feed.status.set_conn_state(idx, feed_state::CLOSED);
        }
    }

    /// True when a demand change or new credentials wait.
    pub fn has_input(&self) -> bool {
        !self.feed.upstream.is_empty() || self.feed.renew.as_ref().is_some_and(|r| !r.is_empty())
    }

    /// The longest the thread may sleep for this pool's sake.
    pub fn wait(&self, now: Instant) -> Duration {
        let gate = self.gate.as_ref().map_or(Duration::MAX, |g| g.wait(now));
        if self.market_closed() {
            return gate;
        }
        let gate = gate.min(self.watch.wait(now));
        // Subscriptions awaiting confirmation are checked on the retry schedule's tick.
        let mut w = match self.retries.is_empty() {
            true => Duration::MAX,
            false => self.next_retry_check.saturating_duration_since(now),
        };
        for c in &self.conns {
            w = w.min(c.wait(now));
        }
        w.min(gate)
    }

    /// One pass: take demand, run the retry schedule, then each connection's pass. `fired`: bit
    /// `c` set when the poller reported connection `c`'s socket.
    pub fn pass(
        &mut self,
        registry: &Registry,
        inline: Option<&mut (dyn Inline + 'static)>,
        fired: u64,
    ) {
        let now = Instant::now();
        match self.gate.as_mut().and_then(|g| g.check(now)) {
            Some(true) => self.market_opens(),
            Some(false) => self.market_closes(registry),
            None => {}
        }
        // Demand is still taken while closed: each connection re-subscribes what is wanted
        // when it opens.
        self.take_demand(now);
        let stalled = self.judge(now);
        // New credentials are taken at once, closed or not: left in the inbox they would keep
        // `has_input` true and the thread awake all night.
        let renewed = match self.feed.renew.as_mut().filter(|r| !r.is_empty()) {
            Some(inbox) => inbox.take().map(|r| self.take_renewal(r)).is_some(),
            None => false,
        };
        if self.market_closed() {
            if renewed {
                // Each connection dials with them when the market opens.
                for c in &mut self.conns {
                    c.set_protocol((self.feed.protocol)(), &self.feed.status);
                }
            }
            return;
        }
        if now >= self.next_retry_check {
            self.next_retry_check = now + RETRY_CHECK;
            self.run_retries(now);
        }
        let Pool {
            feed,
            retries,
            conns,
            auth_note,
            ..
        } = self;
        let mut ctx = Ctx {
            cfg: &feed.cfg,
            status: &feed.status,
            registry,
            retries,
            inline,
            ticks: &mut feed.ticks,
            router_bell: feed.router_bell.as_deref(),
            auth_note,
            symbols: &feed.registry,
            journal: feed.journal.as_mut(),
        };
        for c in conns.iter_mut() {
            if renewed {
                c.renew(&mut ctx, (feed.protocol)());
            }
            if stalled & (1 << c.idx) != 0 {
                c.stall(&mut ctx);
            }
            c.pass(&mut ctx, fired & (1 << c.idx) != 0);
        }
    }

    /// When due ([`super::watch::WATCH_EVERY`]): judges the feed's symbols (stale or not) and
    /// returns the open connections found stalled, as bits.
    fn judge(&mut self, now: Instant) -> u64 {
        if !self.watch.due(now) {
            return 0;
        }
        let now_ns = tickwire_engine::clock::now_ns();
        let closed = self.market_closed();
        let market = self.feed.hours.as_ref().map(|h| &*h.market);
        let cfg = self.feed.cfg.stale;
        let judged = self.watch.judge(
            &self.feed.status,
            &self.feed.registry,
            market,
            closed,
            &cfg,
            now_ns,
        );
        let mut stalled = 0u64;
        for c in self.conns.iter().filter(|c| !closed && c.is_open()) {
            if judged[c.idx] > 0 && c.stalled(now_ns, &cfg) {
                stalled |= 1 << c.idx;
            }
        }
        stalled
    }

    /// Swaps in the protocol made with new credentials; each connection then reconnects with it
    /// and re-subscribes what it carried (its `Demand` stays).
    fn take_renewal(&mut self, r: Renewal) {
        tracing::info!(
            "{} feed: {}; reconnecting its {} connection(s) with them",
            self.proto.name(),
            r.why,
            self.conns.len()
        );
        self.proto = (r.factory)();
        self.feed.protocol = r.factory;
        self.auth_note = AuthNote::Renewed;
    }

    /// Closes every connection.
    pub fn close(&mut self) {
        for c in &mut self.conns {
            c.close();
        }
        self.feed.status.connected.store(false, Ordering::Relaxed);
    }

    /// Applies the router's demand changes: each symbol to its connection. A symbol the broker does
    /// not list is rejected at once (and not retried); one no connection has room for is rejected
    /// and retried as room appears.
    fn take_demand(&mut self, now: Instant) {
        while let Ok(cmd) = self.feed.upstream.pop() {
            match cmd {
                Upstream::Subscribe { symbol, mode } => self.subscribe(symbol, mode, now),
                Upstream::Unsubscribe { symbol } => self.unsubscribe(symbol),
            }
        }
    }

    fn subscribe(&mut self, sym: SymbolId, mode: Mode, now: Instant) {
        if !self.proto.knows(sym) {
            self.feed
                .status
                .set_symbol_state(sym, upstream_state::REJECTED);
            return;
        }
        let prev = self.assign.conn_of(sym);
        match self.place(sym, mode) {
            Some(c) => {
                self.parked.remove(&sym);
                self.conns[c].demand.set(sym, Some(mode));
                let status = &*self.feed.status;
                // New, not confirmed yet, or moved to another connection (a mode that did not fit).
                if status.symbol_state(sym) != upstream_state::LIVE || prev != Some(c) {
                    status.set_symbol_state(sym, upstream_state::PENDING);
                    self.retries.subscribed(sym, now);
                }
            }
            None => {
                self.parked.insert(sym, mode);
                let status = &*self.feed.status;
                status.set_symbol_state(sym, upstream_state::REJECTED);
                self.retries.rejected(sym, now);
            }
        }
    }

    /// Places `sym` in `mode` on a connection (opening one if needed); `None` when every
    /// connection the broker allows is full. A symbol whose new mode does not fit on its
    /// connection moves: it is dropped on the old one.
    fn place(&mut self, sym: SymbolId, mode: Mode) -> Option<usize> {
        let prev = self.assign.conn_of(sym);
        let placed = self.assign.place(sym, mode);
        if let Some(p) = prev.filter(|&p| placed != Ok(p)) {
            self.drop_from(p, sym);
        }
        let Ok(c) = placed else {
            self.full_logged += 1;
            if self.full_logged <= 10 {
                tracing::warn!(
                    "{} feed: its {} connections are full ({} instruments each, and the broker's \
                     per-mode limits); {} waits for room",
                    self.proto.name(),
                    self.limits.connections,
                    self.limits.per_connection,
                    self.name_of(sym)
                );
            }
            return None;
        };
        while self.conns.len() <= c {
            self.open_conn();
        }
        if let Some(a) = self.feed.status.conn_of.get(sym as usize) {
            a.store(c as u8, Ordering::Relaxed);
        }
        self.record_count(c);
        Some(c)
    }

    /// Stops asking connection `c` for `sym` (placement already took it off).
    fn drop_from(&mut self, c: usize, sym: SymbolId) {
        self.conns[c].demand.set(sym, None);
        self.record_count(c);
    }

    /// Publishes how many symbols connection `c` carries, for `/status`.
    fn record_count(&self, c: usize) {
        self.feed.status.conns[c]
            .symbols
            .store(self.assign.count(c) as u64, Ordering::Relaxed);
    }

    fn unsubscribe(&mut self, sym: SymbolId) {
        self.parked.remove(&sym);
        if let Some(c) = self.assign.remove(sym) {
            self.drop_from(c, sym);
        }
        self.feed.status.set_symbol_state(sym, upstream_state::NONE);
        self.feed.status.health.reset(sym);
        self.retries.done(sym);
    }

    /// Asks again for symbols whose time has come: subscribed on an open connection and not live
    /// yet, or rejected.
    fn run_retries(&mut self, now: Instant) {
        if self.retries.is_empty() {
            return;
        }
        // `retry` needs the whole pool; the schedule is lent out meanwhile (an empty one with
        // no delays stands in, and nothing reads it).
        let mut retries = std::mem::replace(
            &mut self.retries,
            Retries::new(Duration::ZERO, Duration::ZERO),
        );
        retries.due(now, |sym, why| self.retry(sym, why));
        self.retries = retries;
    }

    /// `EXCHANGE:SYMBOL`, for logs.
    fn name_of(&self, sym: SymbolId) -> String {
        match self.feed.registry.info(sym) {
            Some(i) => format!("{}:{}", i.exchange, i.symbol),
            None => format!("symbol id {sym}"),
        }
    }

    /// One symbol's turn on the retry schedule; `false` drops it from the schedule.
    fn retry(&mut self, sym: SymbolId, why: Waiting) -> bool {
        let status = &*self.feed.status;
        let state = status.symbol_state(sym);
        if state == upstream_state::LIVE || state == upstream_state::NONE {
            return false;
        }
        let c = match self.assign.conn_of(sym) {
            Some(c) => c,
            // Waiting for room on a full pool: place it now if room appeared.
            None => {
                let Some(&mode) = self.parked.get(&sym) else {
                    return false;
                };
                return match self.place(sym, mode) {
                    Some(c) => {
                        self.parked.remove(&sym);
                        self.conns[c].demand.set(sym, Some(mode));
                        let status = &*self.feed.status;
                        status.set_symbol_state(sym, upstream_state::PENDING);
                        true
                    }
                    None => true,
                };
            }
        };
        let conn = &mut self.conns[c];
        if conn.demand.get(sym).is_none() {
            return false;
        }
        if !conn.is_open() {
            return true; // the reconnect re-subscribes it
        }
        conn.demand.resend(sym);
        status.set_symbol_state(sym, upstream_state::PENDING);
        status.resubscribes.fetch_add(1, Ordering::Relaxed);
        if why == Waiting::Rejected || status.resubscribes.load(Ordering::Relaxed) <= 10 {
            tracing::info!(
                "{} feed: asking again for {} ({})",
                self.proto.name(),
                self.name_of(sym),
                match why {
                    Waiting::Rejected => "rejected",
                    Waiting::Unconfirmed => "no data since the subscribe",
                }
            );
        }
        true
    }
}
