//! `tickwire serve --config FILE`: one TOML file for everything `serve`'s flags set.
//!
//! Each key stands for a flag (`[gateway] port` is `--port`, `[[feed]] access_token` of a Kite
//! feed is `--kite-access-token`); `tickwire.example.toml` in the repository root documents them
//! all, and `docs/configuration.md` lists each key's flag, variable and default.
//!
//! Precedence, highest first: a flag on the command line, its environment variable (secrets:
//! `TICKWIRE_…`; a credentials file loads into those variables), the config file, the flag's
//! default. The file is read before logging starts, since `[log]` configures it.
//!
//! A bad file is one error naming the file, the line and the key: TOML syntax, a missing
//! required key, a wrong type, an unknown key (every table denies unknown keys: a misspelt limit
//! must not silently leave the default in force), a bad value (an unknown broker or exchange, a
//! bad idle strategy), or a combination `serve` cannot run (a broker in two feed tables).

mod apply;
mod check;
mod error;
mod feed;
mod sections;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use apply::{apply, explicit};
pub use check::check;
pub use error::ConfigError;
pub use feed::{slots, FeedTable, Slot};
pub use sections::{
    Engine, Gateway, Journal, Keys, LimitOverrides, Limits, Log, Market, Shm, Sink,
};

/// The whole file.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `--credentials-file` / `--secrets-file`: `NAME=value` lines of `TICKWIRE_…` secrets.
    pub credentials_file: Option<PathBuf>,
    /// `[gateway]`.
    #[serde(default)]
    pub gateway: Gateway,
    /// `[shm]`.
    #[serde(default)]
    pub shm: Shm,
    /// `[engine]`.
    #[serde(default)]
    pub engine: Engine,
    /// `[log]`.
    #[serde(default)]
    pub log: Log,
    /// `[keys]`.
    #[serde(default)]
    pub keys: Keys,
    /// `[limits]`.
    #[serde(default)]
    pub limits: Limits,
    /// `[market]`.
    #[serde(default)]
    pub market: Market,
    /// `[journal]`.
    #[serde(default)]
    pub journal: Journal,
    /// `[sink]`.
    #[serde(default)]
    pub sink: Sink,
    /// `[[feed]]` tables, in file order.
    #[serde(default, rename = "feed")]
    pub feeds: Vec<FeedTable>,
}

/// Reads, parses and validates `path`; relative paths in it are taken from its directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole(path, format!("cannot read it: {e}")))?;
    let mut cfg = parse(path, &text)?;
    cfg.resolve(path.parent().unwrap_or(Path::new(".")));
    Ok(cfg)
}

/// Parses and validates the text of `path` (paths left as written).
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let de = toml::de::Deserializer::parse(text)
        .map_err(|e| ConfigError::from_toml(path, text, &e, None))?;
    let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::from_toml(path, text, e.inner(), Some(key))
    })?;
    cfg.validate(path, text)?;
    Ok(cfg)
}

impl Config {
    /// Takes relative paths from `dir` (the config file's directory), so the file means the same
    /// whatever directory the gateway starts in (systemd starts it in `/`).
    fn resolve(&mut self, dir: &Path) {
        let abs = |p: &mut Option<PathBuf>| {
            if let Some(p) = p.as_mut().filter(|p| p.is_relative()) {
                *p = dir.join(&*p);
            }
        };
        abs(&mut self.credentials_file);
        abs(&mut self.keys.file);
        abs(&mut self.market.holidays);
        abs(&mut self.shm.path);
        abs(&mut self.journal.dir);
    }

