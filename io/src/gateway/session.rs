//! One client connection: handshake, auth, requests, conflated market data, keepalive.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use serde_json::{json, Map, Value};
use tickwire_engine::clock::now_ns;
use tickwire_engine::router::{Control, Mode, ModeSet};
use tickwire_engine::symbols::SymbolId;
use tickwire_shm::Reader;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::Role;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use super::protocol::{label, market_data, parse_mode, OutBuf};
use super::{GatewayConfig, Shared, MAX_OUTBOX};
use crate::feed::upstream_state;
use crate::http;

enum Ws {
    /// Reading the HTTP request head: a WebSocket upgrade, or `GET /status` / `/health`.
    Head(TcpStream, Vec<u8>, WebSocketConfig),
    Open(WebSocket<TcpStream>),
    Closed,
}

struct Sub {
    modes: ModeSet,
    exchange: String,
    symbol: String,
    last_seq: u64,
    dirty: bool,
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
    dirty: Vec<SymbolId>,
    /// The socket would not take more: format nothing new until a flush succeeds.
    blocked: bool,
    queued: usize,
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
            .max_write_buffer_size(cfg.max_queued * 2);
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
            blocked: false,
            queued: 0,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.ws, Ws::Closed)
    }

    pub fn deregister(&mut self, poll: &mio::Poll) {
        match &mut self.ws {
            Ws::Open(ws) => {
                let _ = poll.registry().deregister(ws.get_mut());
            }
            Ws::Head(stream, ..) => {
                let _ = poll.registry().deregister(stream);
            }
            Ws::Closed => {}
        }
    }

    /// The router says `symbol` changed for this connection.
    pub fn mark(&mut self, symbol: SymbolId) {
        if let Some(s) = self.subs.get_mut(&symbol) {
            if !s.dirty {
                s.dirty = true;
                self.dirty.push(symbol);
            }
        }
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
    pub fn on_event(&mut self, shared: &Shared, outbox: &mut VecDeque<Control>) {
        if let Ws::Head(..) = self.ws {
            self.read_head(shared);
        }
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
        self.flush_socket();
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
                        stream,
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
            (false, _, "GET", "/status") => {
                http::response("200 OK", "application/json", &status_json(shared))
            }
            _ => http::response(
                "404 Not Found",
                "text/plain",
                "not found: try a WebSocket upgrade, /status or /health\n",
            ),
        };
        let _ = stream.write_all(reply.as_bytes());
    }

    fn send(&mut self, text: &str) {
        let Ws::Open(ws) = &mut self.ws else { return };
        self.queued += text.len();
        match ws.write(Message::Text(text.into())) {
            Ok(()) => {}
            Err(e) if would_block(&e) => self.blocked = true,
            Err(tungstenite::Error::WriteBufferFull(_)) => self.blocked = true,
            Err(_) => self.ws = Ws::Closed,
        }
    }

    fn flush_socket(&mut self) {
        let Ws::Open(ws) = &mut self.ws else { return };
        match ws.flush() {
            Ok(()) => {
                self.blocked = false;
                self.queued = 0;
            }
            Err(e) if would_block(&e) => self.blocked = true,
            Err(_) => self.ws = Ws::Closed,
        }
    }

    /// Formats the latest value of every dirty symbol (one message per mode held) and writes them
    /// with one flush. A blocked client keeps its dirty marks for later: latest values, late.
    pub fn flush_market_data(&mut self, shared: &Shared, shm: &Reader, buf: &mut OutBuf) {
        if self.dirty.is_empty() || !matches!(self.ws, Ws::Open(_)) {
            return;
        }
        if self.blocked {
            self.flush_socket();
            if self.blocked {
                shared.stats.slow_skips.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut sent = 0;
        let mut k = 0;
        while k < self.dirty.len() {
            if self.queued >= shared.cfg.max_queued {
                break;
            }
            let sym = self.dirty[k];
            k += 1;
            let Some(sub) = self.subs.get_mut(&sym) else {
                continue;
            };
            sub.dirty = false;
            let Ok(Some(t)) = shm.last_value(sym) else {
                continue;
            };
            if t.seq == sub.last_seq {
                continue; // a repeated delivery of a value already sent
            }
            sub.last_seq = t.seq;
            for m in Mode::ALL {
                if sub.modes & m.bit() != 0 {
                    buf.json.clear();
                    let b = &shared.cfg.broker;
                    market_data(&mut buf.json, &t, m, &sub.exchange, &sub.symbol, b);
                    let Ws::Open(ws) = &mut self.ws else { return };
                    self.queued += buf.json.len();
                    match ws.write(buf.message()) {
                        Ok(()) => sent += 1,
                        Err(e) if would_block(&e) => {
                            sent += 1;
                            self.blocked = true;
                        }
                        Err(tungstenite::Error::WriteBufferFull(_)) => self.blocked = true,
                        Err(_) => {
                            self.ws = Ws::Closed;
                            return;
                        }
                    }
                }
            }
            if self.blocked {
                break;
            }
        }
        self.dirty.drain(..k);
        shared.stats.messages.fetch_add(sent, Ordering::Relaxed);
        self.flush_socket();
    }

    /// Keepalive, auth grace and upstream rejections, checked every 100 ms.
    pub fn timers(&mut self, shared: &Shared) {
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
            if !s.rejection_told && shared.feed.symbol_state(id) == upstream_state::REJECTED {
                s.rejection_told = true;
                told.push(json!({"status": "error", "code": "SUBSCRIPTION_REJECTED",
                    "message": format!("The broker rejected {}:{}", s.exchange, s.symbol),
                    "symbol": s.symbol, "exchange": s.exchange}));
            }
        }
        for t in told {
            self.send(&t.to_string());
        }
        if self.blocked || !self.dirty.is_empty() {
            return;
        }
        self.flush_socket();
    }

    /// One request → exactly one reply (`client-protocol.md` §2).
    fn request(&mut self, raw: &[u8], shared: &Shared, outbox: &mut VecDeque<Control>) -> Value {
        let v: Value = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(_) => return error("INVALID_JSON", "Invalid JSON message"),
        };
        let Value::Object(o) = v else {
            let kind = if v.is_array() { "list" } else { "non-object" };
            return error(
                "SERVER_ERROR",
                &format!("'{kind}' object has no attribute 'get'"),
            );
        };
        let verb = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let action = verb("action").or_else(|| verb("type"));
        let unsubscribe_all =
            verb("action") == Some("unsubscribe_all") || verb("type") == Some("unsubscribe_all");
        let needs_auth = !matches!(
            action,
            Some("authenticate" | "auth" | "ping" | "get_supported_brokers") | None
        );
        let known = matches!(
            action,
            Some(
                "authenticate"
                    | "auth"
                    | "ping"
                    | "get_supported_brokers"
                    | "subscribe"
                    | "unsubscribe"
                    | "unsubscribe_all"
                    | "get_broker_info"
                    | "subscribe_orders"
                    | "unsubscribe_orders"
            )
        );
        if known && needs_auth && !self.authed {
            return error("NOT_AUTHENTICATED", "You must authenticate first");
        }
        let broker = shared.cfg.broker.as_str();
        let mut reply = match action {
            Some("authenticate" | "auth") => return self.authenticate(&o, shared),
            Some("ping") => {
                let mut r = json!({"type": "pong", "status": "success", "server_timestamp": now_ns() / 1_000_000});
                for k in ["timestamp", "_pingId"] {
                    if let Some(x) = o.get(k) {
                        r[if k == "timestamp" {
                            "client_timestamp"
                        } else {
                            k
                        }] = x.clone();
                    }
                }
                return r;
            }
            Some("get_supported_brokers") => {
                return json!({"type": "supported_brokers", "status": "success", "brokers": [broker], "count": 1})
            }
            Some("get_broker_info") => {
                let st = if shared.feed.connected.load(Ordering::Relaxed) {
                    "connected"
                } else {
                    "disconnected"
                };
                return json!({"type": "broker_info", "status": "success", "broker": broker,
                    "adapter_status": st, "user_id": shared.cfg.user_id});
            }
            Some(v @ ("subscribe_orders" | "unsubscribe_orders")) => {
                let msg = if v == "subscribe_orders" {
                    "Subscribed to order updates"
                } else {
                    "Unsubscribed from order updates"
                };
                json!({"type": v, "status": "success", "message": msg})
            }
            Some("subscribe") => self.subscribe(&o, shared, outbox),
            Some(_) if unsubscribe_all => self.unsubscribe_all(shared, outbox),
            Some("unsubscribe") => self.unsubscribe(&o, shared, outbox),
            other => {
                let name = other.map_or_else(|| "None".to_string(), str::to_string);
                return error("INVALID_ACTION", &format!("Invalid action: {name}"));
            }
        };
        if let (Some(id), Value::Object(r)) = (o.get("request_id"), &mut reply) {
            r.insert("request_id".into(), id.clone());
        }
        reply
    }

    fn authenticate(&mut self, o: &Map<String, Value>, shared: &Shared) -> Value {
        let key = o
            .get("api_key")
            .or_else(|| o.get("apikey"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if key.is_empty() {
            return error("AUTHENTICATION_ERROR", "API key is required");
        }
        // Compare every byte of every key, so timing says nothing about how much of a key matched.
        let ok = shared.cfg.api_keys.iter().fold(false, |acc, k| {
            let same = k.len() == key.len()
                && k.bytes()
                    .zip(key.bytes())
                    .fold(0u8, |d, (a, b)| d | (a ^ b))
                    == 0;
            acc | same
        });
        if !ok {
            return error("AUTHENTICATION_ERROR", "Invalid API key");
        }
        self.authed = true;
        json!({"type": "auth", "status": "success", "message": "Authentication successful",
            "broker": shared.cfg.broker, "user_id": shared.cfg.user_id,
            "supported_features": {"ltp": true, "quote": true, "depth": true}})
    }

    fn entries(o: &Map<String, Value>) -> Vec<(String, String, Option<&Value>)> {
        let list = o
            .get("symbols")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty());
        let one = |e: &Map<String, Value>| -> Option<(String, String)> {
            Some((
                e.get("symbol")?.as_str()?.to_string(),
                e.get("exchange")?.as_str()?.to_string(),
            ))
        };
        match list {
            Some(a) => a
                .iter()
                .filter_map(|e| e.as_object())
                .filter_map(|e| one(e).map(|(s, x)| (s, x, e.get("mode"))))
                .collect(),
            None => one(o).map(|(s, x)| vec![(s, x, None)]).unwrap_or_default(),
        }
    }

    fn subscribe(
        &mut self,
        o: &Map<String, Value>,
        shared: &Shared,
        outbox: &mut VecDeque<Control>,
    ) -> Value {
        let broker = shared.cfg.broker.as_str();
        let mode = match o.get("mode") {
            None => Mode::Quote,
            Some(m) => match parse_mode(m) {
                Ok(m) => m,
                Err(msg) => return error("INVALID_MODE", &msg),
            },
        };
        let has_symbols = o
            .get("symbols")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
            || o.get("symbol").is_some();
        if !has_symbols {
            return error(
                "INVALID_PARAMETERS",
                "At least one symbol must be specified",
            );
        }
        let depth = o.get("depth").and_then(Value::as_u64).unwrap_or(5).min(5);
        let mut results = Vec::new();
        let (mut ok, mut bad) = (0, 0);
        for (symbol, exchange, _) in Self::entries(o) {
            let Some(id) = shared.registry.lookup(&exchange, &symbol) else {
                bad += 1;
                results.push(json!({"symbol": symbol, "exchange": exchange, "status": "error",
                    "message": format!("Symbol {symbol} not found on {exchange}"), "broker": broker}));
                continue;
            };
            if outbox.len() >= MAX_OUTBOX {
                bad += 1;
                results.push(json!({"symbol": symbol, "exchange": exchange, "status": "error",
                    "message": "Gateway busy: too many pending subscription changes; retry", "broker": broker}));
                continue;
            }
            outbox.push_back(Control::Subscribe {
                consumer: self.consumer,
                symbol: id,
                mode,
            });
            let sub = self.subs.entry(id).or_insert_with(|| Sub {
                modes: 0,
                exchange: exchange.clone(),
                symbol: symbol.clone(),
                last_seq: 0,
                dirty: false,
                rejection_told: false,
            });
            if sub.modes & mode.bit() == 0 {
                sub.last_seq = 0; // a new mode: the current value goes out again for it
            }
            sub.modes |= mode.bit();
            ok += 1;
            let upstream = match shared.feed.symbol_state(id) {
                upstream_state::LIVE => "live",
                upstream_state::REJECTED => "rejected",
                _ => "pending",
            };
            results.push(
                json!({"symbol": symbol, "exchange": exchange, "status": "success",
                "mode": label(mode), "depth": depth, "broker": broker, "upstream": upstream}),
            );
        }
        let status = overall(ok, bad);
        json!({"type": "subscribe", "status": status, "subscriptions": results,
            "message": "Subscription processing complete", "broker": broker})
    }

    fn drop_modes(&mut self, id: SymbolId, modes: ModeSet, outbox: &mut VecDeque<Control>) {
        outbox.push_back(Control::Unsubscribe {
            consumer: self.consumer,
            symbol: id,
            modes,
        });
        if let Some(s) = self.subs.get_mut(&id) {
            s.modes &= !modes;
            if s.modes == 0 {
                self.subs.remove(&id);
            }
        }
    }

    fn unsubscribe(
        &mut self,
        o: &Map<String, Value>,
        shared: &Shared,
        outbox: &mut VecDeque<Control>,
    ) -> Value {
        let broker = shared.cfg.broker.as_str();
        let array_form = o
            .get("symbols")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if !array_form && o.get("symbol").is_none() {
            return error(
                "INVALID_PARAMETERS",
                "Either symbols or unsubscribe_all is required",
            );
        }
        let top_mode = o.get("mode");
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for (symbol, exchange, own_mode) in Self::entries(o) {
            // No mode at all = every mode of the symbol (OpenAlgo removed only Quote, leaking the
            // React app's LTP and Depth streams); the array form falls back to the top-level mode.
            let modes = match own_mode.or(top_mode) {
                None => 0b111,
                Some(m) => match parse_mode(m) {
                    Ok(m) => m.bit(),
                    Err(msg) => {
                        failed.push(
                            json!({"symbol": symbol, "exchange": exchange, "status": "error",
                            "message": msg, "broker": broker}),
                        );
                        continue;
                    }
                },
            };
            if let Some(id) = shared.registry.lookup(&exchange, &symbol) {
                self.drop_modes(id, modes, outbox);
            }
            done.push(json!({"symbol": symbol, "exchange": exchange, "status": "success", "broker": broker}));
        }
        let status = overall(done.len(), failed.len());
        json!({"type": "unsubscribe", "status": status, "message": "Unsubscription processing complete",
            "successful": done, "failed": failed, "broker": broker})
    }

    fn unsubscribe_all(&mut self, shared: &Shared, outbox: &mut VecDeque<Control>) -> Value {
        let broker = shared.cfg.broker.as_str();
        let done: Vec<Value> = self
            .subs
            .values()
            .map(|s| json!({"symbol": s.symbol, "exchange": s.exchange, "status": "success", "broker": broker}))
            .collect();
        self.subs.clear();
        self.dirty.clear();
        outbox.push_back(Control::UnsubscribeAll {
            consumer: self.consumer,
        });
        json!({"type": "unsubscribe", "status": "success", "message": "Unsubscription processing complete",
            "successful": done, "failed": [], "broker": broker})
    }
}

