//! Fyers' data socket on the broker seam.
//!
//! - Connect: `wss://socket.fyers.in/hsm/v1-5/prod`, no query and no headers; the credential
//!   travels in the first packet. The access token is read before every dial ([`super::auth`]): an
//!   expired or unreadable one stops the feed.
//! - Open: the auth packet (the token's `hsm_key`), then full mode on channel 11. Subscriptions are
//!   held until the auth reply says `K`; `N` stops the feed.
//! - Requests: a symbol is subscribed by topics (LTP and quote: `sf`, or `if` for an index; depth:
//!   `sf` + `dp`), which need its fytoken. Fyers' `symbol-token` HTTP call gives that, on a helper
//!   thread ([`super::resolve`]); [`BrokerProtocol::poll`] picks the answers up and subscribes. The
//!   answers are kept across reconnects (a fytoken does not change), topic ids are not. A ticker
//!   Fyers does not know is rejected (and remembered); a refused call (401/403, `"s":"error"`)
//!   stops the feed; a call that fails otherwise drops the connection, so that the reconnect, after
//!   the feed's backoff, asks again.
//! - Data: each record updates its topic's merged state ([`super::state`]) and emits that
//!   topic's whole tick; the packet's final tick is marked `last`. Acks go out every N data packets
//!   when the auth reply asked for them.
//! - Errors: a custom message 51001 (symbol limit) rejects the symbols of the latest subscribe
//!   that have no snapshot yet; other messages and refused requests are logged.
//! - Keepalive: `00 01 0B` (what the SDK sends) and a WebSocket ping every 10 s; 30 s with no
//!   frame is a dead connection.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tickwire_engine::router::Mode;
use tickwire_engine::symbols::SymbolId;
use tickwire_engine::Tick;
use tungstenite::Message;

use super::auth::{bare_jwt, AccessToken};
use super::conn::Conn;
use super::packet::{self, ServerPacket, SYMBOL_LIMIT_EXCEEDED};
use super::request::{self, CHANNEL, FULL};
use super::resolve::{self, Outcome, Polled, ResolveFn, Worker};
use super::topic::{self, Kind, Topics};
use super::ParseError;
use crate::feed::protocol::{
    BrokerProtocol, ConnectJob, ConnectRequest, Incoming, Limits, Liveness, Request,
};
use crate::feed::{Action, FeedError, TickSink};

/// Fyers credentials and endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FyersConfig {
    /// `APPID-100:<JWT>` or the bare JWT.
    pub access_token: String,
    /// `wss://socket.fyers.in/hsm/v1-5/prod`, or the mock's `ws://127.0.0.1:PORT/…`.
    pub ws_url: String,
    /// REST base for `{api_base}/data/symbol-token`: `https://api-t1.fyers.in`, or the mock's.
    pub api_base: String,
}

impl Default for FyersConfig {
    fn default() -> Self {
        Self {
            access_token: String::new(),
            ws_url: "wss://socket.fyers.in/hsm/v1-5/prod".into(),
            api_base: "https://api-t1.fyers.in".into(),
        }
    }
}

/// `symbol`'s Fyers ticker, if it has one.
fn ticker_in(symbols: &[Box<str>], symbol: SymbolId) -> Option<&str> {
    Some(&**symbols.get(symbol as usize)?).filter(|t| !t.is_empty())
}

/// One Fyers connection's protocol (see the module docs).
pub struct Fyers {
    cfg: FyersConfig,
    /// Symbol id → Fyers ticker (`NSE:SBIN-EQ`; empty: not a Fyers instrument).
    symbols: Arc<Vec<Box<str>>>,
    hsm_key: String,
    resolve: ResolveFn,
    worker: Option<Worker>,
    /// Symbol → its topics (`None`: Fyers does not know it). Kept across connections.
    cache: HashMap<SymbolId, Option<Topics>>,
    /// Symbols handed to the worker and not answered yet. Kept across connections.
    in_flight: HashSet<SymbolId>,
    /// Answers not yet handed to the journal ([`BrokerProtocol::learned`]).
    learned: Vec<(SymbolId, Box<str>)>,
    conn: Conn,
}

impl Fyers {
    /// A protocol for `cfg`; `symbols` maps a symbol id to its Fyers ticker.
    pub fn new(cfg: FyersConfig, symbols: Arc<Vec<Box<str>>>) -> Self {
        let resolve = resolve::http(&cfg.api_base, bare_jwt(&cfg.access_token));
        Self::with_resolver(cfg, symbols, resolve)
    }

