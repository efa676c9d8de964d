//! `--max-subscriptions`, `--max-clients`, … : the client limits' flags (`LimitArgs`, part of
//! every command that runs a gateway) and the hidden `--limit-override NAME:field=value`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use tickwire_io::gateway::limits::config::check;
use tickwire_io::gateway::{LimitConfig, LimitOverrides, Limits};

/// Client limits (defaults in brackets; `docs/limits.md`).
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Instruments one client may hold at once.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_subscriptions: u32,
    /// Subscribe/unsubscribe entries one client may send per minute (bursts up to the larger of
    /// this and --max-subscriptions).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_subscription_changes_per_minute: u32,
    /// Largest message or frame a client may send, in bytes (past it: closed with 1009).
    #[arg(long, default_value_t = 65_536, value_parser = message_bytes)]
    pub max_message_bytes: usize,
    /// A client that sends nothing (no message, no Pong) for this many seconds is closed.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_s: u64,
    /// Clients one API key may have connected at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_clients_per_key: u32,
    /// Authenticated clients at once, all keys together.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_clients: u32,
    /// Failed authentications allowed on one connection; the last one closes it (0: no limit).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub max_auth_attempts: u32,
    /// Failed authentications allowed per remote address per minute; past it, that address's
    /// attempts are refused without verifying the key and the connection is closed (0: no limit).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub auth_failures_per_minute: u32,
    /// A per-key limit, `KEYNAME:field=value` (repeatable; fields as in `[limits.per_key.NAME]`
    /// of the config file). Wins over the config file.
    #[arg(long = "limit-override", hide = true)]
    pub overrides: Vec<KeyLimit>,
}

/// `--max-message-bytes`: a whole number within the accepted range.
fn message_bytes(s: &str) -> Result<usize, String> {
    let v: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    Ok(check("max_message_bytes", v)? as usize)
}

/// One `--limit-override NAME:field=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLimit {
    /// The API key's name.
    pub key: String,
    /// The field (one of `LimitOverrides`').
    pub field: String,
    /// Its value, checked.
    pub value: String,
}

impl FromStr for KeyLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("{s:?}: expected KEYNAME:field=value, e.g. api-key-2:max_subscriptions=50");
        let (key, rest) = s.split_once(':').ok_or_else(bad)?;
        let (field, value) = rest.split_once('=').ok_or_else(bad)?;
        let (key, field) = (key.trim(), field.trim());
        if key.is_empty() || field.is_empty() {
            return Err(bad());
        }
        // Checked here, so a typo fails at start with the flag named.
        LimitOverrides::default().set(field, value)?;
        Ok(Self {
            key: key.into(),
            field: field.into(),
            value: value.trim().into(),
        })
    }
}

impl LimitArgs {
    /// The gateway's limits: these flags, then `per_key` (from the config file) with the
    /// `--limit-override` flags over it.
    pub fn config(
        &self,
        per_key: &BTreeMap<String, LimitOverrides>,
    ) -> Result<LimitConfig, String> {
        let mut per_key = per_key.clone();
        for (name, o) in &per_key {
            o.validate()
                .map_err(|e| format!("limits for key {name:?}: {e}"))?;
        }
        for o in &self.overrides {
            per_key
                .entry(o.key.clone())
                .or_default()
                .set(&o.field, &o.value)
                .map_err(|e| format!("--limit-override {}: {e}", o.key))?;
        }
        // The config file's values arrive without the flags' range checks.
        for (field, v) in [
            ("max_subscriptions", u64::from(self.max_subscriptions)),
            (
                "subscription_changes_per_minute",
                u64::from(self.max_subscription_changes_per_minute),
            ),
            ("max_message_bytes", self.max_message_bytes as u64),
            ("idle_timeout_s", self.idle_timeout_s),
            ("max_clients_per_key", u64::from(self.max_clients_per_key)),
            ("max_clients", u64::from(self.max_clients)),
            ("max_auth_attempts", u64::from(self.max_auth_attempts)),
            (
                "auth_failures_per_minute",
                u64::from(self.auth_failures_per_minute),
            ),
        ] {
            check(field, v).map_err(|e| format!("limits: {e}"))?;
        }
        Ok(LimitConfig {
            defaults: Limits {
                max_subscriptions: self.max_subscriptions,
                subscription_changes_per_minute: self.max_subscription_changes_per_minute,
                max_message_bytes: self.max_message_bytes,
                idle_timeout: Duration::from_secs(self.idle_timeout_s),
                max_clients_per_key: self.max_clients_per_key,
            },
            max_clients: self.max_clients,
            max_auth_attempts: self.max_auth_attempts,
            auth_failures_per_minute: self.auth_failures_per_minute,
            per_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_flags_parse_and_win_over_the_file() {
        let k: KeyLimit = "api-key-2:max_subscriptions=50".parse().unwrap();
        assert_eq!(
            (k.key.as_str(), k.field.as_str(), k.value.as_str()),
            ("api-key-2", "max_subscriptions", "50")
        );
        assert!("api-key-2"
            .parse::<KeyLimit>()
            .unwrap_err()
            .contains("expected KEYNAME:field=value"));
        assert!("a:max_clients=5"
            .parse::<KeyLimit>()
            .unwrap_err()
            .contains("unknown per-key limit"));
        assert!("a:idle_timeout_s=0"
            .parse::<KeyLimit>()
            .unwrap_err()
            .contains("must be 1 to"));

        let mut file = BTreeMap::new();
        file.insert(
            "api-key-2".to_string(),
            LimitOverrides {
                max_subscriptions: Some(10),
                idle_timeout_s: Some(30),
                ..Default::default()
            },
        );
        let args = LimitArgs {
            max_subscriptions: 1000,
            max_subscription_changes_per_minute: 600,
            max_message_bytes: 65_536,
            idle_timeout_s: 60,
            max_clients_per_key: 256,
            max_clients: 1024,
            max_auth_attempts: 3,
            auth_failures_per_minute: 20,
            overrides: vec![k],
        };
        let cfg = args.config(&file).unwrap();
        let two = cfg.for_key("api-key-2");
        assert_eq!(two.max_subscriptions, 50, "the flag wins");
        assert_eq!(
            two.idle_timeout,
            Duration::from_secs(30),
            "the file's other field stays"
        );
        assert_eq!(cfg.for_key("api-key-1").max_subscriptions, 1000);

        file.insert(
            "x".into(),
            LimitOverrides {
                max_message_bytes: Some(1),
                ..Default::default()
            },
        );
        let e = args.config(&file).unwrap_err();
        assert!(
            e.starts_with("limits for key \"x\": max_message_bytes must be"),
            "{e}"
        );
    }
}
