//! The simulated market behind the mock Kite broker: a deterministic random walk per instrument,
//! with OHLC, volume, OI and a 5-level book kept consistent with the walk.

use tickwire_io::kite::instruments::Instrument;
use tickwire_io::kite::packet::{RawLevel, Repr};

/// xorshift64*: small, fast, deterministic for a `--seed`.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (0 is mapped to a fixed non-zero state).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
}

/// One simulated instrument: its master row and its market state in raw Kite units.
#[derive(Clone, Debug)]
pub struct Inst {
    /// The instrument master row served at `/instruments`.
    pub row: Instrument,
    /// Tick size in raw units.
    pub tick: i64,
    /// Whether this is an index (index packets, no volume).
    pub index: bool,
    /// Current state, as it goes on the wire.
    pub state: Repr,
    vwap_num: u128,
}

/// The market.
pub struct Market {
    /// Every instrument, in master order.
    pub insts: Vec<Inst>,
    rng: Rng,
}

struct Spec {
    exchange_token: u32,
    segment: u32,
    tradingsymbol: &'static str,
    name: &'static str,
    expiry: &'static str,
    itype: &'static str,
    kite_segment: &'static str,
    exchange: &'static str,
    price: i64,
    tick: i64,
    tick_text: &'static str,
    lot: u32,
}

/// The named instruments every mock market has (issue 4): four NSE equities, the NIFTY index, a
/// NIFTY future and a USDINR future (7-decimal divisor).
const NAMED: &[Spec] = &[
    Spec {
        exchange_token: 3045,
        segment: 1,
        tradingsymbol: "SBIN",
        name: "STATE BANK OF INDIA",
        expiry: "",
        itype: "EQ",
        kite_segment: "NSE",
        exchange: "NSE",
        price: 80_000,
        tick: 5,
        tick_text: "0.05",
        lot: 1,
    },
    Spec {
        exchange_token: 2885,
        segment: 1,
        tradingsymbol: "RELIANCE",
        name: "RELIANCE INDUSTRIES",
        expiry: "",
        itype: "EQ",
        kite_segment: "NSE",
        exchange: "NSE",
        price: 142_400,
        tick: 10,
        tick_text: "0.1",
        lot: 1,
    },
    Spec {
        exchange_token: 1594,
        segment: 1,
        tradingsymbol: "INFY",
        name: "INFOSYS",
        expiry: "",
        itype: "EQ",
        kite_segment: "NSE",
        exchange: "NSE",
        price: 185_000,
        tick: 10,
        tick_text: "0.1",
        lot: 1,
    },
    Spec {
        exchange_token: 11536,
        segment: 1,
        tradingsymbol: "TCS",
        name: "TATA CONSULTANCY SERV LT",
        expiry: "",
        itype: "EQ",
        kite_segment: "NSE",
        exchange: "NSE",
        price: 410_000,
        tick: 10,
        tick_text: "0.1",
        lot: 1,
    },
    Spec {
        exchange_token: 1001,
        segment: 9,
        tradingsymbol: "NIFTY 50",
        name: "NIFTY 50",
        expiry: "",
        itype: "EQ",
        kite_segment: "INDICES",
        exchange: "NSE",
        price: 2_350_000,
        tick: 5,
        tick_text: "0",
        lot: 0,
    },
    Spec {
        exchange_token: 51714,
        segment: 2,
        tradingsymbol: "NIFTY26DECFUT",
        name: "NIFTY",
        expiry: "2026-12-29",
        itype: "FUT",
        kite_segment: "NFO-FUT",
        exchange: "NFO",
        price: 2_355_000,
        tick: 10,
        tick_text: "0.1",
        lot: 75,
    },
    Spec {
        exchange_token: 1048998,
        segment: 3,
        tradingsymbol: "USDINR26DECFUT",
        name: "USDINR",
        expiry: "2026-12-29",
        itype: "FUT",
        kite_segment: "CDS-FUT",
        exchange: "CDS",
        price: 842_500_000,
        tick: 25_000,
        tick_text: "0.0025",
        lot: 1,
    },
];

impl Market {
    /// The named instruments plus `extra` synthetic NSE equities (`SYN00001`, …).
    pub fn new(extra: u32, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut insts: Vec<Inst> = NAMED.iter().map(|s| Self::inst(s, s.price)).collect();
        for i in 0..extra {
            let price = rng.range(100, 3000) * 100;
            let name = format!("SYN{:05}", i + 1);
            let spec = Spec {
                exchange_token: 200_000 + i,
                segment: 1,
                tradingsymbol: "",
                name: "",
                expiry: "",
                itype: "EQ",
                kite_segment: "NSE",
                exchange: "NSE",
                price,
                tick: 5,
                tick_text: "0.05",
                lot: 1,
            };
            let mut inst = Self::inst(&spec, price);
            inst.row.tradingsymbol = name.clone();
            inst.row.name = name;
            insts.push(inst);
        }
        let mut m = Market { insts, rng };
        for i in 0..m.insts.len() {
            m.step_one(i); // a first value with a full book
        }
        m
    }

