//! The mock's Dhan dialect (live market feed v2), on the mock's one port:
//!
//! - The WebSocket at `/?version=2&token=<t>&clientId=<id>&authType=2`. The client id is the mock's
//!   `--api-key` (default `mock_api_key`), the token its `--access-token`. As Dhan does, the upgrade
//!   is accepted and a refusal comes as disconnect packet 50 followed by a close: 808 for another
//!   client id, 807 for a token starting `expired`, 809 for any other token, 805 for a sixth open
//!   connection of the client id.
//! - Requests: JSON text `{"RequestCode":15|17|21 (subscribe ticker/quote/full), 16|18|22
//!   (unsubscribe), "InstrumentCount":N,"InstrumentList":[{"ExchangeSegment":"NSE_EQ",
//!   "SecurityId":"3045"}]}`. Each code is its own subscription, as on Dhan: an instrument subscribed
//!   as ticker and as quote gets both packets. `{"RequestCode":12}` and the SDK's 83-byte binary
//!   header that follows it are accepted (the client closes next).
//! - Data: one packet per binary message: after a subscribe, the previous close (6) then the
//!   current value; then ticker (2), quote (4, preceded by OI 5 for a derivative) or full (8) packets.
//! - The scrip master CSV at `/api-data/api-scrip-master.csv`, rows under the same OpenAlgo names as
//!   the Kite rows of the market.
//! - `GET /mock/dhan-upgrades`: how many upgrades were asked for (tests: "no further connection").

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tickwire_engine::router::Mode;
use tickwire_io::brokers::dhan::instruments::{self, Row};
use tickwire_io::brokers::dhan::packet::{emit, segment};
use tickwire_io::brokers::dhan::DhanConfig;
use tickwire_io::brokers::BrokerConfig;
use tickwire_io::http::Head;
use tickwire_io::kite::instruments::Instrument;
use tickwire_io::kite::packet::{divisor, Repr};
use tungstenite::Message;

use super::config::MockConfig;
use super::dialect::{Ctx, Dialect, Reply, Session};

/// The scrip master's path.
pub const MASTER: &str = "/api-data/api-scrip-master.csv";
/// The upgrade counter's path (the mock's own).
pub const UPGRADES: &str = "/mock/dhan-upgrades";
/// Connections Dhan allows per client id.
const MAX_CONNECTIONS: usize = 5;

/// The dialect for a market with these rows.
pub fn dialect(rows: &[Instrument]) -> Box<dyn Dialect> {
    Box::new(Dhan::new(rows))
}

/// How a gateway reaches a mock at `base` with settings `cfg`: its broker config and instrument
/// master source.
pub fn gateway(base: SocketAddr, cfg: &MockConfig) -> (BrokerConfig, String) {
    (
        BrokerConfig::Dhan(DhanConfig {
            url: format!("ws://{base}"),
            client_id: cfg.api_key.clone(),
            access_token: cfg.access_token.clone(),
        }),
        format!("http://{base}{MASTER}"),
    )
}

/// The mock's endpoints, for its start-up line (`ws`/`http`: the schemes in use).
pub fn describe(ws: &str, http: &str, addr: SocketAddr, cfg: &MockConfig) -> String {
    format!(
        "mock Dhan broker on {ws}://{addr} (feed: {ws}://{addr}/?version=2&token={}&clientId={}&authType=2, scrip master: {http}://{addr}{MASTER})",
        cfg.access_token, cfg.api_key
    )
}

/// Dhan's security id for one of the market's instruments: NSE's token (Kite's exchange token),
/// except the NIFTY 50 index, which Dhan numbers 13.
fn security_id(r: &Instrument) -> u32 {
    if r.tradingsymbol == "NIFTY 50" {
        13
    } else {
        r.exchange_token
    }
}

