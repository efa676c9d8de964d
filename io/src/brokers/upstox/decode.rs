//! One Upstox `FeedResponse` (schema: `MarketDataFeedV3.proto` beside this file) straight into
//! ticks. Field numbers are named once in [`field`]; unknown fields are skipped, as protobuf
//! readers must. Prices arrive as rupee doubles and become fixed point by rounding to the nearest
//! 10⁻⁷ rupee ([`price::from_f64`]), which is exact for every tick size an exchange uses.
//!
//! What goes where in the tick:
//! - `ltpc`: `ltp` → ltp, `ltq` → last_qty, `ltt` (epoch ms) → exchange time; `cp` (previous
//!   close) → close when the feed also carries the quote group (OpenAlgo's and Kite's `close` is
//!   the previous session's).
//! - market full feed: `atp` → avg_price, `vtt` → volume, `tbq`/`tsq` → totals, the `1d` OHLC bar
//!   → open/high/low, `oi` → OI, `iv` and option greeks → greeks, the first five `bidAskQuote`
//!   levels → depth (a 30-level `full_d30` book is folded to the tick's five).
//! - index full feed: ltpc and the `1d` bar.
//! - first level with greeks: ltpc, one depth level, greeks, `vtt`, `oi`, `iv`.

use tickwire_engine::price;
use tickwire_engine::symbols::SymbolId;
use tickwire_engine::tick::{valid, DEPTH_LEVELS};
use tickwire_engine::Tick;

use super::wire::{Fields, Value, WireError};

/// Field numbers of `MarketDataFeedV3.proto`.
pub mod field {
    /// FeedResponse.
    pub mod response {
        pub const TYPE: u32 = 1;
        pub const FEEDS: u32 = 2;
        pub const CURRENT_TS: u32 = 3;
        pub const MARKET_INFO: u32 = 4;
    }
    /// A map entry (`feeds`, `segmentStatus`).
    pub mod entry {
        pub const KEY: u32 = 1;
        pub const VALUE: u32 = 2;
    }
    /// Feed (oneof).
    pub mod feed {
        pub const LTPC: u32 = 1;
        pub const FULL_FEED: u32 = 2;
        pub const FIRST_LEVEL_WITH_GREEKS: u32 = 3;
        pub const REQUEST_MODE: u32 = 4;
    }
    /// FullFeed (oneof).
    pub mod full_feed {
        pub const MARKET_FF: u32 = 1;
        pub const INDEX_FF: u32 = 2;
    }
    /// LTPC.
    pub mod ltpc {
        pub const LTP: u32 = 1;
        pub const LTT: u32 = 2;
        pub const LTQ: u32 = 3;
        pub const CP: u32 = 4;
    }
    /// MarketFullFeed.
    pub mod market_ff {
        pub const LTPC: u32 = 1;
        pub const MARKET_LEVEL: u32 = 2;
        pub const OPTION_GREEKS: u32 = 3;
        pub const MARKET_OHLC: u32 = 4;
        pub const ATP: u32 = 5;
        pub const VTT: u32 = 6;
        pub const OI: u32 = 7;
        pub const IV: u32 = 8;
        pub const TBQ: u32 = 9;
        pub const TSQ: u32 = 10;
    }
    /// IndexFullFeed.
    pub mod index_ff {
        pub const LTPC: u32 = 1;
        pub const MARKET_OHLC: u32 = 2;
    }
    /// FirstLevelWithGreeks.
    pub mod first_level {
        pub const LTPC: u32 = 1;
        pub const FIRST_DEPTH: u32 = 2;
        pub const OPTION_GREEKS: u32 = 3;
        pub const VTT: u32 = 4;
        pub const OI: u32 = 5;
        pub const IV: u32 = 6;
    }
    /// Quote (one bid/ask pair).
    pub mod quote {
        pub const BID_Q: u32 = 1;
        pub const BID_P: u32 = 2;
        pub const ASK_Q: u32 = 3;
        pub const ASK_P: u32 = 4;
    }
    /// OptionGreeks.
    pub mod greeks {
        pub const DELTA: u32 = 1;
        pub const THETA: u32 = 2;
        pub const GAMMA: u32 = 3;
        pub const VEGA: u32 = 4;
        pub const RHO: u32 = 5;
    }
    /// OHLC.
    pub mod ohlc {
        pub const INTERVAL: u32 = 1;
        pub const OPEN: u32 = 2;
        pub const HIGH: u32 = 3;
        pub const LOW: u32 = 4;
        pub const CLOSE: u32 = 5;
    }
    /// MarketLevel / MarketOHLC / MarketInfo: their one repeated field or map.
    pub const LIST: u32 = 1;
}

