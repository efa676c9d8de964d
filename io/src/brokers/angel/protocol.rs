//! Angel One SmartAPI 2.0 on the broker seam: the four credential headers on the upgrade, JSON text
//! requests per mode grouped by exchange type, one binary packet per message parsed straight into a
//! tick, text `ping` every 10 s answered `pong`, text errors (`E1002`: subscription limit) turned
//! into rejections of the request they answer.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tickwire_engine::router::Mode;
use tickwire_engine::symbols::SymbolId;
use tungstenite::Message;

use super::packet::{self, KeyMap};
use super::AngelConfig;
use crate::feed::protocol::{
    BrokerProtocol, ConnectJob, ConnectRequest, Incoming, Limits, Liveness, Request,
};
use crate::feed::{FeedError, TickSink};

/// Most tokens in one request. Angel documents no per-message limit; 500 keeps a connection's
/// 1,000 in two messages and bounds what one `E1002` (which answers a whole request) rejects.
pub const PER_MESSAGE: usize = 500;

/// Requests remembered for matching an error's `correlationID` back to their symbols.
const REMEMBERED: usize = 64;

/// Angel's mode number for ours: LTP 1, Quote 2, SnapQuote 3 (best five: tickwire's Depth).
pub fn mode_number(mode: Mode) -> u8 {
    match mode {
        Mode::Ltp => 1,
        Mode::Quote => 2,
        Mode::Depth => 3,
    }
}

/// One connection's protocol. The key tables are shared by every connection of the feed; the mode
/// each symbol is subscribed in and the recent requests are this connection's.
pub struct Angel {
    cfg: AngelConfig,
    keys: Arc<KeyMap>,
    /// Symbol id → (exchange type, token); exchange type 0: not an Angel instrument.
    of_id: Arc<Vec<(u8, u64)>>,
    /// Symbol id → the Angel mode it is subscribed in on this connection (0: none).
    mode_of: Vec<u8>,
    /// (correlation id, symbols) of recent subscribe requests, oldest first.
    recent: VecDeque<(String, Vec<SymbolId>)>,
    next_id: u32,
}

impl Angel {
    /// A protocol over the shared tables.
    pub fn new(cfg: AngelConfig, keys: Arc<KeyMap>, of_id: Arc<Vec<(u8, u64)>>) -> Self {
        Self {
            cfg,
            keys,
            mode_of: vec![0; of_id.len()],
            of_id,
            recent: VecDeque::new(),
            next_id: 0,
        }
    }

    fn of(&self, s: SymbolId) -> Option<(u8, u64)> {
        self.of_id.get(s as usize).copied().filter(|k| k.0 != 0)
    }

    /// `{"correlationID":…,"action":…,"params":{"mode":…,"tokenList":[{"exchangeType":…,"tokens":[…]}]}}`
    /// for the known ones of `symbols`, grouped by exchange type in order of first appearance.
    /// Returns the correlation id and the symbols named.
    fn request(
        &mut self,
        action: u8,
        mode: u8,
        symbols: &[SymbolId],
        out: &mut Vec<Message>,
    ) -> Option<(String, Vec<SymbolId>)> {
        let mut groups: Vec<(u8, Vec<u64>)> = Vec::new();
        let mut named = Vec::new();
        for &s in symbols {
            let Some((ex, tok)) = self.of(s) else {
                continue;
            };
            named.push(s);
            match groups.iter_mut().find(|g| g.0 == ex) {
                Some(g) => g.1.push(tok),
                None => groups.push((ex, vec![tok])),
            }
        }
        if named.is_empty() {
            return None;
        }
        self.next_id = self.next_id.wrapping_add(1);
        // Angel's correlation ids are 10 alphanumeric characters, echoed in error replies.
        let corr = format!("tw{:08}", self.next_id % 100_000_000);
        let mut j = format!(
            "{{\"correlationID\":\"{corr}\",\"action\":{action},\"params\":{{\"mode\":{mode},\"tokenList\":["
        );
        for (gi, (ex, toks)) in groups.iter().enumerate() {
            if gi > 0 {
                j.push(',');
            }
            let _ = write!(j, "{{\"exchangeType\":{ex},\"tokens\":[");
            for (ti, t) in toks.iter().enumerate() {
                if ti > 0 {
                    j.push(',');
                }
                let _ = write!(j, "\"{t}\"");
            }
            j.push_str("]}");
        }
        j.push_str("]}}");
        out.push(Message::Text(j.into()));
        Some((corr, named))
    }

    fn subscribe(&mut self, mode: u8, symbols: &[SymbolId], out: &mut Vec<Message>) {
        if let Some((corr, named)) = self.request(1, mode, symbols, out) {
            for &s in &named {
                self.mode_of[s as usize] = mode;
            }
            if self.recent.len() == REMEMBERED {
                self.recent.pop_front();
            }
            self.recent.push_back((corr, named));
        }
    }

