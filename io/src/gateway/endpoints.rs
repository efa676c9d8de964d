//! The plain HTTP endpoints on the client port besides `/status` (`status.rs`) and `/metrics`
//! (`metrics.rs`): `/health`, `/subscriptions` and `/ticks/latest`, and the answer to a data
//! endpoint once its API key is known (`docs/observability.md` has every shape).
//!
//! All of them are answered on the client IO thread from what it can read without a lock on the
//! tick path: the feeds' status atomics, its own fan-out index ([`View::fanout`]) and the
//! last-value table ([`View::last`]).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde_json::{json, Value};
use tickwire_engine::clock::rfc3339_utc;
use tickwire_engine::router::{Mode, ModeSet};

use super::protocol::{label, market_data, parse_mode};
use super::{Shared, View};
use crate::feed::{feed_state, upstream_state};
use crate::http::{query_param, response, response_with};

/// A data endpoint: answered once its API key checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `GET /status`.
    Status,
    /// `GET /subscriptions`.
    Subscriptions,
    /// `GET /ticks/latest?…` with its query string.
    TicksLatest(String),
}

impl Endpoint {
    /// The data endpoint at `path` (no query) with `query`, if it is one.
    pub(crate) fn of(path: &str, query: &str) -> Option<Self> {
        match path {
            "/status" => Some(Self::Status),
            "/subscriptions" => Some(Self::Subscriptions),
            "/ticks/latest" => Some(Self::TicksLatest(query.to_string())),
            _ => None,
        }
    }

    fn path(&self) -> &'static str {
        match self {
            Self::Status => "/status",
            Self::Subscriptions => "/subscriptions",
            Self::TicksLatest(_) => "/ticks/latest",
        }
    }
}

fn json_reply(status: &str, v: &Value) -> String {
    response(status, "application/json", &v.to_string())
}

/// The answer to a data endpoint: its JSON, or 401 without a valid key.
pub(crate) fn answer(ep: &Endpoint, key_ok: bool, shared: &Shared, view: &View) -> String {
    if !key_ok {
        return response_with(
            "401 Unauthorized",
            "WWW-Authenticate: Bearer\r\n",
            "text/plain",
            &format!(
                "{} needs an API key: send X-API-Key: KEY or Authorization: Bearer KEY\n",
                ep.path()
            ),
        );
    }
    match ep {
        Endpoint::Status => response(
            "200 OK",
            "application/json",
            &super::status::status_json(shared, view),
        ),
        Endpoint::Subscriptions => json_reply("200 OK", &subscriptions_json(shared, view)),
        Endpoint::TicksLatest(q) => match ticks_latest(q, shared, view) {
            Ok(v) => json_reply("200 OK", &v),
            Err(e) => json_reply("400 Bad Request", &json!({"status": "error", "message": e})),
        },
    }
}

/// `GET /health` (`head`: for `HEAD`, no body): 200 when every feed is open or shut for market
/// hours, else 503 with a reason per feed that is not.
pub(crate) fn health_reply(shared: &Shared, head: bool) -> String {
    let (healthy, v) = health_json(shared);
    let status = if healthy {
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    let body = if head { String::new() } else { v.to_string() };
    response(status, "application/json", &body)
}

/// Whether every feed is healthy, and the body: `status`, `reasons`, and each feed's state.
pub(crate) fn health_json(shared: &Shared) -> (bool, Value) {
    let mut reasons = Vec::new();
    let mut feeds = Vec::new();
    for f in &shared.feeds {
        let st = f.status.feed_state();
        let since_ns = f.status.since_ns.load(Ordering::Relaxed);
        let since = (since_ns > 0).then(|| rfc3339_utc(since_ns));
        feeds.push(json!({"broker": f.broker, "state": feed_state::name(st), "since": since}));
        if st == feed_state::OPEN || st == feed_state::CLOSED {
            continue;
        }
        let mut why = format!("feed {}: {}", f.broker, feed_state::name(st));
        if let Some(s) = &since {
            why.push_str(&format!(" since {s}"));
        }
        // The feed's error, else the first connection's that is not open.
        let err = f
            .status
            .last_error
            .lock()
            .ok()
            .filter(|e| e.holds())
            .map(|e| e.message.clone())
            .or_else(|| {
                f.status.used_conns().iter().find_map(|c| {
                    (c.state.load(Ordering::Relaxed) != feed_state::OPEN)
                        .then(|| c.last_error.lock().ok())
                        .flatten()
                        .filter(|e| e.holds())
                        .map(|e| e.message.clone())
                })
            });
        if let Some(e) = err {
            why.push_str(&format!(", last error {e}"));
        }
        reasons.push(why);
    }
    let ok = reasons.is_empty();
    let status = if ok { "ok" } else { "unhealthy" };
    (
        ok,
        json!({"status": status, "reasons": reasons, "feeds": feeds}),
    )
}

fn upstream_name(st: u8) -> &'static str {
    match st {
        upstream_state::PENDING => "pending",
        upstream_state::LIVE => "live",
        upstream_state::REJECTED => "rejected",
        _ => "none",
    }
}