/// Kite's rupee tick text (`0.05`) as Dhan's paise (`5.0000`).
fn paise(tick: &str) -> String {
    let p = tickwire_engine::price::parse(tick).unwrap_or(0);
    // price units / 10^5 = paise, with four decimals
    format!("{}.{:04}", p / 100_000, (p % 100_000) / 10)
}

/// `2026-12-29` → `Dec2026` (Dhan's trading symbols).
fn month_year(expiry: &str) -> String {
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m: usize = expiry.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    format!(
        "{}{}",
        M[m.clamp(1, 12) - 1],
        expiry.get(0..4).unwrap_or("")
    )
}

/// The Dhan row and header segment for one of the market's (Kite-shaped) instruments, under the
/// same OpenAlgo name.
pub fn row(r: &Instrument) -> (Row, u8) {
    let base = Row {
        exchange: "NSE".into(),
        security_id: security_id(r),
        lot: format!("{}.0", r.lot_size.max(1)),
        tick_size: paise(&r.tick_size),
        symbol_name: r.name.clone(),
        ..Row::default()
    };
    match r.segment.as_str() {
        "INDICES" => (
            Row {
                segment: "I".into(),
                instrument: "INDEX".into(),
                trading_symbol: if r.tradingsymbol == "NIFTY 50" {
                    "NIFTY".into()
                } else {
                    r.tradingsymbol.clone()
                },
                custom_symbol: r.tradingsymbol.clone(),
                series: "X".into(),
                ..base
            },
            segment::IDX_I,
        ),
        seg @ ("NFO-FUT" | "CDS-FUT") => {
            let (s, kind, code) = if seg == "NFO-FUT" {
                ("D", "FUTIDX", segment::NSE_FNO)
            } else {
                ("C", "FUTCUR", segment::NSE_CURRENCY)
            };
            (
                Row {
                    segment: s.into(),
                    instrument: kind.into(),
                    trading_symbol: format!("{}-{}-FUT", r.name, month_year(&r.expiry)),
                    custom_symbol: format!("{} FUT", r.name),
                    expiry: format!("{} 14:30:00", r.expiry),
                    strike: "-0.01000".into(),
                    option_type: "XX".into(),
                    series: "NA".into(),
                    ..base
                },
                code,
            )
        }
        _ => (
            Row {
                segment: "E".into(),
                instrument: "EQUITY".into(),
                trading_symbol: r.tradingsymbol.clone(),
                custom_symbol: r.name.clone(),
                series: "EQ".into(),
                ..base
            },
            segment::NSE_EQ,
        ),
    }
}

/// See the module docs.
pub struct Dhan {
    csv: String,
    /// `(segment, security id)` → instrument index.
    by_key: Arc<HashMap<(u8, u32), usize>>,
    /// Instrument index → `(segment, security id)`.
    keys: Arc<Vec<(u8, u32)>>,
    /// Open sessions (805 past five).
    open: Arc<AtomicUsize>,
    upgrades: AtomicU64,
}

impl Dhan {
    /// The dialect for a market with these rows.
    pub fn new(rows: &[Instrument]) -> Self {
        let listed: Vec<(Row, u8)> = rows.iter().map(row).collect();
        let keys: Vec<(u8, u32)> = listed.iter().map(|(r, s)| (*s, r.security_id)).collect();
        let csv_rows: Vec<Row> = listed.into_iter().map(|(r, _)| r).collect();
        Self {
            csv: instruments::to_csv(&csv_rows),
            by_key: Arc::new(keys.iter().enumerate().map(|(i, &k)| (k, i)).collect()),
            keys: Arc::new(keys),
            open: Arc::new(AtomicUsize::new(0)),
            upgrades: AtomicU64::new(0),
        }
    }
}

