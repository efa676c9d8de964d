//! Status pushed to clients: no silent stalls.
//!
//! A client holding a feed's symbols is told, with one `status_update` message, when that feed
//! becomes `connected`, `degraded` (some of its connections down, or some of its symbols stale,
//! rejected, pending or down) or `disconnected`, or is `closed` for market hours; when the session
//! of an exchange it holds symbols of opens or closes; and when one of its symbols goes `stale` or
//! turns `live` again. The shape (`docs/client-protocol-notes.md`) has a `type` no OpenAlgo client
//! acts on and no top-level `status` (which OpenAlgo's clients read as a request's outcome), so the
//! official SDK ignores it. `{"action": "unsubscribe_status"}` turns the messages off for a
//! connection, `subscribe_status` on again.
//!
//! [`Observed`] is computed once per timers pass (every 100 ms) for the whole IO thread from the
//! feeds' atomics; each session compares it with what it last told its client ([`Told`]).
//! `degraded` must hold for [`DEGRADED_AFTER`] before it is told: every subscribe is `pending` for a
//! moment, and that is not news.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tickwire_engine::calendar::{Exchange, Session as MarketSession};
use tickwire_engine::clock::now_ns;
use tickwire_engine::health::state;

use super::Shared;
use crate::feed::{feed_state, FeedStatus};

/// How long a feed must stay degraded before clients are told.
pub const DEGRADED_AFTER: Duration = Duration::from_secs(1);

/// A feed's condition as clients are told it.
pub mod condition {
    /// Not known yet (nothing told).
    pub const UNKNOWN: u8 = 0;
    /// Every connection open, every subscribed symbol live (or closed by its exchange's hours).
    pub const CONNECTED: u8 = 1;
    /// Some connections down, or some symbols stale, rejected, pending or down.
    pub const DEGRADED: u8 = 2;
    /// No connection open.
    pub const DISCONNECTED: u8 = 3;
    /// Disconnected on purpose: its markets are shut.
    pub const CLOSED: u8 = 4;

    /// The word clients see.
    pub fn name(c: u8) -> &'static str {
        match c {
            CONNECTED => "connected",
            DEGRADED => "degraded",
            DISCONNECTED => "disconnected",
            CLOSED => "closed",
            _ => "unknown",
        }
    }
}

/// One feed as observed this pass.
#[derive(Clone, Debug, Default)]
pub struct FeedView {
    /// The condition clients are told ([`condition`]).
    pub told: u8,
    /// Why, in words.
    pub reason: String,
    /// Connections open and in use.
    pub open: usize,
    /// Connections in use.
    pub total: usize,
    /// `degraded` seen since this instant, not yet told.
    degraded_since: Option<Instant>,
}

/// What a client IO thread observed this timers pass.
#[derive(Debug, Default)]
pub struct Observed {
    /// Per feed, in `Shared::feeds` order.
    pub feeds: Vec<FeedView>,
    /// Per exchange (`Exchange::ALL` order): its session now.
    pub sessions: Vec<MarketSession>,
}

impl Observed {
    /// Looks at every feed and exchange again.
    pub fn refresh(&mut self, shared: &Shared, now: Instant) {
        self.feeds
            .resize_with(shared.feeds.len(), FeedView::default);
        for (v, f) in self.feeds.iter_mut().zip(&shared.feeds) {
            let (raw, reason, open, total) = assess(&f.status);
            v.open = open;
            v.total = total;
            if raw == condition::DEGRADED && v.told != condition::DEGRADED {
                let since = *v.degraded_since.get_or_insert(now);
                if now.duration_since(since) < DEGRADED_AFTER {
                    continue;
                }
            } else {
                v.degraded_since = None;
            }
            v.told = raw;
            v.reason = reason;
        }
        self.sessions.clear();
        self.sessions
            .extend(Exchange::ALL.iter().map(|&e| shared.market.session(e)));
    }
}

