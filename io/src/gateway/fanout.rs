//! The client IO thread's own fan-out: which of its sessions hold which symbol in which modes, the
//! symbol's value as this thread last saw it, and the step from one router [`Delivery`] to every
//! session that wants it.
//!
//! The router tells this thread once per changed symbol (not once per client); here each message
//! is formatted **once** per update and mode, and the same bytes (a shared `Utf8Bytes`) are handed to
//! every session holding that mode. A session that keeps up writes them at once (the gateway
//! flushes each session once per loop pass); one whose backlog passed its high-water mark only
//! marks the symbol, and gets the latest value when it has drained (`session/market.rs`).

use tickwire_engine::last::LastValues;
use tickwire_engine::router::{Delivery, Mode, ModeSet};
use tickwire_engine::symbols::SymbolId;
use tickwire_engine::Tick;
use tungstenite::Utf8Bytes;

use super::protocol::{market_data, OutBuf};
use super::session::Session;
use super::Shared;

const NONE: u32 = u32::MAX;

/// One session's hold on a symbol, and what was sent to it: kept here, side by side for all the
/// symbol's holders, so a delivery walks one contiguous array instead of a map per session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Holder {
    session: u32,
    modes: ModeSet,
    /// Marked while the session conflates; sent (latest value) when it drains.
    marked: bool,
    /// Sequence of the last value sent (0: none, or a mode was added and the value goes again).
    last_seq: u64,
}

