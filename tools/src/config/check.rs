//! `tickwire config check FILE`: everything that can be known about a config file without
//! starting the gateway — its syntax, types and keys, and whether each feed would find its
//! credentials (in the file, the environment or the credentials file) and clients a key.

use std::collections::BTreeMap;
use std::path::Path;

use super::{load, slots, Config, ConfigError};

/// Validates `path`; on success a one-line summary of what `serve --config` would run.
pub fn check(path: &Path) -> Result<String, String> {
    let cfg = load(path).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let at = |key: &str, msg: String| ConfigError::at(path, &text, key, msg).to_string();
    let creds = credentials(&cfg).map_err(|e| at("credentials_file", e))?;
    // A secret counts when set in the environment or the credentials file, as `serve` reads them.
    let have = |var: &str| {
        std::env::var(var).is_ok_and(|v| !v.is_empty())
            || creds.get(var).is_some_and(|v| !v.is_empty())
    };
    if cfg.feeds.is_empty() {
        return Err(at(
            "feed",
            "no [[feed]] table: serve would need --feed or --broker flags".into(),
        ));
    }
    for (i, f) in cfg.feeds.iter().enumerate() {
        for s in slots(f.broker).iter().filter(|s| s.required) {
            if f.get(s.key).is_some() || s.env.is_some_and(have) {
                continue;
            }
            let or_env = s.env.map_or(String::new(), |v| {
                format!(" (or {v} in the environment or the credentials file)")
            });
            return Err(at(
                &format!("feed[{i}].{}", s.key),
                format!("the {} feed needs {}{or_env}", f.broker.name(), s.key),
            ));
        }
    }
    let keys = cfg.keys.api_keys.as_ref().map_or(0, Vec::len);
    let client_keys = if keys > 0 {
        format!("{keys} API key(s)")
    } else if have("TICKWIRE_API_KEYS") {
        "API keys from TICKWIRE_API_KEYS".into()
    } else if let Some(f) = &cfg.keys.file {
        // Opened as `serve` would, with the pepper it would use: a missing file or a wrong
        // pepper is found now, not at start.
        let pepper = std::env::var("TICKWIRE_API_KEY_PEPPER")
            .ok()
            .or_else(|| creds.get("TICKWIRE_API_KEY_PEPPER").cloned())
            .or_else(|| cfg.keys.pepper.clone())
            .unwrap_or_default();
        let store = tickwire_io::gateway::keys::KeyStore::open(f, pepper.as_bytes())
            .map_err(|e| at("keys.file", e.to_string()))?;
        format!("keys file {} ({} keys)", f.display(), store.len())
    } else if let Ok(f) = std::env::var("TICKWIRE_KEYS_FILE") {
        format!("keys file {f}")
    } else {
        return Err(at(
            "keys",
            "no client API keys: set [keys] api_keys or file, or TICKWIRE_API_KEYS".into(),
        ));
    };
    if let Some(h) = &cfg.market.holidays {
        if !h.exists() {
            return Err(at(
                "market.holidays",
                format!("{} does not exist", h.display()),
            ));
        }
    }
    limits(&cfg).map_err(|(key, e)| at(&key, e))?;
    let feeds: Vec<String> = cfg
        .feeds
        .iter()
        .map(|f| match f.exchanges.is_empty() {
            true => f.broker.name().to_string(),
            false => format!("{} ({})", f.broker.name(), f.exchanges.join(",")),
        })
        .collect();
    let listen = cfg.gateway.listen.unwrap_or([127, 0, 0, 1].into());
    let port = cfg.gateway.port.unwrap_or(8765);
    let shm = cfg
        .shm
        .path
        .clone()
        .unwrap_or_else(|| tickwire_shm::DEFAULT_PATH.into());
    Ok(format!(
        "config OK: {}: feeds {}; ws://{}; shm {}; {client_keys}",
        path.display(),
        feeds.join(" + "),
        std::net::SocketAddr::from((listen, port)),
        shm.display()
    ))
}

/// The `[limits]` values within their ranges (the file's types are checked on load, the ranges
/// here, as the flags check theirs): the failing key and why.
fn limits(cfg: &Config) -> Result<(), (String, String)> {
    use tickwire_io::gateway::limits::config::check;
    let l = &cfg.limits;
    let fields = [
        ("max_subscriptions", l.max_subscriptions.map(u64::from)),
        (
            "subscription_changes_per_minute",
            l.subscription_changes_per_minute.map(u64::from),
        ),
        ("max_message_bytes", l.max_message_bytes.map(|v| v as u64)),
        ("idle_timeout_s", l.idle_timeout_s),
        ("max_clients_per_key", l.max_clients_per_key.map(u64::from)),
        ("max_clients", l.max_clients.map(u64::from)),
        ("max_auth_attempts", l.max_auth_attempts.map(u64::from)),
        (
            "auth_failures_per_minute",
            l.auth_failures_per_minute.map(u64::from),
        ),
    ];
    for (field, v) in fields {
        if let Some(v) = v {
            check(field, v).map_err(|e| (format!("limits.{field}"), e))?;
        }
    }
    for (name, o) in &l.per_key {
        o.validate()
            .map_err(|e| (format!("limits.per_key.{name}"), e))?;
    }
    Ok(())
}

/// The `NAME=value` pairs of the credentials file, if the config names one.
fn credentials(cfg: &Config) -> Result<BTreeMap<String, String>, String> {
    let Some(p) = &cfg.credentials_file else {
        return Ok(BTreeMap::new());
    };
    let text =
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    let pairs = crate::secrets::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(pairs.into_iter().collect())
}
