//! The mock's own side channel for tests, on the broker port in every dialect (paths no broker
//! uses):
//!
//! - `GET /sent?token=T`: the recent values sent for an instrument (newest last), raw wire integers.
//! - `GET /connections`: the open WebSocket connections, each with its id and the instruments it is
//!   subscribed to (OpenAlgo names).
//! - `GET /drop?conn=ID`: ends connection `ID` with a bare TCP close (a broker server dying), so a
//!   test can kill one connection of a pool.
//! - `GET /mute?token=T` / `GET /unmute?token=T`: stops (resumes) making updates of one instrument
//!   while the others go on: a symbol that goes quiet.
//! - `GET /mute?conn=ID` / `GET /unmute?conn=ID`: stops (resumes) sending market data on one
//!   connection while its socket and heartbeats stay up: a stalled connection.
//! - `GET /outage?secs=N`: the broker goes away for N seconds (default 10, at most 3,600): every
//!   open WebSocket connection ends with a bare TCP close, as with `/drop`, and every WebSocket
//!   upgrade until then is answered by closing the TCP connection at once (a broker whose server
//!   is down behind a load balancer). Plain HTTP, this side channel included, keeps answering, so
//!   a test can still look. After N seconds upgrades are accepted again. `tickwire demo` embeds
//!   the mock on `--broker-port`, so this is how a test stops and restarts the demo's broker.
//!   The answer is `{"dropped": n, "secs": N}`; a new outage replaces the one running.

use std::sync::atomic::Ordering;

use tickwire_engine::clock::now_ns;

use serde_json::{json, Value};
use tickwire_io::http::Head;

use super::dialect::Reply;
use super::server::Shared;

/// Answers a side-channel request, `None` for any other path.
pub(super) fn http(s: &Shared, head: &Head) -> Option<Reply> {
    let body = match head.path.as_str() {
        "/sent" => sent_json(s, head.query.get("token").and_then(|t| t.parse().ok())),
        "/connections" => connections_json(s),
        "/drop" => {
            let id: Option<u64> = head.query.get("conn").and_then(|c| c.parse().ok());
            json!({"dropped": id.is_some_and(|id| drop_conn(s, id))}).to_string()
        }
        p @ ("/mute" | "/unmute") => {
            let on = p == "/mute";
            let q = |k: &str| head.query.get(k).and_then(|v| v.parse::<u64>().ok());
            let done = match (q("token"), q("conn")) {
                (Some(t), _) => u32::try_from(t)
                    .ok()
                    .and_then(|t| s.token_index.get(&t))
                    .map(|&i| s.muted[i].store(on, Ordering::Relaxed))
                    .is_some(),
                (None, Some(id)) => s.conns.lock().is_ok_and(|conns| {
                    conns
                        .iter()
                        .filter(|c| c.id == id && !c.closed.load(Ordering::Relaxed))
                        .map(|c| c.muted.store(on, Ordering::Relaxed))
                        .count()
                        > 0
                }),
                _ => false,
            };
            json!({"muted": on, "done": done}).to_string()
        }
        "/outage" => {
            let secs: Option<u64> = head.query.get("secs").and_then(|v| v.parse().ok());
            let secs = secs.unwrap_or(10).min(3600);
            json!({"dropped": outage(s, secs), "secs": secs}).to_string()
        }
        _ => return None,
    };
    Some(Reply::new("200 OK", "application/json", body))
}

fn connections_json(s: &Shared) -> String {
    let Ok(conns) = s.conns.lock() else {
        return "[]".into();
    };
    let list: Vec<Value> = conns
        .iter()
        .filter(|c| !c.closed.load(Ordering::Relaxed))
        .map(|c| {
            let symbols: Vec<String> = match c.session.lock() {
                Ok(session) => (0..s.rows.len())
                    .filter(|&i| session.wants(i).is_some())
                    .map(|i| {
                        let (x, sym) = tickwire_io::kite::instruments::openalgo_name(&s.rows[i]);
                        format!("{x}:{sym}")
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            json!({"id": c.id, "symbols": symbols})
        })
        .collect();
    Value::Array(list).to_string()
}

fn drop_conn(s: &Shared, id: u64) -> bool {
    let Ok(conns) = s.conns.lock() else {
        return false;
    };
    match conns
        .iter()
        .find(|c| c.id == id && !c.closed.load(Ordering::Relaxed))
    {
        Some(c) => {
            c.kill.store(true, Ordering::Relaxed);
            c.thread.unpark();
            true
        }
        None => false,
    }
}

/// Starts an outage of `secs` seconds: refuses upgrades until then and ends every open
/// connection. Returns how many connections were ended.
fn outage(s: &Shared, secs: u64) -> usize {
    let until = now_ns().saturating_add(secs.saturating_mul(1_000_000_000) as i64);
    s.outage_until_ns.store(until, Ordering::Relaxed);
    let Ok(conns) = s.conns.lock() else {
        return 0;
    };
    let mut dropped = 0;
    for c in conns.iter().filter(|c| !c.closed.load(Ordering::Relaxed)) {
        c.kill.store(true, Ordering::Relaxed);
        c.thread.unpark();
        dropped += 1;
    }
    dropped
}

/// True while an outage (`/outage`) runs: WebSocket upgrades are refused and sessions end. One
/// relaxed load when no outage ever started (the clock is read only after one did).
pub(super) fn refusing(s: &Shared) -> bool {
    let until = s.outage_until_ns.load(Ordering::Relaxed);
    until != 0 && now_ns() < until
}

/// `GET /sent?token=T`: the recent values sent for an instrument (newest last), raw wire integers.
fn sent_json(s: &Shared, token: Option<u32>) -> String {
    let Some(&i) = token.and_then(|t| s.token_index.get(&t)) else {
        return "[]".into();
    };
    let Ok(h) = s.history.lock() else {
        return "[]".into();
    };
    let items: Vec<Value> = h[i]
        .iter()
        .map(|r| {
            json!({
                "token": r.token, "ltp": r.ltp, "last_qty": r.last_qty, "avg_price": r.avg_price,
                "volume": r.volume, "buy_qty": r.buy_qty, "sell_qty": r.sell_qty, "open": r.open,
                "high": r.high, "low": r.low, "close": r.close, "oi": r.oi, "exchange_ts": r.exchange_ts,
                "bids": r.bids.iter().map(|l| [l.price, l.qty, l.orders as u32]).collect::<Vec<_>>(),
                "asks": r.asks.iter().map(|l| [l.price, l.qty, l.orders as u32]).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(items).to_string()
}
