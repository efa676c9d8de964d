//! One SmartAPI 2.0 packet (one binary WebSocket message) straight into a [`Tick`].
//!
//! Little-endian, fixed offsets (`docs/brokers.md`, broker-formats §3b): a 51-byte LTP packet, a
//! 123-byte Quote packet and a 379-byte SnapQuote packet, each a prefix of the next. Byte 0 is the
//! subscription mode, byte 1 the exchange type, bytes 2..27 the token as NUL-terminated ASCII.
//! Prices are int64 in paise (10^-7 rupee for currency derivatives, exchange type 13).
//!
//! Nothing here allocates: the token's digits are read into a `u64` and looked up in a map built at
//! start, keyed by exchange type and token number.

use tickwire_engine::price;
use tickwire_engine::tick::{valid, DepthLevel, Tick, DEPTH_LEVELS};

/// Packet sizes by mode (1 LTP, 2 Quote, 3 SnapQuote).
pub const LTP_LEN: usize = 51;
/// Quote packet size.
pub const QUOTE_LEN: usize = 123;
/// SnapQuote packet size.
pub const SNAP_LEN: usize = 379;

/// Field offsets.
pub mod at {
    /// u8 subscription mode.
    pub const MODE: usize = 0;
    /// u8 exchange type.
    pub const EXCHANGE: usize = 1;
    /// `char[25]` token, NUL-terminated.
    pub const TOKEN: usize = 2;
    /// Token field length.
    pub const TOKEN_LEN: usize = 25;
    /// i64 sequence number.
    pub const SEQUENCE: usize = 27;
    /// i64 exchange timestamp, epoch ms.
    pub const EXCHANGE_TS: usize = 35;
    /// i64 last traded price.
    pub const LTP: usize = 43;
    /// i64 last traded quantity.
    pub const LAST_QTY: usize = 51;
    /// i64 average traded price.
    pub const AVG_PRICE: usize = 59;
    /// i64 volume today.
    pub const VOLUME: usize = 67;
    /// f64 total buy quantity.
    pub const BUY_QTY: usize = 75;
    /// f64 total sell quantity.
    pub const SELL_QTY: usize = 83;
    /// i64 open.
    pub const OPEN: usize = 91;
    /// i64 high.
    pub const HIGH: usize = 99;
    /// i64 low.
    pub const LOW: usize = 107;
    /// i64 close.
    pub const CLOSE: usize = 115;
    /// i64 last traded timestamp.
    pub const LAST_TRADE_TS: usize = 123;
    /// i64 open interest.
    pub const OI: usize = 131;
    /// i64 open interest change % (int64, as the Python SDK reads it).
    pub const OI_CHANGE: usize = 139;
    /// 10 × 20-byte best-five entries.
    pub const BEST5: usize = 147;
    /// One best-five entry: u16 flag, i64 qty, i64 price, u16 orders.
    pub const ENTRY: usize = 20;
    /// i64 upper circuit, lower circuit, 52-week high, 52-week low.
    pub const UPPER_CIRCUIT: usize = 347;
}

/// Exchange types (the `exchangeType` of requests and byte 1 of packets).
pub mod exchange {
    /// NSE cash.
    pub const NSE_CM: u8 = 1;
    /// NSE F&O.
    pub const NSE_FO: u8 = 2;
    /// BSE cash.
    pub const BSE_CM: u8 = 3;
    /// BSE F&O.
    pub const BSE_FO: u8 = 4;
    /// MCX.
    pub const MCX_FO: u8 = 5;
    /// NCDEX.
    pub const NCX_FO: u8 = 7;
    /// NSE currency derivatives (prices in 10^-7 rupee).
    pub const CDE_FO: u8 = 13;
}

/// The price divisor of an exchange type: paise, except currency derivatives (10^7, as Angel's
/// scrip master writes their strikes and tick sizes).
#[inline]
pub fn divisor(exchange_type: u8) -> i64 {
    if exchange_type == exchange::CDE_FO {
        10_000_000
    } else {
        100
    }
}

/// Why a packet was refused (counted and logged by the feed; the connection stays).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A mode byte other than 1, 2, 3 (4, Depth20, is not subscribed by tickwire).
    #[error("unknown subscription mode {0}")]
    UnknownMode(u8),
    /// A packet whose length is not its mode's (51 / 123 / 379).
    #[error("mode {mode} packet of {len} bytes")]
    Length {
        /// Mode byte (0 when the packet is empty).
        mode: u8,
        /// Bytes received.
        len: u32,
    },
    /// A token that is not ASCII digits before its NUL.
    #[error("malformed token")]
    BadToken,
    /// A token not in the scrip master.
    #[error("unknown token {token} on exchange type {exchange}")]
    UnknownToken {
        /// Exchange type.
        exchange: u8,
        /// Token number.
        token: u64,
    },
    /// A price or timestamp that does not fit.
    #[error("price or timestamp out of range")]
    BadPrice,
    /// A negative, NaN or infinite quantity.
    #[error("bad quantity")]
    BadQty,
    /// A best-five entry whose buy/sell flag is neither 1 (buy) nor 0 (sell).
    #[error("best-five entry with flag {0}")]
    BadFlag(u16),
}

