//! The mock broker's settings (`tickwire mock-broker` flags), which broker it speaks, and its
//! counters.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tickwire_io::brokers::fyers::FyersConfig;
use tickwire_io::brokers::upstox::UpstoxConfig;
use tickwire_io::brokers::BrokerConfig;
use tickwire_io::kite::instruments::Instrument;
use tickwire_io::kite::KiteConfig;

use super::dialect::Dialect;

/// Which broker the mock speaks.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BrokerKind {
    /// Zerodha Kite Connect ticker.
    #[default]
    Kite,
    /// Upstox Market Data Feed V3.
    Upstox,
    /// Fyers API v3 data socket.
    Fyers,
    /// Angel One SmartAPI WebSocket 2.0.
    Angel,
    /// Dhan live market feed v2.
    Dhan,
    /// Shoonya (Finvasia), a Noren broker.
    Shoonya,
    /// Flattrade, a Noren broker.
    Flattrade,
    /// Any other Noren broker (`serve` needs `--noren-url`).
    Noren,
}

impl BrokerKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Kite => "kite",
            BrokerKind::Upstox => "upstox",
            BrokerKind::Fyers => "fyers",
            BrokerKind::Angel => "angel",
            BrokerKind::Dhan => "dhan",
            BrokerKind::Shoonya => "shoonya",
            BrokerKind::Flattrade => "flattrade",
            BrokerKind::Noren => "noren",
        }
    }

    /// `Kite`, `Upstox`: for messages.
    pub fn title(self) -> &'static str {
        match self {
            BrokerKind::Kite => "Kite",
            BrokerKind::Upstox => "Upstox",
            BrokerKind::Fyers => "Fyers",
            BrokerKind::Angel => "Angel One",
            BrokerKind::Dhan => "Dhan",
            BrokerKind::Shoonya => "Shoonya (Noren)",
            BrokerKind::Flattrade => "Flattrade (Noren)",
            BrokerKind::Noren => "Noren",
        }
    }

    /// True for the Noren family (one protocol, several brokers and URLs).
    pub fn is_noren(self) -> bool {
        matches!(
            self,
            BrokerKind::Shoonya | BrokerKind::Flattrade | BrokerKind::Noren
        )
    }

    pub(super) fn dialect(self, rows: &[Instrument]) -> Box<dyn Dialect> {
        match self {
            BrokerKind::Kite => Box::new(super::kite::Kite::new(rows)),
            BrokerKind::Upstox => Box::new(super::upstox::Upstox::new(rows)),
            BrokerKind::Fyers => Box::new(super::fyers::Fyers::new(rows)),
            BrokerKind::Angel => super::angel::dialect(rows),
            BrokerKind::Dhan => super::dhan::dialect(rows),
            BrokerKind::Shoonya | BrokerKind::Flattrade | BrokerKind::Noren => {
                super::noren::dialect(rows)
            }
        }
    }

    /// How a gateway reaches a mock of this broker at `base` with settings `m`: the broker config
    /// and the instrument master source.
    pub fn gateway(self, base: SocketAddr, m: &MockConfig) -> (BrokerConfig, String) {
        match self {
            BrokerKind::Kite => (
                BrokerConfig::Kite(KiteConfig {
                    url: format!("ws://{base}"),
                    api_key: m.api_key.clone(),
                    access_token: m.access_token.clone(),
                }),
                format!("http://{base}/instruments"),
            ),
            BrokerKind::Upstox => (
                BrokerConfig::Upstox(UpstoxConfig {
                    api_base: format!("http://{base}"),
                    access_token: m.access_token.clone(),
                }),
                format!("http://{base}{}", super::upstox::MASTER),
            ),
            BrokerKind::Fyers => (
                BrokerConfig::Fyers(FyersConfig {
                    access_token: super::fyers::token_for(&m.access_token),
                    ws_url: format!("ws://{base}{}", super::fyers::FEED),
                    api_base: format!("http://{base}"),
                }),
                super::fyers::MASTERS
                    .iter()
                    .map(|p| format!("http://{base}{p}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            BrokerKind::Angel => super::angel::gateway(base, m),
            BrokerKind::Dhan => super::dhan::gateway(base, m),
            BrokerKind::Shoonya | BrokerKind::Flattrade | BrokerKind::Noren => {
                let (mut cfg, master) = super::noren::gateway(base, m);
                if let BrokerConfig::Noren(c) = &mut cfg {
                    c.broker = self.name();
                }
                (cfg, master)
            }
        }
    }

    /// The mock's start-up line: its endpoints (`ws`/`http`: the schemes in use).
    pub fn describe(self, ws: &str, http: &str, addr: SocketAddr, m: &MockConfig) -> String {
        match self {
            BrokerKind::Kite => format!(
                "mock Kite broker on {ws}://{addr} (instruments: {http}://{addr}/instruments)"
            ),
            BrokerKind::Upstox => format!(
                "mock Upstox broker on {http}://{addr} (feed: {ws}://{addr}{}, authorize: {http}://{addr}{}, instruments: {http}://{addr}{})",
                super::upstox::FEED,
                super::upstox::AUTHORIZE,
                super::upstox::MASTER
            ),
            BrokerKind::Fyers => format!(
                "mock Fyers broker on {http}://{addr} (feed: {ws}://{addr}{}, symbol-token: {http}://{addr}{}, instruments: {http}://{addr}{}, access token: {})",
                super::fyers::FEED,
                super::fyers::SYMBOL_TOKEN,
                super::fyers::MASTERS[0],
                super::fyers::token_for(&m.access_token)
            ),
            BrokerKind::Angel => super::angel::describe(ws, http, addr, m),
            BrokerKind::Dhan => super::dhan::describe(ws, http, addr, m),
            BrokerKind::Shoonya | BrokerKind::Flattrade | BrokerKind::Noren => {
                super::noren::describe(ws, http, addr, m)
            }
        }
    }
}

/// Mock broker settings (`tickwire mock-broker` flags).
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// The broker spoken.
    pub broker: BrokerKind,
    /// Port on 127.0.0.1 (0 = any free port).
    pub port: u16,
    /// Synthetic instruments beyond the named ones.
    pub symbols: u32,
    /// Total market updates per second.
    pub rate: u64,
    /// Random-walk seed.
    pub seed: u64,
    /// Accepted `api_key` (Kite).
    pub api_key: String,
    /// Accepted access token (every broker's).
    pub access_token: String,
    /// Serve wss:// and https:// with this certificate chain and key (PEM files).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Pin the market and connection threads to this CPU (OS number). A benchmark uses it to keep
    /// the mock where it wants the load; `None` leaves placement to the scheduler.
    pub core: Option<usize>,
    /// How long the market thread sleeps when nothing is due: the updates due by then share a
    /// frame. The OS adds its timer slack (~50 µs) to short sleeps.
    pub frame_interval: Duration,
    /// Ignore the first this many client messages (over all connections), as a broker that loses
    /// requests: tests the gateway's retry of subscriptions that are never confirmed.
    pub ignore_requests: u64,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            broker: BrokerKind::Kite,
            port: 0,
            symbols: 100,
            rate: 1000,
            seed: 1,
            api_key: "mock_api_key".into(),
            access_token: "mock_access_token".into(),
            tls: None,
            core: None,
            frame_interval: Duration::from_micros(100),
            ignore_requests: 0,
        }
    }
}

/// Counters, for logs and tests.
#[derive(Debug, Default)]
pub struct MockStats {
    /// Packets queued to connections.
    pub packets: AtomicU64,
    /// Frames a slow connection could not take (its queue was full).
    pub dropped_frames: AtomicU64,
    /// WebSocket connections accepted.
    pub connections: AtomicU64,
}
