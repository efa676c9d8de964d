//! One client connection: handshake, auth, requests, conflated market data, keepalive.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use serde_json::{json, Value};
use tickwire_engine::last::LastValues;
use tickwire_engine::router::{Control, ModeSet};
use tickwire_engine::symbols::SymbolId;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

mod admit;
mod handshake;
mod market;
mod requests;

pub use market::Counted;

use super::keys::Auth;
use super::limits::{Limits, RateWindow, Violation};
use super::{GatewayConfig, Shared, View};
use crate::feed::upstream_state;
use crate::gateway::notices::{self, Observed, Told};
use tickwire_engine::health::state;

enum Ws {
    /// Reading the HTTP request head: a WebSocket upgrade, or `GET /status` / `/health`.
    Head(TcpStream, Vec<u8>, WebSocketConfig),
    /// Writing a plain HTTP response (bytes, how many went); the connection closes after it.
    Respond(TcpStream, Vec<u8>, usize),
    Open(WebSocket<Counted>),
    Closed,
}

struct Sub {
    modes: ModeSet,
    exchange: String,
    symbol: String,
    rejection_told: bool,
    /// The health (`tickwire_engine::health::state`) last seen, to tell `stale` and `live` once.
    health_told: u8,
    /// Its exchange's bit (`notices::exchange_bit`), for market session updates.
    exchange_bit: u32,
}

/// See the module docs.
pub struct Session {
    ws: Ws,
    consumer: u32,
    /// Unique per connection (a verdict for an earlier connection on the same slot is dropped).
    serial: u64,
    /// The client's address (failed authentications are limited per address).
    pub(super) peer: IpAddr,
    authed: bool,
    /// The API key's name once authenticated (`api-key-1`, … for `--api-key` keys); the client
    /// counts against this key's limit until it closes.
    pub key_name: Option<Arc<str>>,
    /// This client's limits: the server-wide ones, then its key's once authenticated.
    limits: Limits,
    /// Its subscription-change allowance.
    rate: RateWindow,
    /// A close to make once the current reply is queued (a refusal says why, then closes).
    closing: Option<(u16, String)>,
    /// The key is a keys-file key: removing it from the file closes the session.
    key_from_file: bool,
    /// Failed authentication attempts on this connection.
    auth_failures: u32,
    /// A key is with the verifier: no further request is read until its verdict, so replies stay
    /// in order.
    auth_pending: bool,
    /// A data endpoint's key is with the verifier: the response to this endpoint follows its
    /// verdict.
    http_pending: Option<super::endpoints::Endpoint>,
    opened: Instant,
    last_ping: Instant,
    /// The last frame of any kind from the client (a message, a Pong): the idle timeout's clock.
    last_heard: Instant,
    subs: HashMap<SymbolId, Sub>,
    /// Symbols changed while conflating, to send as latest values once drained (the fan-out
    /// keeps the per-symbol mark and sequence).
    pub(super) dirty: Vec<SymbolId>,
    /// Frame bytes handed to the WebSocket; minus what the socket took, the backlog.
    written: u64,
    /// The backlog passed the high-water mark: new values only mark their symbol until it drains
    /// below the low-water mark.
    conflating: bool,
    /// Written since the last flush.
    unflushed: bool,
    /// The socket reported readiness (or the timers ran) since the last drain: worth trying to
    /// flush a conflating session's backlog again. Without it a stalled client would cost a
    /// `write` syscall every pass.
    poked: bool,
    /// A flush met a full socket at least once (see [`Session::needs_write_events`]).
    write_blocked: bool,
    /// [`GatewayConfig::high_water`], checked after every write.
    high_water: u64,
    /// Times the session started conflating since the gateway last collected the count.
    conflation_starts: u64,
    /// Its class's conflation counts since the gateway last folded them in.
    class_counts: super::ClassCounts,
    /// Subscription changes for the IO thread's fan-out index: (symbol, modes now held).
    sub_changes: Vec<(SymbolId, ModeSet)>,
    /// Bit `i`: told that feed `i`'s broker refused its credentials (cleared once it no longer
    /// does, so a later refusal is told again).
    auth_told: u64,
    /// Status updates told so far ([`notices`](crate::gateway::notices)).
    told: Told,
}

/// Time to send a complete request head.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// Time to read a plain HTTP response (`/status` can be megabytes).
const RESPOND_DEADLINE: Duration = Duration::from_secs(60);

/// Serials of connections.
static SERIAL: AtomicU64 = AtomicU64::new(1);