/// The highest mode in `modes`, if any.
fn top_mode(modes: ModeSet) -> Option<Mode> {
    Mode::ALL.into_iter().rev().find(|m| modes & m.bit() != 0)
}

/// `GET /subscriptions`: every symbol subscribed upstream or held by a client, with its feed,
/// connection, upstream state, the highest mode held and the number of clients holding it
/// (symbols kept for shm readers with `--subscribe` count no client).
pub(crate) fn subscriptions_json(shared: &Shared, view: &View) -> Value {
    // id → (clients, modes held)
    let mut held: BTreeMap<u32, (usize, ModeSet)> = view
        .fanout
        .held()
        .map(|(id, n, modes)| (id, (n, modes)))
        .collect();
    for &id in &shared.cfg.pinned {
        held.entry(id).or_default().1 |= Mode::Depth.bit();
    }
    for (i, f) in shared.feeds.iter().enumerate() {
        for (id, st) in f.status.symbols.iter().enumerate() {
            let mine = shared.feed_of.get(id).is_none_or(|&x| x as usize == i);
            if mine && st.load(Ordering::Relaxed) != upstream_state::NONE {
                held.entry(id as u32).or_default();
            }
        }
    }
    let mut clients_total = 0;
    let subs: Vec<Value> = held
        .iter()
        .filter_map(|(&id, &(clients, modes))| {
            let info = shared.registry.info(id)?;
            let feed = shared.feed(id);
            clients_total += clients;
            Some(json!({
                "exchange": info.exchange, "symbol": info.symbol, "broker": feed.broker,
                "connection": feed.status.conn_of(id),
                "upstream": upstream_name(feed.status.symbol_state(id)),
                "mode": top_mode(modes).map(label), "clients": clients,
            }))
        })
        .collect();
    json!({"status": "success", "count": subs.len(), "client_subscriptions": clients_total,
        "subscriptions": subs})
}

