//! The one tick record every feed produces and every consumer reads.
//!
//! `Tick` is `#[repr(C)]`, `Copy`, 384 bytes (six cache lines) and 64-byte aligned. Readers in other
//! languages (the Python shm reader) depend on each offset; `docs/tick-layout.md` draws it and the
//! `const` assertions at the bottom of this file pin every field where that page puts it.
//!
//! Prices are fixed-point `i64` integers (printed exactly by [`Px`](crate::price::Px)) at [`PRICE_SCALE`](crate::price::PRICE_SCALE)
//! (10^7), quantities unsigned integers, times nanoseconds since the Unix epoch. A field is meaningful
//! only when its group's bit is set in [`Tick::valid`]; a feed that sends only LTP leaves the quote,
//! depth, OI and greek groups zero and their bits clear.

use bytemuck::{Pod, Zeroable};

/// Bits of [`Tick::valid`]: which field groups this tick carries.
pub mod valid {
    /// `ltp`, `last_qty`, `exchange_ts_ns`.
    pub const LTP: u32 = 1 << 0;
    /// `avg_price`, `volume`, `total_buy_qty`, `total_sell_qty`, `open`, `high`, `low`, `close`.
    pub const QUOTE: u32 = 1 << 1;
    /// `bids`, `asks`.
    pub const DEPTH: u32 = 1 << 2;
    /// `oi`, `oi_day_high`, `oi_day_low`.
    pub const OI: u32 = 1 << 3;
    /// `iv`, `delta`, `gamma`, `theta`, `vega`, `rho`.
    pub const GREEKS: u32 = 1 << 4;
    /// Every group this layout version knows.
    pub const ALL: u32 = LTP | QUOTE | DEPTH | OI | GREEKS;
}

/// Number of book levels per side.
pub const DEPTH_LEVELS: usize = 5;

/// One level of the order book, 16 bytes.
///
/// `qty` is 32-bit: every broker tickwire speaks (`docs/brokers.md`) sends per-level quantities that fit (Kite sends
/// int32); a parser that meets a larger one saturates and counts it rather than wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct DepthLevel {
    /// Fixed-point price at [`PRICE_SCALE`](crate::price::PRICE_SCALE).
    pub price: i64,
    /// Quantity resting at this price.
    pub qty: u32,
    /// Number of orders at this price.
    pub orders: u32,
}

/// The normalized tick: 384 bytes, 64-byte aligned. See `docs/tick-layout.md`.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C, align(64))]
pub struct Tick {
    // ---- cache line 0 (0..64): identity, times, the LTP group, and the start of the quote group
    /// Dense symbol id from the [`SymbolRegistry`](crate::symbols::SymbolRegistry).
    pub symbol_id: u32,
    /// Bitset of valid field groups ([`valid`]).
    pub valid: u32,
    /// Per-symbol sequence number, assigned by the router: 1 for a symbol's first tick, +1 per tick.
    pub seq: u64,
    /// Exchange timestamp, ns since the Unix epoch (0 when the broker sends none).
    pub exchange_ts_ns: i64,
    /// Gateway receive timestamp, ns since the Unix epoch, taken when the frame was read.
    pub recv_ts_ns: i64,
    /// Last traded price.
    pub ltp: i64,
    /// Last traded quantity.
    pub last_qty: u64,
    /// Average traded price of the day.
    pub avg_price: i64,
    /// Volume traded today.
    pub volume: u64,
    // ---- cache line 1 (64..128)
    /// Total pending buy quantity.
    pub total_buy_qty: u64,
    /// Total pending sell quantity.
    pub total_sell_qty: u64,
    /// Day open.
    pub open: i64,
    /// Day high.
    pub high: i64,
    /// Day low.
    pub low: i64,
    /// Previous session's close.
    pub close: i64,
    /// Open interest.
    pub oi: u64,
    /// Day high of open interest.
    pub oi_day_high: u64,
    // ---- cache line 2 (128..192)
    /// Day low of open interest.
    pub oi_day_low: u64,
    /// Implied volatility (as the broker sends it, e.g. 14.2 for 14.2 %).
    pub iv: f64,
    /// Option delta.
    pub delta: f64,
    /// Option gamma.
    pub gamma: f64,
    /// Option theta.
    pub theta: f64,
    /// Option vega.
    pub vega: f64,
    /// Option rho.
    pub rho: f64,
    /// Zero; keeps the depth book on its own cache lines.
    pub _reserved0: u64,
    // ---- cache lines 3..5 (192..352): the book, then spare bytes to 384
    /// Bid levels, best first.
    pub bids: [DepthLevel; DEPTH_LEVELS],
    /// Ask levels, best first.
    pub asks: [DepthLevel; DEPTH_LEVELS],
    /// Zero; room for fields a later minor layout version adds.
    pub _reserved1: [u64; 4],
}

impl Default for Tick {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl Tick {
    /// Size of the record in bytes.
    pub const SIZE: usize = core::mem::size_of::<Tick>();

    /// A zeroed tick for `symbol_id` with no valid groups.
    pub fn new(symbol_id: u32) -> Self {
        Self {
            symbol_id,
            ..Self::zeroed()
        }
    }

    /// True when every bit of `groups` is set in `valid`.
    #[inline]
    pub fn has(&self, groups: u32) -> bool {
        self.valid & groups == groups
    }

