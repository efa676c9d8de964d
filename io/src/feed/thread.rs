//! The feed IO thread: one `mio::Poll`, one upstream connection driven by the [`Machine`], and the
//! broker's [`BrokerProtocol`] for everything broker-specific. Every broker runs this same loop.
//!
//! Each pass: take demand changes from the router (subscribe / unsubscribe / mode, batched), do what
//! the machine says is due (dial, keepalive, give up), move the socket on (prepare on a helper
//! thread → TCP → TLS → upgrade → open), and read every frame the socket has, parsing it straight
//! into ticks.
//!
//! Ticks leave either through the SPSC ring to the router thread (whose doorbell is rung once per
//! frame) or, when the router runs inline on this thread, straight into the router's tick path,
//! with a router pass after every frame and every wake-up; the router's doorbell then wakes this
//! thread's poller (`WAKE`).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use tickwire_engine::clock::now_ns;
use tickwire_engine::doorbell::Doorbell;
use tickwire_engine::router::{Inline, Upstream};
use tickwire_engine::Tick;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{ClientHandshake, Message, WebSocket};

use super::demand::{Changes, Demand};
use super::dial::{self, Prepared};
use super::error::{Action, FeedError};
use super::machine::{Due, Machine, MachineConfig};
use super::protocol::{BrokerProtocol, Incoming};
use super::sink::TickSink;
use super::status::{feed_state, upstream_state, FeedStatus};
use super::stream::Stream;

const SOCK: Token = Token(0);
/// The inline router's doorbell wakes the poller through this token.
const WAKE: Token = Token(1);
/// Most bytes tungstenite asks the socket for per read. It zero-fills that much of its buffer before
/// every read (tungstenite 0.30, `FrameCodec::read_in`), so its 128 KiB default cost ~1 µs a read,
/// on every frame's path; 16 KiB still takes a 1 M ticks/s frame (~24 KB) in two reads.
/// `bench e2e` at 100 k/s: mock send → shm p50 7.5 → 6.7 µs.
const READ_CHUNK: usize = 16 * 1024;

/// Feed settings the broker does not decide.
#[derive(Clone, Debug)]
pub struct FeedConfig {
    /// Backoff, timeouts; `dead_after` and `keepalive` are taken from the broker's
    /// [`super::protocol::Liveness`] unless set here.
    pub machine: MachineConfig,
    /// Override the broker's dead-connection timeout.
    pub dead_after: Option<Duration>,
    /// Largest WebSocket message accepted.
    pub max_message: usize,
    /// Core to pin to.
    pub core: Option<usize>,
    /// Extra CA certificates (PEM) trusted for wss:// besides the Mozilla roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            machine: MachineConfig::default(),
            dead_after: None,
            max_message: 4 << 20,
            core: None,
            ca_file: None,
        }
    }
}

/// What the thread is given.
pub struct Feed {
    /// Settings.
    pub cfg: FeedConfig,
    /// The broker.
    pub protocol: Box<dyn BrokerProtocol>,
    /// Ticks to the router (unused when the router runs inline).
    pub ticks: rtrb::Producer<Tick>,
    /// Demand changes from the router.
    pub upstream: rtrb::Consumer<Upstream>,
    /// Shared status.
    pub status: Arc<FeedStatus>,
    /// Rung after each frame's ticks are pushed, so a parked router wakes at once.
    pub router_bell: Option<Arc<Doorbell>>,
    /// The router, when it runs on this thread ([`Inline`]): a pass runs after every frame and
    /// after every wake-up, and its doorbell wakes this thread's poller.
    pub inline_router: Option<Box<dyn Inline>>,
}

enum Sock {
    None,
    Preparing(Receiver<Result<Prepared, FeedError>>),
    Connecting(mio::net::TcpStream, Prepared),
    Handshaking(MidHandshake<ClientHandshake<Stream>>),
    Open(WebSocket<Stream>),
}

impl Feed {
    /// Starts the thread; it runs until `stop` is set.
    pub fn spawn(self, stop: Arc<AtomicBool>) -> io::Result<JoinHandle<()>> {
        let name = self.protocol.name();
        std::thread::Builder::new()
            .name(format!("tickwire-feed-{name}"))
            .spawn(move || {
                if let Err(e) = tickwire_engine::affinity::pin_current(self.cfg.core) {
                    eprintln!("{name} feed: {e}; running unpinned");
                }
                let mut me = self;
                if let Err(e) = me.run(&stop) {
                    eprintln!("{name} feed: stopped: {e}");
                }
            })
    }

    fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let mut poll = Poll::new()?;
        let mut events = Events::with_capacity(64);
        let inline_bell = match &self.inline_router {
            Some(r) => {
                let waker = mio::Waker::new(poll.registry(), WAKE)?;
                r.set_wake(Box::new(move || {
                    let _ = waker.wake();
                }));
                Some(r.doorbell())
            }
            None => None,
        };
        let live = self.protocol.liveness();
        let mut mcfg = self.cfg.machine.clone();
        mcfg.dead_after = self.cfg.dead_after.unwrap_or(live.dead_after);
        mcfg.keepalive = live.keepalive.as_ref().map(|(every, _)| *every);
        let keepalive_msg = live.keepalive.map(|(_, m)| m);
        let mut m = Machine::new(mcfg, Instant::now(), now_ns() as u64);
        let mut demand = Demand::default();
        let mut out: Vec<Message> = Vec::new();
        let mut sock = Sock::None;
        self.status
            .state
            .store(feed_state::BACKOFF, Ordering::Relaxed);
        while !stop.load(Ordering::Relaxed) {
            // Sleep until something is due; while an attempt or a connection is up, look again
            // every millisecond for demand from a router thread (which does not wake this poller).
            let cap = match sock {
                Sock::None => Duration::from_millis(5),
                _ => Duration::from_millis(1),
            };
            let timeout = m.wait(Instant::now()).min(cap);
            match (&mut self.inline_router, &inline_bell) {
                (Some(router), Some(bell)) => {
                    // Announce the sleep, then look once more (see `Doorbell`): a control pushed
                    // before the announcement is seen here, one pushed after it wakes the poller.
                    bell.will_sleep();
                    let t = if router.has_input() || !self.upstream.is_empty() {
                        Duration::ZERO
                    } else {
                        timeout
                    };
                    let r = poll.poll(&mut events, Some(t));
                    bell.awake();
                    r?;
                }
                _ => poll.poll(&mut events, Some(timeout))?,
            }
            self.take_demand(&mut demand);
            let changes = demand.take_changes();
            if let Sock::Open(ws) = &mut sock {
                if !changes.is_empty() {
                    self.encode(&changes, &mut out);
                    if let Err(e) = send_all(ws, &mut out) {
                        sock = self.fail(&mut poll, sock, &mut m, FeedError::retry(e));
                    }
                }
            }
            match m.due(Instant::now()) {
                Due::Nothing => {}
                Due::Dial => {
                    self.protocol.reset();
                    self.status.attempts.fetch_add(1, Ordering::Relaxed);
                    self.status
                        .state
                        .store(feed_state::CONNECTING, Ordering::Relaxed);
                    m.dialing(Instant::now());
                    sock = match dial::prepare(self.protocol.connect_job()) {
                        Ok(rx) => Sock::Preparing(rx),
                        Err(e) => {
                            let e = FeedError::retry(format!("dial: {e}"));
                            self.fail(&mut poll, Sock::None, &mut m, e)
                        }
                    };
                }
                Due::Keepalive => {
                    if let (Sock::Open(ws), Some(k)) = (&mut sock, &keepalive_msg) {
                        out.extend(k.iter().cloned());
                        if let Err(e) = send_all(ws, &mut out) {
                            sock = self.fail(&mut poll, sock, &mut m, FeedError::retry(e));
                        }
                    }
                    m.keepalive_sent(Instant::now());
                }
                Due::Fail(e) => sock = self.fail(&mut poll, sock, &mut m, e),
            }
            sock = self.advance(&mut poll, sock, &mut m, &mut demand, &mut out);
            // The inline router's pass over controls, flush and heartbeat comes after the frames:
            // a frame that woke the poller is read first (each frame has had its own pass).
            if let Some(r) = &mut self.inline_router {
                r.pass();
            }
        }
        if let Sock::Open(mut ws) = sock {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
        self.status.connected.store(false, Ordering::Relaxed);
        if let Some(r) = self.inline_router.take() {
            r.finish();
        }
        Ok(())
    }

    /// Applies the router's demand changes to this connection's wanted set. A symbol the broker
    /// does not list is rejected at once.
    fn take_demand(&mut self, demand: &mut Demand) {
        while let Ok(cmd) = self.upstream.pop() {
            let (sym, mode) = match cmd {
                Upstream::Subscribe { symbol, mode } => (symbol, Some(mode)),
                Upstream::Unsubscribe { symbol } => (symbol, None),
            };
            if mode.is_some() && !self.protocol.knows(sym) {
                self.status.set_symbol_state(sym, upstream_state::REJECTED);
                continue;
            }
            demand.set(sym, mode);
            match mode {
                Some(_) if self.status.symbol_state(sym) != upstream_state::LIVE => {
                    self.status.set_symbol_state(sym, upstream_state::PENDING)
                }
                Some(_) => {}
                None => self.status.set_symbol_state(sym, upstream_state::NONE),
            }
        }
    }

