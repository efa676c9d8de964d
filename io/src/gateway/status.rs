//! `GET /status` on the client port: each feed's state, connections and counters, client counts,
//! and every symbol with upstream demand, its state, feed and connection.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use super::{Shared, View};
use std::sync::Mutex;
use tickwire_engine::hist::Snapshot;

use tickwire_engine::calendar::{Exchange, Market};
use tickwire_engine::clock::rfc3339_utc;
use tickwire_engine::health;

use crate::feed::{feed_state, upstream_state, FeedStatus, LastError};
use crate::replay::Progress;

const NS: i64 = 1_000_000_000;

/// `market_hours`: the calendar's clock, `--dev`, and every exchange's session with its next
/// open and close (RFC 3339 UTC; null in dev mode or past a year).
fn market_json(m: &Market) -> Value {
    let now = m.clock().now_s();
    let t = |s: Option<i64>| json!(s.map(|s| rfc3339_utc(s.saturating_mul(NS))));
    let mut exchanges = serde_json::Map::new();
    for ex in Exchange::ALL {
        let (next_open, next_close) = match m.is_dev() {
            true => (None, None),
            false => (
                m.calendar().next_open(ex, now),
                m.calendar().next_close(ex, now),
            ),
        };
        exchanges.insert(
            ex.name().into(),
            json!({"session": m.session(ex).name(), "next_open": t(next_open),
                "next_close": t(next_close)}),
        );
    }
    json!({"dev": m.is_dev(), "now": rfc3339_utc(m.clock().now_ns()), "exchanges": exchanges})
}

