//! The mock's Upstox dialect (Market Data Feed V3), the endpoints the official SDK and tickwire
//! call, on the mock's one port:
//!
//! - `GET /v3/feed/market-data-feed/authorize` (`Authorization: Bearer <token>`) →
//!   `{"status":"success","data":{"authorized_redirect_uri":U,"authorizedRedirectUri":U}}`, `U` a
//!   single-use `ws://…/v3/feed/market-data-feed?requestId=…&code=…`; a bad token gets
//!   `401 Unauthorized` (the SDK stops retrying on exactly that status line).
//! - The WebSocket at `/v3/feed/market-data-feed`: with a `code`, accepted once; without one but with
//!   the Bearer token, answered `302 Found` to a fresh single-use URI, as the real endpoint does.
//! - Requests: JSON in binary frames (`sub`, `unsub`, `change_mode`; modes `ltpc`, `full`,
//!   `option_greeks`, `full_d30`). Data: one protobuf `FeedResponse` per binary frame, a
//!   `market_info` first, an `initial_feed` snapshot after each subscribe, then `live_feed`.
//! - The instrument master, gzip JSON, at `/market-quote/instruments/exchange/complete.json.gz`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};

use prost::Message as _;
use tickwire_engine::clock::now_ns;
use tickwire_engine::router::Mode;
use tickwire_io::brokers::master::days_from_civil;
use tickwire_io::brokers::upstox::instruments::{spaced_date, Instrument as UpstoxRow};
use tickwire_io::brokers::upstox::pb;
use tickwire_io::http::Head;
use tickwire_io::kite::instruments::Instrument;
use tickwire_io::kite::packet::{divisor, Repr};
use tungstenite::Message;

use super::dialect::{Ctx, Dialect, Reply, Session};
use super::market::Rng;

/// The authorize path.
pub const AUTHORIZE: &str = "/v3/feed/market-data-feed/authorize";
/// The feed's WebSocket path.
pub const FEED: &str = "/v3/feed/market-data-feed";
/// The instrument master's path.
pub const MASTER: &str = "/market-quote/instruments/exchange/complete.json.gz";

/// See the module docs.
pub struct Upstox {
    master_gz: Vec<u8>,
    keys: Arc<Vec<String>>,
    by_key: Arc<HashMap<String, usize>>,
    /// Issued, not yet used single-use codes.
    codes: Mutex<(HashSet<String>, Rng, u64)>,
}

/// The ISIN the mock lists for an equity: the real one for the named instruments.
fn isin(r: &Instrument) -> String {
    match r.tradingsymbol.as_str() {
        "SBIN" => "INE062A01020".into(),
        "RELIANCE" => "INE002A01018".into(),
        "INFY" => "INE009A01021".into(),
        "TCS" => "INE467B01029".into(),
        _ => format!("INE{:07}T1", r.exchange_token),
    }
}

/// The Upstox row for one of the market's (Kite-shaped) instruments, under the same OpenAlgo name.
pub fn row(r: &Instrument) -> UpstoxRow {
    let expiry = (r.expiry.len() == 10).then(|| {
        let n = |a: usize, b: usize| r.expiry[a..b].parse().unwrap_or(1);
        let day = days_from_civil(n(0, 4) as i64, n(5, 7), n(8, 10));
        day * 86_400_000 + 66_599_000 // 23:59:59 IST is 18:29:59 UTC
    });
    let tick = r.tick_size.parse::<f64>().ok().map(|t| t * 100.0);
    let (segment, key, symbol, itype) = match r.segment.as_str() {
        "INDICES" => {
            let display = match r.tradingsymbol.as_str() {
                "NIFTY 50" => "Nifty 50".to_string(),
                other => other.to_string(),
            };
            let sym = if display == "Nifty 50" {
                "NIFTY".into()
            } else {
                display.clone()
            };
            ("NSE_INDEX", format!("NSE_INDEX|{display}"), sym, "INDEX")
        }
        seg @ ("NFO-FUT" | "CDS-FUT") => {
            let s = if seg == "NFO-FUT" { "NSE_FO" } else { "NCD_FO" };
            let date = expiry.map(spaced_date).unwrap_or_default();
            (
                s,
                format!("{s}|{}", r.exchange_token),
                format!("{} FUT {date}", r.name),
                "FUT",
            )
        }
        _ => (
            "NSE_EQ",
            format!("NSE_EQ|{}", isin(r)),
            r.tradingsymbol.clone(),
            "EQ",
        ),
    };
    UpstoxRow {
        segment: segment.into(),
        name: r.name.clone(),
        exchange: "NSE".into(),
        isin: (itype == "EQ").then(|| isin(r)),
        instrument_type: itype.into(),
        instrument_key: key,
        exchange_token: r.exchange_token.to_string(),
        trading_symbol: symbol,
        lot_size: (itype != "INDEX").then_some(r.lot_size as u64),
        tick_size: if itype == "INDEX" { None } else { tick },
        expiry,
        strike_price: expiry.map(|_| 0.0),
    }
}