impl Dialect for Dhan {
    fn name(&self) -> &'static str {
        "dhan"
    }

    fn http(&self, head: &Head, _body: &[u8], _ctx: &Ctx<'_>) -> Option<Reply> {
        match head.path.as_str() {
            MASTER => Some(Reply::new("200 OK", "text/csv", self.csv.clone())),
            UPGRADES => Some(Reply::new(
                "200 OK",
                "application/json",
                format!("{{\"upgrades\":{}}}", self.upgrades.load(Ordering::Relaxed)),
            )),
            _ => None,
        }
    }

    fn upgrade(&self, head: &Head, _ctx: &Ctx<'_>) -> Result<(), Reply> {
        self.upgrades.fetch_add(1, Ordering::Relaxed);
        let q = |k: &str| head.query.get(k).map(String::as_str);
        if !(head.path == "/" || head.path.is_empty())
            || q("version") != Some("2")
            || q("authType") != Some("2")
        {
            return Err(Reply::new(
                "400 Bad Request",
                "text/plain",
                "expected /?version=2&token=…&clientId=…&authType=2\n",
            ));
        }
        Ok(())
    }

    fn session(&self, head: &Head, ctx: &Ctx<'_>) -> Box<dyn Session> {
        // Dhan accepts the upgrade and refuses inside the socket: packet 50 with the reason.
        let q = |k: &str| head.query.get(k).map(String::as_str);
        let refused = if q("clientId") != Some(ctx.cfg.api_key.as_str()) {
            808
        } else if q("token") != Some(ctx.cfg.access_token.as_str()) {
            if q("token").is_some_and(|t| t.starts_with("expired")) {
                807
            } else {
                809
            }
        } else if self.open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            805
        } else {
            0
        };
        if refused == 0 {
            self.open.fetch_add(1, Ordering::Relaxed);
        }
        Box::new(DhanSession {
            refused,
            open: self.open.clone(),
            subs: HashMap::new(),
            by_key: self.by_key.clone(),
            keys: self.keys.clone(),
        })
    }
}

/// Subscription bits per instrument: each request code is its own subscription.
const TICKER: u8 = 1;
const QUOTE: u8 = 2;
const FULL: u8 = 4;

struct DhanSession {
    /// The disconnect reason sent at open (0: accepted).
    refused: u16,
    open: Arc<AtomicUsize>,
    subs: HashMap<usize, u8>,
    by_key: Arc<HashMap<(u8, u32), usize>>,
    keys: Arc<Vec<(u8, u32)>>,
}