/// Errors from a peer that broke the WebSocket framing rules (answered with close 1002), as
/// opposed to the connection simply ending.
fn protocol_violation(e: &tungstenite::error::ProtocolError) -> bool {
    use tungstenite::error::ProtocolError as P;
    matches!(
        e,
        P::UnmaskedFrameFromClient
            | P::NonZeroReservedBits
            | P::UnknownControlFrameType(_)
            | P::UnknownDataFrameType(_)
            | P::ControlFrameTooBig
            | P::FragmentedControlFrame
            | P::UnexpectedContinueFrame
            | P::ExpectedFragment(_)
            | P::InvalidCloseSequence
            | P::InvalidOpcode(_)
    )
}

fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// A request's status that tells the truth: `error` when every entry failed (OpenAlgo said
/// `partial`), `partial` when some did, `success` when none did.
fn overall(ok: usize, failed: usize) -> &'static str {
    match (ok, failed) {
        (_, 0) => "success",
        (0, _) => "error",
        _ => "partial",
    }
}

fn error(code: &str, message: &str) -> Value {
    json!({"status": "error", "code": code, "message": message})
}

impl Session {
    pub fn new(stream: TcpStream, consumer: u32, cfg: &GatewayConfig) -> Self {
        // Clients send small JSON requests; tungstenite zero-fills its read size before every
        // read, so its 128 KiB default would cost ~1 µs per readable event per client.
        let wcfg = WebSocketConfig::default()
            .read_buffer_size(4096)
            .max_message_size(Some(cfg.limits.defaults.max_message_bytes))
            .max_frame_size(Some(cfg.limits.defaults.max_message_bytes))
            // Below the high-water mark tungstenite only buffers; the gateway flushes once a pass.
            .write_buffer_size(cfg.high_water)
            .max_write_buffer_size(cfg.high_water * 4);
        let ws = Ws::Head(stream, Vec::new(), wcfg);
        let now = Instant::now();
        let limits = cfg.limits.defaults;
        Self {
            ws,
            consumer,
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            peer: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            authed: false,
            key_name: None,
            limits,
            rate: Self::rate_window(&limits, now),
            closing: None,
            key_from_file: false,
            auth_failures: 0,
            auth_pending: false,
            http_pending: None,
            opened: now,
            last_ping: now,
            last_heard: now,
            subs: HashMap::new(),
            dirty: Vec::new(),
            written: 0,
            conflating: false,
            unflushed: false,
            poked: false,
            write_blocked: false,
            high_water: cfg.high_water as u64,
            conflation_starts: 0,
            class_counts: Default::default(),
            sub_changes: Vec::new(),
            auth_told: 0,
            told: Told::default(),
        }
    }

