//! What one upstream connection should be subscribed to, keyed by symbol id (never by a broker's
//! token type), and the requests that get it there: the difference after a batch of demand
//! changes, or everything again, **with modes**, after a reconnect (brokers forget both with the
//! connection). Requests are grouped by mode and cut to the broker's per-message limit here, once
//! for every broker.

use std::collections::BTreeMap;

use tickwire_engine::router::Mode;
use tickwire_engine::symbols::SymbolId;

use super::protocol::Request;

/// See the module docs.
#[derive(Clone, Debug, Default)]
pub struct Demand {
    wanted: BTreeMap<SymbolId, Mode>,
    /// Symbols changed since the last [`Demand::take_changes`], with their state before.
    touched: BTreeMap<SymbolId, Option<Mode>>,
}

/// The requests one batch needs, grouped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New symbols, by mode.
    pub subscribe: BTreeMap<Mode, Vec<SymbolId>>,
    /// Symbols whose mode changed, by the new mode.
    pub change_mode: BTreeMap<Mode, Vec<SymbolId>>,
    /// Symbols no longer wanted.
    pub unsubscribe: Vec<SymbolId>,
}

impl Changes {
    /// True when nothing is to be sent.
    pub fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.change_mode.is_empty() && self.unsubscribe.is_empty()
    }

    /// Calls `f` with each request, unsubscribes first (they free room on the connection), each
    /// list cut to at most `per_message` symbols.
    pub fn for_each_request(&self, per_message: usize, mut f: impl FnMut(Request<'_>)) {
        let n = per_message.max(1);
        for symbols in self.unsubscribe.chunks(n) {
            f(Request::Unsubscribe { symbols });
        }
        for (&mode, list) in &self.subscribe {
            for symbols in list.chunks(n) {
                f(Request::Subscribe { mode, symbols });
            }
        }
        for (&mode, list) in &self.change_mode {
            for symbols in list.chunks(n) {
                f(Request::ChangeMode { mode, symbols });
            }
        }
    }
}

impl Demand {
    /// Wants `symbol` in `mode` (`None`: not at all).
    pub fn set(&mut self, symbol: SymbolId, mode: Option<Mode>) {
        let before = match mode {
            Some(m) => self.wanted.insert(symbol, m),
            None => self.wanted.remove(&symbol),
        };
        self.touched.entry(symbol).or_insert(before);
    }

    /// Asks for a wanted `symbol` again at the next [`Demand::take_changes`] (a subscribe in its
    /// mode): for a symbol the broker rejected or never confirmed.
    pub fn resend(&mut self, symbol: SymbolId) {
        if self.wanted.contains_key(&symbol) {
            self.touched.insert(symbol, None);
        }
    }

    /// The mode wanted for `symbol`.
    pub fn get(&self, symbol: SymbolId) -> Option<Mode> {
        self.wanted.get(&symbol).copied()
    }

    /// Symbols wanted.
    pub fn len(&self) -> usize {
        self.wanted.len()
    }

    /// True when nothing is wanted.
    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty()
    }

    /// Every wanted symbol and its mode.
    pub fn iter(&self) -> impl Iterator<Item = (SymbolId, Mode)> + '_ {
        self.wanted.iter().map(|(&s, &m)| (s, m))
    }

    /// What changed since the last call (a symbol subscribed and dropped within one batch is no
    /// change at all).
    pub fn take_changes(&mut self) -> Changes {
        let mut c = Changes::default();
        for (sym, before) in std::mem::take(&mut self.touched) {
            match (before, self.wanted.get(&sym).copied()) {
                (None, Some(m)) => c.subscribe.entry(m).or_default().push(sym),
                (Some(a), Some(b)) if a != b => c.change_mode.entry(b).or_default().push(sym),
                (Some(_), None) => c.unsubscribe.push(sym),
                _ => {}
            }
        }
        c
    }

    /// Everything wanted, as subscriptions by mode: for a new connection. Pending changes are
    /// folded in (the new connection starts from nothing).
    pub fn resubscribe(&mut self) -> Changes {
        self.touched.clear();
        let mut c = Changes::default();
        for (&sym, &m) in &self.wanted {
            c.subscribe.entry(m).or_default().push(sym);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(c: &Changes, n: usize) -> Vec<String> {
        let mut v = Vec::new();
        c.for_each_request(n, |r| v.push(format!("{r:?}")));
        v
    }

    #[test]
    fn a_batch_becomes_the_difference() {
        let mut d = Demand::default();
        d.set(1, Some(Mode::Ltp));
        d.set(2, Some(Mode::Depth));
        d.set(3, Some(Mode::Ltp));
        d.set(3, None); // asked and dropped within the batch: nothing to send
        let c = d.take_changes();
        assert_eq!(c.subscribe[&Mode::Ltp], vec![1]);
        assert_eq!(c.subscribe[&Mode::Depth], vec![2]);
        assert!(c.unsubscribe.is_empty() && c.change_mode.is_empty());
        d.set(1, Some(Mode::Quote));
        d.set(2, None);
        d.set(4, Some(Mode::Quote));
        let c = d.take_changes();
        assert_eq!(c.change_mode[&Mode::Quote], vec![1]);
        assert_eq!(c.subscribe[&Mode::Quote], vec![4]);
        assert_eq!(c.unsubscribe, vec![2]);
        assert!(d.take_changes().is_empty());
    }

    #[test]
    fn a_resent_symbol_is_subscribed_again_in_its_mode() {
        let mut d = Demand::default();
        d.set(1, Some(Mode::Quote));
        d.take_changes();
        d.resend(1);
        d.resend(2); // not wanted: nothing
        let c = d.take_changes();
        assert_eq!(c.subscribe[&Mode::Quote], vec![1]);
        assert!(c.unsubscribe.is_empty() && c.change_mode.is_empty());
    }

    #[test]
    fn reconnect_resubscribes_everything_with_its_mode() {
        let mut d = Demand::default();
        for s in 0..5 {
            d.set(s, Some(if s % 2 == 0 { Mode::Depth } else { Mode::Ltp }));
        }
        let c = d.resubscribe();
        assert_eq!(c.subscribe[&Mode::Depth], vec![0, 2, 4]);
        assert_eq!(c.subscribe[&Mode::Ltp], vec![1, 3]);
        assert!(
            d.take_changes().is_empty(),
            "folded into the resubscription"
        );
    }

    #[test]
    fn requests_are_cut_to_the_per_message_limit_unsubscribes_first() {
        let mut d = Demand::default();
        d.set(100, Some(Mode::Ltp));
        d.take_changes();
        for s in 0..5 {
            d.set(s, Some(Mode::Quote));
        }
        d.set(100, None);
        let r = requests(&d.take_changes(), 2);
        assert_eq!(
            r,
            vec![
                "Unsubscribe { symbols: [100] }",
                "Subscribe { mode: Quote, symbols: [0, 1] }",
                "Subscribe { mode: Quote, symbols: [2, 3] }",
                "Subscribe { mode: Quote, symbols: [4] }",
            ]
        );
    }
}
