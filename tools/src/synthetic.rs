//! Synthetic ticks: every field a pure function of the ring position, so a reader in another process
//! can check that what it read is bit for bit what was written.

use tickwire_engine::symbols::SymbolRegistry;
use tickwire_engine::tick::{valid, DepthLevel, DEPTH_LEVELS};
use tickwire_engine::Tick;

/// Exchange of every synthetic symbol.
pub const EXCHANGE: &str = "NSE";

/// The name of synthetic symbol `i`.
pub fn symbol_name(i: u32) -> String {
    format!("SYN{i:05}")
}

/// A registry of `n` synthetic symbols (`NSE:SYN00000`, …), capacity `capacity`.
pub fn registry(n: u32, capacity: usize) -> SymbolRegistry {
    let mut r = SymbolRegistry::with_capacity(capacity.max(n as usize));
    for i in 0..n {
        r.register(EXCHANGE, &symbol_name(i), &(100_000 + i).to_string())
            .expect("synthetic names fit and capacity was sized for them");
    }
    r
}

fn mix(mut z: u64) -> u64 {
    // splitmix64
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Distinct field patterns; position `p` uses pattern `(p - 1) % PATTERNS`.
pub const PATTERNS: u64 = 4093;

/// The tick written at ring position `pos` (≥ 1) when there are `symbols` symbols, round-robin.
/// `seq` is the per-symbol count, as the router would stamp it, and `exchange_ts_ns` encodes `pos`,
/// so a slot mix-up always shows. `recv_ts_ns` is left 0: the writer stamps it at publish time (it
/// is the latency probe), so it is the one field not checked.
pub fn tick(pos: u64, symbols: u32) -> Tick {
    let mut t = pattern((pos - 1) % PATTERNS);
    stamp(&mut t, pos, symbols);
    t
}

/// Precomputed patterns, so a writer can publish tens of millions of ticks per second without the
/// generator being the bottleneck. `Synth::tick(p)` equals [`tick`]`(p, symbols)`.
pub struct Synth {
    patterns: Vec<Tick>,
    symbols: u32,
}

impl Synth {
    /// A generator for `symbols` symbols.
    pub fn new(symbols: u32) -> Self {
        Self {
            patterns: (0..PATTERNS).map(pattern).collect(),
            symbols,
        }
    }

    /// The tick at ring position `pos` (≥ 1).
    #[inline]
    pub fn tick(&self, pos: u64) -> Tick {
        let mut t = self.patterns[((pos - 1) % PATTERNS) as usize];
        stamp(&mut t, pos, self.symbols);
        t
    }
}

fn stamp(t: &mut Tick, pos: u64, symbols: u32) {
    let n = symbols.max(1) as u64;
    t.symbol_id = ((pos - 1) % n) as u32;
    t.seq = (pos - 1) / n + 1;
    t.exchange_ts_ns = 1_790_000_000_000_000_000 + pos as i64 * 1000;
}

fn pattern(k: u64) -> Tick {
    let mut t = Tick::new(0);
    t.valid = valid::ALL;
    let h = mix(k);
    let px = |k: u64| 1_000_000_000 + (mix(h ^ k) % 10_000_000_000) as i64; // 100.0 .. 1100.0
    let q = |k: u64| mix(h ^ k) % 1_000_000;
    let f = |k: u64| (mix(h ^ k) >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
    t.ltp = px(1);
    t.last_qty = q(2);
    t.avg_price = px(3);
    t.volume = q(4) * 1000;
    t.total_buy_qty = q(5);
    t.total_sell_qty = q(6);
    t.open = px(7);
    t.high = px(8);
    t.low = px(9);
    t.close = px(10);
    t.oi = q(11);
    t.oi_day_high = q(12);
    t.oi_day_low = q(13);
    t.iv = f(14);
    t.delta = f(15);
    t.gamma = f(16);
    t.theta = f(17);
    t.vega = f(18);
    t.rho = f(19);
    for i in 0..DEPTH_LEVELS {
        let k = 20 + 6 * i as u64;
        t.bids[i] = DepthLevel {
            price: px(k),
            qty: q(k + 1) as u32,
            orders: q(k + 2) as u32 % 1000,
        };
        t.asks[i] = DepthLevel {
            price: px(k + 3),
            qty: q(k + 4) as u32,
            orders: q(k + 5) as u32 % 1000,
        };
    }
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_are_deterministic_and_round_robin() {
        assert_eq!(super::tick(7, 3), super::tick(7, 3));
        assert_ne!(super::tick(7, 3).ltp, super::tick(8, 3).ltp);
        let t = super::tick(7, 3);
        assert_eq!((t.symbol_id, t.seq), (0, 3));
        let s = super::Synth::new(3);
        for p in [1, 7, 4093, 4094, 100_000] {
            assert_eq!(s.tick(p), super::tick(p, 3));
        }
    }
}
