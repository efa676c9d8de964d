//! Kite ticker packets: a checked view over borrowed bytes (the parser) and a value that emits the
//! same bytes (the mock broker's encoder). Offsets come from Kite's packet tables
//! (`docs/brokers.md`), once, in [`field`]; both directions use them, and golden frames in the
//! tests pin them from outside.
//!
//! Once [`Packet::new_checked`] has returned `Ok`, no accessor can panic: the length was one of
//! the five known sizes and every field range lies inside it.

use tickwire_engine::price;
use tickwire_engine::tick::{valid, DepthLevel, DEPTH_LEVELS};
use tickwire_engine::Tick;

use super::ParseError;

type Field = core::ops::Range<usize>;

/// Byte ranges of every field, big-endian.
pub mod field {
    use super::Field;
    pub const TOKEN: Field = 0..4;
    pub const LTP: Field = 4..8;
    // quote / full
    pub const LAST_QTY: Field = 8..12;
    pub const AVG_PRICE: Field = 12..16;
    pub const VOLUME: Field = 16..20;
    pub const BUY_QTY: Field = 20..24;
    pub const SELL_QTY: Field = 24..28;
    pub const OPEN: Field = 28..32;
    pub const HIGH: Field = 32..36;
    pub const LOW: Field = 36..40;
    pub const CLOSE: Field = 40..44;
    pub const LAST_TRADE_TIME: Field = 44..48;
    pub const OI: Field = 48..52;
    pub const OI_DAY_HIGH: Field = 52..56;
    pub const OI_DAY_LOW: Field = 56..60;
    pub const EXCHANGE_TS: Field = 60..64;
    pub const BIDS: usize = 64;
    pub const ASKS: usize = 124;
    pub const DEPTH_ENTRY: usize = 12;
    // index quote / full
    pub const IDX_HIGH: Field = 8..12;
    pub const IDX_LOW: Field = 12..16;
    pub const IDX_OPEN: Field = 16..20;
    pub const IDX_CLOSE: Field = 20..24;
    pub const IDX_CHANGE: Field = 24..28;
    pub const IDX_EXCHANGE_TS: Field = 28..32;
}

/// LTP mode packet length.
pub const LTP_LEN: usize = field::LTP.end;
/// Index quote packet length.
pub const INDEX_QUOTE_LEN: usize = field::IDX_CHANGE.end;
/// Index full packet length.
pub const INDEX_FULL_LEN: usize = field::IDX_EXCHANGE_TS.end;
/// Quote mode packet length.
pub const QUOTE_LEN: usize = field::CLOSE.end;
/// Full mode packet length.
pub const FULL_LEN: usize = field::ASKS + DEPTH_LEVELS * field::DEPTH_ENTRY;

const _: () = assert!(LTP_LEN == 8 && INDEX_QUOTE_LEN == 28 && INDEX_FULL_LEN == 32);
const _: () = assert!(QUOTE_LEN == 44 && FULL_LEN == 184);

/// What a packet's length says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 8 bytes.
    Ltp,
    /// 28 bytes.
    IndexQuote,
    /// 32 bytes.
    IndexFull,
    /// 44 bytes.
    Quote,
    /// 184 bytes.
    Full,
}

impl Kind {
    /// By length; `None` for any other size.
    pub fn from_len(len: usize) -> Option<Kind> {
        Some(match len {
            LTP_LEN => Kind::Ltp,
            INDEX_QUOTE_LEN => Kind::IndexQuote,
            INDEX_FULL_LEN => Kind::IndexFull,
            QUOTE_LEN => Kind::Quote,
            FULL_LEN => Kind::Full,
            _ => return None,
        })
    }
}

/// Price divisor of a token's segment (`token & 0xff`): CDS 10^7, BCD and NCO 10^4, else 100.
pub fn divisor(token: u32) -> i64 {
    match token & 0xff {
        3 => 10_000_000,
        6 | 12 => 10_000,
        _ => 100,
    }
}

/// True for index tokens (segment 9).
pub fn is_index(token: u32) -> bool {
    token & 0xff == 9
}