    /// What the types alone cannot say: values in range, each broker once, keys that belong to
    /// the table's broker.
    fn validate(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let err = |key: &str, msg: String| Err(ConfigError::at(path, text, key, msg));
        let positive = [
            (
                "gateway.max_pending",
                self.gateway.max_pending.map(u64::from),
            ),
            (
                "gateway.max_pending_per_addr",
                self.gateway.max_pending_per_addr.map(u64::from),
            ),
            (
                "engine.feed_threads",
                self.engine.feed_threads.map(|v| v as u64),
            ),
        ];
        for (key, v) in positive {
            if v == Some(0) {
                return err(key, "must be at least 1".into());
            }
        }
        for (key, v) in [
            ("gateway.max_pending", self.gateway.max_pending),
            (
                "gateway.max_pending_per_addr",
                self.gateway.max_pending_per_addr,
            ),
        ] {
            if v.is_some_and(|v| v > 65_536) {
                return err(key, "must be at most 65536".into());
            }
        }
        let k = &self.sink;
        if k.batch_rows.is_some_and(|v| !(1..=1_000_000).contains(&v)) {
            return err("sink.batch_rows", "must be 1 to 1000000".into());
        }
        if k.flush_ms.is_some_and(|v| !(1..=60_000).contains(&v)) {
            return err("sink.flush_ms", "must be 1 to 60000".into());
        }
        let lanes = 1..=crate::store::pg::lanes::MAX_LANES;
        if k.lanes.is_some_and(|v| !lanes.contains(&v)) {
            return err("sink.lanes", format!("must be 1 to {}", lanes.end()));
        }
        if let Some(t) = &k.table {
            if let Err(e) = crate::store::pg::schema::TableName::parse(t) {
                return err("sink.table", e);
            }
        }
        if let Some(c) = self.shm.ring_capacity {
            if !c.is_power_of_two() {
                return err("shm.ring_capacity", format!("{c} is not a power of two"));
            }
        }
        if let Some(l) = &self.log.level {
            if let Err(e) = tracing_subscriber::EnvFilter::try_new(l) {
                return err("log.level", format!("{l:?}: {e}"));
            }
        }
        for s in self.engine.subscribe.iter().flatten() {
            if tickwire_engine::symbols::split_key(s).is_none() {
                return err(
                    "engine.subscribe",
                    format!("{s:?}: expected EXCHANGE:SYMBOL"),
                );
            }
        }
        if let Some(k) = self
            .keys
            .api_keys
            .iter()
            .flatten()
            .find(|k| k.trim().is_empty())
        {
            return err(
                "keys.api_keys",
                format!("{k:?}: an empty key would let no client in"),
            );
        }
        self.validate_feeds(path, text)
    }

    fn validate_feeds(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let err = |key: String, msg: String| Err(ConfigError::at(path, text, &key, msg));
        for (i, f) in self.feeds.iter().enumerate() {
            let b = f.broker.name();
            if let Some(k) = f.foreign_keys().first() {
                let own: Vec<&str> = slots(f.broker).iter().map(|s| s.key).collect();
                return err(
                    format!("feed[{i}].{k}"),
                    format!(
                        "a {b} feed has no {k} (its keys: broker, exchanges, connections, \
                         symbols_per_connection, {})",
                        own.join(", ")
                    ),
                );
            }
            for (k, v) in [
                ("connections", f.connections),
                ("symbols_per_connection", f.symbols_per_connection),
            ] {
                if v == Some(0) {
                    return err(format!("feed[{i}].{k}"), "must be at least 1".into());
                }
            }
            let earlier = &self.feeds[..i];
            if earlier.iter().any(|o| o.broker == f.broker) {
                return err(
                    format!("feed[{i}].broker"),
                    format!(
                        "a second {b} feed: one table per broker (its credentials are per broker \
                         kind; list all its exchanges in one table)"
                    ),
                );
            }
            if let Some(o) = earlier
                .iter()
                .find(|o| o.broker.is_noren() && f.broker.is_noren())
            {
                return err(
                    format!("feed[{i}].broker"),
                    format!(
                        "{b} after {}: one Noren-family feed per gateway (they share the \
                         --noren-* credentials)",
                        o.broker.name()
                    ),
                );
            }
            for x in &f.exchanges {
                if let Some(o) = earlier.iter().find(|o| o.exchanges.contains(x)) {
                    return err(
                        format!("feed[{i}].exchanges"),
                        format!("exchange {x} is given to both {} and {b}", o.broker.name()),
                    );
                }
            }
        }
        Ok(())
    }
}

/// The value of `--NAME VALUE` / `--NAME=VALUE` in `args`, before clap parses them: the config
/// and credentials files supply values clap reads (environment variables, defaults).
pub fn flag_value(args: &[String], name: &str) -> Option<String> {
    let long = format!("--{name}");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if *a == long {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix(&long).and_then(|r| r.strip_prefix('=')) {
            return Some(v.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests;