/// `FeedResponse.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedType {
    /// 0: the snapshot after a subscribe.
    Initial,
    /// 1: an update.
    Live,
    /// 2: market segment status.
    MarketInfo,
    /// Anything newer.
    Other(u64),
}

/// Why a feed or a whole message was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Broken protobuf (the rest of the message is skipped).
    #[error("{0}")]
    Wire(WireError),
    /// An instrument key not in the instrument master.
    #[error("unknown instrument key ({0} bytes)")]
    UnknownKey(usize),
    /// A price that is not a finite number in range.
    #[error("price out of range")]
    BadPrice,
}

impl From<WireError> for DecodeError {
    fn from(e: WireError) -> Self {
        DecodeError::Wire(e)
    }
}

/// What a message held besides ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Ticks emitted.
    pub ticks: u32,
    /// Feeds or fields rejected.
    pub errors: u32,
    /// The message was a `market_info`.
    pub market_info: bool,
}

/// Decodes one `FeedResponse`. `lookup` maps an instrument key to a symbol id; `on` receives each
/// tick (with `last` set on the message's final one) or error; `on_segment` each
/// `(segment, MarketStatus number)` of a `market_info`.
#[inline]
pub fn decode(
    msg: &[u8],
    recv_ts_ns: i64,
    lookup: impl Fn(&[u8]) -> Option<SymbolId>,
    mut on: impl FnMut(Result<(Tick, bool), DecodeError>),
    mut on_segment: impl FnMut(&[u8], u64),
) -> Decoded {
    let mut d = Decoded::default();
    // One tick is held back so the message's final tick can be marked `last`.
    let mut held: Option<Tick> = None;
    for f in Fields::new(msg) {
        let (num, v) = match f {
            Ok(x) => x,
            Err(e) => {
                d.errors += 1;
                on(Err(e.into()));
                break;
            }
        };
        match num {
            field::response::TYPE => {
                if let Value::Varint(2) = v {
                    d.market_info = true;
                }
            }
            field::response::FEEDS => match feed_entry(v.bytes(), recv_ts_ns, &lookup) {
                Ok(t) => {
                    if let Some(prev) = held.replace(t) {
                        on(Ok((prev, false)));
                    }
                    d.ticks += 1;
                }
                Err(e) => {
                    d.errors += 1;
                    on(Err(e));
                }
            },
            field::response::MARKET_INFO => {
                d.market_info = true;
                if let Err(e) = market_info(v.bytes(), &mut on_segment) {
                    d.errors += 1;
                    on(Err(e));
                }
            }
            _ => {}
        }
    }
    if let Some(t) = held {
        on(Ok((t, true)));
    }
    d
}

/// The message's type without decoding the rest.
pub fn feed_type(msg: &[u8]) -> FeedType {
    for (num, v) in Fields::new(msg).map_while(Result::ok) {
        if num == field::response::TYPE {
            return match v {
                Value::Varint(0) => FeedType::Initial,
                Value::Varint(1) => FeedType::Live,
                Value::Varint(2) => FeedType::MarketInfo,
                Value::Varint(n) => FeedType::Other(n),
                _ => FeedType::Initial,
            };
        }
    }
    FeedType::Initial // proto3 omits the default: no field means initial_feed
}