impl Upstox {
    /// The dialect for a market with these rows.
    pub fn new(rows: &[Instrument]) -> Self {
        let listed: Vec<UpstoxRow> = rows.iter().map(row).collect();
        let json = serde_json::to_vec(&listed).unwrap_or_default();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(&json);
        let keys: Vec<String> = listed.into_iter().map(|r| r.instrument_key).collect();
        Self {
            master_gz: gz.finish().unwrap_or_default(),
            by_key: Arc::new(
                keys.iter()
                    .enumerate()
                    .map(|(i, k)| (k.clone(), i))
                    .collect(),
            ),
            keys: Arc::new(keys),
            codes: Mutex::new((HashSet::new(), Rng::new(now_ns() as u64), 0)),
        }
    }

    /// A fresh single-use feed URI.
    fn issue(&self, ctx: &Ctx<'_>) -> String {
        let Ok(mut c) = self.codes.lock() else {
            return String::new();
        };
        c.2 += 1;
        let code = format!("{:016x}", c.1.next_u64());
        let uri = format!("{}{FEED}?requestId={}&code={code}", ctx.ws_base(), c.2);
        c.0.insert(code);
        uri
    }

    fn bearer_ok(head: &Head, ctx: &Ctx<'_>) -> bool {
        head.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t == ctx.cfg.access_token)
    }
}

fn unauthorized() -> Reply {
    let body = r#"{"status":"error","errors":[{"errorCode":"UDAPI100050","message":"Invalid token used to access API","propertyPath":null,"invalidValue":null,"error_code":"UDAPI100050","property_path":null,"invalid_value":null}]}"#;
    Reply::new("401 Unauthorized", "application/json", body)
}

impl Dialect for Upstox {
    fn name(&self) -> &'static str {
        "upstox"
    }

    fn http(&self, head: &Head, _body: &[u8], ctx: &Ctx<'_>) -> Option<Reply> {
        match head.path.as_str() {
            MASTER => Some(Reply::new(
                "200 OK",
                "application/gzip",
                self.master_gz.clone(),
            )),
            AUTHORIZE if !Self::bearer_ok(head, ctx) => Some(unauthorized()),
            AUTHORIZE => {
                let uri = self.issue(ctx);
                let body = serde_json::json!({"status": "success",
                    "data": {"authorized_redirect_uri": uri, "authorizedRedirectUri": uri}});
                Some(Reply::new("200 OK", "application/json", body.to_string()))
            }
            _ => None,
        }
    }

    fn upgrade(&self, head: &Head, ctx: &Ctx<'_>) -> Result<(), Reply> {
        if head.path != FEED {
            return Err(Reply::new("404 Not Found", "text/plain", "not found\n"));
        }
        if let Some(code) = head.query.get("code") {
            let fresh = self.codes.lock().is_ok_and(|mut c| c.0.remove(code));
            if !fresh {
                return Err(Reply::new(
                    "403 Forbidden",
                    "application/json",
                    r#"{"status":"error","errors":[{"message":"the authorized URI was already used or is unknown"}]}"#,
                ));
            }
            return Ok(());
        }
        if !Self::bearer_ok(head, ctx) {
            return Err(unauthorized());
        }
        let mut r = Reply::new("302 Found", "text/plain", "");
        r.headers.push(("Location", self.issue(ctx)));
        Err(r)
    }

    fn session(&self, _head: &Head, _ctx: &Ctx<'_>) -> Box<dyn Session> {
        Box::new(UpstoxSession {
            subs: HashMap::new(),
            keys: self.keys.clone(),
            by_key: self.by_key.clone(),
        })
    }
}

