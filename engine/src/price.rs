//! Fixed-point prices: one scale for every broker, exact decimal output.
//!
//! A price is an `i64` counting units of 10^-7 rupee ([`PRICE_SCALE`]). Seven decimals is what Kite's
//! currency segment (CDS, divisor 10^7) needs, and every other broker divisor in `docs/brokers.md`
//! (100 for paise, 10^4 for BCD) divides it, so converting a broker integer is one exact
//! multiplication. The range is ±922 billion rupees.
//!
//! Formatting never goes through a float: [`Px`] prints the integer part, a point, and the fraction
//! with trailing zeros trimmed (at least one digit, so JSON readers see a float: `1418.0`).

use core::fmt;

/// Price units per rupee: 10^7.
pub const PRICE_SCALE: i64 = 10_000_000;

/// Number of decimals [`PRICE_SCALE`] carries.
pub const PRICE_DECIMALS: u32 = 7;

/// Converts a broker integer price with the given divisor (100 for paise, 10^4, 10^7) to a
/// [`PRICE_SCALE`] price. Returns `None` when the divisor does not divide the scale (a programming
/// error in a parser's table) or the result overflows.
#[inline]
pub const fn from_divided(raw: i64, divisor: i64) -> Option<i64> {
    if divisor <= 0 || PRICE_SCALE % divisor != 0 {
        return None;
    }
    raw.checked_mul(PRICE_SCALE / divisor)
}

/// Converts a float price in rupees (Upstox, Dhan send doubles/floats) to the nearest unit.
/// `None` for NaN, infinities and out-of-range values.
///
/// Rounds half away from zero by adding ±0.5 and truncating (`cvttsd2si`): `f64::round` is a libm
/// call on baseline x86-64 (no SSE4.1 `roundsd`), ~10 ns, and a full Upstox feed has ~16 prices.
/// Exact wherever it matters: a price × 10⁷ stays below 2⁵², where adding 0.5 is exact.
#[inline]
pub fn from_f64(rupees: f64) -> Option<i64> {
    let v = rupees * PRICE_SCALE as f64;
    // The range check also refuses NaN (every comparison with NaN is false).
    if v.abs() < 9.0e18 {
        Some((v + 0.5f64.copysign(v)) as i64)
    } else {
        None
    }
}

/// The price as a float in rupees (for greeks-style arithmetic; output uses [`Px`]).
#[inline]
pub fn to_f64(p: i64) -> f64 {
    p as f64 / PRICE_SCALE as f64
}

/// Parses a decimal string (`"1424.05"`, `"-0.5"`, `"83.2512345"`) exactly. More than seven decimals,
/// an empty string, stray characters or overflow → `None`.
pub fn parse(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if (int.is_empty() && frac.is_empty()) || frac.len() > PRICE_DECIMALS as usize {
        return None;
    }
    let all_digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let mut v: i64 = 0;
    for b in int.bytes() {
        v = v.checked_mul(10)?.checked_add((b - b'0') as i64)?;
    }
    v = v.checked_mul(PRICE_SCALE)?;
    let mut f: i64 = 0;
    for b in frac.bytes() {
        f = f * 10 + (b - b'0') as i64;
    }
    f *= 10i64.pow(PRICE_DECIMALS - frac.len() as u32);
    v = v.checked_add(f)?;
    Some(if neg { -v } else { v })
}

/// Displays a fixed-point price as an exact decimal (`Px(14_240_500_000)` → `1424.05`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Px(pub i64);

impl fmt::Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        // unsigned_abs: i64::MIN has no positive i64 twin.
        let mag = v.unsigned_abs();
        let int = mag / PRICE_SCALE as u64;
        let mut frac = mag % PRICE_SCALE as u64;
        let mut digits = PRICE_DECIMALS as usize;
        if frac == 0 {
            digits = 1;
        } else {
            while frac.is_multiple_of(10) {
                frac /= 10;
                digits -= 1;
            }
        }
        if v < 0 {
            f.write_str("-")?;
        }
        write!(f, "{int}.{frac:0digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_exactly() {
        assert_eq!(Px(14_240_500_000).to_string(), "1424.05");
        assert_eq!(Px(14_180_000_000).to_string(), "1418.0");
        assert_eq!(Px(832_512_345).to_string(), "83.2512345");
        assert_eq!(Px(1).to_string(), "0.0000001");
        assert_eq!(Px(-5_000_000).to_string(), "-0.5");
        assert_eq!(Px(0).to_string(), "0.0");
        assert_eq!(Px(i64::MIN).to_string(), "-922337203685.4775808");
    }

    #[test]
    fn broker_divisors_are_exact() {
        // Kite equity, paise: 142405 → 1424.05
        assert_eq!(from_divided(142_405, 100), Some(14_240_500_000));
        // Kite CDS, 10^7: 832512345 → 83.2512345
        assert_eq!(from_divided(832_512_345, 10_000_000), Some(832_512_345));
        // Kite BCD, 10^4
        assert_eq!(from_divided(832_512, 10_000), Some(832_512_000));
        assert_eq!(from_divided(1, 3), None);
        assert_eq!(from_divided(i64::MAX, 100), None);
    }

    #[test]
    fn parse_round_trips_format() {
        for s in [
            "1424.05",
            "1418.0",
            "83.2512345",
            "0.0000001",
            "-0.5",
            "0.0",
        ] {
            assert_eq!(Px(parse(s).unwrap()).to_string(), s);
        }
        assert_eq!(parse("12"), Some(120_000_000));
        assert_eq!(parse("1.12345678"), None, "more than 7 decimals");
        assert_eq!(parse(""), None);
        assert_eq!(parse("."), None);
        assert_eq!(parse("1.2.3"), None);
        assert_eq!(parse("1e5"), None);
        assert_eq!(parse("99999999999999"), None, "overflow");
    }

    #[test]
    fn floats_round_to_nearest_unit() {
        assert_eq!(from_f64(1424.05), Some(14_240_500_000));
        assert_eq!(from_f64(-0.05), Some(-500_000));
        assert_eq!(from_f64(83.2512345), Some(832_512_345));
        assert_eq!(from_f64(0.00000005), Some(1), "half away from zero");
        assert_eq!(from_f64(-0.00000005), Some(-1));
        assert_eq!(from_f64(f64::INFINITY), None);
        assert_eq!(from_f64(f64::NAN), None);
        assert_eq!(from_f64(1e300), None);
    }
}
