//! Dhan's binary response packets (live market feed v2): a checked reader over borrowed bytes (the
//! parser) and writers producing the same bytes (the mock broker's encoder). Offsets come from the
//! official SDK's `struct` formats (`dhanhq/marketfeed.py`), once, in [`field`]; golden frames in
//! `tests.rs` pin them from outside.
//!
//! Every packet starts with the 8-byte header `<BHBI`: response code, message length, exchange
//! segment (a number, [`segment`]), security id. All little-endian; prices f32 rupees, times u32
//! epoch seconds.

use tickwire_engine::symbols::SymbolId;
use tickwire_engine::tick::{valid, DepthLevel, DEPTH_LEVELS};
use tickwire_engine::Tick;

pub use super::grid::{fine_price, grid_price, key, Entry, Instruments, DEFAULT_TICK};

/// Response codes (byte 0).
pub mod code {
    /// LTP and last trade time.
    pub const TICKER: u8 = 2;
    /// LTP and a 5-level book (the v1 depth packet).
    pub const DEPTH: u8 = 3;
    /// The quote packet.
    pub const QUOTE: u8 = 4;
    /// Open interest.
    pub const OI: u8 = 5;
    /// Previous close and previous OI, sent after a subscribe.
    pub const PREV_CLOSE: u8 = 6;
    /// Market status (header only).
    pub const STATUS: u8 = 7;
    /// The full packet: quote, OI and a 5-level book.
    pub const FULL: u8 = 8;
    /// The server is closing the connection; a u16 reason follows the header.
    pub const DISCONNECT: u8 = 50;
}

/// Dhan's exchange segments: the numbers in the packet header and the names in requests.
pub mod segment {
    /// Indices.
    pub const IDX_I: u8 = 0;
    /// NSE cash.
    pub const NSE_EQ: u8 = 1;
    /// NSE futures and options.
    pub const NSE_FNO: u8 = 2;
    /// NSE currency derivatives.
    pub const NSE_CURRENCY: u8 = 3;
    /// BSE cash.
    pub const BSE_EQ: u8 = 4;
    /// MCX commodities.
    pub const MCX_COMM: u8 = 5;
    /// BSE currency derivatives.
    pub const BSE_CURRENCY: u8 = 7;
    /// BSE futures and options.
    pub const BSE_FNO: u8 = 8;

    const NAMES: [(u8, &str); 8] = [
        (IDX_I, "IDX_I"),
        (NSE_EQ, "NSE_EQ"),
        (NSE_FNO, "NSE_FNO"),
        (NSE_CURRENCY, "NSE_CURRENCY"),
        (BSE_EQ, "BSE_EQ"),
        (MCX_COMM, "MCX_COMM"),
        (BSE_CURRENCY, "BSE_CURRENCY"),
        (BSE_FNO, "BSE_FNO"),
    ];

    /// `NSE_EQ` → 1.
    pub fn code(name: &str) -> Option<u8> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }

    /// 1 → `NSE_EQ`.
    pub fn name(code: u8) -> Option<&'static str> {
        NAMES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
    }
}

type Field = core::ops::Range<usize>;