    /// True once the WebSocket handshake is done.
    pub fn is_open(&self) -> bool {
        matches!(self.ws, Ws::Open(_))
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.ws, Ws::Closed)
    }

    /// True while the request head is still being read.
    pub fn in_head(&self) -> bool {
        matches!(self.ws, Ws::Head(..))
    }

    /// True once the client authenticated.
    pub fn is_authed(&self) -> bool {
        self.authed
    }

    /// The name of the key the client authenticated with, if it did.
    pub fn key_name(&self) -> Option<&str> {
        self.key_name.as_deref()
    }

    /// See [`Session::serial`]'s field.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Adds write-space events to the socket's registration (after a flush met a full socket).
    pub fn want_write_events(&mut self, poll: &mio::Poll, token: mio::Token) {
        let i = mio::Interest::READABLE | mio::Interest::WRITABLE;
        if let Some(tcp) = self.tcp() {
            let _ = poll.registry().reregister(tcp, token, i);
        }
    }

    pub fn deregister(&mut self, poll: &mio::Poll) {
        if let Some(tcp) = self.tcp() {
            let _ = poll.registry().deregister(tcp);
        }
    }

    fn tcp(&mut self) -> Option<&mut TcpStream> {
        match &mut self.ws {
            Ws::Open(ws) => Some(&mut ws.get_mut().tcp),
            Ws::Head(stream, ..) | Ws::Respond(stream, ..) => Some(stream),
            Ws::Closed => None,
        }
    }

    /// Makes room for another connection: a pending (unauthenticated) one is dropped, with a
    /// close frame saying why if it is a WebSocket already.
    pub fn evict(&mut self) {
        self.close(
            1013,
            "server busy: too many unauthenticated connections; retry",
        );
    }

    /// Subscription changes since the last call, for the IO thread's fan-out index.
    pub fn take_sub_changes(&mut self) -> Vec<(SymbolId, ModeSet)> {
        std::mem::take(&mut self.sub_changes)
    }

    /// True once a flush met a full socket: the session then wants write-space events (it is
    /// registered for reads only until then, so a client that keeps up costs no wake-up per write).
    pub fn needs_write_events(&self) -> bool {
        self.write_blocked
    }

    /// Every symbol the session holds.
    pub fn symbols(&self) -> impl Iterator<Item = SymbolId> + '_ {
        self.subs.keys().copied()
    }

    pub fn close(&mut self, code: u16, reason: &str) {
        if let Ws::Open(ws) = &mut self.ws {
            let _ = ws.close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.to_owned().into(),
            }));
            let _ = ws.flush();
        }
        self.ws = Ws::Closed;
    }

    /// Socket readiness: finish the handshake, read requests, drain the send queue.
    /// `readable`: the event says there is something to read (a write-space-only event just
    /// flushes: no `read` syscall that would only say "would block").
    pub fn on_event(
        &mut self,
        shared: &Shared,
        view: &View,
        outbox: &mut VecDeque<Control>,
        auth: &mut Auth,
        readable: bool,
    ) {
        self.poked = true;
        if matches!(self.ws, Ws::Head(..)) && self.http_pending.is_none() {
            self.read_head(shared, view, auth);
        }
        if readable {
            self.read_requests(shared, view.last, outbox, auth);
        }
        self.flush_socket();
        self.write_response();
    }

    /// Reads and answers every request the socket holds (none while a key is being verified:
    /// the verdict's reply must come first).
    fn read_requests(
        &mut self,
        shared: &Shared,
        last: &dyn LastValues,
        outbox: &mut VecDeque<Control>,
        auth: &mut Auth,
    ) {
        loop {
            if self.auth_pending {
                return;
            }
            let Ws::Open(ws) = &mut self.ws else { return };
            let read = ws.read();
            if read.is_ok() {
                self.last_heard = Instant::now();
            }
            let reply = match read {
                Ok(Message::Text(t)) => self.request(t.as_bytes(), shared, last, outbox, auth),
                // OpenAlgo json.loads whatever arrives, so JSON in a binary frame works too.
                Ok(Message::Binary(b)) => self.request(&b, shared, last, outbox, auth),
                Ok(Message::Close(_)) => {
                    let Ws::Open(ws) = &mut self.ws else { return };
                    let _ = ws.flush();
                    self.ws = Ws::Closed;
                    return;
                }
                Ok(_) => None,
                Err(e) if would_block(&e) => break,
                Err(tungstenite::Error::Capacity(_)) => {
                    let n = self.limits.max_message_bytes;
                    let reason = format!("message too big: the limit is {n} bytes");
                    self.refuse_and_close(shared, Violation::MessageTooBig, 1009, &reason);
                    return;
                }
                // RFC 6455 §8.1 and §7.4.1: say why before dropping the connection.
                Err(tungstenite::Error::Utf8(_)) => {
                    self.close(1007, "invalid UTF-8 in a text message");
                    return;
                }
                Err(tungstenite::Error::Protocol(e)) if protocol_violation(&e) => {
                    self.close(1002, &format!("protocol error: {e}"));
                    return;
                }
                Err(_) => {
                    self.ws = Ws::Closed;
                    return;
                }
            };
            if let Some(reply) = reply {
                // Sends it, then makes the close a refusal asked for.
                self.answer(&reply);
            }
        }
    }

    /// After the session ran (an event or a verdict): write-space events if it now needs them,
    /// its admission state, and its subscription changes into the fan-out index.
    pub(super) fn settle(
        &mut self,
        i: usize,
        blocked_before: bool,
        poll: &mio::Poll,
        admission: &mut super::admission::Admission,
        fanout: &mut super::fanout::Fanout,
    ) {
        if !blocked_before && self.needs_write_events() {
            self.want_write_events(poll, mio::Token(i));
        }
        if self.authed {
            admission.settled(i);
        } else if !self.in_head() {
            admission.spoke(i);
        }
        for (symbol, modes) in self.take_sub_changes() {
            fanout.set(symbol, i, modes);
        }
    }

    /// Queues the reply to a request; then, if handling it decided the connection must end (a
    /// refused authentication, a client far past its rate), closes with the code and reason it
    /// chose. A caller answering an authentication later (off this call path) uses this too.
    pub fn answer(&mut self, reply: &Value) {
        self.send(&reply.to_string());
        if let Some((code, reason)) = self.closing.take() {
            self.close(code, &reason);
        }
    }

    /// Queues a reply or notice (flushed with the pass's other writes).
    fn send(&mut self, text: &str) {
        let Ws::Open(ws) = &mut self.ws else { return };
        self.written += market::frame_len(text.len());
        self.unflushed = true;
        match ws.write(Message::Text(text.into())) {
            Ok(()) => {}
            Err(e) if would_block(&e) => {}
            // Past four high-water marks of backlog: a client that reads nothing at all.
            Err(tungstenite::Error::WriteBufferFull(_)) => self.close(1008, "not reading"),
            Err(_) => self.ws = Ws::Closed,
        }
    }

    /// Keepalive, idle timeout, auth grace and upstream rejections, checked every 100 ms.
    ///
    /// A client that has been quiet for a third of its idle timeout (at most the ping interval)
    /// is pinged, so one that answers Pings is never idle; one that sends nothing at all, not
    /// even a Pong, for the whole idle timeout is closed (4408).
    pub fn timers(&mut self, shared: &Shared, observed: &Observed) {
        self.poked = true;
        let cfg = &shared.cfg;
        match &mut self.ws {
            Ws::Open(ws) => {
                if !self.authed && self.opened.elapsed() > cfg.auth_grace {
                    self.close(4401, "auth timeout");
                    return;
                }
                let idle = self.limits.idle_timeout;
                let quiet = self.last_heard.elapsed();
                if quiet >= idle {
                    let reason =
                        format!("idle timeout: no message or pong for {} s", idle.as_secs());
                    self.refuse_and_close(shared, Violation::IdleTimeout, 4408, &reason);
                    return;
                }
                let every = cfg.ping_interval.min(idle / 3);
                if quiet >= every && self.last_ping.elapsed() >= every {
                    let _ = ws.write(Message::Ping(Vec::new().into()));
                    self.last_ping = Instant::now();
                    self.flush_socket();
                }
            }
            // A request head, or a response the client does not read, gets a short deadline:
            // connections that never get that far hold a slot for nothing.
            Ws::Head(..) if self.opened.elapsed() > HEAD_DEADLINE => {
                self.ws = Ws::Closed;
                return;
            }
            Ws::Respond(..) if self.opened.elapsed() > RESPOND_DEADLINE => {
                self.ws = Ws::Closed;
                return;
            }
            _ => return,
        }
        let mut told = Vec::new();
        let (mut held, mut exchanges) = (0u64, 0u32);
        let health = shared.health();
        for (&id, s) in self.subs.iter_mut() {
            held |= 1u64.checked_shl(shared.feed_index(id) as u32).unwrap_or(0);
            exchanges |= s.exchange_bit;
            let h = health.state(id);
            let was = std::mem::replace(&mut s.health_told, h);
            let news = matches!(
                (was, h),
                (state::LIVE, state::STALE) | (state::STALE, state::LIVE)
            );
            if news && !self.told.off {
                told.push(notices::symbol_update(
                    shared,
                    id,
                    &s.exchange,
                    &s.symbol,
                    h,
                ));
            }
            let rejected = shared.symbol_state(id) == upstream_state::REJECTED;
            if !rejected {
                // Asked again and pending or live: a later rejection is told again.
                s.rejection_told = false;
            } else if !s.rejection_told {
                s.rejection_told = true;
                told.push(json!({"status": "error", "code": "SUBSCRIPTION_REJECTED",
                    "message": format!("The broker rejected {}:{}", s.exchange, s.symbol),
                    "symbol": s.symbol, "exchange": s.exchange}));
            }
        }
        self.auth_notices(shared, &mut told);
        self.told
            .feeds_and_markets(observed, shared, held, exchanges, &mut told);
        for t in told {
            self.send(&t.to_string());
        }
        self.flush_socket();
    }

    /// One `BROKER_AUTH_FAILED` error per refusal of a feed's credentials, to a client holding
    /// symbols of that feed: its data stops until the gateway has new credentials, and it should
    /// know why rather than see a silent stream. The connection and its subscriptions stay.
    fn auth_notices(&mut self, shared: &Shared, told: &mut Vec<Value>) {
        for (i, f) in shared.feeds.iter().enumerate().take(64) {
            let bit = 1u64 << i;
            if !f.status.credentials_rejected() {
                self.auth_told &= !bit;
                continue;
            }
            if self.auth_told & bit != 0 || !self.subs.keys().any(|&s| shared.feed_index(s) == i) {
                continue;
            }
            self.auth_told |= bit;
            told.push(json!({"status": "error", "code": "BROKER_AUTH_FAILED",
                "message": format!("The broker ({}) refused the gateway's credentials; market \
                    data from it stops until the gateway is given new ones. You stay connected \
                    and subscribed.", f.broker),
                "broker": f.broker}));
        }
    }
}
