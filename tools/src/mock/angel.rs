//! The mock's Angel One dialect (SmartAPI WebSocket 2.0), on the mock's one port:
//!
//! - The WebSocket at `/smart-stream`. The upgrade must carry `Authorization` (the access token,
//!   `Bearer <token>` as the SDK's login hands it over, or bare), `x-api-key` (the API key),
//!   `x-feed-token` (the access token) and a non-empty `x-client-code`; otherwise `401
//!   Unauthorized` before any upgrade.
//! - Requests as text JSON `{"correlationID":…,"action":1|0,"params":{"mode":1|2|3,"tokenList":[…]}}`.
//!   A subscription is held per (token, mode), as Angel's are: a token subscribed in two modes gets
//!   a packet in each. A subscribe that would take a connection past 1,000 tokens is refused whole
//!   with `E1002`; a malformed request gets `E1001`; unknown tokens are ignored.
//! - Text `ping` is answered `pong`; WebSocket PING control frames (the Python SDK's heartbeat)
//!   are answered with PONG by tungstenite.
//! - Data: one little-endian packet per binary message (51 / 123 / 379 bytes), best-five entries
//!   interleaved buy, sell, buy, … with their flags (a reader must go by the flag).
//! - The scrip master JSON at `/OpenAPI_File/files/OpenAPIScripMaster.json`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tickwire_engine::price;
use tickwire_engine::router::Mode;
use tickwire_io::brokers::angel::instruments::Row;
use tickwire_io::brokers::angel::packet::{exchange as et, Fields};
use tickwire_io::brokers::angel::AngelConfig;
use tickwire_io::brokers::master::MONTHS;
use tickwire_io::brokers::BrokerConfig;
use tickwire_io::http::Head;
use tickwire_io::kite::instruments::Instrument;
use tickwire_io::kite::packet::Repr;
use tungstenite::Message;

use super::config::MockConfig;
use super::dialect::{Ctx, Dialect, Reply, Session};

/// The feed's WebSocket path.
pub const FEED: &str = "/smart-stream";
/// The scrip master's path.
pub const MASTER: &str = "/OpenAPI_File/files/OpenAPIScripMaster.json";
/// The client code the gateway sends to the mock (any non-empty one is accepted).
pub const CLIENT_CODE: &str = "MOCK1";
/// Tokens one connection may hold (Angel's documented limit).
pub const SESSION_LIMIT: usize = 1000;

/// The dialect for a market with these rows.
pub fn dialect(rows: &[Instrument]) -> Box<dyn Dialect> {
    Box::new(Angel::new(rows))
}

/// How a gateway reaches a mock at `base` with settings `cfg`: its broker config and instrument
/// master source.
pub fn gateway(base: SocketAddr, cfg: &MockConfig) -> (BrokerConfig, String) {
    (
        BrokerConfig::Angel(AngelConfig {
            url: format!("ws://{base}{FEED}"),
            api_key: cfg.api_key.clone(),
            client_code: CLIENT_CODE.into(),
            jwt: cfg.access_token.clone(),
            feed_token: cfg.access_token.clone(),
        }),
        format!("http://{base}{MASTER}"),
    )
}

/// The mock's endpoints, for its start-up line (`ws`/`http`: the schemes in use).
pub fn describe(ws: &str, http: &str, addr: SocketAddr, cfg: &MockConfig) -> String {
    format!(
        "mock Angel One broker on {http}://{addr} (feed: {ws}://{addr}{FEED}, instruments: {http}://{addr}{MASTER}; headers Authorization: Bearer {t}, x-api-key: {k}, x-feed-token: {t}, x-client-code: any)",
        t = cfg.access_token,
        k = cfg.api_key
    )
}

/// `2026-12-29` → `29DEC2026`.
fn angel_expiry(e: &str) -> String {
    let mut it = e.split('-');
    let (Some(y), Some(m), Some(d)) = (it.next(), it.next(), it.next()) else {
        return String::new();
    };
    let mon = m
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.checked_sub(1)?))
        .copied()
        .unwrap_or("JAN");
    format!("{d}{mon}{y}")
}