/// Byte ranges of every field (little-endian), from the SDK's `struct` formats.
pub mod field {
    use super::Field;
    pub const CODE: usize = 0;
    pub const LENGTH: Field = 1..3;
    pub const SEGMENT: usize = 3;
    pub const SECURITY_ID: Field = 4..8;
    /// Ticker `<BHBIfI>`, prev close `<BHBIfI>` (close, prev OI), depth `<BHBIf100s>`.
    pub const LTP: Field = 8..12;
    pub const TICKER_LTT: Field = 12..16;
    pub const PREV_OI: Field = 12..16;
    pub const DEPTH_BOOK: usize = 12;
    /// OI `<BHBII>`.
    pub const OI_VALUE: Field = 8..12;
    /// Disconnect `<BHBIH>`.
    pub const REASON: Field = 8..10;
    /// Quote `<BHBIfHIfIIIffff>` and full `<BHBIfHIfIIIIIIffff100s>` share these.
    pub const LTQ: Field = 12..14;
    pub const LTT: Field = 14..18;
    pub const AVG_PRICE: Field = 18..22;
    pub const VOLUME: Field = 22..26;
    pub const SELL_QTY: Field = 26..30;
    pub const BUY_QTY: Field = 30..34;
    /// Quote only.
    pub const Q_OPEN: Field = 34..38;
    pub const Q_CLOSE: Field = 38..42;
    pub const Q_HIGH: Field = 42..46;
    pub const Q_LOW: Field = 46..50;
    /// Full only.
    pub const F_OI: Field = 34..38;
    pub const F_OI_HIGH: Field = 38..42;
    pub const F_OI_LOW: Field = 42..46;
    pub const F_OPEN: Field = 46..50;
    pub const F_CLOSE: Field = 50..54;
    pub const F_HIGH: Field = 54..58;
    pub const F_LOW: Field = 58..62;
    pub const F_BOOK: usize = 62;
    /// One book level `<IIHHff>`: bid qty, ask qty, bid orders, ask orders, bid price, ask price.
    pub const LEVEL: usize = 20;
}

/// Ticker packet length.
pub const TICKER_LEN: usize = 16;
/// Depth packet length.
pub const DEPTH_LEN: usize = field::DEPTH_BOOK + 5 * field::LEVEL;
/// Quote packet length.
pub const QUOTE_LEN: usize = field::Q_LOW.end;
/// OI packet length.
pub const OI_LEN: usize = field::OI_VALUE.end;
/// Previous close packet length.
pub const PREV_CLOSE_LEN: usize = field::PREV_OI.end;
/// Market status packet length.
pub const STATUS_LEN: usize = 8;
/// Full packet length.
pub const FULL_LEN: usize = field::F_BOOK + 5 * field::LEVEL;
/// Disconnect packet length.
pub const DISCONNECT_LEN: usize = field::REASON.end;

const _: () = assert!(DEPTH_LEN == 112 && QUOTE_LEN == 50 && FULL_LEN == 162);
const _: () = assert!(OI_LEN == 12 && PREV_CLOSE_LEN == 16 && DISCONNECT_LEN == 10);

/// The length of a packet with response code `code` (`None`: unknown code).
pub fn packet_len(code: u8) -> Option<usize> {
    Some(match code {
        code::TICKER => TICKER_LEN,
        code::DEPTH => DEPTH_LEN,
        code::QUOTE => QUOTE_LEN,
        code::OI => OI_LEN,
        code::PREV_CLOSE => PREV_CLOSE_LEN,
        code::STATUS => STATUS_LEN,
        code::FULL => FULL_LEN,
        code::DISCONNECT => DISCONNECT_LEN,
        _ => return None,
    })
}

/// Why a packet was rejected. Small and `Copy`: counted and logged by the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A response code this parser does not know.
    #[error("unknown response code {0}")]
    UnknownCode(u8),
    /// Fewer bytes than the packet's code needs.
    #[error("packet code {code} needs {need} bytes, {have} left in the message")]
    Short {
        /// Response code.
        code: u8,
        /// Bytes the packet needs.
        need: u16,
        /// Bytes present.
        have: u16,
    },
    /// A price that is NaN, infinite or out of range.
    #[error("price out of range")]
    BadPrice,
    /// An instrument not in the scrip master.
    #[error("unknown instrument: segment {segment}, security id {security_id}")]
    UnknownInstrument {
        /// Segment number.
        segment: u8,
        /// Security id.
        security_id: u32,
    },
}

/// What one connection remembers per symbol between packets: the previous close (packet 6) and the
/// open interest (packet 5, or the last full packet), so that quote and full ticks carry them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SymState {
    /// Previous session's close, price units (valid when `HAS_CLOSE`).
    pub prev_close: i64,
    /// Open interest.
    pub oi: u64,
    /// Day high of OI (from the last full packet; 0 until one came).
    pub oi_high: u64,
    /// Day low of OI (likewise).
    pub oi_low: u64,
    /// `HAS_CLOSE`, `HAS_OI`.
    pub flags: u8,
    /// The mode this connection subscribed the symbol in (0: none; 1 ticker, 2 quote, 3 full).
    pub mode: u8,
}

