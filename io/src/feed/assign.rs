//! Which upstream connection of a feed carries which symbol ([`Assign`]), and when a symbol the
//! broker rejected or never confirmed is asked for again ([`Retries`]). Both are socket-free and
//! unit-tested with plain values and a fake clock; the feed ([`super::pool`]) does what they say.
//!
//! Placement: a symbol stays on the connection it was placed on while it is wanted (a mode change
//! goes to the same connection). A new symbol goes to the first connection with room; when every
//! open slot is full and the broker allows another connection, the next connection index is
//! returned and the feed opens it. When the broker's connection limit is reached as well, the
//! symbol is refused (`Full`) and shows `rejected`: the limit is the broker's, not ours to exceed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tickwire_engine::symbols::SymbolId;

use tickwire_engine::router::Mode;

use super::protocol::{Limits, ModeLimits};

/// No connection.
const NONE: u8 = u8::MAX;

/// Most connections one feed opens, whatever the broker allows (a per-symbol byte holds the index).
pub const MAX_CONNECTIONS: usize = 64;

/// Every connection the broker allows is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// See the module docs.
#[derive(Clone, Debug)]
pub struct Assign {
    of: Vec<u8>,
    /// Per symbol: the limit category of the mode it was placed with.
    cat: Vec<u8>,
    /// Per connection: symbols in each category.
    count: Vec<[usize; 3]>,
    per_connection: usize,
    connections: usize,
    by_mode: Option<ModeLimits>,
}

impl Assign {
    /// Placement for `symbols` ids under `limits`.
    pub fn new(symbols: usize, limits: Limits) -> Self {
        Self {
            of: vec![NONE; symbols],
            cat: vec![0; symbols],
            count: Vec::new(),
            per_connection: limits.per_connection.max(1),
            connections: limits.connections.clamp(1, MAX_CONNECTIONS),
            by_mode: limits.by_mode,
        }
    }

    /// The connection carrying `symbol`.
    pub fn conn_of(&self, symbol: SymbolId) -> Option<usize> {
        match self.of.get(symbol as usize) {
            Some(&c) if c != NONE => Some(c as usize),
            _ => None,
        }
    }

    fn category(&self, mode: Mode) -> usize {
        self.by_mode
            .map_or(0, |m| (m.category[mode as usize - 1] as usize).min(2))
    }

    /// True when counts `n` are within every limit.
    fn within(&self, n: &[usize; 3]) -> bool {
        if n.iter().sum::<usize>() > self.per_connection {
            return false;
        }
        let Some(m) = self.by_mode else {
            return true;
        };
        let used = n.iter().filter(|&&k| k > 0).count();
        let cap = if used > 1 { m.combined } else { m.alone };
        n.iter().zip(cap).all(|(&k, cap)| k <= cap)
    }

    /// Places `symbol` in `mode`: the connection it goes on, which may be one past the connections
    /// placed on so far (the feed then opens it). A placed symbol stays where it is unless its new
    /// mode no longer fits there; then it moves (the feed unsubscribes it on the old connection).
    pub fn place(&mut self, symbol: SymbolId, mode: Mode) -> Result<usize, Full> {
        let i = symbol as usize;
        if i >= self.of.len() {
            return Err(Full);
        }
        let want = self.category(mode);
        if let Some(c) = self.conn_of(symbol) {
            let old = self.cat[i] as usize;
            if old == want {
                return Ok(c);
            }
            let mut n = self.count[c];
            n[old] -= 1;
            n[want] += 1;
            if self.within(&n) {
                self.count[c] = n;
                self.cat[i] = want as u8;
                return Ok(c);
            }
            self.remove(symbol);
        }
        let fits = |n: &[usize; 3]| {
            let mut n = *n;
            n[want] += 1;
            self.within(&n)
        };
        let c = match self.count.iter().position(fits) {
            Some(c) => c,
            None if self.count.len() < self.connections && fits(&[0; 3]) => {
                self.count.push([0; 3]);
                self.count.len() - 1
            }
            None => return Err(Full),
        };
        self.of[i] = c as u8;
        self.cat[i] = want as u8;
        self.count[c][want] += 1;
        Ok(c)
    }