/// `GET /ticks/latest?symbols=NSE:SBIN,NSE:INFY[&mode=quote|depth|ltp]`: each known symbol's
/// last value as the `market_data` message a client holding it in that mode would get (Quote by
/// default); unknown symbols, and known ones with no value yet, are listed in `errors`.
pub(crate) fn ticks_latest(query: &str, shared: &Shared, view: &View) -> Result<Value, String> {
    let list = query_param(query, "symbols")
        .filter(|s| !s.trim().is_empty())
        .ok_or("symbols=EXCHANGE:SYMBOL,… is required")?;
    let mode = match query_param(query, "mode") {
        Some(m) => parse_mode(&Value::String(m))?,
        None => Mode::Quote,
    };
    let mut data = Vec::new();
    let mut errors = Vec::new();
    let mut out = String::with_capacity(512);
    for key in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let id = tickwire_engine::symbols::split_key(key)
            .and_then(|(e, s)| shared.registry.lookup(&e.to_ascii_uppercase(), s));
        let Some(id) = id else {
            errors.push(json!({"symbol": key, "error": "unknown symbol"}));
            continue;
        };
        let (Some(info), Some(t)) = (shared.registry.info(id), view.last.last_value(id)) else {
            errors.push(json!({"symbol": key, "error": "no value yet"}));
            continue;
        };
        out.clear();
        let broker = &shared.feed(id).broker;
        market_data(&mut out, &t, mode, &info.exchange, &info.symbol, broker);
        // Formatted by the same code as the WebSocket's messages, so the fields are identical.
        match serde_json::from_str::<Value>(&out) {
            Ok(v) => data.push(v),
            Err(e) => errors.push(json!({"symbol": key, "error": e.to_string()})),
        }
    }
    let status = match (data.is_empty(), errors.is_empty()) {
        (_, true) => "success",
        (true, false) => "error",
        (false, false) => "partial",
    };
    Ok(json!({"status": status, "mode": label(mode), "data": data, "errors": errors}))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;

    use tickwire_engine::symbols::SymbolRegistry;

    use crate::feed::FeedStatus;
    use crate::gateway::{FeedRef, GatewayConfig};

    /// A `Shared` with one symbol (NSE:SBIN) and `feeds`, for the endpoints' unit tests.
    pub(crate) fn shared(feeds: &[(&str, Arc<FeedStatus>)]) -> Shared {
        let mut reg = SymbolRegistry::with_capacity(4);
        reg.register("NSE", "SBIN", "779521").unwrap();
        Shared {
            cfg: GatewayConfig::default(),
            registry: Arc::new(reg),
            feeds: feeds
                .iter()
                .map(|(b, s)| FeedRef {
                    broker: (*b).into(),
                    status: s.clone(),
                })
                .collect(),
            feed_of: Arc::new(vec![0; 4]),
            stats: Arc::default(),
            limit_state: Default::default(),
            market: Arc::new(tickwire_engine::calendar::Market::always_open()),
            router: Arc::default(),
            shm: None,
            sink: None,
            classes: Default::default(),
            replay: None,
        }
    }

    #[test]
    fn health_names_each_feed_that_is_not_open_or_closed() {
        let (a, b, c) = (
            Arc::new(FeedStatus::new(4)),
            Arc::new(FeedStatus::new(4)),
            Arc::new(FeedStatus::new(4)),
        );
        a.state.store(feed_state::OPEN, Ordering::Relaxed);
        b.state.store(feed_state::CLOSED, Ordering::Relaxed);
        let sh = shared(&[("zerodha", a.clone()), ("upstox", b.clone())]);
        let (ok, v) = health_json(&sh);
        assert!(ok, "open and closed for market hours are healthy: {v}");
        assert_eq!(v["status"], "ok");
        assert!(health_reply(&sh, false).starts_with("HTTP/1.1 200 OK"));

        c.state.store(feed_state::BACKOFF, Ordering::Relaxed);
        c.since_ns
            .store(1_796_270_706_789_000_000, Ordering::Relaxed);
        *c.last_error.lock().unwrap() = crate::feed::LastError {
            message: "connection refused".into(),
            at_ns: 1,
            cleared_ns: 0,
        };
        let sh = shared(&[("zerodha", a), ("fyers", c)]);
        let (ok, v) = health_json(&sh);
        assert!(!ok);
        assert_eq!(v["status"], "unhealthy");
        assert_eq!(
            v["reasons"],
            json!([
                "feed fyers: backoff since 2026-12-03T04:05:06.789Z, last error connection refused"
            ])
        );
        let head = health_reply(&sh, true);
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable"),
            "{head}"
        );
        assert!(head.ends_with("\r\n\r\n"), "HEAD: no body");
    }

    #[test]
    fn endpoints_by_path() {
        assert_eq!(Endpoint::of("/status", ""), Some(Endpoint::Status));
        assert_eq!(
            Endpoint::of("/ticks/latest", "symbols=NSE:SBIN"),
            Some(Endpoint::TicksLatest("symbols=NSE:SBIN".into()))
        );
        assert_eq!(Endpoint::of("/", ""), None);
        assert_eq!(
            top_mode(Mode::Ltp.bit() | Mode::Quote.bit()),
            Some(Mode::Quote)
        );
        assert_eq!(top_mode(0), None);
    }
}