fn ld(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// `last_error` (the message of an error no connect has cleared, or null), `last_error_at`, and
/// `recovered_error` (the last error a connect cleared, with both times) into `v`.
fn put_error(v: &mut Value, e: &Mutex<LastError>) {
    let e = e.lock().map(|e| e.clone()).unwrap_or_default();
    let time = |ns: i64| (ns > 0).then(|| rfc3339_utc(ns));
    if e.holds() {
        v["last_error"] = json!(e.message);
        v["last_error_at"] = json!(time(e.at_ns));
        v["recovered_error"] = Value::Null;
    } else {
        v["last_error"] = Value::Null;
        v["last_error_at"] = Value::Null;
        v["recovered_error"] = match e.message.is_empty() {
            true => Value::Null,
            false => json!({"message": e.message, "at": time(e.at_ns),
                "recovered_at": time(e.cleared_ns)}),
        };
    }
}

fn since(ns: &std::sync::atomic::AtomicI64) -> Value {
    let ns = ns.load(Ordering::Relaxed);
    json!((ns > 0).then(|| rfc3339_utc(ns)))
}

/// One feed: its summary state, counters, and each connection.
fn feed_json(broker: &str, f: &FeedStatus, replay: bool) -> Value {
    let conns: Vec<Value> = f
        .used_conns()
        .iter()
        .map(|c| {
            let mut v = json!({
                "state": feed_state::name(c.state.load(Ordering::Relaxed)),
                "since": since(&c.since_ns),
                "attempts": ld(&c.attempts), "connects": ld(&c.connects),
                "symbols": ld(&c.symbols), "stalls": ld(&c.stalls),
            });
            put_error(&mut v, &c.last_error);
            v
        })
        .collect();
    let state = f.feed_state();
    let closed = state == feed_state::CLOSED;
    let reopens = f.reopens_at_s.load(Ordering::Relaxed);
    let mut v = json!({
        "broker": broker,
        "connected": f.connected.load(Ordering::Relaxed),
        "state": if replay { "replay" } else { feed_state::name(state) },
        "closed_reason": closed.then_some("market hours"),
        "reconnect_at": (closed && reopens > 0).then(|| rfc3339_utc(reopens.saturating_mul(NS))),
        "since": since(&f.since_ns),
        "attempts": ld(&f.attempts),
        "connects": ld(&f.connects), "frames": ld(&f.frames), "ticks": ld(&f.ticks),
        "parse_errors": ld(&f.parse_errors), "broker_errors": ld(&f.broker_errors),
        "ring_waits": ld(&f.ring_waits), "resubscribes": ld(&f.resubscribes),
        "stalls": ld(&f.stalls),
        "symbols_by_health": by_health(f),
        "market": f.market.lock().map(|m| json!(*m)).unwrap_or_default(),
        "connections": conns,
    });
    put_error(&mut v, &f.last_error);
    v
}

/// `{"live": n, "stale": n, …}`: the feed's symbols by health, as of its last check.
fn by_health(f: &FeedStatus) -> Value {
    let mut m = serde_json::Map::new();
    for (st, n) in f.by_health.iter().enumerate().skip(1) {
        m.insert(health::state::name(st as u8).into(), json!(ld(n)));
    }
    Value::Object(m)
}

/// `GET /status`: feed health, client counts, and every symbol with upstream demand and its state
/// (a symbol the broker has not confirmed shows `pending`). `feed` is the first feed (the only one
/// in most setups); `feeds` lists them all.
pub(super) fn status_json(shared: &Shared, view: &View) -> String {
    let c = &shared.stats;
    let now = tickwire_engine::clock::now_ns();
    let by_mode = view.fanout.by_mode();
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
                let h = &f.health;
                let id = id as u32;
                let updated = h.updated_ns(id);
                let ms = |ns: i64| ns / 1_000_000;
                symbols.push(json!({"exchange": info.exchange, "symbol": info.symbol,
                    "upstream": state, "broker": fr.broker, "connection": f.conn_of(id),
                    "health": health::state::name(h.state(id)),
                    "age_ms": (updated > 0).then(|| ms((now - updated).max(0))),
                    "usual_interval_ms": h.usual_ns(id).map(ms)}));
            }
        }
    }
    let feeds: Vec<Value> = shared
        .feeds
        .iter()
        .map(|f| feed_json(&f.broker, &f.status, shared.replay.is_some()))
        .collect();
    json!({
        "status": "ok",
        "mode": if shared.replay.is_some() { "replay" } else { "live" },
        "replay": shared.replay.as_deref().map(replay_json),
        "broker": shared.cfg.broker,
        "feed": feeds[0],
        "feeds": feeds,
        "clients": {"open": ld(&c.open), "accepted": ld(&c.accepted), "messages": ld(&c.messages), "bytes_out": ld(&c.bytes_out), "slow_skips": ld(&c.slow_skips), "conflated": ld(&c.conflated),
            "refused": ld(&c.refused), "evicted": ld(&c.evicted),
            "authenticated": shared.limit_state.clients.lock().map(|c| c.total()).unwrap_or(0),
            "limits": c.limits.json()},
        "symbols": {"registered": shared.registry.len(), "subscribed": symbols},
        "market_hours": market_json(&shared.market),
        "latency": {
            "wire_to_shm": hist_json(&shared.router.wire_to_shm.snapshot()),
            "wire_to_client": hist_json(&c.wire_to_client.snapshot()),
            "router_pass": hist_json(&shared.router.router_pass.snapshot()),
        },
        "shm": shared.shm.as_ref().map(|s| json!({"path": s.path,
            "ring_capacity": s.ring_capacity, "symbol_capacity": s.symbol_capacity,
            "write_pos": (s.write_pos)()})),
        "subscriptions_by_mode": {"ltp": by_mode[0], "quote": by_mode[1], "depth": by_mode[2]},
        "sink": shared.sink.as_ref().map(|k| k.json(
            shared.shm.as_ref().map_or(0, |s| (s.write_pos)()), now)),
    })
    .to_string()
}

/// A replay's progress: the journal, the pace, how far it got in recorded time.
fn replay_json(p: &Progress) -> Value {
    let at = p.at_ns.load(Ordering::Relaxed);
    json!({
        "journal": p.journal, "speed": p.speed,
        "frames": ld(&p.frames), "ticks": ld(&p.ticks),
        "recorded_at": (at > 0).then(|| rfc3339_utc(at)),
        "done": p.done.load(Ordering::Relaxed),
    })
}

/// A latency histogram for `/status` (cumulative since start): count, sum, percentiles read
/// from the buckets (within a factor of two, capped at the maximum; `tickwire_engine::hist`),
/// the maximum, and `[upper_bound_ns, cumulative_count]` per bucket.
pub(super) fn hist_json(s: &Snapshot) -> Value {
    let buckets: Vec<[u64; 2]> = s.cumulative().map(|(le, n)| [le, n]).collect();
    json!({
        "count": s.count(), "sum_ns": s.sum,
        "p50_ns": s.quantile(0.5), "p90_ns": s.quantile(0.9), "p99_ns": s.quantile(0.99),
        "p999_ns": s.quantile(0.999), "max_ns": s.max, "buckets": buckets,
    })
}
