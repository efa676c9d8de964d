//! Dhan on the broker seam: credentials in the upgrade's query, JSON requests (at most 100
//! instruments each), one binary packet per message parsed straight into ticks, disconnect packet 50
//! turned into the right [`FeedError`], and a WebSocket ping every 10 s.
//!
//! Dhan keeps a separate subscription per request code: an instrument subscribed as ticker (15) and
//! then as quote (17) gets both streams (the SDK's own example subscribes one instrument in all
//! three). So a mode change unsubscribes the old code first, then subscribes the new one, and the
//! protocol remembers each symbol's code on this connection.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tickwire_engine::router::Mode;
use tickwire_engine::symbols::SymbolId;
use tungstenite::Message;

use super::packet::{parse_message, parse_single, segment, Instruments, Said, SymState};
use crate::feed::protocol::{
    BrokerProtocol, ConnectJob, ConnectRequest, Incoming, Limits, Liveness, Request,
};
use crate::feed::{FeedError, TickSink};

/// Dhan credentials and URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhanConfig {
    /// The feed URL without its query (default `wss://api-feed.dhan.co`).
    pub url: String,
    /// The Dhan client id.
    pub client_id: String,
    /// The access token.
    pub access_token: String,
}

impl Default for DhanConfig {
    fn default() -> Self {
        Self {
            url: "wss://api-feed.dhan.co".into(),
            client_id: String::new(),
            access_token: String::new(),
        }
    }
}

/// How long to wait before dialling again after Dhan said 805 (too many connections): long enough
/// for another program's connection, or a stale one of ours, to go away.
pub const TOO_MANY_BACKOFF: Duration = Duration::from_secs(120);

/// Request codes: subscribe for a mode; unsubscribe is the subscribe code + 1.
pub fn subscribe_code(mode: Mode) -> u8 {
    match mode {
        Mode::Ltp => 15,
        Mode::Quote => 17,
        Mode::Depth => 21,
    }
}

fn mode_index(mode: Mode) -> u8 {
    match mode {
        Mode::Ltp => 1,
        Mode::Quote => 2,
        Mode::Depth => 3,
    }
}

/// The subscribe code of a remembered mode index (1..=3).
fn code_of_index(m: u8) -> u8 {
    match m {
        2 => 17,
        3 => 21,
        _ => 15,
    }
}

/// What Dhan's disconnect reason means for the feed. 805 backs off; every credential or account
/// reason is a refusal of the credentials: retrying with the same token would be refused again
/// (and the official SDK's redial every second is exactly what tickwire must not do), so the feed
/// waits for new ones.
pub fn disconnect_error(reason: u16) -> FeedError {
    let why = |s: &str| format!("Dhan closed the feed with code {reason}: {s}");
    match reason {
        805 => FeedError::retry_after(
            TOO_MANY_BACKOFF,
            why("too many WebSocket connections for this client id (Dhan allows 5); close the others"),
        ),
        806 => FeedError::credentials(why(
            "the Data APIs are not subscribed for this account; subscribe to them",
        )),
        807 => FeedError::credentials(why(
            "the access token has expired; generate a new one",
        )),
        808 => FeedError::credentials(why("the client id is invalid")),
        809 => FeedError::credentials(why(
            "authentication failed (client id or access token refused)",
        )),
        _ => FeedError::retry(why("unknown reason")),
    }
}

/// One Dhan connection's protocol (see the module docs).
pub struct Dhan {
    cfg: DhanConfig,
    table: Arc<Instruments>,
    /// Per symbol id, this connection's remembered values and subscribed mode.
    state: Vec<SymState>,
}

impl Dhan {
    /// A protocol for `cfg` over the feed's instrument table.
    pub fn new(cfg: DhanConfig, table: Arc<Instruments>) -> Self {
        let state = vec![SymState::default(); table.of_id.len()];
        Self { cfg, table, state }
    }

    /// One request message for `symbols` (those listed), or nothing if none is.
    fn request(&self, code: u8, symbols: impl Iterator<Item = SymbolId>, out: &mut Vec<Message>) {
        let mut list = String::new();
        let mut n = 0;
        for s in symbols {
            let Some(e) = self.table.entry(s) else {
                continue;
            };
            let Some(seg) = segment::name(e.segment) else {
                continue;
            };
            if n > 0 {
                list.push(',');
            }
            let _ = write!(
                list,
                r#"{{"ExchangeSegment":"{seg}","SecurityId":"{}"}}"#,
                e.security_id
            );
            n += 1;
        }
        if n > 0 {
            out.push(Message::Text(
                format!(
                    r#"{{"RequestCode":{code},"InstrumentCount":{n},"InstrumentList":[{list}]}}"#
                )
                .into(),
            ));
        }
    }