fn market_info(b: &[u8], on_segment: &mut impl FnMut(&[u8], u64)) -> Result<(), DecodeError> {
    for f in Fields::new(b) {
        let (num, v) = f?;
        if num != field::LIST {
            continue;
        }
        let (mut key, mut status) = (&[][..], 0);
        for e in Fields::new(v.bytes()) {
            match e? {
                (field::entry::KEY, v) => key = v.bytes(),
                (field::entry::VALUE, Value::Varint(s)) => status = s,
                _ => {}
            }
        }
        on_segment(key, status);
    }
    Ok(())
}

#[inline]
fn feed_entry(
    b: &[u8],
    recv_ts_ns: i64,
    lookup: &impl Fn(&[u8]) -> Option<SymbolId>,
) -> Result<Tick, DecodeError> {
    let (mut key, mut feed) = (&[][..], &[][..]);
    for e in Fields::new(b) {
        match e? {
            (field::entry::KEY, v) => key = v.bytes(),
            (field::entry::VALUE, v) => feed = v.bytes(),
            _ => {}
        }
    }
    let id = lookup(key).ok_or(DecodeError::UnknownKey(key.len()))?;
    let mut t = Tick::new(id);
    t.recv_ts_ns = recv_ts_ns;
    for f in Fields::new(feed) {
        match f? {
            (field::feed::LTPC, v) => ltpc(v.bytes(), &mut t, false)?,
            (field::feed::FULL_FEED, v) => full_feed(v.bytes(), &mut t)?,
            (field::feed::FIRST_LEVEL_WITH_GREEKS, v) => first_level(v.bytes(), &mut t)?,
            _ => {}
        }
    }
    Ok(t)
}

#[inline]
fn px(v: f64) -> Result<i64, DecodeError> {
    price::from_f64(v).ok_or(DecodeError::BadPrice)
}

/// A quantity sent as a double (`tbq`, `oi`): negative or NaN becomes 0.
#[inline]
fn qty(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.round() as u64
    } else {
        0
    }
}

#[inline]
fn ltpc(b: &[u8], t: &mut Tick, with_close: bool) -> Result<(), DecodeError> {
    t.valid |= valid::LTP;
    for f in Fields::new(b) {
        match f? {
            (field::ltpc::LTP, v) => t.ltp = px(v.f64())?,
            (field::ltpc::LTT, v) => t.exchange_ts_ns = v.i64().saturating_mul(1_000_000),
            (field::ltpc::LTQ, v) => t.last_qty = v.i64().max(0) as u64,
            (field::ltpc::CP, v) if with_close => t.close = px(v.f64())?,
            _ => {}
        }
    }
    Ok(())
}