/// A feed's condition now, why, and its open and used connections.
fn assess(f: &FeedStatus) -> (u8, String, usize, usize) {
    let conns = f.used_conns();
    let total = conns.len();
    let open = conns
        .iter()
        .filter(|c| c.state.load(Ordering::Relaxed) == feed_state::OPEN)
        .count();
    let st = f.feed_state();
    if st == feed_state::CLOSED {
        return (condition::CLOSED, "market hours".into(), open, total);
    }
    if open == 0 {
        let err = f.last_error.lock().map(|e| e.clone()).unwrap_or_default();
        let mut why = feed_state::name(st).to_string();
        if err.holds() {
            why = format!("{why}: {}", err.message);
        }
        return (condition::DISCONNECTED, why, open, total);
    }
    let n = |s: u8| f.by_health[s as usize].load(Ordering::Relaxed);
    let mut parts = Vec::new();
    if open < total {
        parts.push(format!("{open} of {total} connections open"));
    }
    for s in [state::STALE, state::REJECTED, state::PENDING, state::DOWN] {
        if n(s) > 0 {
            parts.push(format!("{} {}", n(s), state::name(s)));
        }
    }
    match parts.is_empty() {
        true => (condition::CONNECTED, String::new(), open, total),
        false => (condition::DEGRADED, parts.join(", "), open, total),
    }
}

/// What one session last told its client.
#[derive(Debug, Default)]
pub struct Told {
    /// Off after `unsubscribe_status`.
    pub off: bool,
    /// Per feed: the condition last told (0: none yet; set without a message when the client
    /// first holds one of its symbols).
    feeds: Vec<u8>,
    /// Per exchange: the session last told, as `session_code` (0: none yet).
    sessions: [u8; Exchange::ALL.len()],
}

fn session_code(s: MarketSession) -> u8 {
    match s {
        MarketSession::Closed => 1,
        MarketSession::PreOpen => 2,
        MarketSession::Open => 3,
    }
}

/// The session's word for clients.
pub fn session_name(s: MarketSession) -> &'static str {
    match s {
        MarketSession::Closed => "closed",
        MarketSession::PreOpen => "pre_open",
        MarketSession::Open => "open",
    }
}

impl Told {
    /// Messages for the feeds (bit `i` of `held`: the client holds a symbol of feed `i`) and
    /// exchanges (bit `e` of `exchanges`, `Exchange::ALL` order) whose condition changed since
    /// last told. What is no longer held is forgotten, so holding it again starts quietly.
    pub fn feeds_and_markets(
        &mut self,
        o: &Observed,
        shared: &Shared,
        held: u64,
        exchanges: u32,
        out: &mut Vec<Value>,
    ) {
        self.feeds.resize(o.feeds.len(), condition::UNKNOWN);
        let ts = now_ns() / 1_000_000;
        for (i, v) in o.feeds.iter().enumerate().take(64) {
            let told = &mut self.feeds[i];
            if held & (1 << i) == 0 || v.told == condition::UNKNOWN {
                *told = condition::UNKNOWN;
                continue;
            }
            if *told != condition::UNKNOWN && *told != v.told && !self.off {
                out.push(json!({"type": "status_update", "scope": "feed",
                    "broker": shared.feeds[i].broker, "state": condition::name(v.told),
                    "reason": v.reason, "connections": {"open": v.open, "total": v.total},
                    "ts": ts}));
            }
            *told = v.told;
        }
        for (e, &s) in o.sessions.iter().enumerate() {
            let told = &mut self.sessions[e];
            if exchanges & (1 << e) == 0 {
                *told = 0;
                continue;
            }
            let code = session_code(s);
            if *told != 0 && *told != code && !self.off {
                out.push(json!({"type": "status_update", "scope": "market",
                    "exchange": Exchange::ALL[e].name(), "state": session_name(s), "ts": ts}));
            }
            *told = code;
        }
    }
}

/// The message for a symbol that went stale or turned live again.
pub fn symbol_update(shared: &Shared, id: u32, exchange: &str, symbol: &str, st: u8) -> Value {
    let h = shared.health();
    let now = now_ns();
    let updated = h.updated_ns(id);
    json!({"type": "status_update", "scope": "symbol", "exchange": exchange, "symbol": symbol,
        "broker": shared.feed(id).broker, "state": state::name(st),
        "quiet_ms": (updated > 0).then(|| (now - updated).max(0) / 1_000_000),
        "usual_interval_ms": h.usual_ns(id).map(|u| u / 1_000_000), "ts": now / 1_000_000})
}

/// The index of `exchange` in `Exchange::ALL`, if the calendar knows it.
pub fn exchange_bit(exchange: &str) -> u32 {
    Exchange::parse(exchange)
        .and_then(|e| Exchange::ALL.iter().position(|&x| x == e))
        .map_or(0, |i| 1 << i)
}