/// `(exchange type, token)` packed into one `u64`: the type in the top byte. Tokens of 2^56 and
/// more do not occur (Angel's are at most 8 digits) and are refused.
#[inline]
pub fn key(exchange_type: u8, token: u64) -> Option<u64> {
    (token < 1 << 56).then_some((exchange_type as u64) << 56 | token)
}

/// Packed key ([`key`]) → symbol id.
pub type KeyMap = crate::brokers::keymap::KeyMap<u64>;

#[inline]
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// The token's number: ASCII digits up to the first NUL (or the field's end).
#[inline]
pub fn token(b: &[u8]) -> Result<u64, ParseError> {
    let field = &b[at::TOKEN..at::TOKEN + at::TOKEN_LEN];
    let mut n: u64 = 0;
    let mut digits = 0;
    for &c in field {
        if c == 0 {
            break;
        }
        let d = c.wrapping_sub(b'0');
        if d > 9 || digits == 19 {
            return Err(ParseError::BadToken);
        }
        n = n * 10 + d as u64;
        digits += 1;
    }
    if digits == 0 {
        return Err(ParseError::BadToken);
    }
    Ok(n)
}

/// The length a packet of `mode` has.
#[inline]
pub fn len_of(mode: u8) -> Option<usize> {
    match mode {
        1 => Some(LTP_LEN),
        2 => Some(QUOTE_LEN),
        3 => Some(SNAP_LEN),
        _ => None,
    }
}

/// Parses one packet into a tick (`recv_ts_ns` set by the caller's value). The length must be the
/// mode's exactly: a layout change then shows up as counted errors instead of misread fields.
#[inline]
pub fn parse(b: &[u8], recv_ts_ns: i64, keys: &KeyMap) -> Result<Tick, ParseError> {
    let mut out = None;
    parse_with(b, recv_ts_ns, keys, |t| out = Some(t))?;
    // `parse_with` hands a tick on every `Ok`; the error is never the answer.
    out.ok_or(ParseError::Length { mode: 0, len: 0 })
}

/// [`parse`] handing the tick to `emit`. The feed's path: returning a 384-byte `Result<Tick, _>`
/// cost a `memcpy` into the result and another out of it into the sink's argument (the profile's
/// largest item after the sink's own copy); built here and moved into `emit`, it is copied once.
#[inline]
pub fn parse_with(
    b: &[u8],
    recv_ts_ns: i64,
    keys: &KeyMap,
    emit: impl FnOnce(Tick),
) -> Result<(), ParseError> {
    let Some(&mode) = b.first() else {
        return Err(ParseError::Length { mode: 0, len: 0 });
    };
    let len_err = || ParseError::Length {
        mode,
        len: b.len().min(u32::MAX as usize) as u32,
    };
    // A fixed-size array per mode: every field offset below is then a constant inside the
    // array, so the reads compile without bounds checks.
    match mode {
        1 => fill::<LTP_LEN>(b.try_into().map_err(|_| len_err())?, recv_ts_ns, keys, emit),
        2 => fill::<QUOTE_LEN>(b.try_into().map_err(|_| len_err())?, recv_ts_ns, keys, emit),
        3 => fill::<SNAP_LEN>(b.try_into().map_err(|_| len_err())?, recv_ts_ns, keys, emit),
        m => Err(ParseError::UnknownMode(m)),
    }
}

