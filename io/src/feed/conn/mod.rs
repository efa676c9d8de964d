//! One upstream connection: its socket as it moves from preparing (helper thread) through TCP, TLS
//! and the WebSocket upgrade to open, its [`Machine`], what it should carry ([`Demand`]), and its own
//! instance of the broker's protocol (per-connection broker state such as Fyers' topic ids). The
//! feed ([`super::pool`]) owns a few of these and says what each should carry; the thread
//! ([`super::thread`]) owns the poller.

mod stall;

use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use mio::{Interest, Registry, Token};
use tickwire_engine::clock::now_ns;
use tickwire_engine::doorbell::Doorbell;
use tickwire_engine::router::Inline;
use tickwire_engine::symbols::{SymbolId, SymbolRegistry};
use tickwire_engine::Tick;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{ClientHandshake, Message, WebSocket};

use super::assign::Retries;
use super::demand::Demand;
use super::dial::{self, Prepared};
use super::error::{Action, FeedError};
use super::machine::{Due, Machine};
use super::protocol::{BrokerProtocol, Incoming};
use super::record;
use super::said::Said;
use super::send::{encode, send_all};
use super::sink::TickSink;
use super::status::{feed_state, upstream_state, FeedStatus};
use super::stream::Stream;
use super::thread::FeedConfig;
use super::watch::DataClock;
use crate::journal::Appender;

/// Most bytes tungstenite asks the socket for per read. It zero-fills that much of its buffer before
/// every read (tungstenite 0.30, `FrameCodec::read_in`), so its 128 KiB default cost ~1 µs a read,
/// on every frame's path; 16 KiB still takes a 1 M ticks/s frame (~24 KB) in two reads.
/// `bench e2e` at 100 k/s: mock send → shm p50 7.5 → 6.7 µs.
const READ_CHUNK: usize = 16 * 1024;

/// What a connection's pass borrows from its feed and thread.
pub(super) struct Ctx<'a> {
    pub cfg: &'a FeedConfig,
    pub status: &'a FeedStatus,
    pub registry: &'a Registry,
    pub retries: &'a mut Retries,
    /// The router on this thread, if it runs inline.
    pub inline: Option<&'a mut (dyn Inline + 'static)>,
    /// Otherwise the ring to the router thread, and its doorbell.
    pub ticks: &'a mut rtrb::Producer<Tick>,
    pub router_bell: Option<&'a Doorbell>,
    /// What the feed's log last said about its credentials (a refusal is said once per refusal,
    /// not per connection or retry).
    pub auth_note: &'a mut AuthNote,
    /// Symbol names (journal events name what was subscribed).
    pub symbols: &'a SymbolRegistry,
    /// The feed's journal, when it has one.
    pub journal: Option<&'a mut Appender>,
}

/// What the log last said about a feed's credentials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum AuthNote {
    /// Nothing pending.
    #[default]
    Quiet,
    /// The broker refused them (said once).
    Refused,
    /// New ones came; the next open or refusal says how the broker took them.
    Renewed,
}

enum Sock {
    None,
    Preparing(Receiver<Result<Prepared, FeedError>>),
    Connecting(mio::net::TcpStream, Prepared),
    Handshaking(MidHandshake<ClientHandshake<Stream>>),
    Open(WebSocket<Stream>),
}

/// See the module docs.
pub(super) struct Conn {
    /// Index in the feed's pool (and in [`FeedStatus::conns`]).
    pub idx: usize,
    token: Token,
    sock: Sock,
    machine: Machine,
    /// What this connection should carry.
    pub demand: Demand,
    protocol: Box<dyn BrokerProtocol>,
    keepalive: Option<Vec<Message>>,
    out: Vec<Message>,
    /// Its log lines, each kind rate-limited ([`Said`]).
    said: Said,
    /// When it last delivered ticks, and how often it usually does.
    clock: DataClock,
}

