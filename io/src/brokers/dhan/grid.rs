//! Which instrument a Dhan packet is about, and the price grid it trades on: the table from
//! `(segment, security id)` to symbol id and [`Entry`] (built once per feed from the listing keys),
//! and the rule that turns Dhan's f32 rupees into exact fixed-point prices.

use tickwire_engine::price::PRICE_SCALE;
use tickwire_engine::symbols::SymbolId;

use crate::brokers::keymap::KeyMap;

/// The map key of an instrument.
#[inline]
pub fn key(segment: u8, security_id: u32) -> u64 {
    (segment as u64) << 32 | security_id as u64
}

/// The price step used when the master gives no tick size (indices): one paisa.
pub const DEFAULT_TICK: i64 = PRICE_SCALE / 100;

/// One instrument as the feed addresses it, and the grid its prices lie on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    /// Segment number.
    pub segment: u8,
    /// Security id (0: the symbol is not a Dhan instrument).
    pub security_id: u32,
    /// Tick size in price units (10^-7 rupee), never 0.
    pub tick: i64,
    /// `PRICE_SCALE / tick`, so the hot path multiplies instead of dividing.
    pub per_tick: f64,
    /// The step of averages (VWAP is not on the tick grid): one paisa, or 0.0001 rupee for
    /// instruments whose tick is finer than a paisa (currency).
    pub fine: i64,
    /// `PRICE_SCALE / fine`.
    pub per_fine: f64,
}

impl Entry {
    /// An entry with `tick` price units (0 or negative: [`DEFAULT_TICK`]).
    pub fn new(segment: u8, security_id: u32, tick: i64) -> Self {
        let tick = if tick > 0 { tick } else { DEFAULT_TICK };
        let fine = if tick < DEFAULT_TICK {
            PRICE_SCALE / 10_000
        } else {
            DEFAULT_TICK
        };
        Self {
            segment,
            security_id,
            tick,
            per_tick: PRICE_SCALE as f64 / tick as f64,
            fine,
            per_fine: PRICE_SCALE as f64 / fine as f64,
        }
    }
}

/// Every listed instrument: `(segment, security id)` → symbol id, and each symbol id's entry.
/// Built once per feed and shared by its connections.
#[derive(Clone, Debug, Default)]
pub struct Instruments {
    by_key: KeyMap<u64>,
    /// By symbol id (`security_id` 0: not listed).
    pub of_id: Vec<Entry>,
}

impl Instruments {
    /// An empty table for `symbols` symbol ids.
    pub fn with_symbols(symbols: usize) -> Self {
        Self {
            by_key: KeyMap::default(),
            of_id: vec![Entry::new(0, 0, 0); symbols],
        }
    }

    /// Lists `id` as `entry` (the first listing of an instrument key wins).
    pub fn insert(&mut self, id: SymbolId, entry: Entry) {
        if let Some(e) = self.of_id.get_mut(id as usize) {
            *e = entry;
            self.by_key
                .entry(key(entry.segment, entry.security_id))
                .or_insert(id);
        }
    }

    /// The symbol id of an instrument.
    #[inline]
    pub fn lookup(&self, segment: u8, security_id: u32) -> Option<SymbolId> {
        self.by_key.get(&key(segment, security_id)).copied()
    }

    /// The entry of a listed symbol id.
    pub fn entry(&self, id: SymbolId) -> Option<&Entry> {
        self.of_id.get(id as usize).filter(|e| e.security_id != 0)
    }
}

/// An f32 rupee price as the nearest multiple of the instrument's tick, in price units.
///
/// Why: an f32 carries ~7 significant digits, so `1424.05` arrives as `1424.0500488…`; rounding to
/// the nearest 10^-7 would keep that noise. Every traded price lies on the tick grid, and the f32
/// error (half a unit in the last place: ≤ 0.004 rupee below 65,536, ≤ 0.008 below 131,072) is far
/// below half a tick (0.025 for a 0.05 tick), so the nearest grid point is the exact price.
#[inline]
pub fn grid_price(raw: f32, e: &Entry) -> Option<i64> {
    on_grid(raw, e.tick, e.per_tick)
}

/// An average price (not on the tick grid) to the nearest [`Entry::fine`] step.
#[inline]
pub fn fine_price(raw: f32, e: &Entry) -> Option<i64> {
    on_grid(raw, e.fine, e.per_fine)
}

#[inline]
fn on_grid(raw: f32, step: i64, per_step: f64) -> Option<i64> {
    let steps = raw as f64 * per_step;
    // Half away from zero by adding ±0.5 and truncating (`f64::round` is a libm call on baseline
    // x86-64). The range check also refuses NaN and infinities.
    if steps.abs() < 9.0e15 {
        ((steps + 0.5f64.copysign(steps)) as i64).checked_mul(step)
    } else {
        None
    }
}