    /// [`Fyers::new`] with another way to resolve tickers (tests, the mock).
    pub fn with_resolver(
        cfg: FyersConfig,
        symbols: Arc<Vec<Box<str>>>,
        resolve: ResolveFn,
    ) -> Self {
        let hsm_key = AccessToken::parse(&cfg.access_token)
            .map(|t| t.hsm_key)
            .unwrap_or_default();
        Self {
            cfg,
            symbols,
            hsm_key,
            resolve,
            worker: None,
            cache: HashMap::new(),
            in_flight: HashSet::new(),
            learned: Vec::new(),
            conn: Conn::default(),
        }
    }

    /// Records `fytoken` as the answer for `symbol`'s ticker, as a `symbol-token` reply would (a
    /// test, or a caller that knows fytokens from the master, skips the HTTP call with it).
    pub fn seed(&mut self, symbol: SymbolId, fytoken: &str) -> Result<(), ParseError> {
        let ticker = self
            .ticker(symbol)
            .ok_or(ParseError::Malformed("symbol id with no Fyers ticker"))?;
        let t = topic::topics(ticker, fytoken)?;
        self.cache.insert(symbol, Some(t));
        Ok(())
    }

    /// The topics resolved for `symbol`, if any.
    pub fn topics_of(&self, symbol: SymbolId) -> Option<&Topics> {
        self.cache.get(&symbol)?.as_ref()
    }

    fn ticker(&self, symbol: SymbolId) -> Option<&str> {
        ticker_in(&self.symbols, symbol)
    }

    /// Subscribes the topics of symbols whose fytoken is known.
    fn subscribe_known(&mut self, list: &[(SymbolId, Mode)], out: &mut Vec<Message>) {
        let mut names: Vec<&str> = Vec::new();
        let mut ids = Vec::new();
        for &(s, mode) in list {
            let Some(Some(t)) = self.cache.get(&s) else {
                continue;
            };
            for (name, kind) in t.for_depth(mode == Mode::Depth) {
                self.conn.topics.insert(name.into(), (s, kind));
                names.push(name);
            }
            self.conn.subscribed.insert(s, mode);
            ids.push(s);
        }
        if names.is_empty() {
            return;
        }
        let packets = request::subscribe(&names, CHANNEL);
        self.conn.last_subscribe = ids;
        self.conn.queue(packets, out);
    }

    /// Subscribes what is known now and asks the worker for the rest.
    fn subscribe(&mut self, list: impl Iterator<Item = (SymbolId, Mode)>, out: &mut Vec<Message>) {
        let (mut ready, mut ask) = (Vec::new(), Vec::new());
        for (s, mode) in list {
            let Some(ticker) = ticker_in(&self.symbols, s) else {
                continue;
            };
            match self.cache.get(&s) {
                Some(Some(_)) => ready.push((s, mode)),
                Some(None) => self.conn.rejects.push(s),
                None => {
                    self.conn.waiting.insert(s, mode);
                    if !self.in_flight.contains(&s) {
                        ask.push((s, Box::from(ticker)));
                    }
                }
            }
        }
        self.subscribe_known(&ready, out);
        if !ask.is_empty() {
            self.ask(ask);
        }
    }

    /// Hands tickers to the worker (started on first use).
    fn ask(&mut self, ask: Vec<(SymbolId, Box<str>)>) {
        if self.worker.is_none() {
            match Worker::start(self.resolve.clone()) {
                Ok(w) => self.worker = Some(w),
                Err(e) => {
                    let e = FeedError::retry(format!("symbol-token thread: {e}"));
                    self.conn.error.get_or_insert(e);
                    return;
                }
            }
        }
        let ids: Vec<SymbolId> = ask.iter().map(|(s, _)| *s).collect();
        if self.worker.as_ref().is_some_and(|w| w.send(ask)) {
            self.in_flight.extend(ids);
        } else {
            self.worker = None;
            self.in_flight.clear();
            let e = FeedError::retry("symbol-token thread ended");
            self.conn.error.get_or_insert(e);
        }
    }

    /// Applies one worker answer: caches it, subscribes what this connection waits for, and
    /// collects the symbols Fyers does not know.
    fn answered(
        &mut self,
        o: Outcome,
        rejected: &mut Vec<SymbolId>,
        err: &mut Option<FeedError>,
        out: &mut Vec<Message>,
    ) {
        for (s, _) in &o.symbols {
            self.in_flight.remove(s);
        }
        let reply = match o.result {
            Ok(r) => r,
            Err(e) => {
                // Not cached: the next connection asks again. A stop or a refusal of the
                // credentials outranks a retry.
                let final_ = |a: &Action| matches!(a, Action::Stop | Action::CredentialsRejected);
                if err.as_ref().is_none_or(|old| !final_(&old.action)) {
                    *err = Some(e);
                }
                return;
            }
        };
        let mut ready = Vec::new();
        for (s, ticker) in o.symbols {
            let fytoken = reply.valid.get(&*ticker);
            let topics = fytoken.and_then(|fytoken| topic::topics(&ticker, fytoken).ok());
            if let (Some(f), true) = (fytoken, topics.is_some()) {
                self.learned.push((s, f.as_str().into()));
            }
            let known = topics.is_some();
            self.cache.insert(s, topics);
            match (known, self.conn.waiting.remove(&s)) {
                (true, Some(mode)) => ready.push((s, mode)),
                (false, Some(_)) => rejected.push(s),
                _ => {}
            }
        }
        self.subscribe_known(&ready, out);
    }

