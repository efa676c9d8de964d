//! The subscription index: which consumers want which symbol in which modes.
//!
//! Per symbol, a flat `Vec` of `(consumer, modes)` entries and a count per mode; per consumer, the
//! list of symbols it holds. The tick path only calls [`SubscriptionIndex::subscribers`] (an index into
//! a flat array; no hashing). Subscribe and unsubscribe are O(1) amortised: a position map locates an
//! entry, and removal is a `swap_remove` that patches the moved entry's position.

use std::collections::HashMap;

use super::msg::{ConsumerId, Mode, ModeSet};
use crate::symbols::SymbolId;

/// One consumer's hold on one symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sub {
    /// The consumer.
    pub consumer: ConsumerId,
    /// The modes it holds (never 0 while the entry exists).
    pub modes: ModeSet,
}

/// The demand for a symbol before and after a change: the highest mode anyone holds, `None` when
/// nobody holds it. The router turns a difference into an upstream command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemandChange {
    /// The symbol.
    pub symbol: SymbolId,
    /// Highest mode before.
    pub before: Option<Mode>,
    /// Highest mode after.
    pub after: Option<Mode>,
}

/// See the module docs.
#[derive(Debug)]
pub struct SubscriptionIndex {
    by_symbol: Vec<Vec<Sub>>,
    mode_counts: Vec<[u32; 3]>,
    by_consumer: Vec<Vec<SymbolId>>,
    // (consumer, symbol) → (position in by_symbol[symbol], position in by_consumer[consumer])
    pos: HashMap<(ConsumerId, SymbolId), (u32, u32)>,
}

impl SubscriptionIndex {
    /// An index for `symbols` symbols and `consumers` consumers.
    pub fn new(symbols: usize, consumers: usize) -> Self {
        Self {
            by_symbol: vec![Vec::new(); symbols],
            mode_counts: vec![[0; 3]; symbols],
            by_consumer: vec![Vec::new(); consumers],
            pos: HashMap::new(),
        }
    }

    /// Who wants `symbol`. Empty for an unknown id.
    #[inline]
    pub fn subscribers(&self, symbol: SymbolId) -> &[Sub] {
        self.by_symbol
            .get(symbol as usize)
            .map_or(&[], |v| v.as_slice())
    }

    /// The modes `consumer` holds on `symbol` (0 if none).
    pub fn modes_of(&self, consumer: ConsumerId, symbol: SymbolId) -> ModeSet {
        self.pos.get(&(consumer, symbol)).map_or(0, |&(i, _)| {
            self.by_symbol[symbol as usize][i as usize].modes
        })
    }

    /// Symbols `consumer` holds.
    pub fn symbols_of(&self, consumer: ConsumerId) -> &[SymbolId] {
        self.by_consumer
            .get(consumer as usize)
            .map_or(&[], |v| v.as_slice())
    }

    /// Highest mode anyone holds on `symbol`.
    pub fn demand(&self, symbol: SymbolId) -> Option<Mode> {
        let c = self.mode_counts.get(symbol as usize)?;
        Mode::ALL
            .iter()
            .rev()
            .copied()
            .find(|m| c[*m as usize - 1] > 0)
    }

    /// Whether `symbol` and `consumer` are inside the index's capacities.
    pub fn in_range(&self, consumer: ConsumerId, symbol: SymbolId) -> bool {
        (symbol as usize) < self.by_symbol.len() && (consumer as usize) < self.by_consumer.len()
    }

    /// Adds `mode` to `consumer`'s hold on `symbol`. Idempotent. Ids out of range are ignored
    /// (the router checks them first and counts the error).
    pub fn subscribe(
        &mut self,
        consumer: ConsumerId,
        symbol: SymbolId,
        mode: Mode,
    ) -> DemandChange {
        let before = self.demand(symbol);
        if !self.in_range(consumer, symbol) {
            return DemandChange {
                symbol,
                before,
                after: before,
            };
        }
        let s = symbol as usize;
        match self.pos.get(&(consumer, symbol)) {
            Some(&(i, _)) => {
                let e = &mut self.by_symbol[s][i as usize];
                if e.modes & mode.bit() == 0 {
                    e.modes |= mode.bit();
                    self.mode_counts[s][mode as usize - 1] += 1;
                }
            }
            None => {
                let i = self.by_symbol[s].len() as u32;
                let j = self.by_consumer[consumer as usize].len() as u32;
                self.by_symbol[s].push(Sub {
                    consumer,
                    modes: mode.bit(),
                });
                self.by_consumer[consumer as usize].push(symbol);
                self.pos.insert((consumer, symbol), (i, j));
                self.mode_counts[s][mode as usize - 1] += 1;
            }
        }
        DemandChange {
            symbol,
            before,
            after: self.demand(symbol),
        }
    }

    /// Drops `modes` from `consumer`'s hold on `symbol`; the entry goes when no mode is left.
    /// Unsubscribing what is not held changes nothing.
    pub fn unsubscribe(
        &mut self,
        consumer: ConsumerId,
        symbol: SymbolId,
        modes: ModeSet,
    ) -> DemandChange {
        let before = self.demand(symbol);
        let Some(&(i, j)) = self.pos.get(&(consumer, symbol)) else {
            return DemandChange {
                symbol,
                before,
                after: before,
            };
        };
        let s = symbol as usize;
        let e = &mut self.by_symbol[s][i as usize];
        for m in Mode::ALL {
            if e.modes & modes & m.bit() != 0 {
                self.mode_counts[s][m as usize - 1] -= 1;
            }
        }
        e.modes &= !modes;
        if e.modes == 0 {
            self.remove_entry(consumer, symbol, i, j);
        }
        DemandChange {
            symbol,
            before,
            after: self.demand(symbol),
        }
    }

