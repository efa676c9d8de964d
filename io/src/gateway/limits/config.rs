//! The client limits' settings: server-wide values ([`LimitConfig`]) and per-API-key overrides
//! ([`LimitOverrides`], `[limits.per_key.NAME]` in the config file, `--limit-override` on the
//! command line), resolved into one client's [`Limits`] when it authenticates.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// The limits one client lives under (its key's overrides applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Instruments a client may hold at once (a symbol counts once, whatever its modes).
    pub max_subscriptions: u32,
    /// Subscribe/unsubscribe entries a client may send per minute (see `rate.rs`).
    pub subscription_changes_per_minute: u32,
    /// Largest message or frame a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Nothing received (no message, no Pong) for this long closes the connection.
    pub idle_timeout: Duration,
    /// Clients one API key may have connected at once.
    pub max_clients_per_key: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_subscriptions: 1000,
            subscription_changes_per_minute: 600,
            max_message_bytes: 64 << 10,
            idle_timeout: Duration::from_secs(60),
            max_clients_per_key: 256,
        }
    }
}

/// Server-wide limits and the per-key overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitConfig {
    /// Every client's limits unless its key overrides them; before authentication, the limits.
    pub defaults: Limits,
    /// Authenticated clients at once, all keys together.
    pub max_clients: u32,
    /// Failed authentications a connection may make (enforced by the key check).
    pub max_auth_attempts: u32,
    /// Failed authentications per minute from one remote address (enforced by the key check).
    pub auth_failures_per_minute: u32,
    /// Overrides by API key name.
    pub per_key: BTreeMap<String, LimitOverrides>,
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            defaults: Limits::default(),
            max_clients: 1024,
            max_auth_attempts: 3,
            auth_failures_per_minute: 20,
            per_key: BTreeMap::new(),
        }
    }
}

impl LimitConfig {
    /// The limits of a client authenticated with the key named `key`.
    pub fn for_key(&self, key: &str) -> Limits {
        let mut l = self.defaults;
        if let Some(o) = self.per_key.get(key) {
            o.apply(&mut l);
        }
        l
    }
}

/// One API key's overrides of the server-wide limits; every field optional (absent: the
/// server-wide value). `idle_timeout_s` is in seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// See [`Limits::max_subscriptions`].
    pub max_subscriptions: Option<u32>,
    /// See [`Limits::subscription_changes_per_minute`].
    pub subscription_changes_per_minute: Option<u32>,
    /// See [`Limits::max_message_bytes`].
    pub max_message_bytes: Option<usize>,
    /// See [`Limits::idle_timeout`], in seconds.
    pub idle_timeout_s: Option<u64>,
    /// See [`Limits::max_clients_per_key`].
    pub max_clients_per_key: Option<u32>,
}

/// The names of [`LimitOverrides`]' fields, as the config file and `--limit-override` spell them.
pub const OVERRIDE_FIELDS: [&str; 5] = [
    "max_subscriptions",
    "subscription_changes_per_minute",
    "max_message_bytes",
    "idle_timeout_s",
    "max_clients_per_key",
];

/// Accepted values per field: (least, most). The same bounds as the flags.
pub fn bounds(field: &str) -> Option<(u64, u64)> {
    Some(match field {
        "max_subscriptions" => (1, 1_000_000),
        "subscription_changes_per_minute" => (1, 1_000_000),
        // The smallest still carries an authenticate request; the largest is 64 MiB.
        "max_message_bytes" => (512, 64 << 20),
        "idle_timeout_s" => (1, 86_400),
        "max_clients_per_key" => (1, 65_536),
        "max_clients" => (1, 65_536),
        // 0: no limit (as for the flags).
        "max_auth_attempts" => (0, 1_000),
        "auth_failures_per_minute" => (0, 1_000_000),
        _ => return None,
    })
}

/// Checks `value` against the bounds of `field`.
pub fn check(field: &str, value: u64) -> Result<u64, String> {
    let Some((lo, hi)) = bounds(field) else {
        return Err(format!(
            "unknown limit {field:?} (known: {})",
            OVERRIDE_FIELDS.join(", ")
        ));
    };
    if value < lo || value > hi {
        return Err(format!("{field} must be {lo} to {hi}, got {value}"));
    }
    Ok(value)
}