impl Conn {
    /// A connection that dials at once.
    pub fn new(
        idx: usize,
        token: Token,
        protocol: Box<dyn BrokerProtocol>,
        cfg: &FeedConfig,
    ) -> Self {
        let live = protocol.liveness();
        let mut mcfg = cfg.machine.clone();
        mcfg.dead_after = cfg.dead_after.unwrap_or(live.dead_after);
        mcfg.keepalive = live.keepalive.as_ref().map(|(every, _)| *every);
        let seed = now_ns() as u64 ^ (idx as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Self {
            idx,
            token,
            sock: Sock::None,
            machine: Machine::new(mcfg, Instant::now(), seed),
            demand: Demand::default(),
            protocol,
            keepalive: live.keepalive.map(|(_, m)| m),
            out: Vec::new(),
            said: Said::new(),
            clock: DataClock::default(),
        }
    }

    /// True while the WebSocket is open.
    pub fn is_open(&self) -> bool {
        matches!(self.sock, Sock::Open(_))
    }

    /// How long the connection may sleep: until its machine's next deadline (keepalive, dead
    /// line, backoff), or a millisecond while a dial is in progress (the dial helper answers
    /// over a channel) or the protocol has work finishing off the thread.
    pub fn wait(&self, now: Instant) -> std::time::Duration {
        let busy = match self.sock {
            Sock::Preparing(_) | Sock::Connecting(..) | Sock::Handshaking(_) => true,
            Sock::Open(_) => self.protocol.has_work(),
            Sock::None => false,
        };
        let w = self.machine.wait(now);
        match busy {
            true => w.min(std::time::Duration::from_millis(1)),
            false => w,
        }
    }

    /// New credentials (or URL) while the connection is down for market hours: used at the next
    /// dial. A connection stopped for a configuration that could not work gets its chance again
    /// at the next session, like a running one would at once.
    pub fn set_protocol(&mut self, protocol: Box<dyn BrokerProtocol>, status: &FeedStatus) {
        self.protocol = protocol;
        if self.machine.phase() == super::machine::Phase::Stopped {
            self.machine.reset(Instant::now());
            status.set_conn_state(self.idx, feed_state::CLOSED);
        }
    }

    /// New credentials: drop the socket (whatever its state), take the protocol made with them,
    /// and dial at once. `demand` stays, so the reconnect re-subscribes every symbol in its mode.
    pub fn renew(&mut self, ctx: &mut Ctx<'_>, protocol: Box<dyn BrokerProtocol>) {
        self.drop_socket(ctx);
        self.protocol = protocol;
        self.machine.renew(Instant::now());
        ctx.status.set_conn_state(self.idx, feed_state::BACKOFF);
    }

    /// One pass: send demand changes, do what the machine says is due, move the socket on. An open
    /// socket is read only when the poller reported it (`fired`): it was read to `WouldBlock`
    /// last time, so nothing is waiting in it otherwise.
    pub fn pass(&mut self, ctx: &mut Ctx<'_>, fired: bool) {
        let changes = self.demand.take_changes();
        if !changes.is_empty() {
            if let Sock::Open(ws) = &mut self.sock {
                if let Some(j) = ctx.journal.as_deref_mut() {
                    record::changes(j, self.idx, ctx.symbols, &changes);
                }
                encode(&mut *self.protocol, &changes, &mut self.out);
                if let Err(e) = send_all(ws, &mut self.out) {
                    self.fail(ctx, FeedError::retry(e));
                }
            }
        }
        match self.machine.due(Instant::now()) {
            Due::Nothing => {}
            Due::Dial => self.dial(ctx),
            Due::Keepalive => {
                if let (Sock::Open(ws), Some(k)) = (&mut self.sock, &self.keepalive) {
                    self.out.extend(k.iter().cloned());
                    if let Err(e) = send_all(ws, &mut self.out) {
                        self.fail(ctx, FeedError::retry(e));
                    }
                }
                self.machine.keepalive_sent(Instant::now());
            }
            Due::Fail(e) => self.fail(ctx, e),
        }
        if fired || !self.is_open() {
            self.advance(ctx);
        } else if let Err(e) = self.poll_protocol(ctx) {
            self.fail(ctx, e);
        }
    }

    fn dial(&mut self, ctx: &mut Ctx<'_>) {
        self.protocol.reset();
        ctx.status.attempts.fetch_add(1, Ordering::Relaxed);
        ctx.status.conns[self.idx]
            .attempts
            .fetch_add(1, Ordering::Relaxed);
        // The rare retry of refused credentials keeps showing `credentials_rejected` until the
        // broker says otherwise: a brief `connecting` would count as a recovery, and clients
        // would be told of the refusal again every 5 minutes.
        if !self.machine.is_rejected() {
            ctx.status.set_conn_state(self.idx, feed_state::CONNECTING);
        }
        self.machine.dialing(Instant::now());
        match dial::prepare(self.protocol.connect_job()) {
            Ok(rx) => self.sock = Sock::Preparing(rx),
            Err(e) => self.fail(ctx, FeedError::retry(format!("dial: {e}"))),
        }
    }

    /// Moves the socket one step on.
    fn advance(&mut self, ctx: &mut Ctx<'_>) {
        match std::mem::replace(&mut self.sock, Sock::None) {
            Sock::Preparing(rx) => match rx.try_recv() {
                Ok(Ok(p)) => match mio::net::TcpStream::connect(p.addr) {
                    Ok(mut tcp) => {
                        let i = Interest::READABLE | Interest::WRITABLE;
                        match ctx.registry.register(&mut tcp, self.token, i) {
                            Ok(()) => self.sock = Sock::Connecting(tcp, p),
                            Err(e) => self.fail(ctx, FeedError::retry(e.to_string())),
                        }
                    }
                    Err(e) => self.fail(ctx, FeedError::retry(format!("connect: {e}"))),
                },
                Ok(Err(e)) => self.fail(ctx, e),
                Err(TryRecvError::Empty) => self.sock = Sock::Preparing(rx),
                Err(TryRecvError::Disconnected) => {
                    self.fail(ctx, FeedError::retry("dial helper died"))
                }
            },
            Sock::Connecting(tcp, p) => match tcp.peer_addr() {
                Ok(_) => self.handshake(ctx, tcp, p),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    self.sock = Sock::Connecting(tcp, p)
                }
                Err(e) => {
                    let e = FeedError::retry(format!("connect {}: {e}", p.addr));
                    self.sock = Sock::Connecting(tcp, p);
                    self.fail(ctx, e)
                }
            },
            Sock::Handshaking(mid) => match mid.handshake() {
                Ok((ws, _)) => self.opened(ctx, ws),
                Err(HandshakeError::Interrupted(mid)) => self.sock = Sock::Handshaking(mid),
                Err(HandshakeError::Failure(e)) => {
                    let e = self.protocol.handshake_error(e);
                    self.fail(ctx, e)
                }
            },
            Sock::Open(mut ws) => {
                let res = self.read_frames(ctx, &mut ws);
                self.sock = Sock::Open(ws);
                if let Err(e) = res.and_then(|()| self.poll_protocol(ctx)) {
                    self.fail(ctx, e);
                }
            }
            Sock::None => {}
        }
    }