    /// Unsubscribes `symbols` from whatever code each was subscribed with (grouped by code).
    fn unsubscribe_old(&mut self, symbols: &[SymbolId], except: u8, out: &mut Vec<Message>) {
        for m in 1..=3u8 {
            if m == except {
                continue;
            }
            let st = &self.state;
            let of_mode = symbols
                .iter()
                .copied()
                .filter(|&s| st.get(s as usize).is_some_and(|x| x.mode == m));
            self.request(code_of_index(m) + 1, of_mode, out);
        }
    }

    fn set_mode(&mut self, symbols: &[SymbolId], m: u8) {
        for &s in symbols {
            if let Some(st) = self.state.get_mut(s as usize) {
                st.mode = m;
            }
        }
    }
}

impl BrokerProtocol for Dhan {
    fn name(&self) -> &'static str {
        "dhan"
    }

    fn limits(&self) -> Limits {
        Limits {
            per_message: 100,
            per_connection: 5000,
            connections: 5,
            by_mode: None,
        }
    }

    /// A WebSocket ping every 10 s (Dhan's server pings too and drops a client silent for 40 s);
    /// 25 s without any frame (data, ping or pong) means dead: two keepalive rounds missed plus
    /// margin, well inside the server's own 40 s.
    fn liveness(&self) -> Liveness {
        Liveness {
            dead_after: Duration::from_secs(25),
            keepalive: Some((
                Duration::from_secs(10),
                vec![Message::Ping(Vec::new().into())],
            )),
        }
    }

    fn connect_job(&self) -> ConnectJob {
        let c = self.cfg.clone();
        Box::new(move || {
            let sep = if c.url.contains('?') { '&' } else { '?' };
            // `wss://api-feed.dhan.co?version=2…` as Dhan documents it has an empty path; the
            // request line needs `/` (what a browser or the SDK's websockets library sends).
            let host_only = c
                .url
                .split_once("://")
                .is_some_and(|(_, rest)| !rest.contains(['/', '?']));
            let slash = if host_only { "/" } else { "" };
            Ok(ConnectRequest {
                url: format!(
                    "{}{slash}{sep}version=2&token={}&clientId={}&authType=2",
                    c.url, c.access_token, c.client_id
                ),
                headers: Vec::new(),
            })
        })
    }

    fn reset(&mut self) {
        self.state.iter_mut().for_each(|s| *s = SymState::default());
    }

    fn knows(&self, symbol: SymbolId) -> bool {
        self.table.entry(symbol).is_some()
    }

    fn encode(&mut self, req: Request<'_>, out: &mut Vec<Message>) {
        match req {
            Request::Subscribe { mode, symbols } | Request::ChangeMode { mode, symbols } => {
                let m = mode_index(mode);
                self.unsubscribe_old(symbols, m, out);
                // Always sent, even for a symbol already in this mode: the feed re-sends a
                // subscription that never produced data, and Dhan takes a repeat as a no-op.
                self.request(subscribe_code(mode), symbols.iter().copied(), out);
                self.set_mode(symbols, m);
            }
            Request::Unsubscribe { symbols } => {
                self.unsubscribe_old(symbols, 0, out);
                self.set_mode(symbols, 0);
            }
        }
    }

    #[inline]
    fn on_message(
        &mut self,
        msg: Incoming<'_>,
        recv_ts_ns: i64,
        sink: &mut TickSink<'_>,
        _out: &mut Vec<Message>,
    ) -> Result<(), FeedError> {
        match msg {
            Incoming::Binary(b) => {
                // One packet per message, as Dhan sends them: the tick goes from the parser to
                // the sink in one move (see `parse_single`).
                match parse_single(b, recv_ts_ns, &self.table, &mut self.state, |t| {
                    sink.tick(t, true)
                }) {
                    Some(Ok(())) => return Ok(()),
                    Some(Err(e)) => {
                        sink.parse_error("dhan", &e);
                        return Ok(());
                    }
                    None => {}
                }
                let said =
                    parse_message(b, recv_ts_ns, &self.table, &mut self.state, |r| match r {
                        Ok((t, last)) => sink.tick(t, last),
                        Err(e) => sink.parse_error("dhan", &e),
                    });
                match said {
                    Said::Data => Ok(()),
                    Said::Disconnect(reason) => Err(disconnect_error(reason)),
                }
            }
            // Dhan answers only in binary; a text message is not market data.
            Incoming::Text(t) => {
                sink.parse_error("dhan", &format_args!("unexpected text message: {t:.120}"));
                Ok(())
            }
        }
    }
}
