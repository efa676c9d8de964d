//! Noren on the broker seam.
//!
//! - Connect: the broker's WebSocket URL as is (no query, no headers). On open the connect message
//!   `{"t":"c","uid":…,"actid":…,"susertoken":…,"source":"API"}` goes out first; subscriptions
//!   are held until the ack `{"t":"ck","s":"OK"}`. Any other `s` stops the feed: the session
//!   token was refused, and retrying it cannot help.
//! - Requests: LTP and Quote ride the touchline (`t` / `u`), Depth the depth feed (`d` / `ud`),
//!   whose messages carry the touchline fields too. `k` names `exch|token` pairs joined by `#`.
//!   A mode change across the two unsubscribes the old feed and subscribes the new one (the
//!   server then sends the new feed's snapshot).
//! - Data: `tk`/`dk` snapshots and `tf`/`df` updates merged per token ([`super::state`]); every
//!   tick is the token's whole state.
//! - Keepalive: a WebSocket PING whose payload is `{"t":"h"}` every 3 s, as Noren's own SDK sends;
//!   the server's PONGs keep the connection alive between ticks. 10 s with no frame at all (three
//!   missed PONGs) is a dead connection.
//! - Limits: one connection per account (Noren's documentation). Instruments per connection are
//!   undocumented; a Shoonya user measured data for only the first ~100 of 164 subscriptions,
//!   silently (ShoonyaApi-py issue #217), so tickwire carries at most 100 and rejects the rest
//!   with a clear status rather than leaving them silent (`--upstream-symbols-per-connection`
//!   raises it for an account known to take more). A whole connection's subscription fits in one
//!   message (100 keys, ~1.5 KB): the SDK sends whatever list it is given in one message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_engine::router::Mode;
use tickwire_engine::symbols::SymbolId;
use tickwire_engine::Tick;
use tungstenite::Message;

use super::keys::Keys;
use super::state::States;
use super::wire::{Message as Wire, Parser};
use super::{Excerpt, NorenConfig, ParseError};
use crate::feed::protocol::{
    BrokerProtocol, ConnectJob, ConnectRequest, Incoming, Limits, Liveness, Request,
};
use crate::feed::{FeedError, TickSink};

/// The heartbeat: the payload of the WebSocket PING the SDK sends every 3 s.
pub const HEARTBEAT: &[u8] = br#"{"t":"h"}"#;
/// How long the connect ack may take.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Most instruments on the one connection (see the module docs).
pub const PER_CONNECTION: usize = 100;

/// Which feed a symbol rides on this connection.
const NONE: u8 = 0;
const TOUCHLINE: u8 = 1;
const DEPTH: u8 = 2;

/// The connect message.
pub fn connect_message(cfg: &NorenConfig) -> String {
    serde_json::json!({
        "t": "c",
        "uid": cfg.user,
        "actid": if cfg.account.is_empty() { &cfg.user } else { &cfg.account },
        "susertoken": cfg.token,
        "source": "API",
    })
    .to_string()
}

/// A request of type `t` for `keys` (`exch|token`, from the master: no character needs escaping).
pub fn request<'a>(t: &str, keys: impl IntoIterator<Item = &'a str>) -> String {
    let mut s = format!(r#"{{"t":"{t}","k":""#);
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            s.push('#');
        }
        s.push_str(k);
    }
    s.push_str("\"}");
    s
}

/// One Noren connection's protocol (see the module docs).
pub struct Noren {
    cfg: NorenConfig,
    keys: Arc<Keys>,
    parser: Parser,
    states: States,
    /// Symbol id → the feed it rides on this connection.
    feed_of: Vec<u8>,
    /// The connect ack said OK.
    authed: bool,
    /// Requests made before that.
    held: Vec<Message>,
    /// When the connect message went out, while its ack is awaited.
    awaiting_ack: Option<Instant>,
}

impl Noren {
    /// A protocol for `cfg` over the master's keys.
    pub fn new(cfg: NorenConfig, keys: Arc<Keys>) -> Self {
        let n = keys.len();
        Self {
            cfg,
            keys,
            parser: Parser::default(),
            states: States::new(n, PER_CONNECTION),
            feed_of: vec![NONE; n],
            authed: false,
            held: Vec::new(),
            awaiting_ack: None,
        }
    }

    /// True once the connect ack said OK.
    pub fn authenticated(&self) -> bool {
        self.authed
    }

