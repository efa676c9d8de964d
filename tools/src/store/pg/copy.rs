//! Rows in PostgreSQL's binary `COPY` format (`COPY … FROM STDIN (FORMAT binary)`): the fastest
//! way in, and exact, since values go as the server's own binary representations rather than text
//! it has to parse. A [`Batch`] is the whole `COPY` stream of one transaction.
//!
//! Format (PostgreSQL docs, "COPY", "Binary Format"): the 11-byte signature, a 32-bit flags
//! field and a 32-bit header-extension length (both 0); per row a 16-bit field count and per
//! field a 32-bit length (-1: NULL) and the value; the 16-bit trailer -1. All big-endian.

use std::time::Instant;

use tickwire_engine::price::PRICE_DECIMALS;
use tickwire_engine::Tick;

use crate::store::columns::{Cell, COLUMNS};

/// The stream's end.
pub const TRAILER: [u8; 2] = (-1i16).to_be_bytes();
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// `numeric`'s sign word.
const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;

/// The stream's header: signature, flags, header-extension length.
pub const HEADER: [u8; 19] = *b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The rows of one transaction, encoded as they are read and sent in chunks while the
/// transaction is open (so the server parses one chunk while the next is encoded).
pub struct Batch {
    /// Encoded rows not sent yet.
    buf: Vec<u8>,
    rows: usize,
    newest_recv_ns: i64,
    started: Option<Instant>,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch {
            buf: Vec::with_capacity(1 << 20),
            rows: 0,
            newest_recv_ns: 0,
            started: None,
        }
    }

    /// Empty again (a new transaction), keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.rows = 0;
        self.newest_recv_ns = 0;
        self.started = None;
    }

    /// Rows in the batch, sent or not.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// When the first row of this batch was added.
    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    /// The newest receive time among the rows (ns since the epoch).
    pub fn newest_recv_ns(&self) -> i64 {
        self.newest_recv_ns
    }

    /// The rows encoded since the last [`Batch::sent`] (after [`HEADER`], before [`TRAILER`]).
    pub fn unsent(&self) -> &[u8] {
        &self.buf
    }

    /// The unsent rows went out.
    pub fn sent(&mut self) {
        self.buf.clear();
    }

    /// Appends the row of `tick` for `exchange:symbol`: every column of [`COLUMNS`], in order.
    pub fn push(&mut self, exchange: &str, symbol: &str, tick: &Tick) {
        if self.rows == 0 {
            self.started = Some(Instant::now());
        }
        self.rows += 1;
        self.newest_recv_ns = self.newest_recv_ns.max(tick.recv_ts_ns);
        let b = &mut self.buf;
        b.extend_from_slice(&(COLUMNS.len() as i16).to_be_bytes());
        for c in &COLUMNS {
            match c.cell(exchange, symbol, tick) {
                Cell::Null => b.extend_from_slice(&(-1i32).to_be_bytes()),
                Cell::Text(s) => {
                    b.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    b.extend_from_slice(s.as_bytes());
                }
                Cell::Int(v) => int8(b, v),
                Cell::Float(v) => int8(b, v.to_bits() as i64),
                Cell::Time(ns) => int8(b, timestamptz(ns)),
                Cell::Price(v) => numeric(b, v),
            }
        }
    }
}

/// An 8-byte field (`bigint`, `double precision`, `timestamptz`).
fn int8(b: &mut Vec<u8>, v: i64) {
    b.extend_from_slice(&8i32.to_be_bytes());
    b.extend_from_slice(&v.to_be_bytes());
}

/// ns since the Unix epoch → `timestamptz`'s µs since 2000-01-01 UTC, truncated toward -inf
/// (the column is µs; the floor keeps an instant's µs the same on both sides of the epoch).
pub fn timestamptz(ns: i64) -> i64 {
    ns.div_euclid(1000) - PG_EPOCH_US
}

