//! Where a broker's parser puts its ticks: [`TickSink`]. A concrete type, not a trait object, so
//! the per-tick call inlines into every parser; what is behind it (the inline router, the SPSC
//! ring to a router thread, or a `Vec` in a test) is one predictable branch.
//!
//! The sink also does the per-tick bookkeeping every broker shares: a symbol's first tick after a
//! subscribe turns its upstream state from `pending` to `live`, its health slot learns the update
//! (`tickwire_engine::health`), and parse errors are counted (and
//! the first few logged) in the feed's [`FeedStatus`].

use std::sync::atomic::{AtomicU8, Ordering};

use tickwire_engine::health::SymbolHealth;
use tickwire_engine::router::Inline;
use tickwire_engine::Tick;

use super::status::{upstream_state, FeedStatus};

/// How many bad packets a feed logs before it only counts them.
const LOGGED_PARSE_ERRORS: u64 = 10;

enum Out<'a> {
    /// The router on this thread: the tick goes straight into its tick path.
    Inline(&'a mut dyn Inline),
    /// The SPSC ring to the router thread.
    Ring(&'a mut rtrb::Producer<Tick>),
    /// A test's collection.
    Collect(&'a mut Vec<Tick>),
}

/// See the module docs.
pub struct TickSink<'a> {
    out: Out<'a>,
    status: Option<&'a FeedStatus>,
    states: &'a [AtomicU8],
    health: Option<&'a SymbolHealth>,
    ticks: u32,
    errors: u32,
}

impl<'a> TickSink<'a> {
    /// Ticks go to the router running on this thread.
    pub fn inline(router: &'a mut dyn Inline, status: &'a FeedStatus) -> Self {
        Self::with(Out::Inline(router), Some(status))
    }

    /// Ticks go through the ring to the router thread (waiting, never dropping, when it is full).
    pub fn ring(ring: &'a mut rtrb::Producer<Tick>, status: &'a FeedStatus) -> Self {
        Self::with(Out::Ring(ring), Some(status))
    }

    /// Ticks are collected (tests, benchmarks, fuzzing).
    pub fn collect(into: &'a mut Vec<Tick>) -> Self {
        Self::with(Out::Collect(into), None)
    }

    fn with(out: Out<'a>, status: Option<&'a FeedStatus>) -> Self {
        Self {
            out,
            states: status.map_or(&[][..], |s| &s.symbols[..]),
            health: status.map(|s| &*s.health),
            status,
            ticks: 0,
            errors: 0,
        }
    }

    /// Hands one parsed tick on. `last`: the message holds no further tick (the router then
    /// pushes the tick's lines to the shared cache for a waiting reader).
    #[inline]
    pub fn tick(&mut self, tick: Tick, last: bool) {
        self.ticks += 1;
        if let Some(s) = self.states.get(tick.symbol_id as usize) {
            if s.load(Ordering::Relaxed) == upstream_state::PENDING {
                s.store(upstream_state::LIVE, Ordering::Relaxed);
            }
        }
        if let Some(h) = self.health {
            h.touch(tick.symbol_id, tick.recv_ts_ns);
        }
        match &mut self.out {
            Out::Inline(r) => r.tick(tick, last),
            Out::Ring(ring) => push_waiting(ring, tick, self.status),
            Out::Collect(v) => v.push(tick),
        }
    }

    /// Counts one packet the parser could not use (the rest of the message is still used where it
    /// can be found). The first few per feed are logged with `broker`'s name.
    pub fn parse_error(&mut self, broker: &str, e: &dyn std::fmt::Display) {
        self.errors += 1;
        if let Some(s) = self.status {
            if s.parse_errors.fetch_add(1, Ordering::Relaxed) < LOGGED_PARSE_ERRORS {
                tracing::warn!("{broker} feed: bad packet: {e}");
            }
        }
    }

    /// Records the broker's word on market segments (`NSE_EQ` → `NORMAL_OPEN`), for status.
    pub fn market_status(&mut self, segments: &[(String, &str)]) {
        if let Some(m) = self.status.and_then(|s| s.market.lock().ok()) {
            let mut m = m;
            for (seg, st) in segments {
                m.insert(seg.clone(), (*st).to_owned());
            }
        }
    }

    /// Ticks handed on so far.
    pub fn ticks(&self) -> u32 {
        self.ticks
    }

    /// Parse errors counted so far.
    pub fn errors(&self) -> u32 {
        self.errors
    }
}

/// Bounded and lossless: if the router is behind, wait for room (TCP pushes back on the broker)
/// rather than drop; count the waits.
#[inline]
fn push_waiting(ring: &mut rtrb::Producer<Tick>, mut t: Tick, status: Option<&FeedStatus>) {
    loop {
        match ring.push(t) {
            Ok(()) => return,
            Err(rtrb::PushError::Full(back)) => {
                t = back;
                if let Some(s) = status {
                    s.ring_waits.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::yield_now();
            }
        }
    }
}