/// The Angel master row and (exchange type, token) for one of the market's (Kite-shaped)
/// instruments, under the same OpenAlgo name.
pub fn row(r: &Instrument) -> (Row, u8) {
    let (exch, exch_seg) = match r.segment.as_str() {
        "NFO-FUT" => (et::NSE_FO, "NFO"),
        "CDS-FUT" => (et::CDE_FO, "CDS"),
        _ => (et::NSE_CM, "NSE"),
    };
    // Strikes and tick sizes in paise (10^-7 rupee for currency), as Angel writes them.
    let unit = if exch == et::CDE_FO { 1 } else { 100_000 };
    let tick = price::parse(&r.tick_size).unwrap_or(0) / unit;
    let expiry = angel_expiry(&r.expiry);
    let (symbol, name, itype) = match r.segment.as_str() {
        "INDICES" => {
            let (sym, name) = match r.tradingsymbol.as_str() {
                "NIFTY 50" => ("Nifty 50".to_string(), "NIFTY".to_string()),
                other => (other.to_string(), other.replace(' ', "")),
            };
            (sym, name, "AMXIDX")
        }
        "NFO-FUT" | "CDS-FUT" => {
            let code = if expiry.len() == 9 {
                format!("{}{}", &expiry[..5], &expiry[7..])
            } else {
                String::new()
            };
            let itype = if exch == et::CDE_FO {
                "FUTCUR"
            } else {
                "FUTIDX"
            };
            (format!("{}{code}FUT", r.name), r.name.clone(), itype)
        }
        _ => (
            format!("{}-EQ", r.tradingsymbol),
            r.tradingsymbol.clone(),
            "",
        ),
    };
    let row = Row {
        token: r.exchange_token.to_string(),
        symbol,
        name,
        expiry,
        strike: "-1.000000".into(),
        lotsize: r.lot_size.max(1).to_string(),
        instrumenttype: itype.into(),
        exch_seg: exch_seg.into(),
        tick_size: format!("{tick}.000000"),
    };
    (row, exch)
}

/// See the module docs.
pub struct Angel {
    master: Vec<u8>,
    /// (exchange type, token) of each instrument, by market index.
    keys: Arc<Vec<(u8, u64)>>,
    by_key: Arc<HashMap<(u8, u64), usize>>,
}

impl Angel {
    /// The dialect for a market with these rows.
    pub fn new(rows: &[Instrument]) -> Self {
        let listed: Vec<(Row, u8)> = rows.iter().map(row).collect();
        let keys: Vec<(u8, u64)> = listed
            .iter()
            .map(|(r, e)| (*e, r.token.parse().unwrap_or(0)))
            .collect();
        let master: Vec<&Row> = listed.iter().map(|(r, _)| r).collect();
        Self {
            master: serde_json::to_vec(&master).unwrap_or_default(),
            by_key: Arc::new(keys.iter().enumerate().map(|(i, &k)| (k, i)).collect()),
            keys: Arc::new(keys),
        }
    }
}

impl Dialect for Angel {
    fn name(&self) -> &'static str {
        "angel"
    }

    fn http(&self, head: &Head, _body: &[u8], _ctx: &Ctx<'_>) -> Option<Reply> {
        (head.path == MASTER).then(|| Reply::new("200 OK", "application/json", self.master.clone()))
    }

    fn upgrade(&self, head: &Head, ctx: &Ctx<'_>) -> Result<(), Reply> {
        if head.path != FEED {
            return Err(Reply::new("404 Not Found", "text/plain", "not found\n"));
        }
        let token = &ctx.cfg.access_token;
        let auth_ok = head
            .header("authorization")
            .map(|a| a.strip_prefix("Bearer ").unwrap_or(a))
            .is_some_and(|a| a == token);
        let ok = auth_ok
            && head.header("x-api-key") == Some(ctx.cfg.api_key.as_str())
            && head.header("x-feed-token") == Some(token.as_str())
            && head.header("x-client-code").is_some_and(|c| !c.is_empty());
        if !ok {
            let body =
                r#"{"success":false,"message":"Invalid token or api key","errorCode":"AG8001"}"#;
            return Err(Reply::new("401 Unauthorized", "application/json", body));
        }
        Ok(())
    }

    fn session(&self, _head: &Head, _ctx: &Ctx<'_>) -> Box<dyn Session> {
        Box::new(AngelSession {
            modes: HashMap::new(),
            keys: self.keys.clone(),
            by_key: self.by_key.clone(),
            sequence: 0,
        })
    }
}

struct AngelSession {
    /// Instrument → bit set of Angel modes held (bit m for mode m).
    modes: HashMap<usize, u8>,
    keys: Arc<Vec<(u8, u64)>>,
    by_key: Arc<HashMap<(u8, u64), usize>>,
    sequence: i64,
}

fn error(out: &mut Vec<Message>, corr: &str, code: &str, msg: &str) {
    let j = serde_json::json!({"correlationID": corr, "errorCode": code, "errorMessage": msg});
    out.push(Message::Text(j.to_string().into()));
}

/// (exchange type, token) pairs a request names.
type TokenList = Vec<(u8, u64)>;

