//! Each subscribed token's merged values on one connection.
//!
//! Noren sends a snapshot (`tk`/`dk`, every field) after a subscribe and then updates (`tf`/`df`)
//! carrying only the fields that changed, plus `t`, `e` and `tk`. Every update is merged into the
//! token's [`State`] and the tick is built from the whole state, so every tick out is complete.
//!
//! States live in one flat array. A symbol id maps to a slot in it (`slot_of`, indexed by symbol
//! id, made once at start); slots are handed out at subscribe time on the control path, so the data
//! path only indexes. Memory is per subscribed symbol, not per listed symbol (a Noren master lists
//! ~100,000 instruments; a connection carries ~100).

use tickwire_engine::symbols::SymbolId;
use tickwire_engine::tick::{valid, DEPTH_LEVELS};
use tickwire_engine::Tick;

use super::wire::{field, Kind, Update};

/// One token's merged values: [`Update::vals`] by field, and which were ever seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    /// The symbol.
    pub symbol: SymbolId,
    /// Fields seen so far.
    pub set: u64,
    /// A touchline snapshot arrived (a `tf` can be merged).
    pub touch: bool,
    /// A depth snapshot arrived (a `df` can be merged).
    pub depth: bool,
    /// Values by field.
    pub vals: [i64; field::COUNT],
}

impl State {
    fn new(symbol: SymbolId) -> Self {
        Self {
            symbol,
            set: 0,
            touch: false,
            depth: false,
            vals: [0; field::COUNT],
        }
    }

    /// Merges `u`. An update whose kind has had no snapshot yet is refused (`false`): there is no
    /// whole picture to merge it into.
    #[inline]
    pub fn merge(&mut self, u: &Update) -> bool {
        match u.kind {
            Kind::Tk => self.touch = true,
            Kind::Dk => self.depth = true,
            // A depth snapshot carries the touchline fields too.
            Kind::Tf if !(self.touch || self.depth) => return false,
            Kind::Df if !self.depth => return false,
            _ => {}
        }
        let mut m = u.set;
        while m != 0 {
            let f = m.trailing_zeros() as usize;
            self.vals[f] = u.vals[f];
            m &= m - 1;
        }
        self.set |= u.set;
        true
    }

    #[inline]
    fn qty(&self, f: usize) -> u64 {
        self.vals[f].max(0) as u64
    }

    #[inline]
    fn level_qty(&self, f: usize) -> u32 {
        // Saturates: a per-level quantity past u32 does not exist on Indian exchanges.
        self.qty(f).min(u32::MAX as u64) as u32
    }

    /// The tick for this state: the touchline groups (LTP, quote, and OI once an `oi` was seen)
    /// always; the book too for `depth`.
    #[inline]
    pub fn fill(&self, t: &mut Tick, depth: bool) {
        let v = &self.vals;
        t.ltp = v[field::LP];
        t.last_qty = self.qty(field::LTQ);
        t.exchange_ts_ns = (self.qty(field::FT) as i64).saturating_mul(1_000_000_000);
        t.avg_price = v[field::AP];
        t.volume = self.qty(field::V);
        t.total_buy_qty = self.qty(field::TBQ);
        t.total_sell_qty = self.qty(field::TSQ);
        t.open = v[field::O];
        t.high = v[field::H];
        t.low = v[field::L];
        t.close = v[field::C];
        t.valid |= valid::LTP | valid::QUOTE;
        if self.set >> field::OI & 1 == 1 {
            t.oi = self.qty(field::OI);
            t.valid |= valid::OI;
        }
        if depth {
            for i in 0..DEPTH_LEVELS {
                t.bids[i].price = v[field::BP + i];
                t.bids[i].qty = self.level_qty(field::BQ + i);
                t.bids[i].orders = self.level_qty(field::BO + i);
                t.asks[i].price = v[field::SP + i];
                t.asks[i].qty = self.level_qty(field::SQ + i);
                t.asks[i].orders = self.level_qty(field::SO + i);
            }
            t.valid |= valid::DEPTH;
        }
    }
}

/// No slot.
const NONE: u32 = u32::MAX;

/// The states of one connection (see the module docs).
#[derive(Debug)]
pub struct States {
    slot_of: Vec<u32>,
    states: Vec<State>,
    free: Vec<u32>,
}

impl States {
    /// Room for `symbols` symbol ids, and `expected` states before any growth.
    pub fn new(symbols: usize, expected: usize) -> Self {
        Self {
            slot_of: vec![NONE; symbols],
            states: Vec::with_capacity(expected),
            free: Vec::new(),
        }
    }

    /// Gives `symbol` a slot (control path). A slot it already has is kept, values and all.
    pub fn open(&mut self, symbol: SymbolId) {
        let Some(s) = self.slot_of.get_mut(symbol as usize) else {
            return;
        };
        if *s != NONE {
            return;
        }
        match self.free.pop() {
            Some(i) => {
                self.states[i as usize] = State::new(symbol);
                *s = i;
            }
            None => {
                *s = self.states.len() as u32;
                self.states.push(State::new(symbol));
            }
        }
    }

    /// Frees `symbol`'s slot (control path).
    pub fn close(&mut self, symbol: SymbolId) {
        if let Some(s) = self.slot_of.get_mut(symbol as usize) {
            if *s != NONE {
                self.free.push(*s);
                *s = NONE;
            }
        }
    }

    /// Frees every slot (a new connection: the server sends new snapshots).
    pub fn clear(&mut self) {
        self.slot_of.fill(NONE);
        self.states.clear();
        self.free.clear();
    }

    /// `symbol`'s state, if it has a slot.
    #[inline]
    pub fn get_mut(&mut self, symbol: SymbolId) -> Option<&mut State> {
        let s = *self.slot_of.get(symbol as usize)?;
        self.states.get_mut(s as usize)
    }

    /// True when `symbol` has a slot.
    pub fn is_open(&self, symbol: SymbolId) -> bool {
        self.slot_of
            .get(symbol as usize)
            .is_some_and(|&s| s != NONE)
    }
}
