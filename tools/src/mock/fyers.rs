//! The mock's Fyers dialect (API v3 data socket, "HSM"), the endpoints the official SDK and tickwire
//! call, on the mock's one port:
//!
//! - The WebSocket at `/hsm/v1-5/prod`: no query, no auth header; binary packets only. A ping
//!   `00 01 0B` is accepted at any time (the SDK sends one before it authenticates). Auth (type 1)
//!   is answered `K` with an ack interval of [`ACK_EVERY`] when its `hsm_key` is the token's, `N`
//!   otherwise; mode (12) and subscribe/unsubscribe (4/5) are answered `K`; the client's length
//!   prefixes are not trusted (the SDK's are wrong), packets are read by their fields.
//! - Data (type 6, every packet numbered): an `S` snapshot the first time a topic is sent on a
//!   connection (it binds the 2-byte topic id and names the topic exactly as subscribed), then `U`
//!   updates carrying only the fields that changed (the others `0x80000000`).
//! - `POST /data/symbol-token` (header `Authorization: <JWT>`, body `{"symbols":[…]}`) →
//!   `{"s":"ok","validSymbol":{"NSE:SBIN-EQ":"10100000003045"},"invalidSymbol":[]}`.
//! - The symbol master CSVs at `/sym_details/NSE_CM.csv`, `NSE_FO.csv`, `NSE_CD.csv`, and the index
//!   name map at `/sym_details/index_hsm_mapping.json`.
//!
//! The access token is an unsigned JWT whose `hsm_key` is the mock's `--access-token`
//! ([`token_for`]): tickwire and the SDK read `hsm_key` and `exp` out of it, as from Fyers' own.

use std::collections::HashMap;
use std::sync::Arc;

use tickwire_engine::router::Mode;
use tickwire_io::brokers::fyers::instruments::{self, Row};
use tickwire_io::brokers::fyers::packet::{resp, ABSENT};
use tickwire_io::brokers::fyers::{
    auth, serve, topic, ClientPacket, DataWriter, Kind, SnapshotSpec,
};
use tickwire_io::brokers::master::{days_from_civil, MONTHS};
use tickwire_io::http::Head;
use tickwire_io::kite::instruments::Instrument;
use tickwire_io::kite::packet::{divisor, Repr};
use tungstenite::Message;

use super::dialect::{Ctx, Dialect, Reply, Session};

/// The feed's WebSocket path.
pub const FEED: &str = "/hsm/v1-5/prod";
/// The symbol-token path.
pub const SYMBOL_TOKEN: &str = "/data/symbol-token";
/// The master files the mock serves, by segment.
pub const MASTERS: [&str; 3] = [
    "/sym_details/NSE_CM.csv",
    "/sym_details/NSE_FO.csv",
    "/sym_details/NSE_CD.csv",
];
/// Data packets between acks the mock asks for.
pub const ACK_EVERY: u32 = 50;
/// The mock token's expiry: 2100-01-01.
const EXP: i64 = 4_102_444_800;

/// The access token the mock accepts for `--access-token` (its `hsm_key`).
pub fn token_for(access_token: &str) -> String {
    auth::mock_token(access_token, EXP)
}

/// The Fyers master row for one of the market's (Kite-shaped) instruments, under the same OpenAlgo
/// name.
pub fn row(r: &Instrument) -> Row {
    let t = r.exchange_token.to_string();
    let (y, m, d) = match r.expiry.len() {
        10 => {
            let n = |a: usize, b: usize| r.expiry[a..b].parse::<u32>().unwrap_or(1);
            (n(0, 4) as i64, n(5, 7), n(8, 10))
        }
        _ => (0, 1, 1),
    };
    let mon = MONTHS[(m as usize - 1) % 12];
    let title = format!("{}{}", &mon[..1], mon[1..].to_ascii_lowercase());
    let yymmdd = format!("{:02}{m:02}{d:02}", y.rem_euclid(100));
    let base = Row {
        lot: r.lot_size as u64,
        tick_size: r.tick_size.clone(),
        exchange: 10,
        scrip_code: t.clone(),
        underlying: r.name.clone(),
        strike: "-1.0".into(),
        option_type: "XX".into(),
        ..Row::default()
    };
    match r.segment.as_str() {
        "INDICES" => {
            let compact = r.tradingsymbol.replace(' ', "");
            Row {
                fytoken: format!("1010000000{t}"),
                symbol_details: format!("{compact}-INDEX"),
                instrument_type: 10,
                ticker: format!("NSE:{compact}-INDEX"),
                segment: 10,
                underlying: if compact == "NIFTY50" {
                    "NIFTY".into()
                } else {
                    compact
                },
                ..base
            }
        }
        seg @ ("NFO-FUT" | "CDS-FUT") => {
            let (code, segment) = if seg == "NFO-FUT" {
                ("1011", 11)
            } else {
                ("1012", 12)
            };
            // 15:30 IST on the expiry day, as Fyers dates contracts (epoch seconds)
            let expiry = days_from_civil(y, m, d) * 86_400 + 36_000;
            Row {
                fytoken: format!("{code}{yymmdd}{t}"),
                symbol_details: format!("{} {d:02} {title} {:02} FUT", r.name, y.rem_euclid(100)),
                instrument_type: 11,
                expiry: Some(expiry),
                ticker: format!("NSE:{}{:02}{mon}FUT", r.name, y.rem_euclid(100)),
                segment,
                ..base
            }
        }
        _ => Row {
            fytoken: format!("1010000000{t}"),
            symbol_details: r.name.clone(),
            instrument_type: 0,
            ticker: format!("NSE:{}-EQ", r.tradingsymbol),
            segment: 10,
            underlying: r.tradingsymbol.clone(),
            ..base
        },
    }
}