    /// Drops every hold of `consumer`, reporting each symbol's demand change to `f`.
    pub fn unsubscribe_all(&mut self, consumer: ConsumerId, mut f: impl FnMut(DemandChange)) {
        while let Some(&symbol) = self.symbols_of(consumer).last() {
            f(self.unsubscribe(consumer, symbol, 0b111));
        }
    }

    fn remove_entry(&mut self, consumer: ConsumerId, symbol: SymbolId, i: u32, j: u32) {
        self.pos.remove(&(consumer, symbol));
        let subs = &mut self.by_symbol[symbol as usize];
        subs.swap_remove(i as usize);
        if let Some(moved) = subs.get(i as usize) {
            if let Some(p) = self.pos.get_mut(&(moved.consumer, symbol)) {
                p.0 = i;
            }
        }
        let held = &mut self.by_consumer[consumer as usize];
        held.swap_remove(j as usize);
        if let Some(&moved) = held.get(j as usize) {
            if let Some(p) = self.pos.get_mut(&(consumer, moved)) {
                p.1 = j;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_consistent(ix: &SubscriptionIndex) {
        for (&(c, s), &(i, j)) in &ix.pos {
            assert_eq!(ix.by_symbol[s as usize][i as usize].consumer, c);
            assert_eq!(ix.by_consumer[c as usize][j as usize], s);
        }
        let entries: usize = ix.by_symbol.iter().map(Vec::len).sum();
        assert_eq!(entries, ix.pos.len());
    }

    #[test]
    fn first_in_and_last_out_change_demand() {
        let mut ix = SubscriptionIndex::new(10, 4);
        let ch = ix.subscribe(0, 3, Mode::Ltp);
        assert_eq!((ch.before, ch.after), (None, Some(Mode::Ltp)));
        let ch = ix.subscribe(1, 3, Mode::Depth);
        assert_eq!((ch.before, ch.after), (Some(Mode::Ltp), Some(Mode::Depth)));
        // consumer 1 leaving drops demand to LTP but consumer 0 keeps the symbol
        let ch = ix.unsubscribe(1, 3, 0b111);
        assert_eq!((ch.before, ch.after), (Some(Mode::Depth), Some(Mode::Ltp)));
        assert_eq!(
            ix.subscribers(3),
            &[Sub {
                consumer: 0,
                modes: 1
            }]
        );
        let ch = ix.unsubscribe(0, 3, Mode::Ltp.bit());
        assert_eq!(ch.after, None);
        assert!(ix.subscribers(3).is_empty());
        check_consistent(&ix);
    }

    #[test]
    fn one_consumers_unsubscribe_never_takes_anothers_symbol() {
        let mut ix = SubscriptionIndex::new(4, 4);
        ix.subscribe(0, 1, Mode::Quote);
        ix.subscribe(1, 1, Mode::Quote);
        let ch = ix.unsubscribe(0, 1, Mode::Quote.bit());
        assert_eq!(ch.after, Some(Mode::Quote));
        // unsubscribing again, or a mode never held, changes nothing
        assert_eq!(ix.unsubscribe(0, 1, 0b111).after, Some(Mode::Quote));
        assert_eq!(
            ix.unsubscribe(1, 1, Mode::Ltp.bit()).after,
            Some(Mode::Quote)
        );
        assert_eq!(ix.subscribers(1).len(), 1);
    }

    #[test]
    fn subscribe_is_idempotent_and_modes_accumulate() {
        let mut ix = SubscriptionIndex::new(4, 2);
        ix.subscribe(0, 2, Mode::Ltp);
        ix.subscribe(0, 2, Mode::Ltp);
        ix.subscribe(0, 2, Mode::Quote);
        assert_eq!(ix.modes_of(0, 2), 0b011);
        assert_eq!(ix.subscribers(2).len(), 1);
        assert_eq!(
            ix.unsubscribe(0, 2, Mode::Ltp.bit()).after,
            Some(Mode::Quote)
        );
        assert_eq!(ix.unsubscribe(0, 2, Mode::Quote.bit()).after, None);
    }

    #[test]
    fn unsubscribe_all_reports_each_symbol_and_keeps_positions_right() {
        let mut ix = SubscriptionIndex::new(50, 8);
        for c in 0..8 {
            for s in 0..50 {
                if (c + s) % 3 != 0 {
                    ix.subscribe(c, s, Mode::ALL[(s % 3) as usize]);
                }
            }
        }
        check_consistent(&ix);
        let mut gone = 0;
        ix.unsubscribe_all(3, |ch| {
            gone += 1;
            assert!(ch.before.is_some());
        });
        assert_eq!(gone, 33);
        assert!(ix.symbols_of(3).is_empty());
        check_consistent(&ix);
        for s in 0..50 {
            assert!(ix.subscribers(s).iter().all(|e| e.consumer != 3));
        }
    }

    #[test]
    fn out_of_range_ids_are_ignored() {
        let mut ix = SubscriptionIndex::new(2, 2);
        assert_eq!(ix.subscribe(5, 0, Mode::Ltp).after, None);
        assert_eq!(ix.subscribe(0, 9, Mode::Ltp).after, None);
        assert!(ix.subscribers(9).is_empty());
    }
}