    /// Moves `symbols` to feed `to` (or off every feed), sending the unsubscribes first. `again`:
    /// a symbol already on `to` is subscribed again (the feed's retry of a symbol that never got
    /// data asks with a fresh subscribe, which brings a fresh snapshot).
    fn move_to(&mut self, symbols: &[SymbolId], to: u8, again: bool, out: &mut Vec<Message>) {
        let (mut u, mut ud, mut t, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &s in symbols {
            let Some(key) = self.keys.key(s) else {
                continue;
            };
            let Some(old) = self.feed_of.get_mut(s as usize) else {
                continue;
            };
            if *old == to {
                match to {
                    TOUCHLINE if again => t.push(key),
                    DEPTH if again => d.push(key),
                    _ => {}
                }
                continue;
            }
            match *old {
                TOUCHLINE => u.push(key),
                DEPTH => ud.push(key),
                _ => {}
            }
            match to {
                TOUCHLINE => t.push(key),
                DEPTH => d.push(key),
                _ => {}
            }
            *old = to;
            if to == NONE {
                self.states.close(s);
            } else {
                self.states.open(s);
            }
        }
        let to = if self.authed { out } else { &mut self.held };
        for (kind, list) in [("u", u), ("ud", ud), ("t", t), ("d", d)] {
            if !list.is_empty() {
                to.push(Message::Text(request(kind, list).into()));
            }
        }
    }

    /// [`BrokerProtocol::on_message`] for a text message, with one callback for ticks (with their
    /// `last` marks) and bad messages alike: what `on_message` hands to its sink, and what tests
    /// and benchmarks watch.
    #[inline]
    pub fn on_text(
        &mut self,
        text: &[u8],
        recv_ts_ns: i64,
        out: &mut Vec<Message>,
        mut on: impl FnMut(Result<(Tick, bool), ParseError>),
    ) -> Result<(), FeedError> {
        let mut ack = None;
        // One tick is held back so the message's final tick can be marked `last`.
        let mut held: Option<Tick> = None;
        let (keys, states) = (&self.keys, &mut self.states);
        self.parser.parse(text, |r| {
            let u = match r {
                Ok(Wire::Data(u)) => u,
                Ok(Wire::Ack { ok }) => {
                    ack = Some(ok);
                    return;
                }
                Ok(Wire::Other) => return,
                Err(e) => return on(Err(e)),
            };
            let Some(symbol) = keys.symbol(u.exchange, u.token) else {
                let e = super::keys::EXCHANGES
                    .get((u.exchange as usize).wrapping_sub(1))
                    .unwrap_or(&"?");
                return on(Err(ParseError::UnknownToken {
                    exchange: Excerpt::of(e.as_bytes()),
                    token: u.token,
                }));
            };
            let Some(st) = states.get_mut(symbol) else {
                return on(Err(ParseError::NotSubscribed(u.token)));
            };
            if !st.merge(u) {
                return on(Err(ParseError::UpdateBeforeSnapshot(u.token)));
            }
            let mut t = Tick::new(symbol);
            t.recv_ts_ns = recv_ts_ns;
            st.fill(&mut t, u.kind.is_depth());
            if let Some(prev) = held.replace(t) {
                on(Ok((prev, false)));
            }
        });
        if let Some(t) = held {
            on(Ok((t, true)));
        }
        match ack {
            Some(true) => {
                self.authed = true;
                self.awaiting_ack = None;
                out.append(&mut self.held);
                Ok(())
            }
            Some(false) => Err(FeedError::credentials(format!(
                "{} refused the session (connect ack s != OK) for user {}: the susertoken is \
                 wrong or spent (Noren tokens last a day; a new login ends the old session); log \
                 in again and give the gateway the new token",
                self.cfg.broker, self.cfg.user
            ))),
            None => Ok(()),
        }
    }
}

impl BrokerProtocol for Noren {
    fn name(&self) -> &'static str {
        self.cfg.broker
    }

    fn limits(&self) -> Limits {
        Limits {
            per_message: PER_CONNECTION,
            per_connection: PER_CONNECTION,
            connections: 1,
            by_mode: None,
        }
    }

    fn liveness(&self) -> Liveness {
        Liveness {
            dead_after: Duration::from_secs(10),
            keepalive: Some((
                Duration::from_secs(3),
                vec![Message::Ping(HEARTBEAT.to_vec().into())],
            )),
        }
    }

    fn connect_job(&self) -> ConnectJob {
        let (url, broker) = (self.cfg.url.clone(), self.cfg.broker);
        let missing = self.cfg.user.is_empty() || self.cfg.token.is_empty();
        Box::new(move || {
            if missing {
                return Err(FeedError::credentials(format!(
                    "{broker}: a user id and a session token (susertoken) are needed"
                )));
            }
            Ok(ConnectRequest {
                url,
                headers: Vec::new(),
            })
        })
    }

    fn reset(&mut self) {
        self.authed = false;
        self.awaiting_ack = None;
        self.held.clear();
        self.states.clear();
        self.feed_of.fill(NONE);
    }

    fn on_open(&mut self, out: &mut Vec<Message>) {
        out.push(Message::Text(connect_message(&self.cfg).into()));
        self.awaiting_ack = Some(Instant::now());
    }

    /// A server that never acknowledges the connect message would hold every subscription
    /// forever: after [`ACK_TIMEOUT`] the connection is dropped and dialled again.
    fn poll(&mut self, _out: &mut Vec<Message>) -> Result<(), FeedError> {
        match self.awaiting_ack {
            Some(t) if t.elapsed() > ACK_TIMEOUT => {
                self.awaiting_ack = None;
                Err(FeedError::retry(format!(
                    "{}: no connect ack (ck) within {} s",
                    self.cfg.broker,
                    ACK_TIMEOUT.as_secs()
                )))
            }
            _ => Ok(()),
        }
    }

    fn knows(&self, symbol: SymbolId) -> bool {
        self.keys.key(symbol).is_some()
    }

    fn encode(&mut self, req: Request<'_>, out: &mut Vec<Message>) {
        match req {
            Request::Subscribe { mode, symbols } | Request::ChangeMode { mode, symbols } => {
                let to = if mode == Mode::Depth {
                    DEPTH
                } else {
                    TOUCHLINE
                };
                let again = matches!(req, Request::Subscribe { .. });
                self.move_to(symbols, to, again, out)
            }
            Request::Unsubscribe { symbols } => self.move_to(symbols, NONE, false, out),
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
        let name = self.cfg.broker;
        let Incoming::Text(text) = msg else {
            // Noren speaks text only: a binary message is not market data, and is said so.
            sink.parse_error(name, &"unexpected binary message");
            return Ok(());
        };
        self.on_text(text.as_bytes(), recv_ts_ns, out, |r| match r {
            Ok((t, last)) => sink.tick(t, last),
            Err(e) => sink.parse_error(name, &e),
        })
    }
}
