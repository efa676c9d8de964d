//! Per-symbol health: is a subscribed symbol's last value fresh? Shared by the feed threads (which
//! write it), the router (which copies the state byte into shared memory) and the client IO threads
//! (`/status`, status pushes to clients).
//!
//! Each symbol has one [`Slot`] (32 bytes, two per cache line) with a single writer: the feed thread
//! of the feed that serves the symbol. On every update [`SymbolHealth::touch`] records the receive
//! time and learns the symbol's *usual interval* — an estimate of a high quantile of the gaps between
//! its updates, which rises fast when gaps grow and decays slowly when they shrink. A feed thread's
//! periodic check then judges the symbol (`tickwire_io::feed::watch`): while its exchange's session
//! is open and its connection is open, it is [`state::STALE`] once it has gone
//! `max(floor, factor × usual)` without an update, and it turns [`state::LIVE`] again on the next
//! update (here, in `touch`, not at the next check). A symbol whose interval is still being learned
//! ([`LEARN_SAMPLES`]) is never judged stale: one fixed timeout is what made OpenAlgo's watchdog fire
//! on instruments that simply trade rarely.
//!
//! Everything is Relaxed: single-writer values that nothing else is published through; a reader
//! may see one slot's fields from two different updates, which at worst shows an age one update
//! old.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU8, Ordering};

/// The health of a symbol, as one byte (the same values in shared memory, `docs/shm-layout.md`).
pub mod state {
    /// Not subscribed upstream.
    pub const NONE: u8 = 0;
    /// Subscribed; the broker has sent nothing for it yet.
    pub const PENDING: u8 = 1;
    /// Updating as usual.
    pub const LIVE: u8 = 2;
    /// Its exchange is open and its connection is up, but it has not updated for much longer than
    /// it usually does.
    pub const STALE: u8 = 3;
    /// The broker rejected it.
    pub const REJECTED: u8 = 4;
    /// Its exchange's session is not open (closed, pre-open, holiday): not judged.
    pub const CLOSED: u8 = 5;
    /// The upstream connection that carries it is not open.
    pub const DOWN: u8 = 6;

    /// The state's name in JSON (`/status`, status messages).
    pub fn name(s: u8) -> &'static str {
        match s {
            PENDING => "pending",
            LIVE => "live",
            STALE => "stale",
            REJECTED => "rejected",
            CLOSED => "closed",
            DOWN => "down",
            _ => "none",
        }
    }
}

/// Gaps a symbol's usual interval is learned from before it can be judged stale.
pub const LEARN_SAMPLES: u32 = 8;

/// Gaps longer than this are learned as this: a gap across a lunch lull is information, one across
/// a night is not, and one huge sample would make the estimate useless for hours.
pub const MAX_GAP_NS: i64 = 30 * 60 * 1_000_000_000;

/// One symbol's health. See the module docs.
#[derive(Debug, Default)]
#[repr(C, align(32))]
pub struct Slot {
    /// Receive time of the last update (ns since the epoch; 0: none yet).
    updated_ns: AtomicI64,
    /// What the next gap is measured from: the last update's time, or, negated, a time the
    /// symbol was (re)admitted to judgement (a reconnect, a session opening) — a gap measured from
    /// that is not learned.
    base_ns: AtomicI64,
    /// The usual interval, ns.
    usual_ns: AtomicI64,
    /// Gaps learned (saturating).
    samples: AtomicU32,
    /// [`state`].
    state: AtomicU8,
}

const _: () = assert!(core::mem::size_of::<Slot>() == 32);

/// Per-symbol health for a registry's capacity. See the module docs.
#[derive(Debug, Default)]
pub struct SymbolHealth {
    slots: Box<[Slot]>,
}

impl SymbolHealth {
    /// Health for `symbols` ids, all [`state::NONE`].
    pub fn new(symbols: usize) -> Self {
        Self {
            slots: (0..symbols).map(|_| Slot::default()).collect(),
        }
    }