/// The fields of an `N`-byte packet (51: LTP, 123: + Quote, 379: + OI and best five).
#[inline(always)]
fn fill<const N: usize>(
    b: &[u8; N],
    recv_ts_ns: i64,
    keys: &KeyMap,
    emit: impl FnOnce(Tick),
) -> Result<(), ParseError> {
    let exch = b[at::EXCHANGE];
    let tok = token(b)?;
    let id =
        key(exch, tok)
            .and_then(|k| keys.get(&k).copied())
            .ok_or(ParseError::UnknownToken {
                exchange: exch,
                token: tok,
            })?;
    // Raw units → 10^-7 rupee: one multiply per price (`price::from_divided` would divide the
    // scale by the divisor at every call, the divisor not being a constant here).
    let mul = price::PRICE_SCALE / divisor(exch);
    let px = |at: usize| i64_at(b, at).checked_mul(mul).ok_or(ParseError::BadPrice);
    let qty = |at: usize| u64::try_from(i64_at(b, at)).map_err(|_| ParseError::BadQty);
    let fqty = |at: usize| {
        let v = f64::from_le_bytes(i64_at(b, at).to_le_bytes());
        // `as` saturates; NaN, infinities and negatives are malformed.
        if v >= 0.0 && v.is_finite() {
            Ok(v as u64)
        } else {
            Err(ParseError::BadQty)
        }
    };

    let mut t = Tick::new(id);
    t.recv_ts_ns = recv_ts_ns;
    t.valid = valid::LTP;
    t.ltp = px(at::LTP)?;
    t.exchange_ts_ns = i64_at(b, at::EXCHANGE_TS)
        .checked_mul(1_000_000)
        .ok_or(ParseError::BadPrice)?;
    if N >= QUOTE_LEN {
        t.valid |= valid::QUOTE;
        t.last_qty = qty(at::LAST_QTY)?;
        t.avg_price = px(at::AVG_PRICE)?;
        t.volume = qty(at::VOLUME)?;
        t.total_buy_qty = fqty(at::BUY_QTY)?;
        t.total_sell_qty = fqty(at::SELL_QTY)?;
        t.open = px(at::OPEN)?;
        t.high = px(at::HIGH)?;
        t.low = px(at::LOW)?;
        t.close = px(at::CLOSE)?;
    }
    if N >= SNAP_LEN {
        t.valid |= valid::OI | valid::DEPTH;
        t.oi = qty(at::OI)?;
        let (mut nb, mut na) = (0, 0);
        for e in 0..10 {
            let o = at::BEST5 + e * at::ENTRY;
            let flag = u16_at(b, o);
            let q = i64_at(b, o + 2);
            if q < 0 {
                return Err(ParseError::BadQty);
            }
            let level = DepthLevel {
                price: px(o + 10)?,
                // Per-level quantities fit u32 in practice; a larger one saturates.
                qty: q.min(u32::MAX as i64) as u32,
                orders: u16_at(b, o + 18) as u32,
            };
            // The side is the entry's flag, not its position.
            match flag {
                1 if nb < DEPTH_LEVELS => {
                    t.bids[nb] = level;
                    nb += 1;
                }
                0 if na < DEPTH_LEVELS => {
                    t.asks[na] = level;
                    na += 1;
                }
                0 | 1 => {} // a sixth entry of one side has no place in a five-level book
                f => return Err(ParseError::BadFlag(f)),
            }
        }
    }
    emit(t);
    Ok(())
}

/// A packet's values as sent, for encoders (the mock, benchmarks, allocation tests). The golden
/// tests do not use it: they write their frames out byte by byte.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Fields {
    /// Mode 1, 2 or 3.
    pub mode: u8,
    /// Exchange type.
    pub exchange: u8,
    /// Token number.
    pub token: u64,
    /// Sequence number.
    pub sequence: i64,
    /// Exchange time, epoch ms.
    pub exchange_ts_ms: i64,
    /// Raw prices (÷ [`divisor`]) and counts.
    pub ltp: i64,
    /// Last traded quantity.
    pub last_qty: i64,
    /// Average price.
    pub avg_price: i64,
    /// Volume.
    pub volume: i64,
    /// Total buy quantity.
    pub buy_qty: f64,
    /// Total sell quantity.
    pub sell_qty: f64,
    /// Open.
    pub open: i64,
    /// High.
    pub high: i64,
    /// Low.
    pub low: i64,
    /// Close.
    pub close: i64,
    /// Last traded time, epoch ms.
    pub last_trade_ts: i64,
    /// Open interest.
    pub oi: i64,
    /// OI change %.
    pub oi_change: i64,
    /// Best five entries in wire order: (flag, qty, price, orders).
    pub best5: [(u16, i64, i64, u16); 10],
    /// Upper circuit, lower circuit, 52-week high, 52-week low.
    pub limits: [i64; 4],
}

impl Fields {
    /// Appends the packet of `self.mode` to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.push(self.mode);
        out.push(self.exchange);
        let mut tok = [0u8; at::TOKEN_LEN];
        let digits = self.token.to_string();
        let n = digits.len().min(at::TOKEN_LEN - 1);
        tok[..n].copy_from_slice(&digits.as_bytes()[..n]);
        out.extend_from_slice(&tok);
        for v in [self.sequence, self.exchange_ts_ms, self.ltp] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if self.mode >= 2 {
            for v in [self.last_qty, self.avg_price, self.volume] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&self.buy_qty.to_le_bytes());
            out.extend_from_slice(&self.sell_qty.to_le_bytes());
            for v in [self.open, self.high, self.low, self.close] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        if self.mode >= 3 {
            for v in [self.last_trade_ts, self.oi, self.oi_change] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for (flag, q, p, o) in self.best5 {
                out.extend_from_slice(&flag.to_le_bytes());
                out.extend_from_slice(&q.to_le_bytes());
                out.extend_from_slice(&p.to_le_bytes());
                out.extend_from_slice(&o.to_le_bytes());
            }
            for v in self.limits {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        debug_assert_eq!(out.len() - start, len_of(self.mode).unwrap_or(0));
    }
}