/// `SymState::flags`: a previous close arrived.
pub const HAS_CLOSE: u8 = 1;
/// `SymState::flags`: an open interest arrived.
pub const HAS_OI: u8 = 2;

/// What a message said besides ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Said {
    /// Market data (or nothing) only.
    Data,
    /// Disconnect packet 50 with this reason code.
    Disconnect(u16),
}

#[inline]
fn u16_at(b: &[u8], f: Field) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[f]);
    u16::from_le_bytes(a)
}

#[inline]
fn u32_at(b: &[u8], f: Field) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[f]);
    u32::from_le_bytes(a)
}

#[inline]
fn f32_at(b: &[u8], f: Field) -> f32 {
    f32::from_bits(u32_at(b, f))
}

#[inline(always)]
fn level(b: &[u8], at: usize, e: &Entry) -> Result<(DepthLevel, DepthLevel), ParseError> {
    let r = |o: usize, n: usize| at + o..at + o + n;
    let bid = DepthLevel {
        price: grid_price(f32_at(b, r(12, 4)), e).ok_or(ParseError::BadPrice)?,
        qty: u32_at(b, r(0, 4)),
        orders: u16_at(b, r(8, 2)) as u32,
    };
    let ask = DepthLevel {
        price: grid_price(f32_at(b, r(16, 4)), e).ok_or(ParseError::BadPrice)?,
        qty: u32_at(b, r(4, 4)),
        orders: u16_at(b, r(10, 2)) as u32,
    };
    Ok((bid, ask))
}

#[inline(always)]
fn book(b: &[u8], at: usize, e: &Entry, t: &mut Tick) -> Result<(), ParseError> {
    for k in 0..DEPTH_LEVELS {
        let (bid, ask) = level(b, at + k * field::LEVEL, e)?;
        t.bids[k] = bid;
        t.asks[k] = ask;
    }
    Ok(())
}

// One function per packet shape, each over a fixed-size array: the caller checks the length once
// (`try_into`), and every field offset below is then a constant inside the array, so the reads
// compile without bounds checks (as Angel's parser does).

#[inline(always)]
fn ticker(p: &[u8; TICKER_LEN], e: &Entry, t: &mut Tick) -> Result<(), ParseError> {
    t.ltp = grid_price(f32_at(p, field::LTP), e).ok_or(ParseError::BadPrice)?;
    t.exchange_ts_ns = u32_at(p, field::TICKER_LTT) as i64 * 1_000_000_000;
    t.valid = valid::LTP;
    Ok(())
}

#[inline(always)]
fn depth(p: &[u8; DEPTH_LEN], e: &Entry, t: &mut Tick) -> Result<(), ParseError> {
    t.ltp = grid_price(f32_at(p, field::LTP), e).ok_or(ParseError::BadPrice)?;
    book(p, field::DEPTH_BOOK, e, t)?;
    t.valid = valid::LTP | valid::DEPTH;
    Ok(())
}