impl LimitOverrides {
    /// Sets one field by name from text (`--limit-override NAME:field=value`).
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), String> {
        if !OVERRIDE_FIELDS.contains(&field) {
            return Err(format!(
                "unknown per-key limit {field:?} (known: {})",
                OVERRIDE_FIELDS.join(", ")
            ));
        }
        let v: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("{field}: {value:?} is not a whole number"))?;
        let v = check(field, v)?;
        // Bounds above keep every value inside u32.
        let small = v as u32;
        match field {
            "max_subscriptions" => self.max_subscriptions = Some(small),
            "subscription_changes_per_minute" => self.subscription_changes_per_minute = Some(small),
            "max_message_bytes" => self.max_message_bytes = Some(v as usize),
            "idle_timeout_s" => self.idle_timeout_s = Some(v),
            _ => self.max_clients_per_key = Some(small),
        }
        Ok(())
    }

    /// Every field set in `other` replaces this one's (flags over the config file).
    pub fn merge(&mut self, other: &LimitOverrides) {
        let o = other.clone();
        self.max_subscriptions = o.max_subscriptions.or(self.max_subscriptions);
        self.subscription_changes_per_minute = o
            .subscription_changes_per_minute
            .or(self.subscription_changes_per_minute);
        self.max_message_bytes = o.max_message_bytes.or(self.max_message_bytes);
        self.idle_timeout_s = o.idle_timeout_s.or(self.idle_timeout_s);
        self.max_clients_per_key = o.max_clients_per_key.or(self.max_clients_per_key);
    }

    /// Checks every field set against its bounds (a config file's values arrive unchecked).
    pub fn validate(&self) -> Result<(), String> {
        let fields = [
            ("max_subscriptions", self.max_subscriptions.map(u64::from)),
            (
                "subscription_changes_per_minute",
                self.subscription_changes_per_minute.map(u64::from),
            ),
            (
                "max_message_bytes",
                self.max_message_bytes.map(|v| v as u64),
            ),
            ("idle_timeout_s", self.idle_timeout_s),
            (
                "max_clients_per_key",
                self.max_clients_per_key.map(u64::from),
            ),
        ];
        for (f, v) in fields {
            if let Some(v) = v {
                check(f, v)?;
            }
        }
        Ok(())
    }

    fn apply(&self, l: &mut Limits) {
        if let Some(v) = self.max_subscriptions {
            l.max_subscriptions = v;
        }
        if let Some(v) = self.subscription_changes_per_minute {
            l.subscription_changes_per_minute = v;
        }
        if let Some(v) = self.max_message_bytes {
            l.max_message_bytes = v;
        }
        if let Some(v) = self.idle_timeout_s {
            l.idle_timeout = Duration::from_secs(v);
        }
        if let Some(v) = self.max_clients_per_key {
            l.max_clients_per_key = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_to_their_key_only() {
        let mut cfg = LimitConfig::default();
        let mut o = LimitOverrides::default();
        o.set("max_subscriptions", "5").unwrap();
        o.set("idle_timeout_s", "7").unwrap();
        cfg.per_key.insert("api-key-2".into(), o);
        let two = cfg.for_key("api-key-2");
        assert_eq!(two.max_subscriptions, 5);
        assert_eq!(two.idle_timeout, Duration::from_secs(7));
        assert_eq!(two.max_clients_per_key, 256, "not overridden");
        assert_eq!(cfg.for_key("api-key-1"), Limits::default());
    }

    #[test]
    fn bad_names_and_values_are_clear_errors() {
        let mut o = LimitOverrides::default();
        let e = o.set("max_subs", "5").unwrap_err();
        assert!(e.contains("unknown per-key limit \"max_subs\""), "{e}");
        assert!(o
            .set("max_subscriptions", "many")
            .unwrap_err()
            .contains("whole number"));
        let e = o.set("max_message_bytes", "10").unwrap_err();
        assert_eq!(e, "max_message_bytes must be 512 to 67108864, got 10");
        assert_eq!(o, LimitOverrides::default(), "nothing set by a bad value");
        let bad = LimitOverrides {
            idle_timeout_s: Some(0),
            ..LimitOverrides::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .starts_with("idle_timeout_s must be 1"));
    }

    #[test]
    fn the_later_overrides_win_field_by_field() {
        let mut file = LimitOverrides {
            max_subscriptions: Some(10),
            idle_timeout_s: Some(30),
            ..LimitOverrides::default()
        };
        let flag = LimitOverrides {
            max_subscriptions: Some(20),
            ..LimitOverrides::default()
        };
        file.merge(&flag);
        assert_eq!(file.max_subscriptions, Some(20));
        assert_eq!(file.idle_timeout_s, Some(30));
    }
}
