//! The client gateway: a WebSocket server on mio + tungstenite speaking the OpenAlgo-compatible
//! protocol (`client-protocol.md`), one IO thread owning the listener and its connections.
//!
//! - Requests are answered in order, one reply each (`session.rs`).
//! - Subscriptions go to the router as [`Control`] messages over an SPSC ring; the router's
//!   deliveries come back over another, one per changed symbol for this whole thread (the tick
//!   itself, or "read the latest value"), whatever the number of clients holding it.
//! - This thread fans each delivery out to its own sessions ([`fanout`]): each message is
//!   formatted once per update and mode, and the same bytes go to every session that wants them.
//! - Fresh by default: a session that keeps up gets every update as it comes; one whose backlog
//!   passes the high-water mark gets its updates conflated per symbol (latest value wins) until
//!   it drains under the low-water mark (`session/market.rs`). Nothing queues without bound.
//! - All of a connection's messages of one pass are queued, then written with one flush.

mod admission;
mod endpoints;
pub mod fanout;
#[cfg(test)]
mod fanout_alloc;
pub mod keys;
pub mod limits;
mod metrics;
pub mod notices;
mod protocol;
mod session;
mod shared;
mod sink;
mod status;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use tickwire_engine::hist::Batch;
use tickwire_engine::last::LastValues;
use tickwire_engine::router::{Control, Delivery, Mode};

pub use admission::Budget;
use admission::{Admission, Admit};
pub use limits::{LimitConfig, LimitOverrides, LimitState, LimitStats, Limits, Violation};
pub use protocol::{label, market_data, parse_mode, JsonStr, OutBuf};
use session::Session;
pub use shared::{ClassCounts, FeedRef, GatewayConfig, GatewayStats, Shared, ShmInfo};
pub use sink::SinkStats;
use tickwire_engine::doorbell::Doorbell;

use crate::ratelog::RateLog;

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// A bound gateway, ready to run on its own thread.
pub struct Gateway {
    shared: Shared,
    poll: Poll,
    bell: Arc<Doorbell>,
    listener: TcpListener,
    control: rtrb::Producer<Control>,
    deliveries: rtrb::Consumer<Delivery>,
    last: Arc<dyn LastValues>,
    /// The keys file's verifier thread, if there is a keys file ([`Gateway::keys_file`]).
    verifier: Option<keys::Verifier>,
}