/// The quote packet (`N` = [`QUOTE_LEN`]) or the full one (`N` = [`FULL_LEN`]: quote, OI, book).
#[inline(always)]
fn quote<const N: usize>(
    p: &[u8; N],
    e: &Entry,
    st: &mut SymState,
    t: &mut Tick,
) -> Result<(), ParseError> {
    let full = N == FULL_LEN;
    let p = p.as_slice();
    let px = |f: Field| grid_price(f32_at(p, f), e).ok_or(ParseError::BadPrice);
    t.ltp = px(field::LTP)?;
    t.last_qty = u16_at(p, field::LTQ) as u64;
    t.exchange_ts_ns = u32_at(p, field::LTT) as i64 * 1_000_000_000;
    t.avg_price = fine_price(f32_at(p, field::AVG_PRICE), e).ok_or(ParseError::BadPrice)?;
    t.volume = u32_at(p, field::VOLUME) as u64;
    t.total_sell_qty = u32_at(p, field::SELL_QTY) as u64;
    t.total_buy_qty = u32_at(p, field::BUY_QTY) as u64;
    let (o, c, h, l) = if full {
        (field::F_OPEN, field::F_CLOSE, field::F_HIGH, field::F_LOW)
    } else {
        (field::Q_OPEN, field::Q_CLOSE, field::Q_HIGH, field::Q_LOW)
    };
    t.open = px(o)?;
    t.high = px(h)?;
    t.low = px(l)?;
    // The packet's close is the day's close (Dhan fills it after the session); the tick's
    // `close` is the previous session's, which packet 6 brings.
    t.close = if st.flags & HAS_CLOSE != 0 {
        st.prev_close
    } else {
        px(c)?
    };
    t.valid = valid::LTP | valid::QUOTE;
    if full {
        book(p, field::F_BOOK, e, t)?;
        st.oi = u32_at(p, field::F_OI) as u64;
        st.oi_high = u32_at(p, field::F_OI_HIGH) as u64;
        st.oi_low = u32_at(p, field::F_OI_LOW) as u64;
        st.flags |= HAS_OI;
        t.valid |= valid::DEPTH;
    }
    if st.flags & HAS_OI != 0 {
        t.oi = st.oi;
        t.oi_day_high = st.oi_high;
        t.oi_day_low = st.oi_low;
        t.valid |= valid::OI;
    }
    Ok(())
}

