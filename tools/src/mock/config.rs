//! The mock broker's settings (`tickwire mock-broker` flags), which broker it speaks, and its
//! counters.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tickwire_io::kite::instruments::Instrument;

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
}

impl BrokerKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Kite => "kite",
            BrokerKind::Upstox => "upstox",
            BrokerKind::Fyers => "fyers",
        }
    }

    pub(super) fn dialect(self, rows: &[Instrument]) -> Box<dyn Dialect> {
        match self {
            BrokerKind::Kite => Box::new(super::kite::Kite::new(rows)),
            BrokerKind::Upstox => Box::new(super::upstox::Upstox::new(rows)),
            BrokerKind::Fyers => Box::new(super::fyers::Fyers::new(rows)),
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