impl Gateway {
    /// Binds the client port. Done first at start-up, so a busy port fails before anything else
    /// is created (OpenAlgo, too, refuses to move to another port: clients have 8765 configured).
    pub fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
        let l = std::net::TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        l.set_nonblocking(true)?;
        Ok(l)
    }

    /// A gateway on a listener from [`Gateway::listen`], reading values from `last`.
    pub fn new(
        listener: std::net::TcpListener,
        shared: Shared,
        control: rtrb::Producer<Control>,
        deliveries: rtrb::Consumer<Delivery>,
        last: Arc<dyn LastValues>,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let bell = Arc::new(Doorbell::new(move || {
            let _ = waker.wake();
        }));
        Ok(Self {
            shared,
            poll,
            bell,
            listener: TcpListener::from_std(listener),
            control,
            deliveries,
            last,
            verifier: None,
        })
    }

    /// Accepts the keys of `store` too (besides `GatewayConfig::api_keys`), verified on a thread
    /// of their own; `changed` (polled about once a second) says when to re-read the file.
    pub fn keys_file(
        &mut self,
        store: keys::KeyStore,
        changed: Box<dyn FnMut() -> bool + Send>,
    ) -> io::Result<()> {
        self.verifier = Some(keys::Verifier::spawn(store, changed, self.bell.clone())?);
        Ok(())
    }

    /// This IO thread's doorbell: the router rings it after delivering, so a sleeping IO thread
    /// wakes at once (and a busy one is not disturbed).
    pub fn doorbell(&self) -> Arc<Doorbell> {
        self.bell.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Counters.
    pub fn stats(&self) -> Arc<GatewayStats> {
        self.shared.stats.clone()
    }

    /// Runs the IO thread until `stop`; `router_bell` is rung after pushing control messages.
    pub fn spawn(
        self,
        stop: Arc<AtomicBool>,
        router_bell: Arc<Doorbell>,
    ) -> io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("tickwire-clients".into())
            .spawn(move || {
                if let Err(e) = tickwire_engine::affinity::pin_current(self.shared.cfg.core) {
                    tracing::warn!("client gateway: {e}; running unpinned");
                }
                if let Err(e) = self.run(&stop, &router_bell) {
                    tracing::error!("client gateway: stopped: {e}");
                }
            })
    }

    fn run(mut self, stop: &AtomicBool, router_bell: &Doorbell) -> io::Result<()> {
        let mut poll = std::mem::replace(&mut self.poll, Poll::new()?);
        poll.registry()
            .register(&mut self.listener, LISTENER, Interest::READABLE)?;
        let mut events = Events::with_capacity(1024);
        let cfg = &self.shared.cfg;
        let mut auth = keys::Auth::new(
            &cfg.api_keys,
            self.verifier.take(),
            cfg.limits.max_auth_attempts,
            cfg.limits.auth_failures_per_minute,
        );
        let n = self.shared.cfg.max_connections as usize;
        let base = self.shared.cfg.consumer_base;
        let mut clients = Clients {
            sessions: (0..n).map(|_| None).collect(),
            // Slot 0 is the router's pin holder for this thread (RouterConfig::consumers_per_io):
            // it holds the pinned subscriptions and is never delivered to, so no session takes it.
            free: (1..n).rev().collect(),
            admission: Admission::new(n, self.shared.cfg.pending),
            refusals: RateLog::new("client gateway: connection refused", REFUSAL_LOG_INTERVAL),
        };
        // Control messages the ring could not take yet; bounded by `MAX_OUTBOX` (a full outbox makes
        // new subscribe requests fail with a clear "busy" entry instead of growing).
        let mut outbox: VecDeque<Control> = VecDeque::new();
        for &symbol in &self.shared.cfg.pinned {
            outbox.push_back(Control::Subscribe {
                consumer: base,
                symbol,
                mode: Mode::Depth,
            });
        }
        let mut busy = true;
        let mut last_timers = Instant::now();
        let mut observed = notices::Observed::default();
        let mut buf = protocol::OutBuf::with_capacity(64 << 10);
        let mut fanout = fanout::Fanout::new(self.shared.registry.capacity());
        // Sessions written to in this pass (flushed once at its end).
        let mut touched: Vec<usize> = Vec::with_capacity(n);
        // Receive times of the ticks this pass wrote to sessions (wire → client).
        let mut latency = Batch::default();
        while !stop.load(Ordering::Relaxed) {
            // After a busy pass, look again at once; otherwise sleep in epoll until a socket, the
            // router's doorbell or the 100 ms timers wake us.
            let timeout = if busy {
                Duration::ZERO
            } else {
                self.bell.will_sleep();
                if self.deliveries.is_empty() && !auth.has_verdicts() {
                    Duration::from_millis(100)
                } else {
                    Duration::ZERO
                }
            };
            // A signal interrupting epoll_wait is an empty wake-up, not an error.
            match poll.poll(&mut events, Some(timeout)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
                r => r?,
            }
            self.bell.awake();
            let mut work = false;
            for ev in events.iter() {
                if ev.token() == WAKER {
                    continue;
                }
                work = true;
                if ev.token() == LISTENER {
                    self.accept(&poll, &mut clients, &mut fanout, &mut outbox);
                    continue;
                }
                let i = ev.token().0;
                let Some(s) = clients.sessions.get_mut(i).and_then(Option::as_mut) else {
                    continue;
                };
                let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                let blocked = s.needs_write_events();
                let view = View {
                    last: &*self.last,
                    fanout: &fanout,
                };
                s.on_event(&self.shared, &view, &mut outbox, &mut auth, readable);
                s.settle(i, blocked, &poll, &mut clients.admission, &mut fanout);
            }
            // Verdicts of the keys verifier: each waiting session gets its auth reply and reads
            // the requests it held back meanwhile.
            while let Some((v, name)) = auth.verdict() {
                work = true;
                let i = v.consumer.wrapping_sub(base) as usize;
                let Some(s) = clients.sessions.get_mut(i).and_then(Option::as_mut) else {
                    continue;
                };
                if s.serial() != v.serial {
                    continue;
                }
                let blocked = s.needs_write_events();
                let view = View {
                    last: &*self.last,
                    fanout: &fanout,
                };
                s.on_verdict(name, &self.shared, &view, &mut outbox, &mut auth);
                s.settle(i, blocked, &poll, &mut clients.admission, &mut fanout);
            }
            // Deliveries from the router, fanned out to the sessions holding each symbol. Bounded
            // per pass so sockets and requests are looked at in between.
            let mut taken = 0;
            let (mut written, mut conflated, mut bytes) = (0, 0, 0);
            while taken < MAX_DELIVERIES_PER_PASS {
                let Ok(mut d) = self.deliveries.pop() else {
                    break;
                };
                taken += 1;
                // Ticks of one symbol from one broker message carrying different field groups are
                // parts of one update (Fyers' quote and depth topics): one message, not two.
                while let (Delivery::Tick(t), Ok(Delivery::Tick(next))) =
                    (&d, self.deliveries.peek())
                {
                    if next.symbol_id != t.symbol_id
                        || next.recv_ts_ns != t.recv_ts_ns
                        || next.valid & t.valid != 0
                    {
                        break;
                    }
                    fanout.absorb(t);
                    d = Delivery::Tick(*next);
                    let _ = self.deliveries.pop();
                    taken += 1;
                }
                let f = fanout.deliver(
                    &d,
                    &mut clients.sessions,
                    &self.shared,
                    &*self.last,
                    &mut buf,
                );
                written += f.written;
                conflated += f.conflated;
                bytes += f.bytes;
                if let (Delivery::Tick(t), true) = (&d, f.written > 0) {
                    latency.add(t.recv_ts_ns);
                }
            }
            if taken > 0 {
                work = true;
                let st = &self.shared.stats;
                st.messages.fetch_add(written, Ordering::Relaxed);
                st.conflated.fetch_add(conflated, Ordering::Relaxed);
                st.bytes_out.fetch_add(bytes, Ordering::Relaxed);
            }
            let mut pushed = false;
            while let Some(c) = outbox.front() {
                if self.control.push(*c).is_err() {
                    break;
                }
                outbox.pop_front();
                pushed = true;
            }
            if pushed {
                router_bell.ring();
                work = true;
            }
            // One flush per session that has something to send; conflating ones check their
            // backlog and send their latest values once drained.
            touched.clear();
            touched.extend(
                clients
                    .sessions
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.as_ref().is_some_and(Session::wants_flush))
                    .map(|(i, _)| i),
            );
            for &i in &touched {
                if let Some(Some(s)) = clients.sessions.get_mut(i) {
                    let before = s.needs_write_events();
                    if s.drain(&self.shared) {
                        let before = s.written_bytes();
                        let n = fanout.send_marked(i, s, &self.shared, &*self.last, &mut buf);
                        let st = &self.shared.stats;
                        st.messages.fetch_add(n, Ordering::Relaxed);
                        st.bytes_out
                            .fetch_add(s.written_bytes() - before, Ordering::Relaxed);
                    }
                    if !before && s.needs_write_events() {
                        s.want_write_events(&poll, Token(i));
                    }
                    let starts = s.take_conflation_starts();
                    if starts > 0 {
                        self.shared
                            .stats
                            .slow_skips
                            .fetch_add(starts, Ordering::Relaxed);
                    }
                }
            }
            // After the pass's writes and flushes: one clock read for every tick it delivered.
            if !latency.is_empty() {
                latency.flush(
                    &self.shared.stats.wire_to_client,
                    tickwire_engine::clock::now_ns(),
                );
            }
            if last_timers.elapsed() >= Duration::from_millis(100) {
                last_timers = Instant::now();
                // Per-class conflation counts: one lock per 100 ms, none per update.
                let mut classes = self.shared.classes.lock().ok();
                for s in clients.sessions.iter_mut().flatten() {
                    if let (Some((name, c)), Some(m)) = (s.take_class_counts(), classes.as_mut()) {
                        add_class(m, name, c);
                    }
                }
                drop(classes);
                if let Some(names) = auth.reloaded() {
                    // The keys file changed: sessions of a key no longer in it are closed.
                    let mut closed = 0;
                    for s in clients.sessions.iter_mut().flatten() {
                        closed += usize::from(s.revoke_unless(&names));
                    }
                    if closed > 0 {
                        tracing::info!("API keys: closed {closed} sessions of revoked keys");
                    }
                }
                auth.timers(last_timers);
                observed.refresh(&self.shared, last_timers);
                for s in clients.sessions.iter_mut().flatten() {
                    s.timers(&self.shared, &observed);
                }
                if let Some(line) = clients.refusals.due(last_timers) {
                    tracing::warn!("{line}");
                }
                self.shared.limit_state.flush_logs(last_timers);
            }
            // Reap closed sessions; the router forgets them through UnsubscribeAll.
            for i in 0..clients.sessions.len() {
                if clients.sessions[i].as_ref().is_some_and(Session::is_closed) {
                    clients.release(i, &poll, &mut fanout, &mut outbox, &self.shared);
                    work = true;
                }
            }
            busy = work || !outbox.is_empty();
        }
        for s in clients.sessions.iter_mut().flatten() {
            s.close(1001, "server shutting down");
        }
        Ok(())
    }

    /// Accepts every waiting connection, within the slots and the pending budget.
    fn accept(
        &mut self,
        poll: &Poll,
        clients: &mut Clients,
        fanout: &mut fanout::Fanout,
        outbox: &mut VecDeque<Control>,
    ) {
        let stats = &self.shared.stats;
        let base = self.shared.cfg.consumer_base;
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // Out of file descriptors, typically: said once per interval, retried on the
                    // next readiness.
                    let now = Instant::now();
                    if let Some(line) = clients.refusals.hit(|| format!("accept: {e}"), now) {
                        tracing::warn!("{line}");
                    }
                    break;
                }
            };
            match clients.admission.admit(peer.ip(), clients.free.is_empty()) {
                Admit::Take => {}
                Admit::Evict(old) => {
                    if let Some(s) = clients.sessions[old].as_mut() {
                        s.evict();
                    }
                    clients.release(old, poll, fanout, outbox, &self.shared);
                    stats.evicted.fetch_add(1, Ordering::Relaxed);
                }
                Admit::Refuse => {
                    // Every slot is held by an authenticated client: refuse rather than queue.
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    let n = clients.sessions.len();
                    let line = clients.refusals.hit(
                        || format!("all {n} connection slots hold authenticated clients"),
                        Instant::now(),
                    );
                    if let Some(line) = line {
                        tracing::warn!("{line}");
                    }
                    continue;
                }
            }
            let Some(i) = clients.free.pop() else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            if poll
                .registry()
                .register(&mut stream, Token(i), Interest::READABLE)
                .is_err()
            {
                clients.free.push(i);
                continue;
            }
            let consumer = base + i as u32;
            let mut s = Session::new(stream, consumer, &self.shared.cfg);
            s.peer = peer.ip();
            clients.sessions[i] = Some(s);
            clients.admission.taken(i, peer.ip());
            stats.accepted.fetch_add(1, Ordering::Relaxed);
            stats.open.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The IO thread's connection slots.