    /// Symbol capacity.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True for a zero capacity.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// An update of `id` received at `recv_ns`: learns the gap, and a stale symbol is live again.
    /// Several updates from one broker message share a receive time and count as one. The tick
    /// path: loads and stores, no lock, no allocation.
    #[inline]
    pub fn touch(&self, id: u32, recv_ns: i64) {
        let Some(s) = self.slots.get(id as usize) else {
            return;
        };
        let st = s.state.load(Ordering::Relaxed);
        let base = s.base_ns.load(Ordering::Relaxed);
        if base == recv_ns {
            return;
        }
        s.updated_ns.store(recv_ns, Ordering::Relaxed);
        s.base_ns.store(recv_ns, Ordering::Relaxed);
        if st == state::LIVE || st == state::STALE {
            if base > 0 && recv_ns > base {
                learn(s, (recv_ns - base).min(MAX_GAP_NS));
            }
            if st == state::STALE {
                s.state.store(state::LIVE, Ordering::Relaxed);
            }
        }
    }

    /// The symbol's state.
    #[inline]
    pub fn state(&self, id: u32) -> u8 {
        self.slots
            .get(id as usize)
            .map_or(state::NONE, |s| s.state.load(Ordering::Relaxed))
    }

    /// Sets the state (the feed thread's check). Entering judgement (`LIVE` from anything but
    /// `STALE`) restarts the gap clock at `now_ns` unless an update came within the last second:
    /// the time the symbol spent down or closed is not a gap to learn or to judge.
    pub fn set_state(&self, id: u32, st: u8, now_ns: i64) {
        let Some(s) = self.slots.get(id as usize) else {
            return;
        };
        let was = s.state.swap(st, Ordering::Relaxed);
        if st == state::LIVE && was != state::LIVE && was != state::STALE {
            let base = s.base_ns.load(Ordering::Relaxed);
            if base <= 0 || now_ns - base > 1_000_000_000 {
                s.base_ns.store(-now_ns, Ordering::Relaxed);
            }
        }
    }

    /// Receive time of the symbol's last update (0: none).
    pub fn updated_ns(&self, id: u32) -> i64 {
        self.slots
            .get(id as usize)
            .map_or(0, |s| s.updated_ns.load(Ordering::Relaxed))
    }

    /// The learned usual interval, or `None` while still learning.
    pub fn usual_ns(&self, id: u32) -> Option<i64> {
        let s = self.slots.get(id as usize)?;
        (s.samples.load(Ordering::Relaxed) >= LEARN_SAMPLES)
            .then(|| s.usual_ns.load(Ordering::Relaxed))
    }

    /// How long the symbol has gone without an update at `now_ns`, measured from its last update
    /// or from when it was last admitted to judgement, whichever is later.
    pub fn quiet_ns(&self, id: u32, now_ns: i64) -> i64 {
        self.slots.get(id as usize).map_or(0, |s| {
            let base = s.base_ns.load(Ordering::Relaxed).abs();
            (now_ns - base).max(0)
        })
    }

    /// Forgets what was learned (the symbol was unsubscribed upstream).
    pub fn reset(&self, id: u32) {
        if let Some(s) = self.slots.get(id as usize) {
            s.state.store(state::NONE, Ordering::Relaxed);
            s.base_ns.store(0, Ordering::Relaxed);
            s.usual_ns.store(0, Ordering::Relaxed);
            s.samples.store(0, Ordering::Relaxed);
        }
    }
}

/// The usual-interval estimator: a quarter of the way up towards a longer gap, a thirty-second of
/// the way down towards a shorter one, so it settles near a high quantile of the gaps (a symbol
/// that usually ticks every second but sometimes pauses for ten is expected to pause).
#[inline]
fn learn(s: &Slot, gap: i64) {
    let n = s.samples.load(Ordering::Relaxed);
    let usual = s.usual_ns.load(Ordering::Relaxed);
    s.usual_ns
        .store(next_usual(usual, n, gap), Ordering::Relaxed);
    s.samples.store(n.saturating_add(1), Ordering::Relaxed);
}