/// `(action, mode, tokens)` of a request, `None` if malformed.
fn request(v: &serde_json::Value) -> Option<(u64, u8, TokenList)> {
    let action = v.get("action")?.as_u64().filter(|a| *a <= 1)?;
    let p = v.get("params")?;
    let mode = p.get("mode")?.as_u64().filter(|m| (1..=3).contains(m))? as u8;
    let mut list = Vec::new();
    for g in p.get("tokenList")?.as_array()? {
        let ex = u8::try_from(g.get("exchangeType")?.as_u64()?).ok()?;
        for t in g.get("tokens")?.as_array()? {
            list.push((ex, t.as_str()?.parse().ok()?));
        }
    }
    Some((action, mode, list))
}

fn mode_of(m: u8) -> Mode {
    match m {
        1 => Mode::Ltp,
        2 => Mode::Quote,
        _ => Mode::Depth,
    }
}

impl Session for AngelSession {
    fn wants(&self, i: usize) -> Option<Mode> {
        let mask = *self.modes.get(&i)?;
        (1..=3u8).rev().find(|m| mask & 1 << m != 0).map(mode_of)
    }

    fn on_message(
        &mut self,
        msg: &Message,
        _ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
        fresh: &mut Vec<usize>,
    ) {
        let text = match msg {
            Message::Text(t) => t.as_str(),
            Message::Binary(_) => return error(out, "", "E1001", "Invalid Request Payload."),
            _ => return,
        };
        if text == "ping" {
            out.push(Message::Text("pong".into()));
            return;
        }
        let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let corr = v
            .get("correlationID")
            .and_then(|c| c.as_str())
            .unwrap_or("")
            .to_string();
        let Some((action, mode, list)) = request(&v) else {
            return error(out, &corr, "E1001", "Invalid Request Payload.");
        };
        let insts: Vec<usize> = list
            .iter()
            .filter_map(|k| self.by_key.get(k).copied())
            .collect();
        if action == 1 {
            let new = insts.iter().filter(|i| !self.modes.contains_key(i)).count();
            if self.modes.len() + new > SESSION_LIMIT {
                return error(
                    out,
                    &corr,
                    "E1002",
                    "Invalid Request. Subscription Limit Exceeded.",
                );
            }
            for i in insts {
                *self.modes.entry(i).or_default() |= 1 << mode;
                fresh.push(i);
            }
        } else {
            for i in insts {
                if let Some(m) = self.modes.get_mut(&i) {
                    *m &= !(1 << mode);
                    if *m == 0 {
                        self.modes.remove(&i);
                    }
                }
            }
        }
    }

    /// One packet per binary message, one per mode each instrument is held in.
    fn encode(
        &mut self,
        updates: &[(usize, Repr)],
        _snapshot: bool,
        _ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
    ) {
        for &(i, r) in updates {
            let (Some(&mask), Some(&(exchange, token))) = (self.modes.get(&i), self.keys.get(i))
            else {
                continue;
            };
            for mode in 1..=3u8 {
                if mask & 1 << mode == 0 {
                    continue;
                }
                self.sequence += 1;
                let f = fields(&r, mode, exchange, token, self.sequence);
                let mut b = Vec::with_capacity(379);
                f.emit(&mut b);
                out.push(Message::Binary(b.into()));
            }
        }
    }
}

/// The market's state as an Angel packet (raw Kite units are Angel's: paise, 10^-7 for CDS).
fn fields(r: &Repr, mode: u8, exchange: u8, token: u64, sequence: i64) -> Fields {
    let mut best5 = [(0u16, 0i64, 0i64, 0u16); 10];
    for k in 0..5 {
        let (b, a) = (r.bids[k], r.asks[k]);
        best5[2 * k] = (1, b.qty as i64, b.price as i64, b.orders);
        best5[2 * k + 1] = (0, a.qty as i64, a.price as i64, a.orders);
    }
    let close = r.close as i64;
    Fields {
        mode,
        exchange,
        token,
        sequence,
        exchange_ts_ms: r.exchange_ts as i64 * 1000,
        ltp: r.ltp as i64,
        last_qty: r.last_qty as i64,
        avg_price: r.avg_price as i64,
        volume: r.volume as i64,
        buy_qty: r.buy_qty as f64,
        sell_qty: r.sell_qty as f64,
        open: r.open as i64,
        high: r.high as i64,
        low: r.low as i64,
        close,
        last_trade_ts: r.last_trade_time as i64 * 1000,
        oi: r.oi as i64,
        oi_change: 0,
        best5,
        limits: [close * 11 / 10, close * 9 / 10, r.high as i64, r.low as i64],
    }
}