impl Drop for DhanSession {
    fn drop(&mut self) {
        if self.refused == 0 {
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn bit_of(code: u64) -> Option<(u8, bool)> {
    Some(match code {
        15 => (TICKER, true),
        16 => (TICKER, false),
        17 => (QUOTE, true),
        18 => (QUOTE, false),
        21 => (FULL, true),
        22 => (FULL, false),
        _ => return None,
    })
}

impl Session for DhanSession {
    fn on_open(&mut self, _ctx: &Ctx<'_>, out: &mut Vec<Message>) {
        if self.refused != 0 {
            let mut p = Vec::new();
            emit::disconnect(&mut p, self.refused);
            out.push(Message::Binary(p.into()));
            out.push(Message::Close(None));
        }
    }

    fn wants(&self, i: usize) -> Option<Mode> {
        let b = *self.subs.get(&i)?;
        Some(if b & FULL != 0 {
            Mode::Depth
        } else if b & QUOTE != 0 {
            Mode::Quote
        } else {
            Mode::Ltp
        })
    }

    /// Subscribe and unsubscribe requests; anything else (the disconnect request 12, its binary
    /// header, requests Dhan would not understand) is ignored, as the feed answers requests with
    /// data only.
    fn on_message(
        &mut self,
        msg: &Message,
        _ctx: &Ctx<'_>,
        _out: &mut Vec<Message>,
        fresh: &mut Vec<usize>,
    ) {
        if self.refused != 0 {
            return;
        }
        let Message::Text(text) = msg else {
            return;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
            return;
        };
        let Some((bit, on)) = v["RequestCode"].as_u64().and_then(bit_of) else {
            return;
        };
        let Some(list) = v["InstrumentList"].as_array() else {
            return;
        };
        for item in list.iter().take(100) {
            let seg = item["ExchangeSegment"].as_str().and_then(segment::code);
            let id = item["SecurityId"]
                .as_str()
                .and_then(|s| s.parse::<u32>().ok())
                .or_else(|| item["SecurityId"].as_u64().map(|n| n as u32));
            let Some(&i) = seg.zip(id).and_then(|k| self.by_key.get(&k)) else {
                continue;
            };
            let b = self.subs.entry(i).or_insert(0);
            if on {
                *b |= bit;
                fresh.push(i);
            } else {
                *b &= !bit;
                if *b == 0 {
                    self.subs.remove(&i);
                }
            }
        }
    }

    fn encode(
        &mut self,
        updates: &[(usize, Repr)],
        snapshot: bool,
        ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
    ) {
        for &(i, r) in updates {
            let Some(&bits) = self.subs.get(&i) else {
                continue;
            };
            let Some(&(seg, id)) = self.keys.get(i) else {
                continue;
            };
            let div = divisor(r.token) as f64;
            let px = |raw: u32| (raw as f64 / div) as f32;
            let mut one = |f: &dyn Fn(&mut Vec<u8>)| {
                let mut p = Vec::with_capacity(162);
                f(&mut p);
                out.push(Message::Binary(p.into()));
            };
            if snapshot {
                one(&|p| emit::prev_close(p, seg, id, px(r.close), r.oi));
            }
            let ltt = if r.last_trade_time != 0 {
                r.last_trade_time
            } else {
                r.exchange_ts
            };
            let q = emit::Quote {
                ltp: px(r.ltp),
                ltq: r.last_qty.min(u16::MAX as u32) as u16,
                ltt,
                avg: px(r.avg_price),
                volume: r.volume,
                sell_qty: r.sell_qty,
                buy_qty: r.buy_qty,
                open: px(r.open),
                // Dhan fills the day's close after the session; in session the previous close.
                close: px(r.close),
                high: px(r.high),
                low: px(r.low),
            };
            let derivative = seg == segment::NSE_FNO || seg == segment::NSE_CURRENCY;
            let index = ctx.is_index(i);
            if bits & TICKER != 0 {
                one(&|p| emit::ticker(p, seg, id, q.ltp, ltt));
            }
            if bits & QUOTE != 0 {
                if derivative {
                    one(&|p| emit::oi(p, seg, id, r.oi));
                }
                one(&|p| emit::quote(p, seg, id, &q));
            }
            if bits & FULL != 0 {
                let levels = std::array::from_fn(|k| {
                    let (b, a) = (r.bids[k], r.asks[k]);
                    emit::Level {
                        bid_qty: if index { 0 } else { b.qty },
                        ask_qty: if index { 0 } else { a.qty },
                        bid_orders: b.orders,
                        ask_orders: a.orders,
                        bid: px(b.price),
                        ask: px(a.price),
                    }
                });
                one(&|p| emit::full(p, seg, id, &q, [r.oi, r.oi_day_high, r.oi_day_low], &levels));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_io::kite::instruments::openalgo_name;

    #[test]
    fn rows_keep_the_kite_rows_openalgo_names() {
        let m = super::super::market::Market::new(2, 1);
        for r in m.rows() {
            let (dr, seg) = row(&r);
            let csv = instruments::to_csv(std::slice::from_ref(&dr));
            let back = instruments::parse(&csv).unwrap().remove(0);
            let (x, s) = instruments::openalgo_name(&back).unwrap();
            assert_eq!((x.to_string(), s), openalgo_name(&r), "{}", r.tradingsymbol);
            assert_eq!(instruments::feed_segment(&back), Some(seg));
            assert!(instruments::tick_units(&back) > 0 || seg == segment::IDX_I);
        }
        assert_eq!(paise("0.05"), "5.0000");
        assert_eq!(paise("0.0025"), "0.2500");
        assert_eq!(paise("1"), "100.0000");
    }
}
