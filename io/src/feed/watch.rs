//! No silent stalls: a feed's periodic judgement of its symbols (`live`, `stale`, `closed`, `down`,
//! …, in the process-wide [`SymbolHealth`]) and of its connections (`stalled`).
//!
//! Every [`WATCH_EVERY`], on the feed thread (never per tick), each symbol the feed serves is
//! judged from its upstream state, its connection's state, its exchange's session (the market
//! calendar) and how long it has been quiet compared with its learned usual interval
//! (`tickwire_engine::health`). A symbol is `stale` only while its exchange is open, its
//! connection is open and it has been quiet for `max(floor, factor × usual)`; the next update makes
//! it `live` again at once.
//!
//! A connection has a data clock of its own (the same estimator over every tick it delivers). It
//! is *stalled* when it is open, carries at least one judged symbol (live or stale, exchange open)
//! and has delivered nothing for `max(stall floor, factor × usual)`: the socket may still be
//! answering pings, but nothing arrives. A stalled connection is dropped and dialed again with its
//! subscriptions; the stall is counted, logged and shown (`stalled`) until the dial starts.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tickwire_engine::calendar::{Exchange, Market};
use tickwire_engine::health::{
    is_stale, next_usual, state, SymbolHealth, LEARN_SAMPLES, MAX_GAP_NS,
};
use tickwire_engine::symbols::SymbolRegistry;

use super::assign::MAX_CONNECTIONS;
use super::status::{feed_state, upstream_state, FeedStatus};

/// How often a feed judges its symbols and connections.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Stale and stall thresholds (`--stale-floor-s`, `--stale-factor`, `--stall-floor-s`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StaleConfig {
    /// A symbol is never stale sooner than this after its last update.
    pub floor: Duration,
    /// … nor sooner than this many times its usual interval.
    pub factor: u32,
    /// A connection is never stalled sooner than this after its last data.
    pub stall_floor: Duration,
}

impl Default for StaleConfig {
    fn default() -> Self {
        Self {
            floor: Duration::from_secs(15),
            factor: 8,
            stall_floor: Duration::from_secs(30),
        }
    }
}

impl StaleConfig {
    fn floor_ns(&self) -> i64 {
        self.floor.as_nanos().min(i64::MAX as u128) as i64
    }
    fn stall_floor_ns(&self) -> i64 {
        self.stall_floor.as_nanos().min(i64::MAX as u128) as i64
    }
}

/// A connection's data clock: when it last delivered a tick and how often it usually does.
#[derive(Debug, Default)]
pub(super) struct DataClock {
    /// The last data's receive time, or, negated, when the connection (re)opened.
    base_ns: i64,
    usual_ns: i64,
    samples: u32,
}

impl DataClock {
    /// A message with ticks arrived at `t`.
    #[inline]
    pub fn data(&mut self, t: i64) {
        if self.base_ns > 0 && t > self.base_ns {
            let gap = (t - self.base_ns).min(MAX_GAP_NS);
            self.usual_ns = next_usual(self.usual_ns, self.samples, gap);
            self.samples = self.samples.saturating_add(1);
        }
        self.base_ns = t;
    }

    /// The connection opened (or the market did) at `now_ns`: quiet time is measured from here,
    /// and the time it was down is not learned as a gap.
    pub fn restart(&mut self, now_ns: i64) {
        self.base_ns = -now_ns;
    }

    /// `Some((quiet, usual))` when the connection has been quiet far longer than usual.
    pub fn stalled(&self, now_ns: i64, cfg: &StaleConfig) -> Option<(i64, i64)> {
        if self.samples < LEARN_SAMPLES || self.base_ns == 0 {
            return None;
        }
        let quiet = now_ns - self.base_ns.abs();
        is_stale(quiet, Some(self.usual_ns), cfg.stall_floor_ns(), cfg.factor)
            .then_some((quiet, self.usual_ns))
    }
}

