//! A session's requests: authenticate, subscribe, unsubscribe, and the small ones (ping, broker
//! info), each answered in OpenAlgo's shapes (`docs/client-protocol-notes.md`).

use std::collections::VecDeque;
use std::time::Instant;

use serde_json::{json, Map, Value};
use tickwire_engine::clock::{now_ns, rfc3339_utc};
use tickwire_engine::last::LastValues;
use tickwire_engine::router::{Control, Mode, ModeSet};
use tickwire_engine::symbols::SymbolId;

use super::{error, overall, Session, Sub};
use crate::feed::{feed_state, upstream_state};
use crate::gateway::limits::Violation;
use crate::gateway::notices;

/// One usable request entry: symbol, exchange, and its own `mode` if it has one.
type Entry<'a> = (String, String, Option<&'a Value>);
use crate::gateway::keys::{Auth, Check};
use crate::gateway::protocol::{label, parse_mode};
use crate::gateway::{Shared, MAX_OUTBOX};

impl Session {
    /// One request → exactly one reply (`client-protocol.md` §2); None while an `authenticate`
    /// waits for the verifier (its reply comes with the verdict, `Session::on_verdict`).
    pub(super) fn request(
        &mut self,
        raw: &[u8],
        shared: &Shared,
        last: &dyn LastValues,
        outbox: &mut VecDeque<Control>,
        auth: &mut Auth,
    ) -> Option<Value> {
        let v: Value = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(_) => return Some(error("INVALID_JSON", "Invalid JSON message")),
        };
        if let Value::Object(o) = &v {
            let verb = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            if matches!(
                verb("action").or_else(|| verb("type")),
                Some("authenticate" | "auth")
            ) {
                return self.authenticate(o, shared, auth);
            }
        }
        Some(self.dispatch(v, shared, last, outbox))
    }

    /// Every request but `authenticate`.
    fn dispatch(
        &mut self,
        v: Value,
        shared: &Shared,
        last: &dyn LastValues,
        outbox: &mut VecDeque<Control>,
    ) -> Value {
        let Value::Object(o) = v else {
            let kind = if v.is_array() { "list" } else { "non-object" };
            return error(
                "SERVER_ERROR",
                &format!("'{kind}' object has no attribute 'get'"),
            );
        };
        let verb = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let action = verb("action").or_else(|| verb("type"));
        let unsubscribe_all =
            verb("action") == Some("unsubscribe_all") || verb("type") == Some("unsubscribe_all");
        let needs_auth = !matches!(
            action,
            Some("authenticate" | "auth" | "ping" | "get_supported_brokers") | None
        );
        let known = matches!(
            action,
            Some(
                "authenticate"
                    | "auth"
                    | "ping"
                    | "get_supported_brokers"
                    | "subscribe"
                    | "unsubscribe"
                    | "unsubscribe_all"
                    | "get_broker_info"
                    | "subscribe_orders"
                    | "unsubscribe_orders"
                    | "subscribe_status"
                    | "unsubscribe_status"
            )
        );
        if known && needs_auth && !self.authed {
            return error("NOT_AUTHENTICATED", "You must authenticate first");
        }
        let broker = shared.cfg.broker.as_str();
        let mut reply = match action {
            Some("ping") => {
                let mut r = json!({"type": "pong", "status": "success", "server_timestamp": now_ns() / 1_000_000});
                for k in ["timestamp", "_pingId"] {
                    if let Some(x) = o.get(k) {
                        r[if k == "timestamp" {
                            "client_timestamp"
                        } else {
                            k
                        }] = x.clone();
                    }
                }
                return r;
            }
            Some("get_supported_brokers") => {
                let brokers: Vec<&str> = shared.feeds.iter().map(|f| f.broker.as_str()).collect();
                let n = brokers.len();
                return json!({"type": "supported_brokers", "status": "success", "brokers": brokers, "count": n});
            }
            Some("get_broker_info") => {
                let st = if shared.all_connected() {
                    "connected"
                } else if shared.any_credentials_rejected() {
                    "credentials_rejected"
                } else {
                    "disconnected"
                };
                return json!({"type": "broker_info", "status": "success", "broker": broker,
                    "adapter_status": st, "user_id": shared.cfg.user_id});
            }
            Some(v @ ("subscribe_orders" | "unsubscribe_orders")) => {
                let msg = if v == "subscribe_orders" {
                    "Subscribed to order updates"
                } else {
                    "Unsubscribed from order updates"
                };
                json!({"type": v, "status": "success", "message": msg})
            }
            Some(v @ ("subscribe_status" | "unsubscribe_status")) => {
                let on = v == "subscribe_status";
                self.told.off = !on;
                let msg = match on {
                    true => "Status updates on",
                    false => "Status updates off",
                };
                json!({"type": v, "status": "success", "message": msg})
            }
            Some("subscribe") => self.subscribe(&o, shared, last, outbox),
            Some(_) if unsubscribe_all => self.unsubscribe_all(shared, outbox),
            Some("unsubscribe") => self.unsubscribe(&o, shared, outbox),
            other => {
                let name = other.map_or_else(|| "None".to_string(), str::to_string);
                return error("INVALID_ACTION", &format!("Invalid action: {name}"));
            }
        };
        if let (Some(id), Value::Object(r)) = (o.get("request_id"), &mut reply) {
            r.insert("request_id".into(), id.clone());
        }
        reply
    }

    /// `authenticate`: a plain or cached key is answered at once, any other goes to the
    /// verifier thread (None: the reply follows its verdict). An address past its failure limit
    /// is refused without verifying anything, and the connection closed.
    fn authenticate(
        &mut self,
        o: &Map<String, Value>,
        shared: &Shared,
        auth: &mut Auth,
    ) -> Option<Value> {
        // Authenticating again changes nothing (the first key stays the one counted), so it is
        // neither verified, nor limited by its address's failures, nor counted as one.
        if let (true, Some(name)) = (self.authed, self.key_name.clone()) {
            return Some(self.auth_ok(name, self.key_from_file, shared));
        }
        if let Some(secs) = auth.blocked(self.peer, Instant::now()) {
            self.closing = Some((4429, "too many failed authentications".into()));
            let peer = self.peer;
            auth.refused(|| format!("{peer}: too many failed authentications a minute"));
            let msg = format!(
                "Too many failed authentications from {}; try again in {secs} s",
                self.peer
            );
            return Some(error("AUTHENTICATION_ERROR", &msg));
        }
        let key = o
            .get("api_key")
            .or_else(|| o.get("apikey"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if key.is_empty() {
            return Some(self.auth_failed(auth, "API key is required"));
        }
        match auth.check(key, self.consumer, self.serial) {
            Check::Valid { name, from_file } => Some(self.auth_ok(name, from_file, shared)),
            Check::Invalid => Some(self.auth_failed(auth, "Invalid API key")),
            Check::Pending => {
                self.auth_pending = true;
                None
            }
            Check::Busy => Some(error(
                "SERVER_ERROR",
                "Server busy verifying API keys; retry",
            )),
        }
    }

    /// A failed authentication's reply; counted for the address and the connection, which is
    /// closed after its last allowed attempt.
    pub(super) fn auth_failed(&mut self, auth: &mut Auth, message: &str) -> Value {
        auth.failed(self.peer, Instant::now());
        self.auth_failures += 1;
        let max = auth.max_attempts;
        if max > 0 && self.auth_failures >= max && !self.authed {
            self.closing = Some((4401, "too many failed authentication attempts".into()));
            let peer = self.peer;
            auth.refused(|| format!("{peer}: {max} failed attempts on one connection"));
            let msg = format!("{message}; {max} failed attempts: closing the connection");
            return error("AUTHENTICATION_ERROR", &msg);
        }
        error("AUTHENTICATION_ERROR", message)
    }

    /// The request's entries (the `symbols` array, or the top-level `symbol`/`exchange`), each
    /// either usable or the error entry that says why not (not an object, a missing or non-string
    /// `symbol` or `exchange`): a bad entry is never dropped silently.
    fn entries(o: &Map<String, Value>) -> Vec<Result<Entry<'_>, Value>> {
        let one = |e: &Map<String, Value>| -> Result<(String, String), Value> {
            let field = |k: &str| match e.get(k) {
                Some(Value::String(v)) if !v.is_empty() => Ok(v.clone()),
                Some(v) => Err(format!("{k} must be a non-empty string, got {v}")),
                None => Err(format!("{k} is required")),
            };
            match (field("symbol"), field("exchange")) {
                (Ok(s), Ok(x)) => Ok((s, x)),
                (Err(m), _) | (_, Err(m)) => Err(json!({"symbol": e.get("symbol"),
                    "exchange": e.get("exchange"), "status": "error", "message": m})),
            }
        };
        match o.get("symbols").and_then(Value::as_array).filter(|a| !a.is_empty()) {
            Some(a) => a
                .iter()
                .map(|e| match e.as_object() {
                    Some(m) => one(m).map(|(s, x)| (s, x, m.get("mode"))),
                    None => Err(json!({"status": "error", "entry": e,
                        "message": "each entry of symbols must be an object with symbol and exchange"})),
                })
                .collect(),
            None => vec![one(o).map(|(s, x)| (s, x, None))],
        }
    }

    fn subscribe(
        &mut self,
        o: &Map<String, Value>,
        shared: &Shared,
        last: &dyn LastValues,
        outbox: &mut VecDeque<Control>,
    ) -> Value {
        let broker = shared.cfg.broker.as_str();
        let mode = match o.get("mode") {
            None => Mode::Quote,
            Some(m) => match parse_mode(m) {
                Ok(m) => m,
                Err(msg) => return error("INVALID_MODE", &msg),
            },
        };
        let has_symbols = o
            .get("symbols")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
            || o.get("symbol").is_some();
        if !has_symbols {
            return error(
                "INVALID_PARAMETERS",
                "At least one symbol must be specified",
            );
        }
        let depth = o.get("depth").and_then(Value::as_u64).unwrap_or(5).min(5);
        let mut results = Vec::new();
        let (mut ok, mut bad) = (0, 0);
        let (mut over_limit, mut limited) = (0, 0);
        for entry in Self::entries(o) {
            let (symbol, exchange, _) = match entry {
                Ok(e) => e,
                Err(e) => {
                    bad += 1;
                    results.push(e);
                    continue;
                }
            };
            let Some(id) = shared.registry.lookup(&exchange, &symbol) else {
                bad += 1;
                results.push(json!({"symbol": symbol, "exchange": exchange, "status": "error",
                    "message": format!("Symbol {symbol} not found on {exchange}"), "broker": broker}));
                continue;
            };
            if outbox.len() >= MAX_OUTBOX {
                bad += 1;
                results.push(json!({"symbol": symbol, "exchange": exchange, "status": "error",
                    "message": "Gateway busy: too many pending subscription changes; retry", "broker": broker}));
                continue;
            }
            // A new instrument past the client's limit fails; more modes of one it holds do not.
            let max = self.limits.max_subscriptions;
            if !self.subs.contains_key(&id) && self.subs.len() >= max as usize {
                bad += 1;
                over_limit += 1;
                results.push(json!({"symbol": symbol, "exchange": exchange, "status": "error",
                    "code": Violation::SubscriptionLimit.code(), "broker": broker,
                    "message": format!("Subscription limit reached: a client holds at most {max} instruments")}));
                continue;
            }
            if !self.rate.take(Instant::now()) {
                bad += 1;
                limited += 1;
                results.push(self.rate_limited(symbol, exchange, broker));
                continue;
            }
            outbox.push_back(Control::Subscribe {
                consumer: self.consumer,
                symbol: id,
                mode,
            });
            let sub = self.subs.entry(id).or_insert_with(|| Sub {
                modes: 0,
                exchange: exchange.clone(),
                symbol: symbol.clone(),
                rejection_told: false,
                health_told: shared.health().state(id),
                exchange_bit: notices::exchange_bit(&exchange),
            });
            sub.modes |= mode.bit();
            self.sub_changes.push((id, sub.modes));
            ok += 1;
            let feed = shared.feed(id);
            let down = feed.status.down_since(id);
            let closed = feed.status.feed_state() == feed_state::CLOSED;
            let upstream = match (down, shared.symbol_state(id)) {
                (_, upstream_state::REJECTED) => "rejected",
                // Not a failure: the feed waits for the market to open (market hours).
                (Some(_), _) if closed => "market_closed",
                (Some(_), _) => "disconnected",
                (None, upstream_state::LIVE) => "live",
                _ => "pending",
            };
            let mut r = json!({"symbol": symbol, "exchange": exchange, "status": "success",
                "mode": label(mode), "depth": depth, "broker": feed.broker, "upstream": upstream});
            if let Some(since) = down {
                // The snapshot that follows is the last value before the feed went down.
                r["upstream_down_since"] = json!(rfc3339_utc(since));
                let age = last
                    .last_value(id)
                    .map(|t| (now_ns() - t.recv_ts_ns).max(0) / 1_000_000);
                r["snapshot_age_ms"] = json!(age);
            }
            results.push(r);
        }
        if over_limit > 0 {
            let max = self.limits.max_subscriptions;
            let what = format!("{over_limit} subscribe entries past its limit of {max}");
            self.violation(shared, Violation::SubscriptionLimit, over_limit, &what);
        }
        self.rate_violations(shared, limited);
        let status = overall(ok, bad);
        json!({"type": "subscribe", "status": status, "subscriptions": results,
            "message": "Subscription processing complete", "broker": broker})
    }

    fn drop_modes(&mut self, id: SymbolId, modes: ModeSet, outbox: &mut VecDeque<Control>) {
        outbox.push_back(Control::Unsubscribe {
            consumer: self.consumer,
            symbol: id,
            modes,
        });
        if let Some(s) = self.subs.get_mut(&id) {
            s.modes &= !modes;
            self.sub_changes.push((id, s.modes));
            if s.modes == 0 {
                self.subs.remove(&id);
            }
        }
    }

    fn unsubscribe(
        &mut self,
        o: &Map<String, Value>,
        shared: &Shared,
        outbox: &mut VecDeque<Control>,
    ) -> Value {
        let broker = shared.cfg.broker.as_str();
        let array_form = o
            .get("symbols")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if !array_form && o.get("symbol").is_none() {
            return error(
                "INVALID_PARAMETERS",
                "Either symbols or unsubscribe_all is required",
            );
        }
        let top_mode = o.get("mode");
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        let mut limited = 0;
        for entry in Self::entries(o) {
            let (symbol, exchange, own_mode) = match entry {
                Ok(e) => e,
                Err(e) => {
                    failed.push(e);
                    continue;
                }
            };
            // No mode at all = every mode of the symbol (OpenAlgo removed only Quote, leaking the
            // React app's LTP and Depth streams); the array form falls back to the top-level mode.
            let modes = match own_mode.or(top_mode) {
                None => 0b111,
                Some(m) => match parse_mode(m) {
                    Ok(m) => m.bit(),
                    Err(msg) => {
                        failed.push(
                            json!({"symbol": symbol, "exchange": exchange, "status": "error",
                            "message": msg, "broker": broker}),
                        );
                        continue;
                    }
                },
            };
            let held = shared
                .registry
                .lookup(&exchange, &symbol)
                .filter(|id| self.subs.contains_key(id));
            let Some(id) = held else {
                failed.push(json!({"symbol": symbol, "exchange": exchange, "status": "error",
                    "message": format!("Not subscribed to {symbol} on {exchange}"), "broker": broker}));
                continue;
            };
            if !self.rate.take(Instant::now()) {
                limited += 1;
                failed.push(self.rate_limited(symbol, exchange, broker));
                continue;
            }
            self.drop_modes(id, modes, outbox);
            done.push(json!({"symbol": symbol, "exchange": exchange, "status": "success", "broker": broker}));
        }
        self.rate_violations(shared, limited);
        let status = overall(done.len(), failed.len());
        json!({"type": "unsubscribe", "status": status, "message": "Unsubscription processing complete",
            "successful": done, "failed": failed, "broker": broker})
    }

    fn unsubscribe_all(&mut self, shared: &Shared, outbox: &mut VecDeque<Control>) -> Value {
        let broker = shared.cfg.broker.as_str();
        // Shedding everything is never refused; it uses a change of the allowance all the same.
        self.rate.force(Instant::now());
        let done: Vec<Value> = self
            .subs
            .values()
            .map(|s| json!({"symbol": s.symbol, "exchange": s.exchange, "status": "success", "broker": broker}))
            .collect();
        for (&id, _) in self.subs.iter() {
            self.sub_changes.push((id, 0));
        }
        self.subs.clear();
        self.dirty.clear();
        outbox.push_back(Control::UnsubscribeAll {
            consumer: self.consumer,
        });
        json!({"type": "unsubscribe", "status": "success", "message": "Unsubscription processing complete",
            "successful": done, "failed": [], "broker": broker})
    }

    /// The error entry of a change refused by the rate limit.
    fn rate_limited(&self, symbol: String, exchange: String, broker: &str) -> Value {
        let per_minute = self.limits.subscription_changes_per_minute;
        let retry = self.rate.retry_after().as_secs_f64().ceil().max(1.0);
        json!({"symbol": symbol, "exchange": exchange, "status": "error",
            "code": Violation::RateLimited.code(), "broker": broker,
            "message": format!("Too many subscription changes: at most {per_minute} a minute; retry in {retry:.0} s")})
    }

    /// Counts `limited` refused changes, and closes a client that keeps going far past its rate
    /// (after this reply).
    fn rate_violations(&mut self, shared: &Shared, limited: u64) {
        if limited == 0 {
            return;
        }
        let per_minute = self.limits.subscription_changes_per_minute;
        let what = format!("{limited} subscription changes past its rate of {per_minute} a minute");
        self.violation(shared, Violation::RateLimited, limited, &what);
        if self.rate.abusive() && self.closing.is_none() {
            let reason =
                format!("rate limit: far more than {per_minute} subscription changes a minute");
            self.violation(shared, Violation::RateAbuse, 1, &reason);
            self.closing = Some((4429, reason));
        }
    }
}