    fn encode(&mut self, changes: &Changes, out: &mut Vec<Message>) {
        let per_message = self.protocol.limits().per_message;
        let p = &mut self.protocol;
        changes.for_each_request(per_message, |r| p.encode(r, out));
    }

    /// Moves the socket one step on.
    fn advance(
        &mut self,
        poll: &mut Poll,
        sock: Sock,
        m: &mut Machine,
        demand: &mut Demand,
        out: &mut Vec<Message>,
    ) -> Sock {
        match sock {
            Sock::Preparing(rx) => match rx.try_recv() {
                Ok(Ok(p)) => match mio::net::TcpStream::connect(p.addr) {
                    Ok(mut tcp) => match poll.registry().register(
                        &mut tcp,
                        SOCK,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        Ok(()) => Sock::Connecting(tcp, p),
                        Err(e) => self.fail(poll, Sock::None, m, FeedError::retry(e.to_string())),
                    },
                    Err(e) => self.fail(
                        poll,
                        Sock::None,
                        m,
                        FeedError::retry(format!("connect: {e}")),
                    ),
                },
                Ok(Err(e)) => self.fail(poll, Sock::None, m, e),
                Err(TryRecvError::Empty) => Sock::Preparing(rx),
                Err(TryRecvError::Disconnected) => {
                    self.fail(poll, Sock::None, m, FeedError::retry("dial helper died"))
                }
            },
            Sock::Connecting(tcp, p) => match tcp.peer_addr() {
                Ok(_) => self.handshake(poll, tcp, p, m, demand, out),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Sock::Connecting(tcp, p),
                Err(e) => {
                    let e = FeedError::retry(format!("connect {}: {e}", p.addr));
                    self.fail(poll, Sock::Connecting(tcp, p), m, e)
                }
            },
            Sock::Handshaking(mid) => match mid.handshake() {
                Ok((ws, _)) => self.opened(poll, ws, m, demand, out),
                Err(HandshakeError::Interrupted(mid)) => Sock::Handshaking(mid),
                Err(HandshakeError::Failure(e)) => {
                    let e = self.protocol.handshake_error(e);
                    self.fail(poll, Sock::None, m, e)
                }
            },
            Sock::Open(mut ws) => {
                let res = self
                    .read_frames(&mut ws, m, out)
                    .and_then(|()| self.poll_protocol(&mut ws, out));
                match res {
                    Ok(()) => Sock::Open(ws),
                    Err(e) => self.fail(poll, Sock::Open(ws), m, e),
                }
            }
            s @ Sock::None => s,
        }
    }

