//! One topic's state on one connection: the merged values and the price scale its snapshot gave.
//!
//! Fyers sends a full snapshot (`S`) once per topic and then only what changed (`U` with
//! `i32::MIN` holes, or `L` with a new LTP), so every tick is built from the merged values, never
//! from one record alone: a tick always carries the topic's whole picture.
//!
//! Prices are integers meaning `raw / (10^precision × multiplier)` rupees. They become tickwire's
//! fixed point (10^7 per rupee) by exact integer arithmetic: `raw × 10^7 / (10^precision ×
//! multiplier)`, reduced once per snapshot to a fraction `num / den`; when `den` is 1 (every
//! precision ≤ 7 with multiplier 1, the usual case) a price is one multiplication, and otherwise
//! the quotient is rounded half away from zero.
//!
//! Where each kind's values go in the tick (`map.json`'s field lists):
//! - `sf`: ltp 0, volume 1, exchange time 3 (`exch_feed_time`, epoch seconds), last qty 8, total
//!   buy / sell qty 9 / 10, average price 11, OI 12, low 13, high 14, open 19, close 20 (the
//!   previous close); valid LTP | QUOTE | OI.
//! - `if`: ltp 0, close 1, exchange time 2, high 3, low 4, open 5; valid LTP | QUOTE.
//! - `dp`: bid prices 0–4, ask prices 5–9, bid qty 10–14, ask qty 15–19, bid orders 20–24, ask
//!   orders 25–29; valid DEPTH.
//!
//! Quantities and times are read as unsigned 32-bit: the SDK reads them signed, but none is
//! negative, and a day's volume past 2^31 would otherwise turn negative.

use tickwire_engine::price::PRICE_SCALE;
use tickwire_engine::symbols::SymbolId;
use tickwire_engine::tick::{valid, DEPTH_LEVELS};
use tickwire_engine::Tick;

use super::packet::{Values, ABSENT};
use super::topic::{Kind, MAX_FIELDS};
use super::ParseError;

/// `raw / (10^precision × multiplier)` rupees as `raw × num / den` price units, reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    num: i64,
    den: i64,
}

impl Scale {
    /// The scale a snapshot declares; a multiplier of 0 or a precision over 7 is refused.
    pub fn new(multiplier: u16, precision: u8) -> Result<Self, ParseError> {
        if multiplier == 0 || precision > 7 {
            return Err(ParseError::BadScale {
                multiplier,
                precision,
            });
        }
        let den = 10i64.pow(precision as u32) * multiplier as i64;
        let g = gcd(PRICE_SCALE, den);
        Ok(Self {
            num: PRICE_SCALE / g,
            den: den / g,
        })
    }

    /// `raw` in price units, exact or rounded half away from zero. Cannot overflow: |raw| < 2^31
    /// and `num` ≤ 10^7.
    #[inline]
    pub fn price(self, raw: i32) -> i64 {
        let n = raw as i64 * self.num;
        if self.den == 1 {
            return n;
        }
        let (q, r) = (n / self.den, n % self.den);
        if 2 * r.abs() >= self.den {
            q + n.signum()
        } else {
            q
        }
    }
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One topic's merged state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicState {
    /// The symbol the topic was subscribed for.
    pub symbol: SymbolId,
    /// Which field list the values follow.
    pub kind: Kind,
    scale: Scale,
    values: [i32; MAX_FIELDS],
}

impl TopicState {
    /// The state a snapshot starts (its values still to be [`merge`](Self::merge)d).
    pub fn new(
        symbol: SymbolId,
        kind: Kind,
        multiplier: u16,
        precision: u8,
    ) -> Result<Self, ParseError> {
        Ok(Self {
            symbol,
            kind,
            scale: Scale::new(multiplier, precision)?,
            values: [ABSENT; MAX_FIELDS],
        })
    }

    /// Overwrites the values `v` carries (positional from field 0); [`ABSENT`] ones, and any past
    /// this kind's field count, are left alone.
    #[inline]
    pub fn merge(&mut self, v: Values<'_>) {
        for (slot, x) in self.values[..self.kind.fields()].iter_mut().zip(v.iter()) {
            if x != ABSENT {
                *slot = x;
            }
        }
    }