    fn handshake(&mut self, ctx: &mut Ctx<'_>, tcp: mio::net::TcpStream, p: Prepared) {
        let _ = tcp.set_nodelay(true);
        let stream = if p.tls {
            match Stream::tls(tcp, &p.host, ctx.cfg.ca_file.as_deref()) {
                Ok(s) => s,
                Err(e) => return self.fail(ctx, FeedError::stop(format!("tls: {e}"))),
            }
        } else {
            Stream::Plain(tcp)
        };
        let req = match dial::upgrade_request(&p.req) {
            Ok(r) => r,
            Err(e) => return self.fail(ctx, e),
        };
        let cfg = WebSocketConfig::default()
            .read_buffer_size(READ_CHUNK)
            .max_message_size(Some(ctx.cfg.max_message))
            .max_frame_size(Some(ctx.cfg.max_message));
        match tungstenite::client::client_with_config(req, stream, Some(cfg)) {
            Ok((ws, _)) => self.opened(ctx, ws),
            Err(HandshakeError::Interrupted(mid)) => self.sock = Sock::Handshaking(mid),
            Err(HandshakeError::Failure(e)) => {
                let e = self.protocol.handshake_error(e);
                self.fail(ctx, e)
            }
        }
    }

    /// Open: the broker's opening messages, then every wanted symbol again with its mode.
    fn opened(&mut self, ctx: &mut Ctx<'_>, mut ws: WebSocket<Stream>) {
        let now = Instant::now();
        self.machine.opened(now);
        let which = match std::mem::take(ctx.auth_note) {
            AuthNote::Quiet => None,
            AuthNote::Refused => Some("the credentials it had refused"),
            AuthNote::Renewed => Some("the new credentials"),
        };
        if let Some(which) = which {
            tracing::info!(
                "{} feed (connection {}): the broker accepted {which}",
                self.protocol.name(),
                self.idx
            );
        } else if let Some(line) = self.said.connects.hit(
            || format!("{} (connection {})", self.protocol.name(), self.idx),
            now,
        ) {
            tracing::info!("{line}");
        }
        self.clock.restart(now_ns());
        let status = ctx.status;
        status.set_conn_state(self.idx, feed_state::OPEN);
        status.connects.fetch_add(1, Ordering::Relaxed);
        status.conns[self.idx]
            .connects
            .fetch_add(1, Ordering::Relaxed);
        self.protocol.on_open(&mut self.out);
        let all = self.demand.resubscribe();
        if let Some(j) = ctx.journal.as_deref_mut() {
            record::connect(j, self.idx);
            record::changes(j, self.idx, ctx.symbols, &all);
        }
        for syms in all.subscribe.values() {
            for &s in syms {
                status.set_symbol_state(s, upstream_state::PENDING);
                ctx.retries.subscribed(s, now);
            }
        }
        encode(&mut *self.protocol, &all, &mut self.out);
        let res = send_all(&mut ws, &mut self.out);
        self.sock = Sock::Open(ws);
        if let Err(e) = res {
            return self.fail(ctx, FeedError::retry(format!("subscribe: {e}")));
        }
        // Read once now: what the broker sent right behind its 101 (Dhan's disconnect packet for
        // a refused token, Upstox's market_info) may already sit in the WebSocket's buffer, read
        // with the handshake, and the edge-triggered poller will not report it again.
        self.advance(ctx);
    }