/// `GET /status`: feed health, client counts, and every symbol with upstream demand and its state
/// (a symbol the broker has not confirmed shows `pending`).
fn status_json(shared: &Shared) -> String {
    let f = &shared.feed;
    let c = &shared.stats;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut symbols = Vec::new();
    for (id, st) in f.symbols.iter().enumerate() {
        let state = match st.load(Ordering::Relaxed) {
            upstream_state::PENDING => "pending",
            upstream_state::LIVE => "live",
            upstream_state::REJECTED => "rejected",
            _ => continue,
        };
        if let Some(info) = shared.registry.info(id as u32) {
            symbols
                .push(json!({"exchange": info.exchange, "symbol": info.symbol, "upstream": state}));
        }
    }
    let last_error = f.last_error.lock().map(|e| e.clone()).unwrap_or_default();
    json!({
        "status": "ok",
        "broker": shared.cfg.broker,
        "feed": {
            "connected": f.connected.load(Ordering::Relaxed),
            "state": crate::feed::feed_state::name(f.feed_state()),
            "attempts": ld(&f.attempts),
            "connects": ld(&f.connects), "frames": ld(&f.frames), "ticks": ld(&f.ticks),
            "parse_errors": ld(&f.parse_errors), "broker_errors": ld(&f.broker_errors),
            "ring_waits": ld(&f.ring_waits), "last_error": last_error,
            "market": f.market.lock().map(|m| json!(*m)).unwrap_or_default(),
        },
        "clients": {"open": ld(&c.open), "accepted": ld(&c.accepted), "messages": ld(&c.messages), "slow_skips": ld(&c.slow_skips)},
        "symbols": {"registered": shared.registry.len(), "subscribed": symbols},
    })
    .to_string()
}