/// The estimator's step: the usual interval after learning `gap` (ns, already capped) with `n`
/// gaps learned before. Also used for a whole connection's data (`tickwire_io::feed::watch`).
#[inline]
pub fn next_usual(usual: i64, n: u32, gap: i64) -> i64 {
    match n {
        0 => gap,
        _ if gap > usual => usual + (gap - usual) / 4,
        _ => usual - (usual - gap) / 32,
    }
}

/// Whether a symbol quiet for `quiet_ns`, with usual interval `usual_ns` (`None`: still learning),
/// is stale under `floor_ns` and `factor`.
pub fn is_stale(quiet_ns: i64, usual_ns: Option<i64>, floor_ns: i64, factor: u32) -> bool {
    match usual_ns {
        Some(u) => quiet_ns > floor_ns.max(u.saturating_mul(factor as i64)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn live(h: &SymbolHealth, t0: i64) {
        h.set_state(0, state::PENDING, t0);
        h.touch(0, t0);
        h.set_state(0, state::LIVE, t0);
    }

    #[test]
    fn learns_and_judges() {
        let h = SymbolHealth::new(2);
        live(&h, 100 * S);
        for i in 1..=LEARN_SAMPLES as i64 {
            assert_eq!(h.usual_ns(0), None, "learning");
            h.touch(0, 100 * S + i * S);
        }
        let u = h.usual_ns(0).unwrap();
        assert_eq!(u, S, "steady one-second gaps");
        let last = 100 * S + LEARN_SAMPLES as i64 * S;
        assert!(!is_stale(h.quiet_ns(0, last + 9 * S), Some(u), 5 * S, 10));
        assert!(is_stale(h.quiet_ns(0, last + 11 * S), Some(u), 5 * S, 10));
        assert!(
            !is_stale(h.quiet_ns(0, last + 4 * S), Some(u), 5 * S, 1),
            "floor"
        );
        // Stale, then the next update makes it live at once.
        h.set_state(0, state::STALE, last + 11 * S);
        h.touch(0, last + 12 * S);
        assert_eq!(h.state(0), state::LIVE);
        // The 12 s gap was learned: a quarter of the way up.
        assert_eq!(h.usual_ns(0), Some(S + (11 * S) / 4));
    }

    #[test]
    fn one_message_is_one_update_and_learning_never_judges() {
        let h = SymbolHealth::new(1);
        live(&h, S);
        h.touch(0, 2 * S);
        h.touch(0, 2 * S);
        assert!(h.usual_ns(0).is_none());
        assert!(!is_stale(i64::MAX, None, 0, 1));
    }

    #[test]
    fn time_down_is_not_a_gap() {
        let h = SymbolHealth::new(1);
        live(&h, S);
        for i in 2..20 {
            h.touch(0, i * S);
        }
        let u = h.usual_ns(0).unwrap();
        h.set_state(0, state::DOWN, 20 * S);
        // Back an hour later: judged from the return, and the hour is not learned.
        h.set_state(0, state::LIVE, 3600 * S);
        assert_eq!(h.quiet_ns(0, 3601 * S), S);
        h.touch(0, 3602 * S);
        assert_eq!(h.usual_ns(0), Some(u));
        assert_eq!(h.updated_ns(0), 3602 * S);
    }

    #[test]
    fn gaps_are_capped_and_quiet_symbols_learn_long_intervals() {
        let h = SymbolHealth::new(1);
        live(&h, S);
        let mut t = S;
        for _ in 0..LEARN_SAMPLES {
            t += 600 * S;
            h.touch(0, t);
        }
        let u = h.usual_ns(0).unwrap();
        assert_eq!(u, 600 * S);
        // Ten quiet minutes are nothing unusual for it.
        assert!(!is_stale(600 * S, Some(u), 15 * S, 8));
        t += 10 * 3600 * S;
        h.touch(0, t);
        assert!(h.usual_ns(0).unwrap() <= MAX_GAP_NS);
        h.reset(0);
        assert_eq!(h.state(0), state::NONE);
        assert!(h.usual_ns(0).is_none());
    }
}