/// See the module docs.
pub struct Fyers {
    masters: [Vec<u8>; 3],
    fytoken: HashMap<String, String>,
    /// Topic name → (instrument, kind).
    topics: Arc<HashMap<String, (usize, Kind)>>,
    index_map: String,
}

impl Fyers {
    /// The dialect for a market with these rows.
    pub fn new(rows: &[Instrument]) -> Self {
        let listed: Vec<Row> = rows.iter().map(row).collect();
        let by_segment = |s: u32| {
            let part: Vec<Row> = listed.iter().filter(|r| r.segment == s).cloned().collect();
            instruments::to_csv(&part)
        };
        let mut topics = HashMap::new();
        let mut index_map = serde_json::Map::new();
        for (i, r) in listed.iter().enumerate() {
            if let Ok(t) = topic::topics(&r.ticker, &r.fytoken) {
                topics.insert(t.main.to_string(), (i, t.main_kind));
                if let Some(d) = &t.depth {
                    topics.insert(d.to_string(), (i, Kind::Dp));
                }
            }
            if topic::is_index(&r.ticker) {
                index_map.insert(r.ticker.clone(), topic::index_name(&r.ticker).into());
            }
        }
        Self {
            masters: [by_segment(10), by_segment(11), by_segment(12)],
            fytoken: listed
                .iter()
                .map(|r| (r.ticker.clone(), r.fytoken.clone()))
                .collect(),
            topics: Arc::new(topics),
            index_map: serde_json::Value::Object(index_map).to_string(),
        }
    }

    fn symbol_token(&self, head: &Head, body: &[u8], ctx: &Ctx<'_>) -> Reply {
        let want = token_for(&ctx.cfg.access_token);
        let given = head.header("authorization").unwrap_or("");
        if auth::bare_jwt(given) != want {
            let body = r#"{"s":"error","code":-16,"message":"Could not authenticate the user"}"#;
            return Reply::new("401 Unauthorized", "application/json", body);
        }
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let Some(list) = v["symbols"].as_array() else {
            let body = r#"{"s":"error","code":-50,"message":"symbols is required"}"#;
            return Reply::new("400 Bad Request", "application/json", body);
        };
        let (mut valid, mut invalid) = (serde_json::Map::new(), Vec::new());
        for s in list {
            match s.as_str().and_then(|s| Some((s, self.fytoken.get(s)?))) {
                Some((s, t)) => {
                    valid.insert(s.to_string(), t.clone().into());
                }
                None => invalid.push(s.clone()),
            }
        }
        let body = serde_json::json!({"s": "ok", "validSymbol": valid, "invalidSymbol": invalid});
        Reply::new("200 OK", "application/json", body.to_string())
    }
}

impl Dialect for Fyers {
    fn name(&self) -> &'static str {
        "fyers"
    }

    fn http(&self, head: &Head, body: &[u8], ctx: &Ctx<'_>) -> Option<Reply> {
        if let Some(k) = MASTERS.iter().position(|p| *p == head.path) {
            return Some(Reply::new("200 OK", "text/csv", self.masters[k].clone()));
        }
        match head.path.as_str() {
            SYMBOL_TOKEN => Some(self.symbol_token(head, body, ctx)),
            "/sym_details/index_hsm_mapping.json" => Some(Reply::new(
                "200 OK",
                "application/json",
                self.index_map.clone(),
            )),
            _ => None,
        }
    }

    fn upgrade(&self, head: &Head, _ctx: &Ctx<'_>) -> Result<(), Reply> {
        if head.path != FEED {
            return Err(Reply::new("404 Not Found", "text/plain", "not found\n"));
        }
        Ok(())
    }

    fn session(&self, _head: &Head, _ctx: &Ctx<'_>) -> Box<dyn Session> {
        Box::new(FyersSession {
            topics: self.topics.clone(),
            subs: HashMap::new(),
            of_inst: HashMap::new(),
            next_id: 1,
            msg_number: 0,
        })
    }
}

/// One subscribed topic on a connection.
struct Sub {
    inst: usize,
    kind: Kind,
    id: [u8; 2],
    /// The values last sent (empty until the snapshot).
    sent: Vec<i32>,
}

struct FyersSession {
    topics: Arc<HashMap<String, (usize, Kind)>>,
    /// Topic name → its state.
    subs: HashMap<String, Sub>,
    /// Instrument → its subscribed topic names.
    of_inst: HashMap<usize, Vec<String>>,
    next_id: u16,
    msg_number: u32,
}

