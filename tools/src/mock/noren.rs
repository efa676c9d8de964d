//! The mock's Noren dialect (Shoonya, Flattrade and other Noren brokers), on the mock's one port:
//!
//! - The WebSocket at `/NorenWSTP/`. The first message must be the connect
//!   `{"t":"c","uid":…,"actid":…,"susertoken":…,"source":"API"}`: `uid` must be the mock's
//!   `--api-key` (default `mock_api_key`) and `susertoken` its `--access-token`; the answer is
//!   `{"t":"ck","s":"OK","uid":…}`, or `{"t":"ck","s":"NOT_OK"}` (and every later request is
//!   ignored). The client's heartbeat, a WebSocket PING with payload `{"t":"h"}`, is answered with a
//!   PONG by the server loop (tungstenite); a text `{"t":"h"}` is accepted and ignored.
//! - `t`/`u` touchline and `d`/`ud` depth (un)subscriptions, `k` = `exch|token` pairs joined by
//!   `#`. After a subscribe: a `tk`/`dk` snapshot with every field, then `tf`/`df` updates with
//!   only the fields that changed, plus `t`, `e`, `tk`. Every value is a string; prices carry the
//!   instrument's precision `pp` (2; 4 for currency).
//! - The symbol masters as Noren brokers publish them: zips of one CSV each at
//!   `/NSE_symbols.txt.zip`, `/NFO_symbols.txt.zip`, `/CDS_symbols.txt.zip`.
//!
//! The market's (Kite-shaped) rows keep their OpenAlgo names: `SBIN` is `NSE|3045` as `SBIN-EQ`,
//! `NIFTY 50` is `NSE|1001` as `NIFTY INDEX`, the NIFTY future is `NFO|51714` as
//! `NIFTY29DEC26F`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use tickwire_engine::router::Mode;
use tickwire_io::brokers::master::MONTHS;
use tickwire_io::brokers::noren::instruments::{self, Row};
use tickwire_io::brokers::noren::NorenConfig;
use tickwire_io::brokers::BrokerConfig;
use tickwire_io::http::Head;
use tickwire_io::kite::instruments::Instrument;
use tickwire_io::kite::packet::{divisor, Repr};
use tungstenite::Message;

use super::config::MockConfig;
use super::dialect::{Ctx, Dialect, Reply, Session};

/// The feed's WebSocket path.
pub const FEED: &str = "/NorenWSTP/";
/// The master files the mock serves.
pub const MASTERS: [&str; 3] = [
    "/NSE_symbols.txt.zip",
    "/NFO_symbols.txt.zip",
    "/CDS_symbols.txt.zip",
];

/// The dialect for a market with these rows.
pub fn dialect(rows: &[Instrument]) -> Box<dyn Dialect> {
    Box::new(Noren::new(rows))
}

