//! One client connection: handshake, auth, requests, conflated market data, keepalive.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use serde_json::{json, Value};
use tickwire_engine::router::{Control, ModeSet};
use tickwire_engine::symbols::SymbolId;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::Role;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

mod market;
mod requests;

pub use market::Counted;

use super::{GatewayConfig, Shared};
use crate::feed::upstream_state;
use crate::http;

enum Ws {
    /// Reading the HTTP request head: a WebSocket upgrade, or `GET /status` / `/health`.
    Head(TcpStream, Vec<u8>, WebSocketConfig),
    Open(WebSocket<Counted>),
    Closed,
}

struct Sub {
    modes: ModeSet,
    exchange: String,
    symbol: String,
    rejection_told: bool,
}

/// See the module docs.
pub struct Session {
    ws: Ws,
    consumer: u32,
    authed: bool,
    opened: Instant,
    last_ping: Instant,
    ping_sent: Option<Instant>,
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
    /// Subscription changes for the IO thread's fan-out index: (symbol, modes now held).
    sub_changes: Vec<(SymbolId, ModeSet)>,
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
            .max_message_size(Some(cfg.max_message))
            .max_frame_size(Some(cfg.max_message))
            // Below the high-water mark tungstenite only buffers; the gateway flushes once a pass.
            .write_buffer_size(cfg.high_water)
            .max_write_buffer_size(cfg.high_water * 4);
        let ws = Ws::Head(stream, Vec::new(), wcfg);
        let now = Instant::now();
        Self {
            ws,
            consumer,
            authed: false,
            opened: now,
            last_ping: now,
            ping_sent: None,
            subs: HashMap::new(),
            dirty: Vec::new(),
            written: 0,
            conflating: false,
            unflushed: false,
            poked: false,
            write_blocked: false,
            high_water: cfg.high_water as u64,
            conflation_starts: 0,
            sub_changes: Vec::new(),
        }
    }

    /// True once the WebSocket handshake is done.
    pub fn is_open(&self) -> bool {
        matches!(self.ws, Ws::Open(_))
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.ws, Ws::Closed)
    }

    /// Adds write-space events to the socket's registration (after a flush met a full socket).
    pub fn want_write_events(&mut self, poll: &mio::Poll, token: mio::Token) {
        let i = mio::Interest::READABLE | mio::Interest::WRITABLE;
        if let Ws::Open(ws) = &mut self.ws {
            let _ = poll.registry().reregister(&mut ws.get_mut().tcp, token, i);
        }
    }

    pub fn deregister(&mut self, poll: &mio::Poll) {
        match &mut self.ws {
            Ws::Open(ws) => {
                let _ = poll.registry().deregister(&mut ws.get_mut().tcp);
            }
            Ws::Head(stream, ..) => {
                let _ = poll.registry().deregister(stream);
            }
            Ws::Closed => {}
        }
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
    pub fn on_event(&mut self, shared: &Shared, outbox: &mut VecDeque<Control>, readable: bool) {
        self.poked = true;
        if let Ws::Head(..) = self.ws {
            self.read_head(shared);
        }
        if readable {
            self.read_requests(shared, outbox);
        }
        self.flush_socket();
    }

    /// Reads and answers every request the socket holds.
    fn read_requests(&mut self, shared: &Shared, outbox: &mut VecDeque<Control>) {
        loop {
            let Ws::Open(ws) = &mut self.ws else { return };
            match ws.read() {
                Ok(Message::Text(t)) => {
                    let reply = self.request(t.as_bytes(), shared, outbox);
                    self.send(&reply.to_string());
                }
                Ok(Message::Binary(b)) => {
                    // OpenAlgo json.loads whatever arrives, so JSON in a binary frame works too.
                    let reply = self.request(&b, shared, outbox);
                    self.send(&reply.to_string());
                }
                Ok(Message::Pong(_)) => self.ping_sent = None,
                Ok(Message::Close(_)) => {
                    let _ = ws.flush();
                    self.ws = Ws::Closed;
                    return;
                }
                Ok(_) => {}
                Err(e) if would_block(&e) => break,
                Err(tungstenite::Error::Capacity(_)) => {
                    self.close(1009, "message too big");
                    return;
                }
                Err(_) => {
                    self.ws = Ws::Closed;
                    return;
                }
            }
        }
    }

    /// Reads the request head without blocking; answers plain HTTP, or upgrades to WebSocket.
    /// Any path is accepted for the upgrade, as OpenAlgo accepts any.
    fn read_head(&mut self, shared: &Shared) {
        let Ws::Head(stream, buf, _) = &mut self.ws else {
            return;
        };
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => {
                    self.ws = Ws::Closed;
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.ws = Ws::Closed;
                    return;
                }
            }
            if buf.len() > http::MAX_HEAD {
                break;
            }
        }
        let (head, len) = match http::parse_head(buf) {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                let _ = stream.write_all(
                    http::response("400 Bad Request", "text/plain", &format!("{e}\n")).as_bytes(),
                );
                self.ws = Ws::Closed;
                return;
            }
        };
        let Ws::Head(mut stream, buf, wcfg) = std::mem::replace(&mut self.ws, Ws::Closed) else {
            return;
        };
        let reply = match (
            head.upgrade,
            head.ws_key.as_deref(),
            head.method.as_str(),
            head.path.as_str(),
        ) {
            (true, Some(key), "GET", _) => {
                // A fresh socket's send buffer takes the ~130-byte answer whole.
                if stream
                    .write_all(http::switching_protocols(key).as_bytes())
                    .is_ok()
                {
                    let rest = buf[len..].to_vec();
                    self.ws = Ws::Open(WebSocket::from_partially_read(
                        Counted::new(stream),
                        rest,
                        Role::Server,
                        Some(wcfg),
                    ));
                }
                return;
            }
            (true, ..) => {
                http::response("400 Bad Request", "text/plain", "bad WebSocket upgrade\n")
            }
            (false, _, "GET", "/health") => http::response("200 OK", "text/plain", "ok\n"),
            (false, _, "HEAD", "/health") => http::response("200 OK", "text/plain", ""),
            (false, _, "GET", "/status") => http::response(
                "200 OK",
                "application/json",
                &super::status::status_json(shared),
            ),
            _ => http::response(
                "404 Not Found",
                "text/plain",
                "not found: try a WebSocket upgrade, /status or /health\n",
            ),
        };
        let _ = stream.write_all(reply.as_bytes());
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

    /// Keepalive, auth grace and upstream rejections, checked every 100 ms.
    pub fn timers(&mut self, shared: &Shared) {
        self.poked = true;
        let cfg = &shared.cfg;
        match &mut self.ws {
            Ws::Open(ws) => {
                if !self.authed && self.opened.elapsed() > cfg.auth_grace {
                    self.close(4401, "auth timeout");
                    return;
                }
                if let Some(sent) = self.ping_sent {
                    if sent.elapsed() > cfg.ping_interval {
                        self.close(1011, "keepalive ping timeout");
                        return;
                    }
                } else if self.last_ping.elapsed() >= cfg.ping_interval {
                    let _ = ws.write(Message::Ping(Vec::new().into()));
                    self.last_ping = Instant::now();
                    self.ping_sent = Some(self.last_ping);
                    self.flush_socket();
                }
            }
            Ws::Head(..) if self.opened.elapsed() > Duration::from_secs(10) => {
                self.ws = Ws::Closed;
                return;
            }
            _ => return,
        }
        let mut told = Vec::new();
        for (&id, s) in self.subs.iter_mut() {
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
        for t in told {
            self.send(&t.to_string());
        }
        self.flush_socket();
    }
}
