//! Client limits: how many instruments a client holds, how fast it changes them, how large its
//! messages are, how long it may stay silent, how many clients a key and the gateway have.
//!
//! - [`config`]: the settings and per-key overrides, resolved per client on authentication.
//! - [`rate`]: the subscription-change allowance (a token bucket).
//! - [`clients`]: authenticated clients per key and in total.
//! - Here: the kinds of violation, their error codes, counters ([`LimitStats`], in `/status`)
//!   and their rate-limited log lines ([`LimitState::violation`]).
//!
//! Every violation is answered with the protocol's error shape (`{"status":"error","code",
//! "message"}`, per entry for subscription entries), counted, and logged at most once per
//! interval with the count. Only a client that abuses the gateway is closed: an oversized frame,
//! silence past the idle timeout, far too many subscription changes, or no place for it at all.

pub mod clients;
pub mod config;
pub mod rate;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ratelog::RateLog;

pub use clients::{ClientCounts, Full};
pub use config::{LimitConfig, LimitOverrides, Limits, OVERRIDE_FIELDS};
pub use rate::RateWindow;

/// One kind of limit violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A subscribe entry past the client's instrument limit (the entry fails, the client stays).
    SubscriptionLimit,
    /// A subscribe/unsubscribe entry past the client's change rate (the entry fails).
    RateLimited,
    /// A client kept changing subscriptions far past its rate (closed, 4429).
    RateAbuse,
    /// A message or frame over the size limit (closed, 1009).
    MessageTooBig,
    /// Nothing received for the idle timeout (closed, 4408).
    IdleTimeout,
    /// Authenticated while its key had its maximum of clients (closed, 1013).
    KeyClientLimit,
    /// Authenticated while the gateway had its maximum of clients (closed, 1013).
    TooManyClients,
}

impl Violation {
    /// Every kind, in the order of [`LimitStats`].
    pub const ALL: [Violation; 7] = [
        Violation::SubscriptionLimit,
        Violation::RateLimited,
        Violation::RateAbuse,
        Violation::MessageTooBig,
        Violation::IdleTimeout,
        Violation::KeyClientLimit,
        Violation::TooManyClients,
    ];

    /// The `code` of its error message. A rate abuse is told as `RATE_LIMITED` too.
    pub fn code(self) -> &'static str {
        match self {
            Violation::SubscriptionLimit => "SUBSCRIPTION_LIMIT",
            Violation::RateLimited | Violation::RateAbuse => "RATE_LIMITED",
            Violation::MessageTooBig => "MESSAGE_TOO_BIG",
            Violation::IdleTimeout => "IDLE_TIMEOUT",
            Violation::KeyClientLimit => "KEY_CLIENT_LIMIT",
            Violation::TooManyClients => "TOO_MANY_CLIENTS",
        }
    }

    /// Its counter's name in `/status` (`clients.limits`).
    pub fn counter_name(self) -> &'static str {
        match self {
            Violation::SubscriptionLimit => "subscription_limit",
            Violation::RateLimited => "rate_limited",
            Violation::RateAbuse => "rate_abuse_closed",
            Violation::MessageTooBig => "message_too_big",
            Violation::IdleTimeout => "idle_timeout",
            Violation::KeyClientLimit => "key_client_limit",
            Violation::TooManyClients => "too_many_clients",
        }
    }

    fn log_what(self) -> &'static str {
        match self {
            Violation::SubscriptionLimit => "client limit: subscription entries over the limit",
            Violation::RateLimited => "client limit: subscription changes over the rate",
            Violation::RateAbuse => "client limit: closed for far too many subscription changes",
            Violation::MessageTooBig => "client limit: closed for a message over the size limit",
            Violation::IdleTimeout => "client limit: closed idle",
            Violation::KeyClientLimit => {
                "client limit: refused, the key has its maximum of clients"
            }
            Violation::TooManyClients => {
                "client limit: refused, the gateway has its maximum of clients"
            }
        }
    }

    /// The protocol's error message for it.
    pub fn error(self, message: &str) -> Value {
        json!({"status": "error", "code": self.code(), "message": message})
    }
}