    /// Drops the socket, records why, and lets the machine decide what next.
    fn fail(&mut self, ctx: &mut Ctx<'_>, e: FeedError) {
        let was_open = self.is_open();
        if let (true, Some(j)) = (was_open, ctx.journal.as_deref_mut()) {
            record::disconnect(j, self.idx, &e.reason);
        }
        self.drop_socket(ctx);
        let name = self.protocol.name();
        let c = self.idx;
        let delay = self.machine.failed(&e, Instant::now());
        if e.is_credentials() {
            if std::mem::replace(ctx.auth_note, AuthNote::Refused) != AuthNote::Refused {
                tracing::error!(
                    "{name} feed (connection {c}): the broker refused the credentials: {e}. \
                     Waiting for new ones (rewrite the credentials file, or send SIGHUP after \
                     updating them); trying the same ones again every {} s meanwhile",
                    delay.unwrap_or_default().as_secs()
                );
            }
            ctx.status
                .set_conn_state(c, feed_state::CREDENTIALS_REJECTED);
            ctx.status.set_error(c, e.reason);
            return;
        }
        match delay {
            Some(_) => {
                if was_open {
                    if let Some(line) = self
                        .said
                        .disconnects
                        .hit(|| format!("{name} (connection {c}): {e}"), Instant::now())
                    {
                        tracing::warn!("{line}; reconnecting");
                    }
                } else if let Some(line) = self
                    .said
                    .dial_failures
                    .hit(|| format!("{name} (connection {c}): {e}"), Instant::now())
                {
                    tracing::warn!("{line}; retrying with backoff");
                }
                ctx.status.set_conn_state(c, feed_state::BACKOFF);
            }
            None => {
                tracing::error!(
                    "{name} feed (connection {c}): stopped, not retrying: {e} \
                     (fix the configuration, then reload or restart)"
                );
                ctx.status.set_conn_state(c, feed_state::STOPPED);
            }
        }
        ctx.status.set_error(c, e.reason);
    }

    /// Drops the socket (with a close frame when open) and anything queued for it.
    fn drop_socket(&mut self, ctx: &mut Ctx<'_>) {
        self.release(ctx.registry);
    }

    /// [`Conn::drop_socket`] with only the poller's registry at hand.
    fn release(&mut self, registry: &Registry) {
        match std::mem::replace(&mut self.sock, Sock::None) {
            Sock::Connecting(mut t, _) => {
                let _ = registry.deregister(&mut t);
            }
            Sock::Open(mut ws) => {
                // Best effort: say goodbye with a close frame rather than a bare TCP reset.
                let _ = ws.close(None);
                let _ = ws.flush();
                let _ = registry.deregister(ws.get_mut().tcp());
            }
            _ => {}
        }
        self.out.clear();
    }

    /// Reads until the socket would block. Returns the error when the connection must go.
    fn read_frames(
        &mut self,
        ctx: &mut Ctx<'_>,
        ws: &mut WebSocket<Stream>,
    ) -> Result<(), FeedError> {
        loop {
            let msg = match ws.read() {
                Ok(msg) => msg,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(FeedError::retry(format!("read: {e}"))),
            };
            self.machine.data(Instant::now());
            ctx.status.frames.fetch_add(1, Ordering::Relaxed);
            let incoming = match &msg {
                Message::Binary(b) => Incoming::Binary(b),
                Message::Text(t) => Incoming::Text(t.as_str()),
                Message::Close(c) => {
                    return Err(FeedError::retry(format!("closed by broker: {c:?}")))
                }
                _ => continue, // ping (answered by tungstenite), pong: liveness only
            };
            self.on_message(ctx, incoming)?;
        }
        send_all(ws, &mut self.out).map_err(FeedError::retry)
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, msg: Incoming<'_>) -> Result<(), FeedError> {
        let recv = now_ns();
        if let Some(j) = ctx.journal.as_deref_mut() {
            match &msg {
                Incoming::Binary(b) => j.frame(self.idx as u8, recv, true, b),
                Incoming::Text(t) => j.frame(self.idx as u8, recv, false, t.as_bytes()),
            }
        }
        let status = ctx.status;
        let mut sink = match ctx.inline.as_deref_mut() {
            Some(r) => TickSink::inline(r, status),
            None => TickSink::ring(ctx.ticks, status),
        };
        let res = self
            .protocol
            .on_message(msg, recv, &mut sink, &mut self.out);
        let ticks = sink.ticks();
        status.ticks.fetch_add(ticks as u64, Ordering::Relaxed);
        if ticks > 0 {
            self.clock.data(recv);
            if let Some(r) = ctx.inline.as_deref_mut() {
                r.pass();
            } else if let Some(b) = ctx.router_bell {
                b.ring();
            }
        }
        self.settle(ctx, res)
    }