/// Upstox's four modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum UpMode {
    Ltpc,
    Full,
    OptionGreeks,
    FullD30,
}

impl UpMode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ltpc" => UpMode::Ltpc,
            "full" => UpMode::Full,
            "option_greeks" => UpMode::OptionGreeks,
            "full_d30" => UpMode::FullD30,
            _ => return None,
        })
    }
}

struct UpstoxSession {
    subs: HashMap<usize, UpMode>,
    keys: Arc<Vec<String>>,
    by_key: Arc<HashMap<String, usize>>,
}

fn failed(out: &mut Vec<Message>, method: &str, error: String) {
    let j = serde_json::json!({"status": "failed", "method": method, "error": error});
    out.push(Message::Text(j.to_string().into()));
}

impl Session for UpstoxSession {
    fn on_open(&mut self, ctx: &Ctx<'_>, out: &mut Vec<Message>) {
        let status: HashMap<String, i32> = ["NSE_EQ", "NSE_FO", "NSE_INDEX", "NCD_FO", "BSE_EQ"]
            .iter()
            .map(|s| (s.to_string(), pb::MarketStatus::NormalOpen as i32))
            .collect();
        let _ = ctx;
        let r = pb::FeedResponse {
            r#type: pb::Type::MarketInfo as i32,
            feeds: HashMap::new(),
            current_ts: now_ns() / 1_000_000,
            market_info: Some(pb::MarketInfo {
                segment_status: status,
            }),
        };
        out.push(Message::Binary(r.encode_to_vec().into()));
    }

    fn wants(&self, i: usize) -> Option<Mode> {
        self.subs.get(&i).map(|m| match m {
            UpMode::Ltpc => Mode::Ltp,
            _ => Mode::Depth,
        })
    }

    fn on_message(
        &mut self,
        msg: &Message,
        _ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
        fresh: &mut Vec<usize>,
    ) {
        let bytes = match msg {
            Message::Binary(b) => &b[..],
            Message::Text(_) => {
                return failed(out, "", "requests must be sent as binary frames".into())
            }
            _ => return,
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            return failed(out, "", "invalid JSON".into());
        };
        let method = v["method"].as_str().unwrap_or("");
        let mode = match v["data"]["mode"].as_str() {
            None if method != "change_mode" => UpMode::Ltpc,
            Some(m) => match UpMode::parse(m) {
                Some(m) => m,
                None => return failed(out, method, format!("invalid mode {m}")),
            },
            None => return failed(out, method, "mode is required".into()),
        };
        let Some(keys) = v["data"]["instrumentKeys"].as_array() else {
            return failed(out, method, "instrumentKeys is required".into());
        };
        let mut unknown = Vec::new();
        for k in keys {
            let Some(&i) = k.as_str().and_then(|k| self.by_key.get(k)) else {
                unknown.push(k.to_string());
                continue;
            };
            match method {
                "sub" | "change_mode" => {
                    self.subs.insert(i, mode);
                    fresh.push(i);
                }
                "unsub" => {
                    self.subs.remove(&i);
                }
                _ => return failed(out, method, format!("invalid method {method}")),
            }
        }
        if !unknown.is_empty() {
            failed(
                out,
                method,
                format!("invalid instrument keys: {}", unknown.join(",")),
            );
        }
    }