    fn handshake(
        &mut self,
        poll: &mut Poll,
        tcp: mio::net::TcpStream,
        p: Prepared,
        m: &mut Machine,
        demand: &mut Demand,
        out: &mut Vec<Message>,
    ) -> Sock {
        let _ = tcp.set_nodelay(true);
        let stream = if p.tls {
            match Stream::tls(tcp, &p.host, self.cfg.ca_file.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    return self.fail(poll, Sock::None, m, FeedError::stop(format!("tls: {e}")))
                }
            }
        } else {
            Stream::Plain(tcp)
        };
        let req = match dial::upgrade_request(&p.req) {
            Ok(r) => r,
            Err(e) => return self.fail(poll, Sock::None, m, e),
        };
        let cfg = WebSocketConfig::default()
            .read_buffer_size(READ_CHUNK)
            .max_message_size(Some(self.cfg.max_message))
            .max_frame_size(Some(self.cfg.max_message));
        match tungstenite::client::client_with_config(req, stream, Some(cfg)) {
            Ok((ws, _)) => self.opened(poll, ws, m, demand, out),
            Err(HandshakeError::Interrupted(mid)) => Sock::Handshaking(mid),
            Err(HandshakeError::Failure(e)) => {
                let e = self.protocol.handshake_error(e);
                self.fail(poll, Sock::None, m, e)
            }
        }
    }

    /// Open: the broker's opening messages, then every wanted symbol again with its mode.
    fn opened(
        &mut self,
        poll: &mut Poll,
        mut ws: WebSocket<Stream>,
        m: &mut Machine,
        demand: &mut Demand,
        out: &mut Vec<Message>,
    ) -> Sock {
        m.opened(Instant::now());
        self.status.connected.store(true, Ordering::Relaxed);
        self.status.state.store(feed_state::OPEN, Ordering::Relaxed);
        self.status.connects.fetch_add(1, Ordering::Relaxed);
        self.protocol.on_open(out);
        let all = demand.resubscribe();
        for syms in all.subscribe.values() {
            for &s in syms {
                self.status.set_symbol_state(s, upstream_state::PENDING);
            }
        }
        self.encode(&all, out);
        match send_all(&mut ws, out) {
            Ok(()) => Sock::Open(ws),
            Err(e) => self.fail(
                poll,
                Sock::Open(ws),
                m,
                FeedError::retry(format!("subscribe: {e}")),
            ),
        }
    }

    /// Drops the socket, records why, and lets the machine decide what next.
    fn fail(&mut self, poll: &mut Poll, sock: Sock, m: &mut Machine, e: FeedError) -> Sock {
        match sock {
            Sock::Connecting(mut t, _) => {
                let _ = poll.registry().deregister(&mut t);
            }
            Sock::Open(mut ws) => {
                // Best effort: say goodbye with a close frame rather than a bare TCP reset.
                let _ = ws.close(None);
                let _ = ws.flush();
                let _ = poll.registry().deregister(ws.get_mut().tcp());
            }
            _ => {}
        }
        let name = self.protocol.name();
        let was_open = self.status.connected.swap(false, Ordering::Relaxed);
        match m.failed(&e, Instant::now()) {
            Some(_) => {
                if was_open {
                    eprintln!("{name} feed: disconnected: {e}");
                }
                self.status
                    .state
                    .store(feed_state::BACKOFF, Ordering::Relaxed);
            }
            None => {
                eprintln!("{name} feed: stopped: {e}");
                self.status
                    .state
                    .store(feed_state::STOPPED, Ordering::Relaxed);
            }
        }
        self.status.set_error(e.reason);
        Sock::None
    }

    /// Reads until the socket would block. Returns the error when the connection must go.
    fn read_frames(
        &mut self,
        ws: &mut WebSocket<Stream>,
        m: &mut Machine,
        out: &mut Vec<Message>,
    ) -> Result<(), FeedError> {
        loop {
            let msg = match ws.read() {
                Ok(msg) => msg,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(FeedError::retry(format!("read: {e}"))),
            };
            m.data(Instant::now());
            self.status.frames.fetch_add(1, Ordering::Relaxed);
            let incoming = match &msg {
                Message::Binary(b) => Incoming::Binary(b),
                Message::Text(t) => Incoming::Text(t.as_str()),
                Message::Close(c) => {
                    return Err(FeedError::retry(format!("closed by broker: {c:?}")))
                }
                _ => continue, // ping (answered by tungstenite), pong: liveness only
            };
            self.on_message(incoming, out)?;
        }
        send_all(ws, out).map_err(FeedError::retry)
    }

    /// The protocol's own pass ([`BrokerProtocol::poll`]); what it wants sent goes out now.
    fn poll_protocol(
        &mut self,
        ws: &mut WebSocket<Stream>,
        out: &mut Vec<Message>,
    ) -> Result<(), FeedError> {
        let res = self.protocol.poll(out);
        if !out.is_empty() {
            send_all(ws, out).map_err(FeedError::retry)?;
        }
        self.settle(res)
    }

    /// Applies a protocol's verdict: rejections are recorded and the connection stays; anything
    /// else is returned for the machine.
    fn settle(&mut self, res: Result<(), FeedError>) -> Result<(), FeedError> {
        let status = &*self.status;
        match res {
            Ok(()) => Ok(()),
            Err(FeedError {
                action: Action::Reject(syms),
                reason,
            }) => {
                status.broker_errors.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "{} feed: broker rejected {} symbols: {reason}",
                    self.protocol.name(),
                    syms.len()
                );
                // Only symbols still waiting: an error text may name numbers that are not ours.
                for s in syms {
                    if status.symbol_state(s) == upstream_state::PENDING {
                        status.set_symbol_state(s, upstream_state::REJECTED);
                    }
                }
                Ok(())
            }
            Err(e) => {
                status.broker_errors.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn on_message(&mut self, msg: Incoming<'_>, out: &mut Vec<Message>) -> Result<(), FeedError> {
        let recv = now_ns();
        let status = &*self.status;
        let mut sink = match &mut self.inline_router {
            Some(r) => TickSink::inline(&mut **r, status),
            None => TickSink::ring(&mut self.ticks, status),
        };
        let res = self.protocol.on_message(msg, recv, &mut sink, out);
        let ticks = sink.ticks();
        status.ticks.fetch_add(ticks as u64, Ordering::Relaxed);
        if ticks > 0 {
            if let Some(r) = &mut self.inline_router {
                r.pass();
            } else if let Some(b) = &self.router_bell {
                b.ring();
            }
        }
        self.settle(res)
    }
}

/// Writes and flushes `out` (emptying it); a full socket buffer is not an error (tungstenite keeps
/// the rest and the next flush sends it).
fn send_all(ws: &mut WebSocket<Stream>, out: &mut Vec<Message>) -> Result<(), String> {
    for msg in out.drain(..) {
        match ws.write(msg) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("send: {e}")),
        }
    }
    match ws.flush() {
        Ok(()) => Ok(()),
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(format!("flush: {e}")),
    }
}