    fn inst(s: &Spec, price: i64) -> Inst {
        let token = s.exchange_token << 8 | s.segment;
        let row = Instrument {
            token,
            exchange_token: s.exchange_token,
            tradingsymbol: s.tradingsymbol.to_string(),
            name: s.name.to_string(),
            last_price: "0".into(),
            expiry: s.expiry.to_string(),
            strike: "0".into(),
            tick_size: s.tick_text.to_string(),
            lot_size: s.lot,
            instrument_type: s.itype.to_string(),
            segment: s.kite_segment.to_string(),
            exchange: s.exchange.to_string(),
        };
        let p = price as u32;
        let state = Repr {
            token,
            ltp: p,
            open: p,
            high: p,
            low: p,
            close: p,
            avg_price: p,
            ..Repr::default()
        };
        Inst {
            row,
            tick: s.tick,
            index: s.segment == 9,
            state,
            vwap_num: 0,
        }
    }

    /// Advances one randomly chosen instrument; returns its index.
    pub fn step(&mut self) -> usize {
        let i = (self.rng.next_u64() % self.insts.len() as u64) as usize;
        self.step_one(i);
        i
    }

    fn step_one(&mut self, i: usize) {
        let rng = &mut self.rng;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let inst = &mut self.insts[i];
        let t = inst.tick;
        let s = &mut inst.state;
        let ltp = (s.ltp as i64 + t * rng.range(-3, 3)).max(t);
        s.ltp = ltp as u32;
        s.high = s.high.max(s.ltp);
        s.low = s.low.min(s.ltp);
        s.exchange_ts = now;
        if inst.index {
            s.change = (s.ltp as i64 - s.close as i64) as i32;
            return;
        }
        let lot = inst.row.lot_size.max(1) as u64;
        let q = rng.range(1, 20) as u64 * lot;
        s.last_qty = q as u32;
        s.volume = s.volume.wrapping_add(q as u32);
        inst.vwap_num += ltp as u128 * q as u128;
        s.avg_price = (inst.vwap_num / s.volume.max(1) as u128) as u32;
        s.last_trade_time = now;
        s.buy_qty = (s.buy_qty as i64 + rng.range(-500, 600)).clamp(1_000, 10_000_000) as u32;
        s.sell_qty = (s.sell_qty as i64 + rng.range(-500, 600)).clamp(1_000, 10_000_000) as u32;
        if inst.row.instrument_type == "FUT" {
            s.oi = (s.oi as i64 + rng.range(-10, 12) * lot as i64).max(0) as u32;
            if s.oi_day_low == 0 {
                s.oi_day_low = s.oi;
            }
            s.oi_day_high = s.oi_day_high.max(s.oi);
            s.oi_day_low = s.oi_day_low.min(s.oi);
        }
        for k in 0..5 {
            let off = t * (k as i64 + 1);
            s.bids[k] = RawLevel {
                qty: rng.range(1, 200) as u32 * lot as u32,
                price: (ltp - off).max(t) as u32,
                orders: rng.range(1, 30) as u16,
            };
            s.asks[k] = RawLevel {
                qty: rng.range(1, 200) as u32 * lot as u32,
                price: (ltp + off) as u32,
                orders: rng.range(1, 30) as u16,
            };
        }
    }

    /// The instrument master rows.
    pub fn rows(&self) -> Vec<Instrument> {
        self.insts.iter().map(|i| i.row.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_is_deterministic_and_consistent() {
        let (mut a, mut b) = (Market::new(10, 7), Market::new(10, 7));
        for _ in 0..10_000 {
            assert_eq!(a.step(), b.step());
        }
        for (x, y) in a.insts.iter().zip(&b.insts) {
            assert_eq!(x.state, y.state);
            let s = &x.state;
            assert!(s.low <= s.ltp && s.ltp <= s.high, "{}", x.row.tradingsymbol);
            if !x.index {
                assert!(s.bids[0].price < s.ltp && s.asks[0].price > s.ltp);
                assert!(
                    (s.ltp as i64 - s.bids[0].price as i64) % x.tick == 0,
                    "prices on the tick grid"
                );
            }
        }
        assert_eq!(a.insts.len(), 17);
        assert_eq!(a.insts[6].row.exchange, "CDS");
    }
}