/// How a gateway reaches a mock at `base` with settings `cfg`: its broker config and instrument
/// master source. The `uid` is the mock's `--api-key`, the `susertoken` its `--access-token`.
pub fn gateway(base: SocketAddr, cfg: &MockConfig) -> (BrokerConfig, String) {
    (
        BrokerConfig::Noren(NorenConfig {
            broker: "noren",
            url: format!("ws://{base}{FEED}"),
            user: cfg.api_key.clone(),
            account: cfg.api_key.clone(),
            token: cfg.access_token.clone(),
        }),
        MASTERS
            .iter()
            .map(|p| format!("http://{base}{p}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The mock's endpoints, for its start-up line (`ws`/`http`: the schemes in use).
pub fn describe(ws: &str, http: &str, addr: SocketAddr, cfg: &MockConfig) -> String {
    format!(
        "mock Noren broker on {http}://{addr} (feed: {ws}://{addr}{FEED}, masters: {http}://{addr}{} …, uid: {}, susertoken: {})",
        MASTERS[0], cfg.api_key, cfg.access_token
    )
}

/// What the dialect knows of one instrument.
#[derive(Clone, Debug)]
struct Info {
    exchange: &'static str,
    token: u32,
    trading_symbol: String,
    lot: u32,
    tick: String,
    index: bool,
    future: bool,
    /// Decimals prices are written with (`pp`).
    pp: u32,
}

/// `2026-12-29` → (`29-DEC-2026`, `29DEC26`).
fn expiry(e: &str) -> (String, String) {
    let n = |a: usize, b: usize| e.get(a..b).and_then(|x| x.parse::<u32>().ok()).unwrap_or(1);
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let mon = MONTHS[(m as usize + 11) % 12];
    (
        format!("{d:02}-{mon}-{y:04}"),
        format!("{d:02}{mon}{:02}", y % 100),
    )
}

/// The Noren master row for one of the market's rows, under the same OpenAlgo name.
pub fn row(r: &Instrument) -> Row {
    let base = Row {
        token: r.exchange_token,
        lot_size: r.lot_size.max(1),
        symbol: r.name.clone(),
        tick_size: r.tick_size.clone(),
        ..Row::default()
    };
    match r.segment.as_str() {
        "INDICES" => Row {
            exchange: r.exchange.clone(),
            trading_symbol: match r.tradingsymbol.as_str() {
                "NIFTY 50" => "NIFTY INDEX".into(),
                t => t.into(),
            },
            instrument: "INDEX".into(),
            ..base
        },
        seg @ ("NFO-FUT" | "CDS-FUT" | "NFO-OPT") => {
            let (long, short) = expiry(&r.expiry);
            let (exchange, instrument) = match seg {
                "CDS-FUT" => ("CDS", "FUTCUR"),
                "NFO-OPT" => ("NFO", "OPTIDX"),
                _ => ("NFO", "FUTIDX"),
            };
            let (opt, strike, ts) = match r.instrument_type.as_str() {
                t @ ("CE" | "PE") => (
                    t.to_string(),
                    r.strike.clone(),
                    format!("{}{short}{}{}", r.name, &t[..1], r.strike),
                ),
                _ => ("XX".into(), "-0.01".into(), format!("{}{short}F", r.name)),
            };
            Row {
                exchange: exchange.into(),
                trading_symbol: ts,
                expiry: long,
                instrument: instrument.into(),
                option_type: opt,
                strike,
                ..base
            }
        }
        _ => Row {
            exchange: "NSE".into(),
            symbol: r.tradingsymbol.clone(),
            trading_symbol: format!("{}-EQ", r.tradingsymbol),
            instrument: "EQ".into(),
            ..base
        },
    }
}

/// See the module docs.
pub struct Noren {
    masters: [Vec<u8>; 3],
    keys: Arc<HashMap<String, usize>>,
    info: Arc<Vec<Info>>,
}

impl Noren {
    /// The dialect for a market with these rows.
    pub fn new(rows: &[Instrument]) -> Self {
        let listed: Vec<Row> = rows.iter().map(row).collect();
        let file = |x: &str| {
            let part: Vec<Row> = listed.iter().filter(|r| r.exchange == x).cloned().collect();
            instruments::to_zip(
                &format!("{x}_symbols.txt"),
                instruments::to_csv(&part).as_bytes(),
            )
        };
        let info: Vec<Info> = rows
            .iter()
            .zip(&listed)
            .map(|(k, n)| Info {
                exchange: match n.exchange.as_str() {
                    "NFO" => "NFO",
                    "CDS" => "CDS",
                    _ => "NSE",
                },
                token: n.token,
                trading_symbol: n.trading_symbol.clone(),
                lot: n.lot_size,
                tick: n.tick_size.clone(),
                index: k.segment == "INDICES",
                future: k.instrument_type == "FUT",
                pp: if divisor(k.token) == 100 { 2 } else { 4 },
            })
            .collect();
        Self {
            masters: [file("NSE"), file("NFO"), file("CDS")],
            keys: Arc::new(
                info.iter()
                    .enumerate()
                    .map(|(i, x)| (format!("{}|{}", x.exchange, x.token), i))
                    .collect(),
            ),
            info: Arc::new(info),
        }
    }
}

impl Dialect for Noren {
    fn name(&self) -> &'static str {
        "noren"
    }

    fn http(&self, head: &Head, _body: &[u8], _ctx: &Ctx<'_>) -> Option<Reply> {
        let k = MASTERS.iter().position(|p| *p == head.path)?;
        Some(Reply::new(
            "200 OK",
            "application/zip",
            self.masters[k].clone(),
        ))
    }

    fn upgrade(&self, head: &Head, _ctx: &Ctx<'_>) -> Result<(), Reply> {
        if head.path.trim_end_matches('/') != FEED.trim_end_matches('/') {
            return Err(Reply::new("404 Not Found", "text/plain", "not found\n"));
        }
        Ok(())
    }

    fn session(&self, _head: &Head, _ctx: &Ctx<'_>) -> Box<dyn Session> {
        Box::new(NorenSession {
            keys: self.keys.clone(),
            info: self.info.clone(),
            authed: false,
            touch: HashSet::new(),
            depth: HashSet::new(),
            sent: HashMap::new(),
        })
    }
}

struct NorenSession {
    keys: Arc<HashMap<String, usize>>,
    info: Arc<Vec<Info>>,
    authed: bool,
    touch: HashSet<usize>,
    depth: HashSet<usize>,
    /// (instrument, depth feed) → the values last sent (none: the next message is a snapshot).
    sent: HashMap<(usize, bool), Vec<(&'static str, String)>>,
}

/// `raw / divisor` rupees written with `pp` decimals (exact: the market moves on its tick grid).
fn price(raw: u32, div: i64, pp: u32) -> String {
    let scale = 10i64.pow(pp);
    let v = raw as i64 * scale / div;
    format!("{}.{:0w$}", v / scale, v % scale, w = pp as usize)
}

/// The fields of one instrument's state on one feed, every value a string, in Noren's names.
fn fields(x: &Info, r: &Repr, depth: bool) -> Vec<(&'static str, String)> {
    let div = divisor(r.token);
    let p = |raw: u32| price(raw, div, x.pp);
    // % change from the previous close, 2 decimals, in integers.
    let pc = if r.close > 0 {
        let bp = (r.ltp as i64 - r.close as i64) * 10_000 / r.close as i64;
        let sign = if bp < 0 { "-" } else { "" };
        format!("{sign}{}.{:02}", bp.abs() / 100, bp.abs() % 100)
    } else {
        "0.00".into()
    };
    let mut f = vec![
        ("lp", p(r.ltp)),
        ("pc", pc),
        ("o", p(r.open)),
        ("h", p(r.high)),
        ("l", p(r.low)),
        ("c", p(r.close)),
        ("ft", r.exchange_ts.to_string()),
    ];
    if x.index {
        return f;
    }
    f.push(("v", r.volume.to_string()));
    f.push(("ap", p(r.avg_price)));
    if x.future {
        f.push(("oi", r.oi.to_string()));
        f.push(("poi", r.oi_day_low.to_string()));
    }
    if !depth {
        f.push(("bp1", p(r.bids[0].price)));
        f.push(("bq1", r.bids[0].qty.to_string()));
        f.push(("sp1", p(r.asks[0].price)));
        f.push(("sq1", r.asks[0].qty.to_string()));
        return f;
    }
    let ist = (r.last_trade_time as i64 + 19_800).rem_euclid(86_400);
    f.push((
        "ltt",
        format!("{:02}:{:02}:{:02}", ist / 3600, ist / 60 % 60, ist % 60),
    ));
    f.push(("ltq", r.last_qty.to_string()));
    f.push(("tbq", r.buy_qty.to_string()));
    f.push(("tsq", r.sell_qty.to_string()));
    const NAMES: [[&str; 6]; 5] = [
        ["bp1", "bq1", "bo1", "sp1", "sq1", "so1"],
        ["bp2", "bq2", "bo2", "sp2", "sq2", "so2"],
        ["bp3", "bq3", "bo3", "sp3", "sq3", "so3"],
        ["bp4", "bq4", "bo4", "sp4", "sq4", "so4"],
        ["bp5", "bq5", "bo5", "sp5", "sq5", "so5"],
    ];
    for (i, n) in NAMES.iter().enumerate() {
        let (b, a) = (r.bids[i], r.asks[i]);
        f.push((n[0], p(b.price)));
        f.push((n[1], b.qty.to_string()));
        f.push((n[2], b.orders.to_string()));
        f.push((n[3], p(a.price)));
        f.push((n[4], a.qty.to_string()));
        f.push((n[5], a.orders.to_string()));
    }
    f
}

fn text(out: &mut Vec<Message>, v: serde_json::Value) {
    out.push(Message::Text(v.to_string().into()));
}

impl Session for NorenSession {
    fn wants(&self, i: usize) -> Option<Mode> {
        if self.depth.contains(&i) {
            Some(Mode::Depth)
        } else {
            self.touch.contains(&i).then_some(Mode::Quote)
        }
    }

    fn on_message(
        &mut self,
        msg: &Message,
        ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
        fresh: &mut Vec<usize>,
    ) {
        let Message::Text(t) = msg else { return };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
            return;
        };
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
        match s("t") {
            "c" => {
                self.authed =
                    s("uid") == ctx.cfg.api_key && s("susertoken") == ctx.cfg.access_token;
                let reply = if self.authed {
                    serde_json::json!({"t": "ck", "s": "OK", "uid": s("uid")})
                } else {
                    serde_json::json!({"t": "ck", "s": "NOT_OK"})
                };
                text(out, reply);
            }
            kind @ ("t" | "d" | "u" | "ud") if self.authed => {
                let depth = kind.starts_with('d') || kind == "ud";
                let set = if depth {
                    &mut self.depth
                } else {
                    &mut self.touch
                };
                for key in s("k").split('#') {
                    let Some(&i) = self.keys.get(key) else {
                        continue;
                    };
                    // A new subscription starts with a snapshot; an unsubscribe forgets it.
                    self.sent.remove(&(i, depth));
                    if kind == "t" || kind == "d" {
                        set.insert(i);
                        fresh.push(i);
                    } else {
                        set.remove(&i);
                    }
                }
            }
            // The heartbeat as text, order updates, anything else: no answer.
            _ => {}
        }
    }

    /// One message per instrument and feed: a snapshot first, then only what changed.
    fn encode(
        &mut self,
        updates: &[(usize, Repr)],
        _snapshot: bool,
        _ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
    ) {
        for &(i, r) in updates {
            let Some(x) = self.info.get(i) else { continue };
            for depth in [false, true] {
                let on = if depth {
                    self.depth.contains(&i)
                } else {
                    self.touch.contains(&i)
                };
                if !on {
                    continue;
                }
                let now = fields(x, &r, depth);
                let mut m = serde_json::Map::new();
                let head = |m: &mut serde_json::Map<String, serde_json::Value>, t: &str| {
                    m.insert("t".into(), t.into());
                    m.insert("e".into(), x.exchange.into());
                    m.insert("tk".into(), x.token.to_string().into());
                };
                match self.sent.get(&(i, depth)) {
                    None => {
                        head(&mut m, if depth { "dk" } else { "tk" });
                        m.insert("ts".into(), x.trading_symbol.clone().into());
                        m.insert("pp".into(), x.pp.to_string().into());
                        m.insert("ls".into(), x.lot.to_string().into());
                        m.insert("ti".into(), x.tick.clone().into());
                        for (k, v) in &now {
                            m.insert((*k).into(), v.clone().into());
                        }
                    }
                    Some(prev) => {
                        head(&mut m, if depth { "df" } else { "tf" });
                        for ((k, v), (_, old)) in now.iter().zip(prev) {
                            if v != old {
                                m.insert((*k).into(), v.clone().into());
                            }
                        }
                        if m.len() == 3 {
                            continue; // nothing changed
                        }
                    }
                }
                text(out, serde_json::Value::Object(m));
                self.sent.insert((i, depth), now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_decimal_strings() {
        assert_eq!(price(11855, 100, 2), "118.55");
        assert_eq!(price(5, 100, 2), "0.05");
        assert_eq!(price(842_525_000, 10_000_000, 4), "84.2525");
    }

    #[test]
    fn rows_keep_their_openalgo_names() {
        let m = super::super::market::Market::new(2, 1);
        for r in m.rows() {
            let (x, s) = tickwire_io::kite::instruments::openalgo_name(&r);
            let n = row(&r);
            let (nx, ns) = instruments::openalgo_name(&n).unwrap();
            assert_eq!((x.as_str(), s.as_str()), (nx, ns.as_str()), "{n:?}");
        }
    }
}