    /// The protocol's own pass ([`BrokerProtocol::poll`]); what it wants sent goes out now.
    fn poll_protocol(&mut self, ctx: &mut Ctx<'_>) -> Result<(), FeedError> {
        let Sock::Open(ws) = &mut self.sock else {
            return Ok(());
        };
        let res = self.protocol.poll(&mut self.out);
        if let Some(j) = ctx.journal.as_deref_mut() {
            record::learned(j, self.idx, ctx.symbols, &mut *self.protocol);
        }
        if !self.out.is_empty() {
            send_all(ws, &mut self.out).map_err(FeedError::retry)?;
        }
        self.settle(ctx, res)
    }

    /// Applies a protocol's verdict: rejections are recorded (and scheduled for a retry, unless
    /// refused for good) and the connection stays; anything else is returned for the machine.
    fn settle(&mut self, ctx: &mut Ctx<'_>, res: Result<(), FeedError>) -> Result<(), FeedError> {
        let status = ctx.status;
        match res {
            Ok(()) => Ok(()),
            Err(FeedError {
                action: Action::Reject(syms),
                reason,
            }) => {
                self.rejected(ctx, syms, &reason, true);
                Ok(())
            }
            Err(FeedError {
                action: Action::Refuse(syms),
                reason,
            }) => {
                self.rejected(ctx, syms, &reason, false);
                Ok(())
            }
            Err(e) => {
                status.broker_errors.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// The broker refused `syms`: those still waiting on this connection turn `rejected`, and go
    /// on the retry schedule when `retry` (else off it: refused for good).
    fn rejected(&mut self, ctx: &mut Ctx<'_>, syms: Vec<SymbolId>, reason: &str, retry: bool) {
        let status = ctx.status;
        status.broker_errors.fetch_add(1, Ordering::Relaxed);
        let what = || {
            format!(
                "{} {} symbols ({}): {reason}",
                self.protocol.name(),
                syms.len(),
                if retry {
                    "asked for again later"
                } else {
                    "refused, not retried"
                },
            )
        };
        if let Some(line) = self.said.rejections.hit(what, Instant::now()) {
            tracing::warn!("{line}");
        }
        // Only symbols still waiting here: an error text may name numbers that are not ours.
        let now = Instant::now();
        for s in syms {
            if status.symbol_state(s) == upstream_state::PENDING && self.demand.get(s).is_some() {
                status.set_symbol_state(s, upstream_state::REJECTED);
                if retry {
                    ctx.retries.rejected(s, now);
                } else {
                    ctx.retries.done(s);
                }
            }
        }
    }

    /// Market hours: drops the socket (or the attempt) and waits, state `closed`, until
    /// [`Conn::market_reopen`]. A connection stopped for a configuration that cannot work stays
    /// stopped; one waiting after refused credentials is closed too and tries them again at the
    /// next session (a new day usually brings a new token).
    pub fn market_close(&mut self, registry: &Registry, status: &FeedStatus) {
        if self.machine.phase() == super::machine::Phase::Stopped {
            return;
        }
        self.release(registry);
        self.machine.reset(Instant::now());
        status.set_conn_state(self.idx, feed_state::CLOSED);
    }

    /// Market hours: the markets open; dial at once.
    pub fn market_reopen(&mut self) {
        if self.machine.phase() != super::machine::Phase::Stopped {
            self.machine.reset(Instant::now());
        }
    }

    /// Closes the WebSocket (shutdown).
    pub fn close(&mut self) {
        if let Sock::Open(ws) = &mut self.sock {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
        self.sock = Sock::None;
    }
}