    /// Takes `symbol` off its connection; returns which one it was on.
    pub fn remove(&mut self, symbol: SymbolId) -> Option<usize> {
        let c = self.conn_of(symbol)?;
        let i = symbol as usize;
        self.of[i] = NONE;
        self.count[c][self.cat[i] as usize] -= 1;
        Some(c)
    }

    /// Symbols on connection `c`.
    pub fn count(&self, c: usize) -> usize {
        self.count.get(c).map_or(0, |n| n.iter().sum())
    }
}

/// Why a symbol is on the retry schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// Subscribed, no data yet: asked again if nothing arrives in time.
    Unconfirmed,
    /// The broker said no: asked again after a backoff.
    Rejected,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    at: Instant,
    tries: u32,
    why: Waiting,
}

/// Retry schedule for symbols that are wanted but not live. Delays double from `first` up to
/// `max` per symbol, so a symbol a broker will never serve costs one request per `max`, not a
/// stream of them.
#[derive(Clone, Debug)]
pub struct Retries {
    first: Duration,
    max: Duration,
    waiting: BTreeMap<SymbolId, Entry>,
}

impl Retries {
    /// A schedule whose first retry comes `first` after the event, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            waiting: BTreeMap::new(),
        }
    }

    fn delay(&self, tries: u32) -> Duration {
        self.first
            .saturating_mul(1u32 << tries.min(16))
            .min(self.max)
    }

    /// `symbol` was (re)subscribed at `now`: check on it after the current delay.
    pub fn subscribed(&mut self, symbol: SymbolId, now: Instant) {
        let tries = self.waiting.get(&symbol).map_or(0, |e| e.tries);
        let at = now + self.delay(tries);
        self.waiting.insert(
            symbol,
            Entry {
                at,
                tries,
                why: Waiting::Unconfirmed,
            },
        );
    }

    /// The broker rejected `symbol` at `now`.
    pub fn rejected(&mut self, symbol: SymbolId, now: Instant) {
        let tries = self.waiting.get(&symbol).map_or(0, |e| e.tries);
        self.waiting.insert(
            symbol,
            Entry {
                at: now + self.delay(tries),
                tries,
                why: Waiting::Rejected,
            },
        );
    }

    /// `symbol` is live or no longer wanted: off the schedule (its delay starts over next time).
    pub fn done(&mut self, symbol: SymbolId) {
        self.waiting.remove(&symbol);
    }

    /// Symbols on the schedule.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Calls `f` with each symbol whose time has come and why it waited; `f` answers whether it
    /// was asked again (`true`: the next check comes after a doubled delay) or should be dropped
    /// from the schedule (`false`: it went live or is no longer wanted).
    pub fn due(&mut self, now: Instant, mut f: impl FnMut(SymbolId, Waiting) -> bool) {
        let (first, max) = (self.first, self.max);
        self.waiting.retain(|&sym, e| {
            if e.at > now {
                return true;
            }
            if !f(sym, e.why) {
                return false;
            }
            e.tries += 1;
            e.at = now + first.saturating_mul(1u32 << e.tries.min(16)).min(max);
            e.why = Waiting::Unconfirmed;
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_connection: usize, connections: usize) -> Limits {
        Limits {
            per_message: 10,
            per_connection,
            connections,
            by_mode: None,
        }
    }

    const Q: Mode = Mode::Quote;

    #[test]
    fn symbols_fill_a_connection_then_open_the_next_then_are_refused() {
        let mut a = Assign::new(10, limits(2, 2));
        assert_eq!(a.place(0, Q), Ok(0));
        assert_eq!(a.place(1, Q), Ok(0));
        assert_eq!(
            a.place(0, Mode::Depth),
            Ok(0),
            "already placed: same connection"
        );
        assert_eq!(a.place(2, Q), Ok(1), "first full: the next connection");
        assert_eq!(a.place(3, Q), Ok(1));
        assert_eq!(
            a.place(4, Q),
            Err(Full),
            "both full and the broker allows two"
        );
        assert_eq!(a.conn_of(4), None);
        assert_eq!(a.remove(1), Some(0));
        assert_eq!(a.place(4, Q), Ok(0), "room again on the first");
        assert_eq!((a.count(0), a.count(1)), (2, 2));
        assert_eq!(a.remove(9), None);
        assert_eq!(a.place(99, Q), Err(Full), "outside the registry");
    }

    /// Upstox-like: 3 `ltpc` alone or 2 `full` alone; 2 and 1 once a connection carries both.
    #[test]
    fn per_mode_limits_fill_by_category_and_move_a_symbol_whose_new_mode_does_not_fit() {
        let mut a = Assign::new(
            10,
            Limits {
                per_message: 10,
                per_connection: 3,
                connections: 3,
                by_mode: Some(ModeLimits {
                    category: [0, 1, 1],
                    alone: [3, 2, 0],
                    combined: [2, 1, 0],
                }),
            },
        );
        let l = Mode::Ltp;
        assert_eq!(a.place(0, l), Ok(0));
        assert_eq!(a.place(1, l), Ok(0));
        assert_eq!(a.place(2, l), Ok(0), "three ltpc alone");
        assert_eq!(
            a.place(3, Q),
            Ok(1),
            "full next to 3 ltpc exceeds the combined limits"
        );
        assert_eq!(
            a.place(4, Mode::Depth),
            Ok(1),
            "Depth is full too: 2 full alone"
        );
        assert_eq!(
            a.place(5, Q),
            Ok(2),
            "a third full needs a third connection"
        );
        // Symbol 2 goes to full: connection 0 would hold 2 ltpc + 1 full, within the combined
        // limits, so it stays.
        assert_eq!(a.place(2, Q), Ok(0));
        // Symbol 1 goes to full as well: 1 ltpc + 2 full exceeds them; it moves to connection 2
        // (1 full there: 2 full alone).
        assert_eq!(a.place(1, Q), Ok(2));
        assert_eq!((a.count(0), a.count(1), a.count(2)), (2, 2, 2));
        assert_eq!(a.place(6, Q), Err(Full));
        assert_eq!(a.remove(1), Some(2));
        assert_eq!(
            a.place(6, l),
            Ok(0),
            "2 ltpc + 1 full: within the combined limits"
        );
    }

    #[test]
    fn unconfirmed_and_rejected_symbols_are_asked_again_with_doubling_delays() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut r = Retries::new(s, 4 * s);
        r.subscribed(7, t0);
        r.rejected(8, t0);
        let mut seen = Vec::new();
        r.due(t0, |sym, _| {
            seen.push(sym);
            true
        });
        assert!(seen.is_empty(), "nothing before the first delay");
        let mut asked = Vec::new();
        r.due(t0 + s, |sym, why| {
            asked.push((sym, why));
            true
        });
        assert_eq!(
            asked,
            vec![(7, Waiting::Unconfirmed), (8, Waiting::Rejected)]
        );
        // Next check after 2 s, then 4 s (the cap), then 4 s.
        for (at, expect) in [(2, 0), (3, 2), (6, 0), (7, 2), (11, 2)] {
            let mut n = 0;
            r.due(t0 + at * s, |_, _| {
                n += 1;
                true
            });
            assert_eq!(n, expect, "at {at} s");
        }
        // Live: dropped from the schedule when its turn comes.
        r.due(t0 + 100 * s, |sym, _| sym != 7);
        assert_eq!(r.len(), 1);
        r.done(8);
        assert!(r.is_empty());
    }
}