/// A feed's judge: see the module docs.
pub(super) struct Watch {
    next: Instant,
    /// Per symbol id: its exchange's index in [`Exchange::ALL`] + 1; 0 not looked up yet, `u8::MAX`
    /// an exchange the calendar does not know (judged as open).
    exchange: Vec<u8>,
    /// Per connection: symbols judged live or stale on it this round.
    judged: [u32; MAX_CONNECTIONS],
}

impl Watch {
    /// A judge for `symbols` ids, first due at `now`.
    pub fn new(symbols: usize, now: Instant) -> Self {
        Self {
            next: now,
            exchange: vec![0; symbols],
            judged: [0; MAX_CONNECTIONS],
        }
    }

    /// True (and the next round scheduled) when a round is due.
    pub fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + WATCH_EVERY;
        true
    }

    /// Until the next round.
    pub fn wait(&self, now: Instant) -> Duration {
        self.next.saturating_duration_since(now)
    }

    /// The symbol's exchange as an index in [`Exchange::ALL`].
    fn exchange_of(&mut self, registry: &SymbolRegistry, id: usize) -> Option<usize> {
        let slot = self.exchange.get_mut(id)?;
        if *slot == 0 {
            *slot = registry
                .info(id as u32)
                .and_then(|i| Exchange::parse(&i.exchange))
                .and_then(|e| Exchange::ALL.iter().position(|&x| x == e))
                .map_or(u8::MAX, |i| i as u8 + 1);
        }
        match *slot {
            u8::MAX => None,
            i => Some(i as usize - 1),
        }
    }

    /// Judges every symbol the feed serves into `status.health` and counts them by state in
    /// `status.by_health`. `market`: the calendar (`None`: every exchange open); `closed`: the
    /// feed is disconnected for market hours. Returns how many judged (live or stale) symbols
    /// each connection carries, for [`DataClock::stalled`].
    pub fn judge(
        &mut self,
        status: &FeedStatus,
        registry: &SymbolRegistry,
        market: Option<&Market>,
        closed: bool,
        cfg: &StaleConfig,
        now_ns: i64,
    ) -> &[u32; MAX_CONNECTIONS] {
        let mut open = [true; Exchange::ALL.len()];
        if let Some(m) = market {
            for (i, &ex) in Exchange::ALL.iter().enumerate() {
                open[i] = m.is_open(ex);
            }
        }
        self.judged = [0; MAX_CONNECTIONS];
        let mut counts = [0u64; 7];
        let health: &SymbolHealth = &status.health;
        for (id, up) in status.symbols.iter().enumerate() {
            let up = up.load(Ordering::Relaxed);
            if up == upstream_state::NONE {
                continue;
            }
            let c = status.conn_of(id as u32);
            let conn_open = status
                .conns
                .get(c)
                .is_some_and(|s| s.state.load(Ordering::Relaxed) == feed_state::OPEN);
            let ex_open = self.exchange_of(registry, id).is_none_or(|e| open[e]);
            let id32 = id as u32;
            let was = health.state(id32);
            let st = if up == upstream_state::REJECTED {
                state::REJECTED
            } else if closed {
                state::CLOSED
            } else if !conn_open {
                state::DOWN
            } else if up == upstream_state::PENDING {
                state::PENDING
            } else if !ex_open {
                state::CLOSED
            } else {
                let usual = health.usual_ns(id32);
                let quiet = health.quiet_ns(id32, now_ns);
                let judged = was == state::LIVE || was == state::STALE;
                match judged && is_stale(quiet, usual, cfg.floor_ns(), cfg.factor) {
                    true => state::STALE,
                    false => state::LIVE,
                }
            };
            if st == state::LIVE || st == state::STALE {
                if let Some(j) = self.judged.get_mut(c) {
                    *j += 1;
                }
            }
            if was != st {
                health.set_state(id32, st, now_ns);
            }
            counts[st as usize] += 1;
        }
        for (a, n) in status.by_health.iter().zip(counts) {
            a.store(n, Ordering::Relaxed);
        }
        &self.judged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tickwire_engine::symbols::SymbolRegistry;

    const S: i64 = 1_000_000_000;

    fn setup() -> (FeedStatus, SymbolRegistry) {
        let mut reg = SymbolRegistry::with_capacity(4);
        reg.register("NSE", "SBIN", "1").unwrap();
        reg.register("MCX", "CRUDEOIL", "2").unwrap();
        let st = FeedStatus::with_health(Arc::new(SymbolHealth::new(4)));
        st.conns_used.store(1, Ordering::Relaxed);
        (st, reg)
    }

    #[test]
    fn stale_only_when_open_and_learned() {
        let (st, reg) = setup();
        let cfg = StaleConfig {
            floor: Duration::from_secs(2),
            factor: 4,
            stall_floor: Duration::from_secs(5),
        };
        let mut w = Watch::new(4, Instant::now());
        st.set_conn_state(0, feed_state::OPEN);
        st.set_symbol_state(0, upstream_state::PENDING);
        w.judge(&st, &reg, None, false, &cfg, S);
        assert_eq!(st.health.state(0), state::PENDING);
        st.set_symbol_state(0, upstream_state::LIVE);
        st.health.touch(0, S);
        w.judge(&st, &reg, None, false, &cfg, S);
        assert_eq!(st.health.state(0), state::LIVE);
        for i in 2..=10 {
            st.health.touch(0, i * S / 2);
        }
        // Learned (half-second gaps): quiet 1.9 s is fine, 2.1 s is stale.
        w.judge(&st, &reg, None, false, &cfg, 5 * S + 19 * S / 10);
        assert_eq!(st.health.state(0), state::LIVE);
        let judged = w.judge(&st, &reg, None, false, &cfg, 5 * S + 21 * S / 10);
        assert_eq!(judged[0], 1);
        assert_eq!(st.health.state(0), state::STALE);
        assert_eq!(
            st.by_health[state::STALE as usize].load(Ordering::Relaxed),
            1
        );
        // The next update: live at once.
        st.health.touch(0, 8 * S);
        assert_eq!(st.health.state(0), state::LIVE);
        // Closed by the feed's market hours, or down with its connection: never stale.
        w.judge(&st, &reg, None, true, &cfg, 100 * S);
        assert_eq!(st.health.state(0), state::CLOSED);
        st.set_conn_state(0, feed_state::BACKOFF);
        w.judge(&st, &reg, None, false, &cfg, 100 * S);
        assert_eq!(st.health.state(0), state::DOWN);
        // Back: judged from the return.
        st.set_conn_state(0, feed_state::OPEN);
        w.judge(&st, &reg, None, false, &cfg, 100 * S);
        assert_eq!(st.health.state(0), state::LIVE);
        w.judge(&st, &reg, None, false, &cfg, 101 * S);
        assert_eq!(st.health.state(0), state::LIVE);
    }

    #[test]
    fn data_clock_stalls_only_when_learned() {
        let cfg = StaleConfig {
            floor: Duration::from_secs(2),
            factor: 4,
            stall_floor: Duration::from_secs(5),
        };
        let mut d = DataClock::default();
        d.restart(S);
        assert!(d.stalled(1000 * S, &cfg).is_none(), "nothing learned");
        for i in 1..=9 {
            d.data(S + i * S / 10);
        }
        let last = S + 9 * S / 10;
        assert!(d.stalled(last + 4 * S, &cfg).is_none());
        let (quiet, usual) = d.stalled(last + 6 * S, &cfg).unwrap();
        assert_eq!((quiet, usual), (6 * S, S / 10));
        d.restart(last + 7 * S);
        assert!(d.stalled(last + 8 * S, &cfg).is_none(), "restarted");
    }
}