    fn change_mode(&mut self, mode: Mode, symbols: &[SymbolId], out: &mut Vec<Message>) {
        let depth = mode == Mode::Depth;
        let (mut add, mut remove, mut fresh) = (Vec::new(), Vec::new(), Vec::new());
        let (mut added, mut removed) = (Vec::new(), HashSet::new());
        for &s in symbols {
            if let Some(old) = self.conn.subscribed.get_mut(&s) {
                let had = *old == Mode::Depth;
                *old = mode;
                let dp = self
                    .cache
                    .get(&s)
                    .and_then(|t| t.as_ref()?.depth.as_deref());
                match (had, depth, dp) {
                    (false, true, Some(dp)) => {
                        self.conn.topics.insert(dp.into(), (s, Kind::Dp));
                        add.push(dp);
                        added.push(s);
                    }
                    (true, false, Some(dp)) => {
                        self.conn.topics.remove(dp);
                        removed.insert(s);
                        remove.push(dp);
                    }
                    _ => {}
                }
            } else if let Some(m) = self.conn.waiting.get_mut(&s) {
                *m = mode;
            } else {
                fresh.push((s, mode));
            }
        }
        self.conn.drop_states(&removed, Some(Kind::Dp));
        let mut packets = request::unsubscribe(&remove, CHANNEL);
        if !added.is_empty() {
            packets.extend(request::subscribe(&add, CHANNEL));
            self.conn.last_subscribe = added;
        }
        self.conn.queue(packets, out);
        self.subscribe(fresh.into_iter(), out);
    }

    fn unsubscribe(&mut self, symbols: &[SymbolId], out: &mut Vec<Message>) {
        let mut names = Vec::new();
        let mut gone = HashSet::new();
        for &s in symbols {
            self.conn.waiting.remove(&s);
            let Some(old) = self.conn.subscribed.remove(&s) else {
                continue;
            };
            if let Some(Some(t)) = self.cache.get(&s) {
                for (name, _) in t.for_depth(old == Mode::Depth) {
                    self.conn.topics.remove(name);
                    names.push(name);
                }
            }
            self.conn.snapshotted.remove(&s);
            gone.insert(s);
        }
        self.conn.drop_states(&gone, None);
        let packets = request::unsubscribe(&names, CHANNEL);
        self.conn.queue(packets, out);
    }

    /// [`BrokerProtocol::on_message`] for a binary frame, with one callback for ticks (with their
    /// `last` marks) and bad records alike: what `on_message` hands to its sink, and what tests
    /// and benchmarks watch.
    #[inline]
    pub fn on_frame(
        &mut self,
        frame: &[u8],
        recv_ts_ns: i64,
        out: &mut Vec<Message>,
        mut on: impl FnMut(Result<(Tick, bool), ParseError>),
    ) -> Result<(), FeedError> {
        match packet::parse(frame) {
            Ok(ServerPacket::Data(d)) => {
                self.conn.on_data(d, recv_ts_ns, out, on);
                Ok(())
            }
            Ok(p) => self.on_control(p, out),
            Err(e) => {
                on(Err(e));
                Ok(())
            }
        }
    }

    /// Auth, status and custom-message packets.
    fn on_control(&mut self, p: ServerPacket<'_>, out: &mut Vec<Message>) -> Result<(), FeedError> {
        match p {
            ServerPacket::Auth {
                ok: true,
                ack_every,
            } => {
                self.conn.authenticated(ack_every, out);
                Ok(())
            }
            ServerPacket::Auth { ok: false, .. } => Err(FeedError::credentials(
                "Fyers refused the access token (auth reply N): the token's hsm_key is not \
                 accepted by the data socket; log in again and give the gateway the new token",
            )),
            ServerPacket::Status { ok: false, of } => {
                let what = match of {
                    packet::resp::SUBSCRIBE => "subscribe",
                    packet::resp::UNSUBSCRIBE => "unsubscribe",
                    packet::resp::MODE => "full-mode",
                    packet::resp::PAUSE => "channel pause",
                    _ => "channel resume",
                };
                Err(FeedError::reject(
                    Vec::new(),
                    format!("Fyers refused a {what} request"),
                ))
            }
            ServerPacket::Message { code, text, .. } if code == SYMBOL_LIMIT_EXCEEDED => {
                let ids = self
                    .conn
                    .last_subscribe
                    .iter()
                    .copied()
                    .filter(|s| !self.conn.snapshotted.contains(s))
                    .collect();
                Err(FeedError::reject(
                    ids,
                    format!("Fyers symbol limit reached (code {code}): {text}"),
                ))
            }
            ServerPacket::Message { code, text, .. } => Err(FeedError::reject(
                Vec::new(),
                format!("Fyers message {code}: {text}"),
            )),
            _ => Ok(()),
        }
    }

