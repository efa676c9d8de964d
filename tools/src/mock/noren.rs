//! The mock's Noren dialect. (Skeleton: speaks Kite until filled in.)

use std::net::SocketAddr;

use tickwire_io::brokers::BrokerConfig;
use tickwire_io::kite::instruments::Instrument;

use super::config::MockConfig;
use super::dialect::Dialect;

/// The dialect for a market with these rows.
pub fn dialect(rows: &[Instrument]) -> Box<dyn Dialect> {
    Box::new(super::kite::Kite::new(rows))
}

/// How a gateway reaches a mock at `base` with settings `cfg`: its broker config and instrument
/// master source.
pub fn gateway(base: SocketAddr, cfg: &MockConfig) -> (BrokerConfig, String) {
    let _ = (base, cfg);
    todo!("noren mock wiring")
}

/// The mock's endpoints, for its start-up line (`ws`/`http`: the schemes in use).
pub fn describe(ws: &str, http: &str, addr: SocketAddr, cfg: &MockConfig) -> String {
    let _ = (ws, cfg);
    format!("mock Noren broker on {http}://{addr}")
}