    /// A lite record's LTP (field 0 of `sf` and `if`; a depth topic has none).
    #[inline]
    pub fn set_ltp(&mut self, raw: i32) -> Result<(), ParseError> {
        if self.kind == Kind::Dp {
            return Err(ParseError::LiteForDepth);
        }
        if raw != ABSENT {
            self.values[0] = raw;
        }
        Ok(())
    }

    /// Value `i` as sent ([`ABSENT`] when never seen).
    pub fn raw(&self, i: usize) -> i32 {
        self.values.get(i).copied().unwrap_or(ABSENT)
    }

    #[inline]
    fn px(&self, i: usize) -> i64 {
        match self.values[i] {
            ABSENT => 0,
            raw => self.scale.price(raw),
        }
    }

    #[inline]
    fn qty(&self, i: usize) -> u32 {
        match self.values[i] {
            ABSENT => 0,
            raw => raw as u32,
        }
    }

    #[inline]
    fn time_ns(&self, i: usize) -> i64 {
        self.qty(i) as i64 * 1_000_000_000
    }

    /// Fills `t` (symbol and receive time already set) from the merged values, and sets its valid
    /// groups.
    #[inline]
    pub fn fill(&self, t: &mut Tick) {
        match self.kind {
            Kind::Sf => {
                t.ltp = self.px(0);
                t.volume = self.qty(1) as u64;
                t.exchange_ts_ns = self.time_ns(3);
                t.last_qty = self.qty(8) as u64;
                t.total_buy_qty = self.qty(9) as u64;
                t.total_sell_qty = self.qty(10) as u64;
                t.avg_price = self.px(11);
                t.oi = self.qty(12) as u64;
                t.low = self.px(13);
                t.high = self.px(14);
                t.open = self.px(19);
                t.close = self.px(20);
                t.valid |= valid::LTP | valid::QUOTE | valid::OI;
            }
            Kind::If => {
                t.ltp = self.px(0);
                t.close = self.px(1);
                t.exchange_ts_ns = self.time_ns(2);
                t.high = self.px(3);
                t.low = self.px(4);
                t.open = self.px(5);
                t.valid |= valid::LTP | valid::QUOTE;
            }
            Kind::Dp => {
                for i in 0..DEPTH_LEVELS {
                    t.bids[i].price = self.px(i);
                    t.asks[i].price = self.px(5 + i);
                    t.bids[i].qty = self.qty(10 + i);
                    t.asks[i].qty = self.qty(15 + i);
                    t.bids[i].orders = self.qty(20 + i);
                    t.asks[i].orders = self.qty(25 + i);
                }
                t.valid |= valid::DEPTH;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_exact_or_rounded_half_away_from_zero() {
        let paise = Scale::new(1, 2).unwrap();
        assert_eq!(paise.price(73150), 7_315_000_000, "731.50 rupees");
        assert_eq!(paise.price(-5), -500_000);
        let p7 = Scale::new(1, 7).unwrap();
        assert_eq!(p7.price(832_512_345), 832_512_345);
        // 1 / (10^7 × 3): not exact; 1/3 of a unit rounds to 0, 2/3 to 1, -2/3 to -1
        let third = Scale::new(3, 7).unwrap();
        assert_eq!(
            (third.price(1), third.price(2), third.price(-2)),
            (0, 1, -1)
        );
        // half: 1 / (10^7 × 2) → 0.5 unit → away from zero
        let half = Scale::new(2, 7).unwrap();
        assert_eq!((half.price(1), half.price(-1), half.price(3)), (1, -1, 2));
        // multiplier 100 on paise: raw 12345 = 1.2345 rupees
        assert_eq!(Scale::new(100, 2).unwrap().price(12345), 12_345_000);
        // extremes do not overflow
        assert_eq!(
            Scale::new(1, 0).unwrap().price(i32::MAX),
            i32::MAX as i64 * PRICE_SCALE
        );
        assert_eq!(Scale::new(u16::MAX, 7).unwrap().price(i32::MIN + 1), -32768);
        assert!(Scale::new(0, 2).is_err() && Scale::new(1, 8).is_err());
    }
}