fn full_feed(b: &[u8], t: &mut Tick) -> Result<(), DecodeError> {
    for f in Fields::new(b) {
        match f? {
            (field::full_feed::MARKET_FF, v) => market_ff(v.bytes(), t)?,
            (field::full_feed::INDEX_FF, v) => {
                t.valid |= valid::QUOTE;
                for g in Fields::new(v.bytes()) {
                    match g? {
                        (field::index_ff::LTPC, v) => ltpc(v.bytes(), t, true)?,
                        (field::index_ff::MARKET_OHLC, v) => daily_bar(v.bytes(), t)?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[inline]
fn market_ff(b: &[u8], t: &mut Tick) -> Result<(), DecodeError> {
    t.valid |= valid::QUOTE | valid::DEPTH | valid::OI;
    let mut level = 0;
    for f in Fields::new(b) {
        match f? {
            (field::market_ff::LTPC, v) => ltpc(v.bytes(), t, true)?,
            (field::market_ff::MARKET_LEVEL, v) => {
                for q in Fields::new(v.bytes()) {
                    if let (field::LIST, v) = q? {
                        if level < DEPTH_LEVELS {
                            quote(v.bytes(), t, level)?;
                            level += 1;
                        }
                    }
                }
            }
            (field::market_ff::OPTION_GREEKS, v) => greeks(v.bytes(), t)?,
            (field::market_ff::MARKET_OHLC, v) => daily_bar(v.bytes(), t)?,
            (field::market_ff::ATP, v) => t.avg_price = px(v.f64())?,
            (field::market_ff::VTT, v) => t.volume = v.i64().max(0) as u64,
            (field::market_ff::OI, v) => t.oi = qty(v.f64()),
            (field::market_ff::IV, v) => {
                t.valid |= valid::GREEKS;
                t.iv = v.f64();
            }
            (field::market_ff::TBQ, v) => t.total_buy_qty = qty(v.f64()),
            (field::market_ff::TSQ, v) => t.total_sell_qty = qty(v.f64()),
            _ => {}
        }
    }
    Ok(())
}

fn first_level(b: &[u8], t: &mut Tick) -> Result<(), DecodeError> {
    t.valid |= valid::OI;
    for f in Fields::new(b) {
        match f? {
            (field::first_level::LTPC, v) => ltpc(v.bytes(), t, false)?,
            (field::first_level::FIRST_DEPTH, v) => {
                t.valid |= valid::DEPTH;
                quote(v.bytes(), t, 0)?;
            }
            (field::first_level::OPTION_GREEKS, v) => greeks(v.bytes(), t)?,
            (field::first_level::VTT, v) => t.volume = v.i64().max(0) as u64,
            (field::first_level::OI, v) => t.oi = qty(v.f64()),
            (field::first_level::IV, v) => {
                t.valid |= valid::GREEKS;
                t.iv = v.f64();
            }
            _ => {}
        }
    }
    Ok(())
}

#[inline]
fn quote(b: &[u8], t: &mut Tick, level: usize) -> Result<(), DecodeError> {
    let (bid, ask) = (&mut t.bids[level], &mut t.asks[level]);
    for f in Fields::new(b) {
        match f? {
            (field::quote::BID_Q, v) => bid.qty = v.i64().clamp(0, u32::MAX as i64) as u32,
            (field::quote::BID_P, v) => bid.price = px(v.f64())?,
            (field::quote::ASK_Q, v) => ask.qty = v.i64().clamp(0, u32::MAX as i64) as u32,
            (field::quote::ASK_P, v) => ask.price = px(v.f64())?,
            _ => {}
        }
    }
    Ok(())
}

fn greeks(b: &[u8], t: &mut Tick) -> Result<(), DecodeError> {
    t.valid |= valid::GREEKS;
    for f in Fields::new(b) {
        match f? {
            (field::greeks::DELTA, v) => t.delta = v.f64(),
            (field::greeks::THETA, v) => t.theta = v.f64(),
            (field::greeks::GAMMA, v) => t.gamma = v.f64(),
            (field::greeks::VEGA, v) => t.vega = v.f64(),
            (field::greeks::RHO, v) => t.rho = v.f64(),
            _ => {}
        }
    }
    Ok(())
}

/// The session's open, high and low from the `1d` bar of a `MarketOHLC` (its close is the
/// current price; the tick's close is the previous session's, from `cp`).
#[inline]
fn daily_bar(b: &[u8], t: &mut Tick) -> Result<(), DecodeError> {
    for f in Fields::new(b) {
        let (num, v) = f?;
        if num != field::LIST {
            continue;
        }
        let bar = v.bytes();
        let daily = Fields::new(bar)
            .map_while(Result::ok)
            .any(|(n, v)| n == field::ohlc::INTERVAL && v.bytes() == b"1d");
        if !daily {
            continue;
        }
        for g in Fields::new(bar) {
            match g? {
                (field::ohlc::OPEN, v) => t.open = px(v.f64())?,
                (field::ohlc::HIGH, v) => t.high = px(v.f64())?,
                (field::ohlc::LOW, v) => t.low = px(v.f64())?,
                _ => {}
            }
        }
    }
    Ok(())
}
