//! The config file's tables other than `[[feed]]`: one struct per table, every key optional (a
//! key left out keeps the flag's default), unknown keys refused.
//!
//! Values that have a fixed vocabulary (`router`, `idle`, `format`, exchanges) are checked while
//! deserializing, so a bad one is reported at its own line and key.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use tickwire_engine::idle::IdleStrategy;

use crate::gateway_cmd::RouterPlacement;
use crate::logging::LogFormat;

/// `[gateway]`: the client port.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    /// `--listen`.
    pub listen: Option<IpAddr>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--allow-origin`.
    pub allow_origin: Option<Vec<String>>,
    /// `--max-pending`.
    pub max_pending: Option<u32>,
    /// `--max-pending-per-addr`.
    pub max_pending_per_addr: Option<u32>,
    /// `--client-core`.
    pub client_core: Option<usize>,
}

/// `[shm]`: the shared-memory file.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Shm {
    /// `--shm`.
    pub path: Option<PathBuf>,
    /// `--ring-capacity`.
    pub ring_capacity: Option<u64>,
}

/// `[journal]`: the raw-frame journal (`serve` records one by default).
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    /// `--journal` (relative to the config file's directory).
    pub dir: Option<PathBuf>,
    /// `false`: `--no-journal`.
    pub enabled: Option<bool>,
    /// `--journal-segment-mb`.
    pub segment_mb: Option<u64>,
    /// `--journal-sync-ms`.
    pub sync_ms: Option<u64>,
    /// `--journal-ring-mb`.
    pub ring_mb: Option<u64>,
}

/// `[sink]`: the PostgreSQL sink.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sink {
    /// `--sink`.
    pub url: Option<String>,
    /// `--sink-table`.
    pub table: Option<String>,
    /// `--sink-batch-rows`.
    pub batch_rows: Option<u32>,
    /// `--sink-flush-ms`.
    pub flush_ms: Option<u64>,
    /// `--sink-lanes`.
    pub lanes: Option<usize>,
}

/// `[engine]`: threads, cores, idling, conflation, upstream pinning.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    /// `--router`.
    #[serde(default, deserialize_with = "router")]
    pub router: Option<RouterPlacement>,
    /// `--idle`.
    #[serde(default, deserialize_with = "idle")]
    pub idle: Option<IdleStrategy>,
    /// `--router-core`.
    pub router_core: Option<usize>,
    /// `--feed-threads`.
    pub feed_threads: Option<usize>,
    /// `--feed-core`.
    pub feed_cores: Option<Vec<usize>>,
    /// `--flush-ms`.
    pub flush_ms: Option<u64>,
    /// `--subscribe`.
    pub subscribe: Option<Vec<String>>,
    /// `--subscribe-all`.
    pub subscribe_all: Option<bool>,
    /// `--upstream-confirm-ms`.
    pub upstream_confirm_ms: Option<u64>,
    /// `--stale-floor-s`.
    pub stale_floor_s: Option<f64>,
    /// `--stale-factor`.
    pub stale_factor: Option<u32>,
    /// `--stall-floor-s`.
    pub stall_floor_s: Option<f64>,
}

/// `[log]`: applied before logging starts.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// `--log-level` (`RUST_LOG` wins over both).
    pub level: Option<String>,
    /// `--log-format`.
    pub format: Option<LogFormat>,
}

/// `[keys]`: how clients authenticate.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// `--keys-file` (relative to the config file's directory).
    pub file: Option<PathBuf>,
    /// `--api-key-pepper` / `TICKWIRE_API_KEY_PEPPER`.
    pub pepper: Option<String>,
    /// `--api-key` / `TICKWIRE_API_KEYS`.
    pub api_keys: Option<Vec<String>>,
}

/// `[limits]`: client limits, with per-key overrides.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// `--max-subscriptions`.
    pub max_subscriptions: Option<u32>,
    /// `--max-subscription-changes-per-minute`.
    pub subscription_changes_per_minute: Option<u32>,
    /// `--max-message-bytes`.
    pub max_message_bytes: Option<usize>,
    /// `--idle-timeout-s`.
    pub idle_timeout_s: Option<u64>,
    /// `--max-clients-per-key`.
    pub max_clients_per_key: Option<u32>,
    /// `--max-clients`.
    pub max_clients: Option<u32>,
    /// `--max-auth-attempts`.
    pub max_auth_attempts: Option<u32>,
    /// `--auth-failures-per-minute`.
    pub auth_failures_per_minute: Option<u32>,
    /// `[limits.per_key.NAME]`: overrides for the clients of one API key (by its name).
    #[serde(default)]
    pub per_key: BTreeMap<String, LimitOverrides>,
}

/// One API key's limits where they differ from `[limits]`: the gateway's own type.
pub use tickwire_io::gateway::LimitOverrides;

/// `[market]`: the market calendar.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Market {
    /// `--dev`: ignore the calendar.
    pub dev: Option<bool>,
    /// `--holidays` (relative to the config file's directory).
    pub holidays: Option<PathBuf>,
}

/// `router = "inline" | "thread"`.
fn router<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RouterPlacement>, D::Error> {
    let s = String::deserialize(d)?;
    <RouterPlacement as clap::ValueEnum>::from_str(&s, true)
        .map(Some)
        .map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown router placement {s:?} (expected inline or thread)"
            ))
        })
}

/// `idle = "spin" | "yield" | "park" | "park:SPINS:MICROS"`.
fn idle<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IdleStrategy>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}