/// A fixed-point price (`v` × 10^-7) as `numeric` with display scale 7, exactly: base-10000
/// digits, most significant first, `weight` the power of 10000 of the first, leading and
/// trailing zero digits left out (as the server normalizes).
pub fn numeric(b: &mut Vec<u8>, v: i64) {
    const SCALE: u64 = 10u64.pow(PRICE_DECIMALS);
    let a = v.unsigned_abs();
    let (mut int, frac) = (a / SCALE, a % SCALE);
    // The integer part in base-10000 groups, least significant first (u64::MAX / 10^7 < 10^13:
    // at most 4 groups).
    let mut groups = [0u16; 4];
    let mut n = 0;
    while int > 0 {
        groups[n] = (int % 10_000) as u16;
        int /= 10_000;
        n += 1;
    }
    // The fraction's 7 decimals padded to 8: two groups.
    let f = frac * 10;
    let mut digits = [0u16; 6];
    for i in 0..n {
        digits[i] = groups[n - 1 - i];
    }
    digits[n] = (f / 10_000) as u16;
    digits[n + 1] = (f % 10_000) as u16;
    let mut weight = n as i16 - 1;
    let (mut lo, mut hi) = (0, n + 2);
    while lo < hi && digits[lo] == 0 {
        lo += 1;
        weight -= 1;
    }
    while hi > lo && digits[hi - 1] == 0 {
        hi -= 1;
    }
    let nd = hi - lo;
    if nd == 0 {
        weight = 0;
    }
    let sign = if v < 0 && nd > 0 {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    };
    b.extend_from_slice(&(8 + 2 * nd as i32).to_be_bytes());
    b.extend_from_slice(&(nd as i16).to_be_bytes());
    b.extend_from_slice(&weight.to_be_bytes());
    b.extend_from_slice(&sign.to_be_bytes());
    b.extend_from_slice(&(PRICE_DECIMALS as i16).to_be_bytes());
    for d in &digits[lo..hi] {
        b.extend_from_slice(&d.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_engine::tick::valid;

    /// (ndigits, weight, sign, dscale, digits) of an encoded numeric.
    fn decode(v: i64) -> (i16, i16, u16, i16, Vec<u16>) {
        let mut b = Vec::new();
        numeric(&mut b, v);
        let w = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        assert_eq!(len, b.len() - 4);
        let nd = w(4) as i16;
        let digits = (0..nd as usize).map(|i| w(12 + 2 * i)).collect();
        (nd, w(6) as i16, w(8), w(10) as i16, digits)
    }

    /// The value the server reads back from digits and weight, × 10^7.
    fn value(v: i64) -> i128 {
        let (_, weight, sign, _, digits) = decode(v);
        let mut x: i128 = 0;
        // Value × 10000^2 (two fraction groups) = Σ d × 10000^(weight - i + 2).
        for (i, d) in digits.iter().enumerate() {
            let p = weight as i32 - i as i32 + 2;
            assert!(p >= 0, "no digit below 10^-8");
            x += *d as i128 * 10_000i128.pow(p as u32);
        }
        let x = x / 10; // to 10^7
        if sign == NUMERIC_NEG {
            -x
        } else {
            x
        }
    }

    #[test]
    fn prices_are_exact_numerics() {
        // 1418.05 = 1418 | 0500 (weight 0, trailing zeros dropped).
        assert_eq!(decode(14_180_500_000), (2, 0, 0, 7, vec![1418, 500]));
        assert_eq!(decode(0), (0, 0, 0, 7, vec![]));
        // 0.0000001 = 0.0000 0001|0: weight -2.
        assert_eq!(decode(1), (1, -2, 0, 7, vec![10]));
        assert_eq!(decode(-25_000_000), (2, 0, NUMERIC_NEG, 7, vec![2, 5000]));
        assert_eq!(decode(-20_000_000), (1, 0, NUMERIC_NEG, 7, vec![2]));
        for v in [
            1,
            -1,
            9_999,
            10_000_000,
            123_456_789_012,
            -98_765_432_101_234,
            i64::MAX,
            i64::MIN + 1,
            i64::MIN,
        ] {
            assert_eq!(value(v), v as i128, "{v}");
        }
    }

    #[test]
    fn times_are_microseconds_since_2000_floored() {
        assert_eq!(timestamptz(946_684_800_000_000_000), 0);
        assert_eq!(timestamptz(946_684_800_000_001_999), 1);
        assert_eq!(timestamptz(-1), -1 - PG_EPOCH_US, "toward -inf");
    }

    #[test]
    fn a_row_has_every_column_and_nulls_for_groups_not_carried() {
        assert_eq!(&HEADER[..11], b"PGCOPY\n\xff\r\n\0");
        let mut b = Batch::new();
        let mut t = Tick::new(0);
        t.valid = valid::LTP;
        t.ltp = 10_000_000;
        t.recv_ts_ns = 5_000;
        b.push("NSE", "SBIN", &t);
        assert_eq!(b.rows(), 1);
        assert_eq!(b.newest_recv_ns(), 5_000);
        let row = b.unsent();
        assert_eq!(i16::from_be_bytes([row[0], row[1]]), 54);
        assert_eq!(&row[2..6], &3i32.to_be_bytes());
        assert_eq!(&row[6..9], b"NSE");
        // exchange(3+4) symbol(4+4) seq(8+4) exchange_ts(null 4) recv_ts(8+4) ltp(numeric
        // 1 digit: 10+4) last_qty(8+4), then 47 nulls.
        let want = 2 + 7 + 8 + 12 + 4 + 12 + 14 + 12 + 47 * 4;
        assert_eq!(row.len(), want);
        b.sent();
        assert_eq!(
            (b.rows(), b.unsent().len()),
            (1, 0),
            "sent rows still count"
        );
        b.clear();
        assert_eq!(b.rows(), 0);
    }
}