    /// A reason naming a few of `ids`' tickers.
    fn unknown_reason(&self, ids: &[SymbolId]) -> String {
        let names: Vec<&str> = ids.iter().filter_map(|&s| self.ticker(s)).take(5).collect();
        let more = ids.len().saturating_sub(names.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!(
            "Fyers does not know {}{more} (invalidSymbol in the symbol-token answer, or a fytoken \
             of an unknown segment)",
            names.join(", ")
        )
    }
}

impl BrokerProtocol for Fyers {
    fn name(&self) -> &'static str {
        "fyers"
    }

    fn limits(&self) -> Limits {
        Limits {
            per_message: 1500,
            per_connection: 5000,
            connections: 1,
            by_mode: None,
        }
    }

    fn liveness(&self) -> Liveness {
        Liveness {
            dead_after: Duration::from_secs(30),
            keepalive: Some((
                Duration::from_secs(10),
                vec![
                    Message::Binary(request::PING.to_vec().into()),
                    Message::Ping(Vec::new().into()),
                ],
            )),
        }
    }

    fn connect_job(&self) -> ConnectJob {
        let token = self.cfg.access_token.clone();
        let url = self.cfg.ws_url.clone();
        Box::new(move || {
            AccessToken::usable(&token).map_err(|e| FeedError::credentials(e.to_string()))?;
            Ok(ConnectRequest {
                url,
                headers: Vec::new(),
            })
        })
    }

    fn reset(&mut self) {
        self.conn = Conn::default();
    }

    fn on_open(&mut self, out: &mut Vec<Message>) {
        out.push(Message::Binary(request::auth(&self.hsm_key).into()));
        out.push(Message::Binary(request::mode(CHANNEL, FULL).into()));
    }

    fn knows(&self, symbol: SymbolId) -> bool {
        self.ticker(symbol).is_some()
    }

    fn encode(&mut self, req: Request<'_>, out: &mut Vec<Message>) {
        match req {
            Request::Subscribe { mode, symbols } => {
                self.subscribe(symbols.iter().map(|&s| (s, mode)), out)
            }
            Request::ChangeMode { mode, symbols } => self.change_mode(mode, symbols, out),
            Request::Unsubscribe { symbols } => self.unsubscribe(symbols, out),
        }
    }

    #[inline]
    fn on_message(
        &mut self,
        msg: Incoming<'_>,
        recv_ts_ns: i64,
        sink: &mut TickSink<'_>,
        out: &mut Vec<Message>,
    ) -> Result<(), FeedError> {
        let Incoming::Binary(frame) = msg else {
            return Ok(()); // the data socket speaks binary only
        };
        self.on_frame(frame, recv_ts_ns, out, |r| match r {
            Ok((t, last)) => sink.tick(t, last),
            Err(e) => sink.parse_error("fyers", &e),
        })
    }

    fn learned(&mut self, out: &mut Vec<(SymbolId, Box<str>)>) {
        out.append(&mut self.learned);
    }

    fn learn(&mut self, symbol: SymbolId, fytoken: &str, out: &mut Vec<Message>) {
        self.in_flight.remove(&symbol);
        if self.seed(symbol, fytoken).is_err() {
            return;
        }
        if let Some(mode) = self.conn.waiting.remove(&symbol) {
            self.subscribe_known(&[(symbol, mode)], out);
        }
    }

    fn has_work(&self) -> bool {
        !self.in_flight.is_empty() || !self.conn.rejects.is_empty() || self.conn.error.is_some()
    }

    fn poll(&mut self, out: &mut Vec<Message>) -> Result<(), FeedError> {
        let mut rejected = std::mem::take(&mut self.conn.rejects);
        let mut err = self.conn.error.take();
        while let Some(w) = &self.worker {
            match w.try_recv() {
                Polled::Empty => break,
                Polled::Ready(o) => self.answered(o, &mut rejected, &mut err, out),
                Polled::Gone => {
                    self.worker = None;
                    self.in_flight.clear();
                    err.get_or_insert(FeedError::retry("symbol-token thread ended"));
                }
            }
        }
        if let Some(e) = err {
            return Err(e);
        }
        if rejected.is_empty() {
            return Ok(());
        }
        let reason = self.unknown_reason(&rejected);
        Err(FeedError::reject(rejected, reason))
    }
}
