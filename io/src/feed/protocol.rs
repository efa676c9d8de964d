//! The broker seam: the one trait a broker implements ([`BrokerProtocol`]) and the small types it
//! speaks in. Everything else about an upstream connection — resolving, TCP, TLS, the WebSocket
//! handshake, keepalive timing, dead-connection detection, backoff, re-subscribing with modes,
//! per-symbol upstream state, counters — lives once in [`super`], for every broker.
//!
//! A protocol value holds one connection's broker-side state (Fyers' topic ids, Noren's merged
//! touchline): the feed calls [`BrokerProtocol::reset`] before every (re)connect. It never sees a
//! socket, so each broker's protocol is unit-tested with bytes in and bytes out.

use std::time::Duration;

use tickwire_engine::router::Mode;
use tickwire_engine::symbols::SymbolId;
use tungstenite::Message;

use super::error::FeedError;
use super::sink::TickSink;

/// Where and how to open the WebSocket: the URL (query included) and any extra request headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectRequest {
    /// `ws://` or `wss://` URL, with the query the broker wants.
    pub url: String,
    /// Extra headers on the upgrade request (`Authorization`, `X-Kite-Version`, …).
    pub headers: Vec<(String, String)>,
}

/// Work done before every dial, on a helper thread (it may block: DNS, an HTTP call): produces the
/// connect request. Upstox fetches its single-use URI here.
pub type ConnectJob = Box<dyn FnOnce() -> Result<ConnectRequest, FeedError> + Send>;

/// A broker's documented limits (`docs/brokers.md`), used by the feed to batch and to fill
/// connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most symbols named in one subscribe / unsubscribe / mode message.
    pub per_message: usize,
    /// Most symbols one connection carries.
    pub per_connection: usize,
    /// Most connections per account.
    pub connections: usize,
    /// Per-mode limits within a connection, for brokers that have them (Upstox).
    pub by_mode: Option<ModeLimits>,
}

/// Limits that depend on the modes a connection carries (Upstox: 5,000 instruments in `ltpc` on a
/// connection that carries only `ltpc`, but 2,000 once it carries `full` too). The broker's modes
/// are *categories*; each of tickwire's modes falls in one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeLimits {
    /// The category of each mode, by `Mode as usize - 1` (LTP, Quote, Depth); at most 3.
    pub category: [u8; 3],
    /// Most symbols of a category on a connection that carries that category only.
    pub alone: [usize; 3],
    /// Most symbols of a category on a connection that carries more than one.
    pub combined: [usize; 3],
}

/// How the feed keeps a connection alive and decides it is dead.
#[derive(Clone, Debug, PartialEq)]
pub struct Liveness {
    /// No frame of any kind (data, heartbeat, pong) for this long: the connection is dead.
    pub dead_after: Duration,
    /// Send these messages every `Duration` while open (Fyers' `00 01 0B`, a WebSocket ping);
    /// `None` when the broker keeps the connection alive itself (Kite's 1-byte heartbeats).
    pub keepalive: Option<(Duration, Vec<Message>)>,
}

/// One subscription request, already grouped by mode and cut to [`Limits::per_message`] symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Start data for `symbols` in `mode`.
    Subscribe {
        /// The mode (the highest any consumer wants).
        mode: Mode,
        /// Symbols new on this connection.
        symbols: &'a [SymbolId],
    },
    /// Already subscribed; switch `symbols` to `mode`.
    ChangeMode {
        /// The new mode.
        mode: Mode,
        /// Symbols to switch.
        symbols: &'a [SymbolId],
    },
    /// Stop data for `symbols`.
    Unsubscribe {
        /// Symbols to drop.
        symbols: &'a [SymbolId],
    },
}

/// One message from the broker, as the WebSocket delivered it.
#[derive(Clone, Copy, Debug)]
pub enum Incoming<'a> {
    /// A binary message.
    Binary(&'a [u8]),
    /// A text message.
    Text(&'a str),
}

/// One broker's wire protocol. See the module docs; `docs/adding-a-broker.md` walks through an
/// implementation.
pub trait BrokerProtocol: Send {
    /// Short name for logs and status (`kite`, `upstox`).
    fn name(&self) -> &'static str;

    /// Limits for batching and pooling.
    fn limits(&self) -> Limits;

    /// Keepalive and dead-connection rules.
    fn liveness(&self) -> Liveness;

    /// The work that yields the next connect request (see [`ConnectJob`]). Called before every
    /// dial: a request may be single-use.
    fn connect_job(&self) -> ConnectJob;

    /// Forget per-connection state: called before every (re)connect.
    fn reset(&mut self) {}

    /// Messages to send as soon as the WebSocket is open, before any subscription (Fyers' auth and
    /// mode packets). Most brokers authenticate in the upgrade and send nothing.
    fn on_open(&mut self, _out: &mut Vec<Message>) {}

    /// True when this broker has an instrument key for `symbol` (a symbol it does not list is
    /// rejected at once, never sent).
    fn knows(&self, symbol: SymbolId) -> bool;

    /// Encodes one request into `out` (one or more messages).
    fn encode(&mut self, req: Request<'_>, out: &mut Vec<Message>);

    /// Handles one message: market data is parsed straight into ticks written to `sink` (no
    /// allocation per packet); bad packets are counted through `sink` and skipped; anything the
    /// protocol must answer (acks) goes to `out`. An `Err` tells the feed what to do about the
    /// connection ([`FeedError`]).
    fn on_message(
        &mut self,
        msg: Incoming<'_>,
        recv_ts_ns: i64,
        sink: &mut TickSink<'_>,
        out: &mut Vec<Message>,
    ) -> Result<(), FeedError>;

    /// Called on every pass of the feed thread while the connection is open (after the messages
    /// that arrived have been handled): a protocol with work finished off the feed thread (Fyers
    /// resolves symbols to topics over HTTP on a helper thread) sends what is now ready. Most
    /// brokers have nothing to do.
    fn poll(&mut self, _out: &mut Vec<Message>) -> Result<(), FeedError> {
        Ok(())
    }

    /// True while work off the feed thread may finish ([`BrokerProtocol::poll`] has something to
    /// collect): the thread then passes every millisecond instead of sleeping until a socket or
    /// timer wakes it.
    fn has_work(&self) -> bool {
        false
    }

    /// Instrument keys learned while running, off the feed thread (Fyers' fytokens, from its
    /// `symbol-token` HTTP call), as `(symbol, value)` pairs new since the last call, moved into
    /// `out`. The feed journals them (`learned` records) so that a replay, which calls nothing,
    /// can [`BrokerProtocol::learn`] them where the live run learned them. Called after every
    /// [`BrokerProtocol::poll`]; most brokers learn nothing.
    fn learned(&mut self, _out: &mut Vec<(SymbolId, Box<str>)>) {}

    /// A replay hands back a pair [`BrokerProtocol::learned`] gave the live run, at the point it
    /// was learned; what the protocol would then send goes to `out` (and is dropped).
    fn learn(&mut self, _symbol: SymbolId, _value: &str, _out: &mut Vec<Message>) {}

    /// Classifies a failed WebSocket upgrade (default: [`super::error::classify_handshake`]).
    fn handshake_error(&self, e: tungstenite::Error) -> FeedError {
        super::error::classify_handshake(e)
    }
}