/// A checked view of one packet.
#[derive(Clone, Copy, Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
    kind: Kind,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the length; after `Ok` no accessor panics.
    pub fn new_checked(buf: T) -> Result<Self, ParseError> {
        let len = buf.as_ref().len();
        let kind = Kind::from_len(len).ok_or(ParseError::UnknownPacketLength(len as u16))?;
        Ok(Self { buf, kind })
    }

    /// The kind, from the length.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn u32_at(&self, f: Field) -> u32 {
        let b = &self.buf.as_ref()[f];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Instrument token.
    pub fn token(&self) -> u32 {
        self.u32_at(field::TOKEN)
    }

    /// Raw last price (divide by [`divisor`]).
    pub fn ltp(&self) -> u32 {
        self.u32_at(field::LTP)
    }

    /// Fills `t` (whose `symbol_id` and `recv_ts_ns` the caller sets) from this packet.
    pub fn fill(&self, t: &mut Tick) -> Result<(), ParseError> {
        let token = self.token();
        let div = divisor(token);
        let px = |raw: u32| price::from_divided(raw as i64, div).ok_or(ParseError::BadPrice);
        t.ltp = px(self.ltp())?;
        t.valid = valid::LTP;
        match self.kind {
            Kind::Ltp => {}
            Kind::IndexQuote | Kind::IndexFull => {
                t.valid |= valid::QUOTE;
                t.high = px(self.u32_at(field::IDX_HIGH))?;
                t.low = px(self.u32_at(field::IDX_LOW))?;
                t.open = px(self.u32_at(field::IDX_OPEN))?;
                t.close = px(self.u32_at(field::IDX_CLOSE))?;
                if self.kind == Kind::IndexFull {
                    t.exchange_ts_ns = self.u32_at(field::IDX_EXCHANGE_TS) as i64 * 1_000_000_000;
                }
            }
            Kind::Quote | Kind::Full => {
                t.valid |= valid::QUOTE;
                t.last_qty = self.u32_at(field::LAST_QTY) as u64;
                t.avg_price = px(self.u32_at(field::AVG_PRICE))?;
                t.volume = self.u32_at(field::VOLUME) as u64;
                t.total_buy_qty = self.u32_at(field::BUY_QTY) as u64;
                t.total_sell_qty = self.u32_at(field::SELL_QTY) as u64;
                t.open = px(self.u32_at(field::OPEN))?;
                t.high = px(self.u32_at(field::HIGH))?;
                t.low = px(self.u32_at(field::LOW))?;
                t.close = px(self.u32_at(field::CLOSE))?;
                if self.kind == Kind::Full {
                    t.valid |= valid::OI | valid::DEPTH;
                    t.oi = self.u32_at(field::OI) as u64;
                    t.oi_day_high = self.u32_at(field::OI_DAY_HIGH) as u64;
                    t.oi_day_low = self.u32_at(field::OI_DAY_LOW) as u64;
                    t.exchange_ts_ns = self.u32_at(field::EXCHANGE_TS) as i64 * 1_000_000_000;
                    for i in 0..DEPTH_LEVELS {
                        t.bids[i] = self.level(field::BIDS + i * field::DEPTH_ENTRY, div)?;
                        t.asks[i] = self.level(field::ASKS + i * field::DEPTH_ENTRY, div)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn level(&self, at: usize, div: i64) -> Result<DepthLevel, ParseError> {
        let b = &self.buf.as_ref()[at..at + field::DEPTH_ENTRY];
        // quantity and price are int32 in the SDKs; a negative one is malformed.
        let qty = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let raw_px = i32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        if qty < 0 || raw_px < 0 {
            return Err(ParseError::BadPrice);
        }
        Ok(DepthLevel {
            qty: qty as u32,
            price: price::from_divided(raw_px as i64, div).ok_or(ParseError::BadPrice)?,
            orders: u16::from_be_bytes([b[8], b[9]]) as u32,
        })
    }
}

/// One book level as sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawLevel {
    /// Quantity.
    pub qty: u32,
    /// Raw price.
    pub price: u32,
    /// Orders.
    pub orders: u16,
}

/// A packet's values as integers on the wire: what the mock broker emits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Repr {
    /// Instrument token.
    pub token: u32,
    /// Raw prices (÷ divisor) and plain counts, in wire order.
    pub ltp: u32,
    /// Last traded quantity.
    pub last_qty: u32,
    /// Average price.
    pub avg_price: u32,
    /// Volume.
    pub volume: u32,
    /// Total buy quantity.
    pub buy_qty: u32,
    /// Total sell quantity.
    pub sell_qty: u32,
    /// Open.
    pub open: u32,
    /// High.
    pub high: u32,
    /// Low.
    pub low: u32,
    /// Close.
    pub close: u32,
    /// Index change (signed).
    pub change: i32,
    /// Last trade time, epoch s.
    pub last_trade_time: u32,
    /// Open interest.
    pub oi: u32,
    /// OI day high.
    pub oi_day_high: u32,
    /// OI day low.
    pub oi_day_low: u32,
    /// Exchange timestamp, epoch s.
    pub exchange_ts: u32,
    /// Bids, best first.
    pub bids: [RawLevel; DEPTH_LEVELS],
    /// Asks, best first.
    pub asks: [RawLevel; DEPTH_LEVELS],
}

impl Repr {
    /// Appends the packet of `kind` (index kinds for index tokens) to `out`.
    pub fn emit(&self, kind: Kind, out: &mut Vec<u8>) {
        let mut put = |v: u32| out.extend_from_slice(&v.to_be_bytes());
        put(self.token);
        put(self.ltp);
        match kind {
            Kind::Ltp => {}
            Kind::IndexQuote | Kind::IndexFull => {
                for v in [
                    self.high,
                    self.low,
                    self.open,
                    self.close,
                    self.change as u32,
                ] {
                    put(v);
                }
                if kind == Kind::IndexFull {
                    put(self.exchange_ts);
                }
            }
            Kind::Quote | Kind::Full => {
                for v in [
                    self.last_qty,
                    self.avg_price,
                    self.volume,
                    self.buy_qty,
                    self.sell_qty,
                    self.open,
                    self.high,
                    self.low,
                    self.close,
                ] {
                    put(v);
                }
                if kind == Kind::Full {
                    for v in [
                        self.last_trade_time,
                        self.oi,
                        self.oi_day_high,
                        self.oi_day_low,
                        self.exchange_ts,
                    ] {
                        put(v);
                    }
                    for l in self.bids.iter().chain(&self.asks) {
                        out.extend_from_slice(&l.qty.to_be_bytes());
                        out.extend_from_slice(&l.price.to_be_bytes());
                        out.extend_from_slice(&l.orders.to_be_bytes());
                        out.extend_from_slice(&[0, 0]);
                    }
                }
            }
        }
    }
}