    /// Unsubscribes `symbols` from the mode each is held in (Angel keeps a subscription per mode:
    /// an unsubscribe names the mode it ends), one request per mode.
    fn unsubscribe(&mut self, symbols: &[SymbolId], out: &mut Vec<Message>) {
        for m in 1..=3u8 {
            let held: Vec<SymbolId> = symbols
                .iter()
                .copied()
                .filter(|&s| self.mode_of.get(s as usize) == Some(&m))
                .collect();
            if self.request(0, m, &held, out).is_some() {
                for s in held {
                    self.mode_of[s as usize] = 0;
                }
            }
        }
    }

    /// A text message: `pong` (the heartbeat's answer) or an error
    /// `{"correlationID":…,"errorCode":"E1002","errorMessage":…}`.
    fn on_text(&mut self, text: &str) -> Result<(), FeedError> {
        if text.trim() == "pong" {
            return Ok(());
        }
        let v: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => return Err(FeedError::reject(vec![], format!("angel says: {text}"))),
        };
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
        let code = field("errorCode");
        let corr = field("correlationID");
        let why = format!("angel error {code}: {} ({corr})", field("errorMessage"));
        if code == "E1002" {
            // Subscription limit: the symbols of that request are refused, not retried.
            let ids = match self.recent.iter().position(|r| r.0 == corr) {
                Some(i) => self.recent.remove(i).map(|r| r.1).unwrap_or_default(),
                None => Vec::new(),
            };
            for &s in &ids {
                if let Some(m) = self.mode_of.get_mut(s as usize) {
                    *m = 0;
                }
            }
            return Err(FeedError::refuse(ids, why));
        }
        // Other errors (malformed request, …): counted and logged, the connection stays.
        Err(FeedError::reject(vec![], why))
    }
}

/// `Bearer <jwt>`: what the SDK's login hands to SmartWebSocketV2 (generateSession prefixes it), so
/// what Angel receives; a JWT given with the prefix is not prefixed twice.
pub fn authorization(jwt: &str) -> String {
    let t = jwt.trim();
    if t.starts_with("Bearer ") {
        t.to_owned()
    } else {
        format!("Bearer {t}")
    }
}

impl BrokerProtocol for Angel {
    fn name(&self) -> &'static str {
        "angel"
    }

    fn limits(&self) -> Limits {
        Limits {
            per_message: PER_MESSAGE,
            per_connection: 1000,
            connections: 3,
            by_mode: None,
        }
    }

    fn liveness(&self) -> Liveness {
        Liveness {
            dead_after: Duration::from_secs(20),
            keepalive: Some((Duration::from_secs(10), vec![Message::Text("ping".into())])),
        }
    }

    fn connect_job(&self) -> ConnectJob {
        let c = self.cfg.clone();
        Box::new(move || {
            Ok(ConnectRequest {
                url: c.url.clone(),
                headers: vec![
                    ("Authorization".into(), authorization(&c.jwt)),
                    ("x-api-key".into(), c.api_key.clone()),
                    ("x-client-code".into(), c.client_code.clone()),
                    ("x-feed-token".into(), c.feed_token.clone()),
                ],
            })
        })
    }

    fn reset(&mut self) {
        self.mode_of.iter_mut().for_each(|m| *m = 0);
        self.recent.clear();
    }

    fn knows(&self, symbol: SymbolId) -> bool {
        self.of(symbol).is_some()
    }

    fn encode(&mut self, req: Request<'_>, out: &mut Vec<Message>) {
        match req {
            Request::Subscribe { mode, symbols } => {
                self.subscribe(mode_number(mode), symbols, out);
            }
            // Subscribe in the new mode first (no gap in data), then end the old mode's
            // subscription, which Angel would otherwise keep streaming.
            Request::ChangeMode { mode, symbols } => {
                let m = mode_number(mode);
                let old: Vec<(SymbolId, u8)> = symbols
                    .iter()
                    .filter_map(|&s| {
                        let o = *self.mode_of.get(s as usize)?;
                        (o != 0 && o != m).then_some((s, o))
                    })
                    .collect();
                self.subscribe(m, symbols, out);
                for o in 1..=3u8 {
                    let held: Vec<SymbolId> =
                        old.iter().filter(|x| x.1 == o).map(|x| x.0).collect();
                    self.request(0, o, &held, out);
                }
            }
            Request::Unsubscribe { symbols } => self.unsubscribe(symbols, out),
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
                // The tick goes from the parser to the sink in one move (see `parse_with`).
                if let Err(e) =
                    packet::parse_with(b, recv_ts_ns, &self.keys, |t| sink.tick(t, true))
                {
                    sink.parse_error("angel", &e);
                }
                Ok(())
            }
            Incoming::Text(t) => self.on_text(t),
        }
    }
}
