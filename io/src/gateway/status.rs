//! `GET /status` on the client port: each feed's state, connections and counters, client counts,
//! and every symbol with upstream demand, its state, feed and connection.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use super::Shared;
use crate::feed::{feed_state, upstream_state, FeedStatus};

fn ld(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// One feed: its summary state, counters, and each connection.
fn feed_json(broker: &str, f: &FeedStatus) -> Value {
    let last_error = f.last_error.lock().map(|e| e.clone()).unwrap_or_default();
    let conns: Vec<Value> = f
        .used_conns()
        .iter()
        .map(|c| {
            json!({
                "state": feed_state::name(c.state.load(Ordering::Relaxed)),
                "attempts": ld(&c.attempts), "connects": ld(&c.connects),
                "symbols": ld(&c.symbols),
                "last_error": c.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
            })
        })
        .collect();
    json!({
        "broker": broker,
        "connected": f.connected.load(Ordering::Relaxed),
        "state": feed_state::name(f.feed_state()),
        "attempts": ld(&f.attempts),
        "connects": ld(&f.connects), "frames": ld(&f.frames), "ticks": ld(&f.ticks),
        "parse_errors": ld(&f.parse_errors), "broker_errors": ld(&f.broker_errors),
        "ring_waits": ld(&f.ring_waits), "resubscribes": ld(&f.resubscribes),
        "last_error": last_error,
        "market": f.market.lock().map(|m| json!(*m)).unwrap_or_default(),
        "connections": conns,
    })
}

/// `GET /status`: feed health, client counts, and every symbol with upstream demand and its state
/// (a symbol the broker has not confirmed shows `pending`). `feed` is the first feed (the only one
/// in most setups); `feeds` lists them all.
pub(super) fn status_json(shared: &Shared) -> String {
    let c = &shared.stats;
    let mut symbols = Vec::new();
    for (i, fr) in shared.feeds.iter().enumerate() {
        let f = &fr.status;
        for (id, st) in f.symbols.iter().enumerate() {
            let state = match st.load(Ordering::Relaxed) {
                upstream_state::PENDING => "pending",
                upstream_state::LIVE => "live",
                upstream_state::REJECTED => "rejected",
                _ => continue,
            };
            if shared.feed_of.get(id).is_some_and(|&x| x as usize != i) {
                continue;
            }
            if let Some(info) = shared.registry.info(id as u32) {
                symbols.push(json!({"exchange": info.exchange, "symbol": info.symbol,
                    "upstream": state, "broker": fr.broker, "connection": f.conn_of(id as u32)}));
            }
        }
    }
    let feeds: Vec<Value> = shared
        .feeds
        .iter()
        .map(|f| feed_json(&f.broker, &f.status))
        .collect();
    json!({
        "status": "ok",
        "broker": shared.cfg.broker,
        "feed": feeds[0],
        "feeds": feeds,
        "clients": {"open": ld(&c.open), "accepted": ld(&c.accepted), "messages": ld(&c.messages), "slow_skips": ld(&c.slow_skips), "conflated": ld(&c.conflated)},
        "symbols": {"registered": shared.registry.len(), "subscribed": symbols},
    })
    .to_string()
}
