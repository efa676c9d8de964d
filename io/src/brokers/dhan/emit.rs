//! Writers of every Dhan packet, for the mock broker and tests (field values as they go on the
//! wire), from the same offsets as the parser ([`crate::brokers::dhan::packet::field`]).

use super::{code, field, FULL_LEN, QUOTE_LEN};

/// One book level as it goes on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Level {
    /// Bid quantity.
    pub bid_qty: u32,
    /// Ask quantity.
    pub ask_qty: u32,
    /// Bid orders.
    pub bid_orders: u16,
    /// Ask orders.
    pub ask_orders: u16,
    /// Bid price, rupees.
    pub bid: f32,
    /// Ask price, rupees.
    pub ask: f32,
}

/// The quote fields shared by quote and full packets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quote {
    /// LTP.
    pub ltp: f32,
    /// Last traded quantity.
    pub ltq: u16,
    /// Last trade time, epoch seconds.
    pub ltt: u32,
    /// Average traded price.
    pub avg: f32,
    /// Volume.
    pub volume: u32,
    /// Total sell quantity.
    pub sell_qty: u32,
    /// Total buy quantity.
    pub buy_qty: u32,
    /// Day open.
    pub open: f32,
    /// Day close.
    pub close: f32,
    /// Day high.
    pub high: f32,
    /// Day low.
    pub low: f32,
}

fn header(out: &mut Vec<u8>, code: u8, len: usize, segment: u8, security_id: u32) {
    out.push(code);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.push(segment);
    out.extend_from_slice(&security_id.to_le_bytes());
}

fn put(out: &mut [u8], at: core::ops::Range<usize>, bytes: &[u8]) {
    out[at].copy_from_slice(bytes);
}

/// A ticker packet.
pub fn ticker(out: &mut Vec<u8>, segment: u8, security_id: u32, ltp: f32, ltt: u32) {
    header(out, code::TICKER, 16, segment, security_id);
    out.extend_from_slice(&ltp.to_le_bytes());
    out.extend_from_slice(&ltt.to_le_bytes());
}

/// An OI packet.
pub fn oi(out: &mut Vec<u8>, segment: u8, security_id: u32, oi: u32) {
    header(out, code::OI, 12, segment, security_id);
    out.extend_from_slice(&oi.to_le_bytes());
}

/// A previous close packet.
pub fn prev_close(out: &mut Vec<u8>, segment: u8, security_id: u32, close: f32, oi: u32) {
    header(out, code::PREV_CLOSE, 16, segment, security_id);
    out.extend_from_slice(&close.to_le_bytes());
    out.extend_from_slice(&oi.to_le_bytes());
}

/// A disconnect packet with `reason`.
pub fn disconnect(out: &mut Vec<u8>, reason: u16) {
    header(out, code::DISCONNECT, 10, 0, 0);
    out.extend_from_slice(&reason.to_le_bytes());
}

fn quote_fields(out: &mut [u8], base: usize, q: &Quote) {
    let b = base;
    let f = |r: core::ops::Range<usize>| b + r.start..b + r.end;
    put(out, f(field::LTP), &q.ltp.to_le_bytes());
    put(out, f(field::LTQ), &q.ltq.to_le_bytes());
    put(out, f(field::LTT), &q.ltt.to_le_bytes());
    put(out, f(field::AVG_PRICE), &q.avg.to_le_bytes());
    put(out, f(field::VOLUME), &q.volume.to_le_bytes());
    put(out, f(field::SELL_QTY), &q.sell_qty.to_le_bytes());
    put(out, f(field::BUY_QTY), &q.buy_qty.to_le_bytes());
}

/// A quote packet.
pub fn quote(out: &mut Vec<u8>, segment: u8, security_id: u32, q: &Quote) {
    let b = out.len();
    header(out, code::QUOTE, QUOTE_LEN, segment, security_id);
    out.resize(b + QUOTE_LEN, 0);
    quote_fields(out, b, q);
    let f = |r: core::ops::Range<usize>| b + r.start..b + r.end;
    put(out, f(field::Q_OPEN), &q.open.to_le_bytes());
    put(out, f(field::Q_CLOSE), &q.close.to_le_bytes());
    put(out, f(field::Q_HIGH), &q.high.to_le_bytes());
    put(out, f(field::Q_LOW), &q.low.to_le_bytes());
}

/// A full packet: the quote, OI (value, day high, day low) and five levels.
pub fn full(
    out: &mut Vec<u8>,
    segment: u8,
    security_id: u32,
    q: &Quote,
    oi: [u32; 3],
    levels: &[Level; 5],
) {
    let b = out.len();
    header(out, code::FULL, FULL_LEN, segment, security_id);
    out.resize(b + FULL_LEN, 0);
    quote_fields(out, b, q);
    let f = |r: core::ops::Range<usize>| b + r.start..b + r.end;
    put(out, f(field::F_OI), &oi[0].to_le_bytes());
    put(out, f(field::F_OI_HIGH), &oi[1].to_le_bytes());
    put(out, f(field::F_OI_LOW), &oi[2].to_le_bytes());
    put(out, f(field::F_OPEN), &q.open.to_le_bytes());
    put(out, f(field::F_CLOSE), &q.close.to_le_bytes());
    put(out, f(field::F_HIGH), &q.high.to_le_bytes());
    put(out, f(field::F_LOW), &q.low.to_le_bytes());
    for (k, l) in levels.iter().enumerate() {
        let at = b + field::F_BOOK + k * field::LEVEL;
        put(out, at..at + 4, &l.bid_qty.to_le_bytes());
        put(out, at + 4..at + 8, &l.ask_qty.to_le_bytes());
        put(out, at + 8..at + 10, &l.bid_orders.to_le_bytes());
        put(out, at + 10..at + 12, &l.ask_orders.to_le_bytes());
        put(out, at + 12..at + 16, &l.bid.to_le_bytes());
        put(out, at + 16..at + 20, &l.ask.to_le_bytes());
    }
}