impl Holder {
    fn new(session: u32, modes: ModeSet) -> Self {
        Self {
            session,
            modes,
            marked: false,
            last_seq: 0,
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// The symbol's value as of the last delivery, merged across field groups (a Fyers `dp` tick
    /// carries depth only; a depth message needs the LTP from an earlier one).
    last: Tick,
    holders: Vec<Holder>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Fanout {
    /// Per symbol id: its entry in `entries`, or `NONE`.
    slot_of: Vec<u32>,
    entries: Vec<Entry>,
    free: Vec<u32>,
}

/// What one delivery did, for counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fanned {
    /// Messages formatted (once per mode per update).
    pub formatted: u64,
    /// Messages handed to sessions.
    pub written: u64,
    /// Sessions that only marked the symbol (conflating).
    pub conflated: u64,
    /// Frame bytes handed to sessions.
    pub bytes: u64,
}

impl Fanout {
    /// Room for `symbols` ids.
    pub fn new(symbols: usize) -> Self {
        Self {
            slot_of: vec![NONE; symbols],
            ..Self::default()
        }
    }

    /// Sets the modes `session` holds on `symbol` (0: none).
    pub fn set(&mut self, symbol: SymbolId, session: usize, modes: ModeSet) {
        let Some(&slot) = self.slot_of.get(symbol as usize) else {
            return;
        };
        let session = session as u32;
        if slot == NONE {
            if modes == 0 {
                return;
            }
            let e = Entry {
                last: Tick::default(),
                holders: vec![Holder::new(session, modes)],
            };
            let slot = match self.free.pop() {
                Some(i) => {
                    self.entries[i as usize] = e;
                    i
                }
                None => {
                    self.entries.push(e);
                    (self.entries.len() - 1) as u32
                }
            };
            self.slot_of[symbol as usize] = slot;
            return;
        }
        let e = &mut self.entries[slot as usize];
        match e.holders.iter().position(|h| h.session == session) {
            Some(i) if modes == 0 => {
                e.holders.swap_remove(i);
            }
            Some(i) => {
                let h = &mut e.holders[i];
                if modes & !h.modes != 0 {
                    h.last_seq = 0; // a new mode: the current value goes out again for it
                }
                h.modes = modes;
            }
            None if modes != 0 => e.holders.push(Holder::new(session, modes)),
            None => {}
        }
        if e.holders.is_empty() {
            self.slot_of[symbol as usize] = NONE;
            self.free.push(slot);
        }
    }

    /// For each symbol some session holds: its id, the number of sessions holding it, and the
    /// modes they hold (bit per mode, OR of all). `/subscriptions` and `/status` read this on the
    /// client IO thread itself, which owns the index: counting costs the tick path nothing and
    /// needs no shared counter (an `AtomicU32` per symbol kept by the router would add a store
    /// per subscription change on the router and cross-thread reads for the same numbers).
    pub fn held(&self) -> impl Iterator<Item = (SymbolId, usize, ModeSet)> + '_ {
        self.slot_of
            .iter()
            .enumerate()
            .filter(|(_, &s)| s != NONE)
            .map(|(id, &s)| {
                let e = &self.entries[s as usize];
                let modes = e.holders.iter().fold(0, |m, h| m | h.modes);
                (id as SymbolId, e.holders.len(), modes)
            })
    }

    /// Subscriptions held by sessions, per mode (LTP, Quote, Depth): one per session, symbol and
    /// mode.
    pub fn by_mode(&self) -> [u64; 3] {
        let mut n = [0u64; 3];
        for e in &self.entries {
            for h in &e.holders {
                for m in Mode::ALL {
                    if h.modes & m.bit() != 0 {
                        n[m as usize - 1] += 1;
                    }
                }
            }
        }
        n
    }

    /// Sessions holding `symbol`.
    pub fn holders(&self, symbol: SymbolId) -> usize {
        match self.slot_of.get(symbol as usize) {
            Some(&s) if s != NONE => self.entries[s as usize].holders.len(),
            _ => 0,
        }
    }

    /// Merges a tick into the symbol's value without sending it: the next tick of the same symbol
    /// from the same broker message, carrying the other field groups, completes it (Fyers sends a
    /// symbol's quote and depth as two topics side by side; a depth client gets one message with
    /// both, not a half-new one). Two ticks with the same groups are two updates and are not merged.
    pub fn absorb(&mut self, t: &Tick) {
        if let Some(&slot) = self.slot_of.get(t.symbol_id as usize) {
            if slot != NONE {
                let e = &mut self.entries[slot as usize];
                if t.seq > e.last.seq {
                    e.last.merge_from(t);
                }
            }
        }
    }

    /// Hands one router delivery to every session holding its symbol, formatting each mode's
    /// message once.
    pub fn deliver(
        &mut self,
        d: &Delivery,
        sessions: &mut [Option<Session>],
        shared: &Shared,
        last: &dyn LastValues,
        buf: &mut OutBuf,
    ) -> Fanned {
        let symbol = d.symbol();
        let Some(&slot) = self.slot_of.get(symbol as usize) else {
            return Fanned::default();
        };
        if slot == NONE {
            return Fanned::default();
        }
        let e = &mut self.entries[slot as usize];
        match d {
            Delivery::Tick(t) => {
                if t.seq <= e.last.seq {
                    return Fanned::default(); // already sent through a `Latest`
                }
                e.last.merge_from(t);
            }
            Delivery::Latest(_) => match last.last_value(symbol) {
                // The table's value is merged already; it may equal what was sent (a new
                // subscriber wants it anyway: sessions skip what they have).
                Some(v) if v.seq >= e.last.seq => e.last = v,
                _ => return Fanned::default(),
            },
        }
        let Some(info) = shared.registry.info(symbol) else {
            return Fanned::default();
        };
        let broker = &shared.feed(symbol).broker;
        let mut cache: [Option<Utf8Bytes>; 3] = [None, None, None];
        let mut fanned = Fanout::fan(
            &mut e.holders,
            &e.last,
            symbol,
            sessions,
            &mut |m, value| {
                let slot = &mut cache[m as usize - 1];
                if slot.is_none() {
                    buf.json.clear();
                    market_data(
                        &mut buf.json,
                        value,
                        m,
                        &info.exchange,
                        &info.symbol,
                        broker,
                    );
                    *slot = Some(buf.text());
                }
                slot.clone().unwrap_or_default()
            },
        );
        fanned.formatted = cache.iter().filter(|c| c.is_some()).count() as u64;
        fanned
    }

    fn fan(
        holders: &mut [Holder],
        value: &Tick,
        symbol: SymbolId,
        sessions: &mut [Option<Session>],
        format: &mut dyn FnMut(Mode, &Tick) -> Utf8Bytes,
    ) -> Fanned {
        let mut fanned = Fanned::default();
        for h in holders {
            if value.seq <= h.last_seq {
                continue; // already sent (a repeated `Latest`)
            }
            let Some(Some(s)) = sessions.get_mut(h.session as usize) else {
                continue;
            };
            if s.is_conflating() {
                if !h.marked {
                    h.marked = true;
                    s.mark(symbol);
                }
                s.note_queue_drop();
                fanned.conflated += 1;
                continue;
            }
            h.last_seq = value.seq;
            let before = s.written_bytes();
            fanned.written += s.write_market(h.modes, &mut |m| format(m, value));
            fanned.bytes += s.written_bytes() - before;
        }
        fanned
    }

    /// Sends session `i` (conflating, and drained under its low-water mark) the latest value of
    /// each symbol it marked, formatted for it alone (a session that fell behind is the
    /// exception), until its backlog reaches the high-water mark again. Returns messages written.
    pub fn send_marked(
        &mut self,
        i: usize,
        s: &mut Session,
        shared: &Shared,
        last: &dyn LastValues,
        buf: &mut OutBuf,
    ) -> u64 {
        let mut sent = 0;
        let mut k = 0;
        while k < s.dirty.len() {
            if s.over_high_water(shared) {
                break;
            }
            let symbol = s.dirty[k];
            k += 1;
            let Some(&slot) = self.slot_of.get(symbol as usize) else {
                continue;
            };
            if slot == NONE {
                continue;
            }
            let e = &mut self.entries[slot as usize];
            let Some(h) = e.holders.iter_mut().find(|h| h.session == i as u32) else {
                continue;
            };
            h.marked = false;
            let Some(t) = last.last_value(symbol) else {
                continue;
            };
            if t.seq <= h.last_seq {
                continue;
            }
            h.last_seq = t.seq;
            let Some(info) = shared.registry.info(symbol) else {
                continue;
            };
            let broker = &shared.feed(symbol).broker;
            sent += s.write_market(h.modes, &mut |m| {
                buf.json.clear();
                market_data(&mut buf.json, &t, m, &info.exchange, &info.symbol, broker);
                buf.text()
            });
        }
        s.dirty.drain(..k);
        s.marked_sent();
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_added_changed_and_removed_and_slots_reused() {
        let mut f = Fanout::new(10);
        f.set(3, 1, Mode::Ltp.bit());
        f.set(3, 2, Mode::Quote.bit());
        f.set(3, 1, Mode::Ltp.bit() | Mode::Depth.bit());
        assert_eq!(f.holders(3), 2);
        f.set(3, 1, 0);
        f.set(3, 7, 0); // not a holder: nothing
        assert_eq!(f.holders(3), 1);
        f.set(3, 2, 0);
        assert_eq!(f.holders(3), 0);
        f.set(5, 4, Mode::Ltp.bit());
        assert_eq!(f.entries.len(), 1, "the freed slot is reused");
        f.set(99, 1, Mode::Ltp.bit()); // outside the registry: ignored
        assert_eq!(f.holders(99), 0);
    }
}