/// Violations so far, by kind (each refused subscription entry counts once).
#[derive(Debug, Default)]
pub struct LimitStats {
    counts: [AtomicU64; Violation::ALL.len()],
}

impl LimitStats {
    /// Violations of `kind` so far.
    pub fn get(&self, kind: Violation) -> u64 {
        self.counts[kind as usize].load(Ordering::Relaxed)
    }

    fn add(&self, kind: Violation, n: u64) {
        self.counts[kind as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Every counter by its `/status` name.
    pub fn json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for v in Violation::ALL {
            m.insert(v.counter_name().into(), json!(self.get(v)));
        }
        Value::Object(m)
    }
}

/// At most one log line per kind of violation per this interval (with the count).
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The limits' mutable state on the client IO thread: client counts and log lines. Behind
/// mutexes only so that `&Shared` can carry it; the IO thread is its one user, so they are
/// never contended (and never touched per tick).
#[derive(Debug)]
pub struct LimitState {
    /// Authenticated clients per key and in total.
    pub clients: Mutex<ClientCounts>,
    logs: Mutex<Vec<RateLog>>,
}

impl Default for LimitState {
    fn default() -> Self {
        Self {
            clients: Mutex::default(),
            logs: Mutex::new(
                Violation::ALL
                    .iter()
                    .map(|v| RateLog::new(v.log_what(), LOG_INTERVAL))
                    .collect(),
            ),
        }
    }
}

impl LimitState {
    /// Counts `n` violations of `kind` in `stats` and logs them (at most once per interval).
    pub fn violation(
        &self,
        stats: &LimitStats,
        kind: Violation,
        n: u64,
        detail: impl FnOnce() -> String,
    ) {
        stats.add(kind, n);
        let line = self
            .logs
            .lock()
            .ok()
            .and_then(|mut l| l[kind as usize].hit(detail, Instant::now()));
        if let Some(line) = line {
            tracing::warn!("{line}");
        }
    }

    /// Writes the counts of violations not logged yet, once their interval is over (from the IO
    /// thread's timers, so the tail of a burst is reported too).
    pub fn flush_logs(&self, now: Instant) {
        let Ok(mut logs) = self.logs.lock() else {
            return;
        };
        for l in logs.iter_mut() {
            if let Some(line) = l.due(now) {
                tracing::warn!("{line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_counted_by_kind_and_named_in_status() {
        let (state, stats) = (LimitState::default(), LimitStats::default());
        state.violation(&stats, Violation::SubscriptionLimit, 3, || "a".into());
        state.violation(&stats, Violation::SubscriptionLimit, 2, || "b".into());
        state.violation(&stats, Violation::IdleTimeout, 1, || "c".into());
        let j = stats.json();
        assert_eq!(j["subscription_limit"], 5);
        assert_eq!(j["idle_timeout"], 1);
        assert_eq!(j["too_many_clients"], 0);
        assert_eq!(j.as_object().unwrap().len(), Violation::ALL.len());
        let e = Violation::RateAbuse.error("slow down");
        assert_eq!(
            e,
            json!({"status": "error", "code": "RATE_LIMITED", "message": "slow down"})
        );
    }

    #[test]
    fn overrides_deserialize_strictly() {
        let o: LimitOverrides =
            serde_json::from_str(r#"{"max_subscriptions": 5, "idle_timeout_s": 9}"#).unwrap();
        assert_eq!(o.max_subscriptions, Some(5));
        assert_eq!(o.idle_timeout_s, Some(9));
        let e = serde_json::from_str::<LimitOverrides>(r#"{"max_subs": 5}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `max_subs`"), "{e}");
    }
}