    fn encode(
        &mut self,
        updates: &[(usize, Repr)],
        snapshot: bool,
        ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
    ) {
        let mut feeds = HashMap::new();
        for &(i, r) in updates {
            let Some(&mode) = self.subs.get(&i) else {
                continue;
            };
            let Some(key) = self.keys.get(i) else {
                continue;
            };
            feeds.insert(key.clone(), feed(&r, mode, ctx.is_index(i)));
        }
        if feeds.is_empty() {
            return;
        }
        let kind = if snapshot {
            pb::Type::InitialFeed
        } else {
            pb::Type::LiveFeed
        };
        let resp = pb::FeedResponse {
            r#type: kind as i32,
            feeds,
            current_ts: now_ns() / 1_000_000,
            market_info: None,
        };
        out.push(Message::Binary(resp.encode_to_vec().into()));
    }
}

/// One instrument's state as a `Feed` in `mode` (prices: raw ÷ the segment's divisor, in rupees).
fn feed(r: &Repr, mode: UpMode, index: bool) -> pb::Feed {
    let div = divisor(r.token) as f64;
    let px = |raw: u32| raw as f64 / div;
    let ltpc = pb::Ltpc {
        ltp: px(r.ltp),
        ltt: r.last_trade_time as i64 * 1000,
        ltq: r.last_qty as i64,
        cp: px(r.close),
    };
    let day = pb::MarketOhlc {
        ohlc: vec![pb::Ohlc {
            interval: "1d".into(),
            open: px(r.open),
            high: px(r.high),
            low: px(r.low),
            close: px(r.ltp),
            vol: r.volume as i64,
            ts: 0,
        }],
    };
    let level = |k: usize| {
        let (b, a) = (r.bids[k], r.asks[k]);
        pb::Quote {
            bid_q: b.qty as i64,
            bid_p: px(b.price),
            ask_q: a.qty as i64,
            ask_p: px(a.price),
        }
    };
    use pb::feed::FeedUnion;
    use pb::full_feed::FullFeedUnion;
    let (union, request_mode) = match (mode, index) {
        (UpMode::Ltpc, _) => (FeedUnion::Ltpc(ltpc), pb::RequestMode::Ltpc),
        (_, true) => (
            FeedUnion::FullFeed(pb::FullFeed {
                full_feed_union: Some(FullFeedUnion::IndexFf(pb::IndexFullFeed {
                    ltpc: Some(ltpc),
                    market_ohlc: Some(day),
                })),
            }),
            pb::RequestMode::FullD5,
        ),
        (UpMode::OptionGreeks, false) => (
            FeedUnion::FirstLevelWithGreeks(pb::FirstLevelWithGreeks {
                ltpc: Some(ltpc),
                first_depth: Some(level(0)),
                option_greeks: Some(pb::OptionGreeks::default()),
                vtt: r.volume as i64,
                oi: r.oi as f64,
                iv: 0.0,
            }),
            pb::RequestMode::OptionGreeks,
        ),
        (m, false) => {
            // full_d30: the five levels the market keeps, then 25 more at widening prices
            let levels = if m == UpMode::FullD30 { 30 } else { 5 };
            let quotes = (0..levels)
                .map(|k| match k {
                    0..=4 => level(k),
                    _ => pb::Quote {
                        bid_q: 1,
                        bid_p: px(r.bids[4].price) - (k - 4) as f64 / div,
                        ask_q: 1,
                        ask_p: px(r.asks[4].price) + (k - 4) as f64 / div,
                    },
                })
                .collect();
            let mode = if m == UpMode::FullD30 {
                pb::RequestMode::FullD30
            } else {
                pb::RequestMode::FullD5
            };
            (
                FeedUnion::FullFeed(pb::FullFeed {
                    full_feed_union: Some(FullFeedUnion::MarketFf(pb::MarketFullFeed {
                        ltpc: Some(ltpc),
                        market_level: Some(pb::MarketLevel {
                            bid_ask_quote: quotes,
                        }),
                        option_greeks: Some(pb::OptionGreeks::default()),
                        market_ohlc: Some(day),
                        atp: px(r.avg_price),
                        vtt: r.volume as i64,
                        oi: r.oi as f64,
                        iv: 0.0,
                        tbq: r.buy_qty as f64,
                        tsq: r.sell_qty as f64,
                    })),
                }),
                mode,
            )
        }
    };
    pb::Feed {
        feed_union: Some(union),
        request_mode: request_mode as i32,
    }
}
