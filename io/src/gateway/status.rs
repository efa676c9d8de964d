//! `GET /status` on the client port: the feed's state and counters, client counts, and every symbol
//! with upstream demand and its state.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::Shared;
use crate::feed::upstream_state;

/// `GET /status`: feed health, client counts, and every symbol with upstream demand and its state
/// (a symbol the broker has not confirmed shows `pending`).
pub(super) fn status_json(shared: &Shared) -> String {
    let f = &shared.feed;
    let c = &shared.stats;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut symbols = Vec::new();
    for (id, st) in f.symbols.iter().enumerate() {
        let state = match st.load(Ordering::Relaxed) {
            upstream_state::PENDING => "pending",
            upstream_state::LIVE => "live",
            upstream_state::REJECTED => "rejected",
            _ => continue,
        };
        if let Some(info) = shared.registry.info(id as u32) {
            symbols
                .push(json!({"exchange": info.exchange, "symbol": info.symbol, "upstream": state}));
        }
    }
    let last_error = f.last_error.lock().map(|e| e.clone()).unwrap_or_default();
    json!({
        "status": "ok",
        "broker": shared.cfg.broker,
        "feed": {
            "connected": f.connected.load(Ordering::Relaxed),
            "state": crate::feed::feed_state::name(f.feed_state()),
            "attempts": ld(&f.attempts),
            "connects": ld(&f.connects), "frames": ld(&f.frames), "ticks": ld(&f.ticks),
            "parse_errors": ld(&f.parse_errors), "broker_errors": ld(&f.broker_errors),
            "ring_waits": ld(&f.ring_waits), "last_error": last_error,
            "market": f.market.lock().map(|m| json!(*m)).unwrap_or_default(),
        },
        "clients": {"open": ld(&c.open), "accepted": ld(&c.accepted), "messages": ld(&c.messages), "slow_skips": ld(&c.slow_skips)},
        "symbols": {"registered": shared.registry.len(), "subscribed": symbols},
    })
    .to_string()
}