struct Clients {
    /// By slot (consumer id − `consumer_base`).
    sessions: Vec<Option<Session>>,
    /// Free slots.
    free: Vec<usize>,
    /// Which slots are not authenticated yet, and the budget for them.
    admission: Admission,
    /// Refused connections and accept errors, said at most once per interval.
    refusals: RateLog,
}

impl Clients {
    /// Frees slot `i`: its session is dropped and the router forgets its subscriptions.
    fn release(
        &mut self,
        i: usize,
        poll: &Poll,
        fanout: &mut fanout::Fanout,
        outbox: &mut VecDeque<Control>,
        shared: &Shared,
    ) {
        let Some(mut s) = self.sessions.get_mut(i).and_then(Option::take) else {
            return;
        };
        let (base, stats) = (shared.cfg.consumer_base, &shared.stats);
        s.deregister(poll);
        if let Some((name, c)) = s.take_class_counts() {
            if let Ok(mut m) = shared.classes.lock() {
                add_class(&mut m, name, c);
            }
        }
        if let Some(key) = s.key_name() {
            if let Ok(mut c) = shared.limit_state.clients.lock() {
                c.leave(key);
            }
        }
        for symbol in s.symbols() {
            fanout.set(symbol, i, 0);
        }
        outbox.push_back(Control::UnsubscribeAll {
            consumer: base + i as u32,
        });
        self.admission.settled(i);
        self.free.push(i);
        stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Adds a session's class counts to its class's totals.
fn add_class(
    m: &mut std::collections::BTreeMap<Arc<str>, ClassCounts>,
    name: Arc<str>,
    c: ClassCounts,
) {
    let e = m.entry(name).or_default();
    e.conflations += c.conflations;
    e.queue_drops += c.queue_drops;
}

/// What an HTTP answer on the client IO thread may read besides [`Shared`]: last values
/// (`/ticks/latest`) and the thread's own fan-out index (client counts per symbol and mode).
pub struct View<'a> {
    /// Latest values.
    pub last: &'a dyn LastValues,
    /// Who holds which symbol.
    pub fanout: &'a fanout::Fanout,
}

/// At most one "connection refused" line per this interval (with the count).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Most router deliveries fanned out before the sockets are looked at again.
const MAX_DELIVERIES_PER_PASS: usize = 8192;

/// Most control messages held back while the router's ring is full.
pub const MAX_OUTBOX: usize = 65_536;