    /// Merges the groups `update` carries into `self` (the last value of the same symbol), leaving the
    /// groups it does not carry as they were. Identity, sequence and timestamps always come from
    /// `update`. This is how the last-value table keeps a full picture when a feed alternates LTP-only
    /// and full packets.
    #[inline]
    pub fn merge_from(&mut self, update: &Tick) {
        let g = update.valid;
        self.symbol_id = update.symbol_id;
        self.seq = update.seq;
        self.recv_ts_ns = update.recv_ts_ns;
        if update.exchange_ts_ns != 0 {
            self.exchange_ts_ns = update.exchange_ts_ns;
        }
        if g & valid::LTP != 0 {
            self.ltp = update.ltp;
            self.last_qty = update.last_qty;
        }
        if g & valid::QUOTE != 0 {
            self.avg_price = update.avg_price;
            self.volume = update.volume;
            self.total_buy_qty = update.total_buy_qty;
            self.total_sell_qty = update.total_sell_qty;
            self.open = update.open;
            self.high = update.high;
            self.low = update.low;
            self.close = update.close;
        }
        if g & valid::DEPTH != 0 {
            self.bids = update.bids;
            self.asks = update.asks;
        }
        if g & valid::OI != 0 {
            self.oi = update.oi;
            self.oi_day_high = update.oi_day_high;
            self.oi_day_low = update.oi_day_low;
        }
        if g & valid::GREEKS != 0 {
            self.iv = update.iv;
            self.delta = update.delta;
            self.gamma = update.gamma;
            self.theta = update.theta;
            self.vega = update.vega;
            self.rho = update.rho;
        }
        self.valid |= g;
    }

    /// The record as bytes, in the documented layout (native byte order: little-endian on every
    /// platform tickwire builds for).
    pub fn as_bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
}

// ---- layout pins: docs/tick-layout.md and the Python reader depend on every one of these.
use core::mem::{align_of, offset_of, size_of};
const _: () = assert!(size_of::<DepthLevel>() == 16);
const _: () = assert!(offset_of!(DepthLevel, price) == 0);
const _: () = assert!(offset_of!(DepthLevel, qty) == 8);
const _: () = assert!(offset_of!(DepthLevel, orders) == 12);
const _: () = assert!(size_of::<Tick>() == 384);
const _: () = assert!(align_of::<Tick>() == 64);
const _: () = assert!(offset_of!(Tick, symbol_id) == 0);
const _: () = assert!(offset_of!(Tick, valid) == 4);
const _: () = assert!(offset_of!(Tick, seq) == 8);
const _: () = assert!(offset_of!(Tick, exchange_ts_ns) == 16);
const _: () = assert!(offset_of!(Tick, recv_ts_ns) == 24);
const _: () = assert!(offset_of!(Tick, ltp) == 32);
const _: () = assert!(offset_of!(Tick, last_qty) == 40);
const _: () = assert!(offset_of!(Tick, avg_price) == 48);
const _: () = assert!(offset_of!(Tick, volume) == 56);
const _: () = assert!(offset_of!(Tick, total_buy_qty) == 64);
const _: () = assert!(offset_of!(Tick, total_sell_qty) == 72);
const _: () = assert!(offset_of!(Tick, open) == 80);
const _: () = assert!(offset_of!(Tick, high) == 88);
const _: () = assert!(offset_of!(Tick, low) == 96);
const _: () = assert!(offset_of!(Tick, close) == 104);
const _: () = assert!(offset_of!(Tick, oi) == 112);
const _: () = assert!(offset_of!(Tick, oi_day_high) == 120);
const _: () = assert!(offset_of!(Tick, oi_day_low) == 128);
const _: () = assert!(offset_of!(Tick, iv) == 136);
const _: () = assert!(offset_of!(Tick, delta) == 144);
const _: () = assert!(offset_of!(Tick, gamma) == 152);
const _: () = assert!(offset_of!(Tick, theta) == 160);
const _: () = assert!(offset_of!(Tick, vega) == 168);
const _: () = assert!(offset_of!(Tick, rho) == 176);
const _: () = assert!(offset_of!(Tick, bids) == 192);
const _: () = assert!(offset_of!(Tick, asks) == 272);
const _: () = assert!(offset_of!(Tick, _reserved1) == 352);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_groups_the_update_lacks() {
        let mut last = Tick::new(7);
        last.valid = valid::LTP | valid::QUOTE | valid::DEPTH;
        last.ltp = 100;
        last.volume = 5_000;
        last.bids[0] = DepthLevel {
            price: 99,
            qty: 10,
            orders: 2,
        };
        let mut upd = Tick::new(7);
        upd.valid = valid::LTP;
        upd.seq = 9;
        upd.ltp = 101;
        last.merge_from(&upd);
        assert_eq!(last.ltp, 101);
        assert_eq!(last.seq, 9);
        assert_eq!(last.volume, 5_000, "quote group kept");
        assert_eq!(last.bids[0].qty, 10, "depth kept");
        assert!(last.has(valid::LTP | valid::QUOTE | valid::DEPTH));
    }

    #[test]
    fn bytes_are_the_documented_layout() {
        let mut t = Tick::new(0x0102_0304);
        t.ltp = 0x1122_3344_5566_7788;
        let b = t.as_bytes();
        assert_eq!(b.len(), 384);
        assert_eq!(&b[0..4], &0x0102_0304u32.to_le_bytes());
        assert_eq!(&b[32..40], &0x1122_3344_5566_7788i64.to_le_bytes());
    }
}