/// Parses one packet `p` (exactly its code's length) into `t` (already holding its symbol id and
/// receive time). `Ok(true)`: `t` is a tick to hand on; `Ok(false)`: the packet only updated `st`.
#[inline]
fn fill(p: &[u8], e: &Entry, st: &mut SymState, t: &mut Tick) -> Result<bool, ParseError> {
    // `p` has its code's length (the caller split it so); a mismatch is only refused, never read.
    match p.first().copied() {
        Some(code::TICKER) => {
            let Ok(p) = p.try_into() else {
                return Ok(false);
            };
            ticker(p, e, t)?;
        }
        Some(code::DEPTH) => {
            let Ok(p) = p.try_into() else {
                return Ok(false);
            };
            depth(p, e, t)?;
        }
        Some(code::QUOTE) => {
            let Ok(p) = <&[u8; QUOTE_LEN]>::try_from(p) else {
                return Ok(false);
            };
            quote(p, e, st, t)?;
        }
        Some(code::FULL) => {
            let Ok(p) = <&[u8; FULL_LEN]>::try_from(p) else {
                return Ok(false);
            };
            quote(p, e, st, t)?;
        }
        Some(code::OI) if p.len() == OI_LEN => {
            st.oi = u32_at(p, field::OI_VALUE) as u64;
            st.flags |= HAS_OI;
            return Ok(false);
        }
        Some(code::PREV_CLOSE) if p.len() == PREV_CLOSE_LEN => {
            st.prev_close = grid_price(f32_at(p, field::LTP), e).ok_or(ParseError::BadPrice)?;
            st.flags |= HAS_CLOSE;
            return Ok(false);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The symbol id, entry and state of the instrument in packet `p`'s header (at least 8 bytes).
#[inline(always)]
fn resolve<'a, 's>(
    p: &[u8; 8],
    table: &'a Instruments,
    state: &'s mut [SymState],
) -> Result<(SymbolId, &'a Entry, &'s mut SymState), ParseError> {
    let (seg, sid) = (p[field::SEGMENT], u32_at(p, field::SECURITY_ID));
    let unknown = ParseError::UnknownInstrument {
        segment: seg,
        security_id: sid,
    };
    let id = table.lookup(seg, sid).ok_or(unknown)?;
    match (table.of_id.get(id as usize), state.get_mut(id as usize)) {
        (Some(e), Some(st)) => Ok((id, e, st)),
        _ => Err(unknown),
    }
}

/// One fixed-size packet that is the whole message, parsed by `f` into a tick built here once and
/// moved once, into `emit`.
#[inline(always)]
fn single_as<const N: usize>(
    p: &[u8; N],
    recv_ts_ns: i64,
    table: &Instruments,
    state: &mut [SymState],
    f: impl FnOnce(&[u8; N], &Entry, &mut SymState, &mut Tick) -> Result<(), ParseError>,
    emit: impl FnOnce(Tick),
) -> Result<(), ParseError> {
    let Some(head) = p.first_chunk::<8>() else {
        return Ok(());
    };
    let (id, e, st) = resolve(head, table, state)?;
    let mut t = Tick::new(id);
    t.recv_ts_ns = recv_ts_ns;
    f(p, e, st, &mut t)?;
    emit(t);
    Ok(())
}

/// The fast path for what Dhan sends: a message that is exactly one ticker, quote or full packet.
/// Its tick goes to `emit` (it is the message's last); a bad packet is the `Err`. `None`: the
/// message is anything else (several packets, a short one, OI, previous close, status, disconnect,
/// depth), for [`parse_message`], which gives the same result for these messages too.
///
/// Why a separate path: the general one wraps each tick in a `Result`, holds it in an `Option` to
/// learn which is last and passes it through a callback; each of those is a move of the 384-byte
/// tick (a `memcpy`). Here it is built once and moved once.
#[inline]
pub fn parse_single(
    msg: &[u8],
    recv_ts_ns: i64,
    table: &Instruments,
    state: &mut [SymState],
    emit: impl FnOnce(Tick),
) -> Option<Result<(), ParseError>> {
    Some(match *msg.first()? {
        code::TICKER => single_as(
            msg.try_into().ok()?,
            recv_ts_ns,
            table,
            state,
            |p, e, _, t| ticker(p, e, t),
            emit,
        ),
        code::QUOTE => {
            single_as::<QUOTE_LEN>(msg.try_into().ok()?, recv_ts_ns, table, state, quote, emit)
        }
        code::FULL => {
            single_as::<FULL_LEN>(msg.try_into().ok()?, recv_ts_ns, table, state, quote, emit)
        }
        _ => return None,
    })
}

/// Parses one WebSocket message: normally one packet (as Dhan sends it), but packets placed back to
/// back are parsed too, each by its code's length. Ticks go to `on(Ok((tick, last)))`, `last` true
/// for the message's final tick; bad packets to `on(Err(_))` (a packet whose length cannot be known
/// ends the message). A disconnect packet is returned, not parsed past.
#[inline]
pub fn parse_message(
    msg: &[u8],
    recv_ts_ns: i64,
    table: &Instruments,
    state: &mut [SymState],
    mut on: impl FnMut(Result<(Tick, bool), ParseError>),
) -> Said {
    match parse_single(msg, recv_ts_ns, table, state, |t| on(Ok((t, true)))) {
        Some(Ok(())) => return Said::Data,
        Some(Err(e)) => {
            on(Err(e));
            return Said::Data;
        }
        None => {}
    }
    let mut rest = msg;
    let mut held: Option<Tick> = None;
    let mut said = Said::Data;
    while !rest.is_empty() {
        let c = rest[0];
        let Some(need) = packet_len(c) else {
            on(Err(ParseError::UnknownCode(c)));
            break;
        };
        if rest.len() < need {
            on(Err(ParseError::Short {
                code: c,
                need: need as u16,
                have: rest.len().min(u16::MAX as usize) as u16,
            }));
            break;
        }
        let (p, next) = rest.split_at(need);
        rest = next;
        match c {
            code::DISCONNECT => {
                said = Said::Disconnect(u16_at(p, field::REASON));
                break;
            }
            code::STATUS => continue,
            _ => {}
        }
        let Some(head) = p.first_chunk::<8>() else {
            continue;
        };
        let res = resolve(head, table, state).and_then(|(id, e, st)| {
            let mut t = Tick::new(id);
            t.recv_ts_ns = recv_ts_ns;
            fill(p, e, st, &mut t).map(|emit| emit.then_some(t))
        });
        match res {
            Ok(Some(t)) => {
                if let Some(prev) = held.replace(t) {
                    on(Ok((prev, false)));
                }
            }
            Ok(None) => {}
            Err(e) => on(Err(e)),
        }
    }
    if let Some(t) = held {
        on(Ok((t, true)));
    }
    said
}

/// Writers of every packet, for the mock broker and tests.
#[path = "emit.rs"]
pub mod emit;