/// The topic's values from an instrument's state, in the SDK's field order.
fn values(r: &Repr, kind: Kind) -> Vec<i32> {
    let v = |x: u32| x as i32;
    match kind {
        Kind::Sf => vec![
            v(r.ltp),
            v(r.volume),
            v(r.last_trade_time),
            v(r.exchange_ts),
            v(r.bids[0].qty),
            v(r.asks[0].qty),
            v(r.bids[0].price),
            v(r.asks[0].price),
            v(r.last_qty),
            v(r.buy_qty),
            v(r.sell_qty),
            v(r.avg_price),
            v(r.oi),
            v(r.low),
            v(r.high),
            0,
            0,
            0,
            0,
            v(r.open),
            v(r.close),
        ],
        Kind::If => vec![
            v(r.ltp),
            v(r.close),
            v(r.exchange_ts),
            v(r.high),
            v(r.low),
            v(r.open),
        ],
        Kind::Dp => {
            let mut out = Vec::with_capacity(30);
            out.extend(r.bids.iter().map(|l| v(l.price)));
            out.extend(r.asks.iter().map(|l| v(l.price)));
            out.extend(r.bids.iter().map(|l| v(l.qty)));
            out.extend(r.asks.iter().map(|l| v(l.qty)));
            out.extend(r.bids.iter().map(|l| l.orders as i32));
            out.extend(r.asks.iter().map(|l| l.orders as i32));
            out
        }
    }
}

impl Session for FyersSession {
    fn wants(&self, i: usize) -> Option<Mode> {
        self.of_inst.contains_key(&i).then_some(Mode::Depth)
    }

    fn on_message(
        &mut self,
        msg: &Message,
        ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
        fresh: &mut Vec<usize>,
    ) {
        let Message::Binary(b) = msg else { return };
        let reply = |b: Vec<u8>, out: &mut Vec<Message>| out.push(Message::Binary(b.into()));
        match serve::parse_client(b) {
            Ok(ClientPacket::Auth { hsm_key, .. }) => reply(
                serve::auth_reply(hsm_key == ctx.cfg.access_token, ACK_EVERY),
                out,
            ),
            Ok(ClientPacket::Mode { .. }) => reply(serve::status_reply(resp::MODE, true), out),
            Ok(ClientPacket::Topics {
                subscribe, topics, ..
            }) => {
                for name in topics.iter().flatten() {
                    let Some(&(inst, kind)) = self.topics.get(name) else {
                        continue;
                    };
                    if subscribe && !self.subs.contains_key(name) {
                        let id = self.next_id.to_be_bytes();
                        self.next_id = self.next_id.wrapping_add(1);
                        self.subs.insert(
                            name.to_string(),
                            Sub {
                                inst,
                                kind,
                                id,
                                sent: Vec::new(),
                            },
                        );
                        self.of_inst.entry(inst).or_default().push(name.to_string());
                        fresh.push(inst);
                    } else if !subscribe && self.subs.remove(name).is_some() {
                        if let Some(list) = self.of_inst.get_mut(&inst) {
                            list.retain(|t| t != name);
                            if list.is_empty() {
                                self.of_inst.remove(&inst);
                            }
                        }
                    }
                }
                let of = if subscribe {
                    resp::SUBSCRIBE
                } else {
                    resp::UNSUBSCRIBE
                };
                reply(serve::status_reply(of, true), out);
            }
            // Pings, acks, channel pause/resume and anything unreadable need no answer.
            _ => {}
        }
    }

    fn encode(
        &mut self,
        updates: &[(usize, Repr)],
        _snapshot: bool,
        ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
    ) {
        self.msg_number = self.msg_number.wrapping_add(1);
        let mut w = DataWriter::new(self.msg_number);
        for &(i, r) in updates {
            let Some(names) = self.of_inst.get(&i) else {
                continue;
            };
            let precision = divisor(r.token).ilog10() as u8;
            for name in names {
                let Some(sub) = self.subs.get_mut(name) else {
                    continue;
                };
                let now = values(&r, sub.kind);
                let res = if sub.sent.is_empty() {
                    let row = ctx.rows.get(sub.inst);
                    let token = row
                        .map(|r| r.exchange_token.to_string())
                        .unwrap_or_default();
                    let symbol = row.map(|r| r.tradingsymbol.clone()).unwrap_or_default();
                    w.snapshot(&SnapshotSpec {
                        topic_id: sub.id,
                        name,
                        values: &now,
                        multiplier: 1,
                        precision,
                        exchange: "NSE",
                        exchange_token: &token,
                        symbol: &symbol,
                    })
                    .map(|_| ())
                } else {
                    // Only what changed: the client merges by position.
                    let delta: Vec<i32> = now
                        .iter()
                        .zip(&sub.sent)
                        .map(|(n, s)| if n == s { ABSENT } else { *n })
                        .collect();
                    w.update(sub.id, &delta).map(|_| ())
                };
                if res.is_ok() {
                    sub.sent = now;
                }
            }
        }
        if w.count() > 0 {
            if let Ok(b) = w.finish() {
                out.push(Message::Binary(b.into()));
            }
        }
    }
}
