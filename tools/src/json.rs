//! Ticks as JSON lines, written by hand: exact decimal prices (no float round trip), floats in
//! Rust's shortest round-trip form, no allocation per tick beyond the output buffer.

use std::io::{self, Write};

use tickwire_engine::tick::{valid, DepthLevel};
use tickwire_engine::{Px, Tick};
use tickwire_io::gateway::JsonStr;

/// Writes `s` as a JSON string literal (the gateway's escaping, one implementation).
pub fn write_str(out: &mut impl Write, s: &str) -> io::Result<()> {
    write!(out, "{}", JsonStr(s))
}

/// A float in its shortest round-trip form; NaN and infinities (not JSON) as `null`.
pub fn write_f64(out: &mut impl Write, v: f64) -> io::Result<()> {
    if v.is_finite() {
        write!(out, "{v:?}")
    } else {
        out.write_all(b"null")
    }
}

fn levels(out: &mut impl Write, name: &str, lv: &[DepthLevel]) -> io::Result<()> {
    write!(out, ",\"{name}\":[")?;
    for (i, l) in lv.iter().enumerate() {
        let sep = if i > 0 { "," } else { "" };
        write!(
            out,
            "{sep}{{\"price\":{},\"quantity\":{},\"orders\":{}}}",
            Px(l.price),
            l.qty,
            l.orders
        )?;
    }
    out.write_all(b"]")
}

/// One tick as a JSON object (no newline). `pos` is the ring position, when known.
pub fn write_tick(
    out: &mut impl Write,
    t: &Tick,
    pos: Option<u64>,
    exchange: &str,
    symbol: &str,
) -> io::Result<()> {
    out.write_all(b"{")?;
    if let Some(p) = pos {
        write!(out, "\"pos\":{p},")?;
    }
    out.write_all(b"\"exchange\":")?;
    write_str(out, exchange)?;
    out.write_all(b",\"symbol\":")?;
    write_str(out, symbol)?;
    write!(
        out,
        ",\"id\":{},\"seq\":{},\"valid\":{},\"exchange_ts_ns\":{},\"recv_ts_ns\":{}",
        t.symbol_id, t.seq, t.valid, t.exchange_ts_ns, t.recv_ts_ns
    )?;
    if t.has(valid::LTP) {
        write!(out, ",\"ltp\":{},\"last_qty\":{}", Px(t.ltp), t.last_qty)?;
    }
    if t.has(valid::QUOTE) {
        write!(
            out,
            ",\"avg_price\":{},\"volume\":{},\"total_buy_qty\":{},\"total_sell_qty\":{},\"open\":{},\"high\":{},\"low\":{},\"close\":{}",
            Px(t.avg_price), t.volume, t.total_buy_qty, t.total_sell_qty, Px(t.open), Px(t.high), Px(t.low), Px(t.close)
        )?;
    }
    if t.has(valid::OI) {
        write!(
            out,
            ",\"oi\":{},\"oi_day_high\":{},\"oi_day_low\":{}",
            t.oi, t.oi_day_high, t.oi_day_low
        )?;
    }
    if t.has(valid::GREEKS) {
        for (k, v) in [
            ("iv", t.iv),
            ("delta", t.delta),
            ("gamma", t.gamma),
            ("theta", t.theta),
            ("vega", t.vega),
            ("rho", t.rho),
        ] {
            write!(out, ",\"{k}\":")?;
            write_f64(out, v)?;
        }
    }
    if t.has(valid::DEPTH) {
        levels(out, "bids", &t.bids)?;
        levels(out, "asks", &t.asks)?;
    }
    out.write_all(b"}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_and_strings_escaped() {
        let mut t = Tick::new(1);
        t.valid = valid::LTP;
        t.ltp = 832_512_345;
        t.last_qty = 10;
        let mut out = Vec::new();
        write_tick(&mut out, &t, Some(5), "CDS", "USD\"INR").unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            r#"{"pos":5,"exchange":"CDS","symbol":"USD\"INR","id":1,"seq":0,"valid":1,"exchange_ts_ns":0,"recv_ts_ns":0,"ltp":83.2512345,"last_qty":10}"#
        );
    }
}
