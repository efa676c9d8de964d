//! Upstox Market Data Feed V3: protobuf frames (`MarketDataFeedV3.proto`), JSON requests in binary
//! frames, a single-use authorized URI per connection, and the JSON instrument master.
//!
//! | file | what |
//! |---|---|
//! | `MarketDataFeedV3.proto` | the wire schema |
//! | [`wire`] | a protobuf field reader over borrowed bytes (no allocation) |
//! | [`decode`] | `FeedResponse` → ticks |
//! | [`protocol`] | [`Upstox`]: the broker seam (authorize, requests, keepalive, errors) |
//! | [`instruments`] | the master and OpenAlgo names |
//! | [`pb`] | prost's types for the schema: the mock's encoder and the tests' oracle, never the tick path |

pub mod decode;
pub mod instruments;
pub mod protocol;
#[cfg(test)]
mod tests;
pub mod wire;

pub use protocol::{Keys, Upstox, UpstoxConfig};

/// prost's code for `MarketDataFeedV3.proto`, checked in (`proto.rs`) so a build needs no protobuf
/// compiler; a test regenerates it with the pure-Rust `protox` and compares.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    include!("proto.rs");
}

/// Loads Upstox's instrument master (URL or file) as OpenAlgo listings (key: the instrument key);
/// segments the gateway does not serve are dropped.
pub fn listings(source: &str) -> Result<Vec<super::Listing>, String> {
    Ok(instruments::load(source)
        .map_err(|e| e.to_string())?
        .iter()
        .filter_map(|r| {
            let (exchange, symbol) = instruments::openalgo_name(r)?;
            Some(super::Listing {
                exchange: exchange.to_string(),
                symbol,
                key: r.instrument_key.clone(),
            })
        })
        .collect())
}

/// One [`Upstox`] per connection over the instrument keys by symbol id (built once, shared).
pub fn factory(
    cfg: &UpstoxConfig,
    ids: std::sync::Arc<Vec<Box<str>>>,
) -> crate::feed::ProtocolFactory {
    let mut keys = Keys::default();
    for (id, key) in ids.iter().enumerate().filter(|(_, k)| !k.is_empty()) {
        keys.insert(id as u32, key);
    }
    let (cfg, keys) = (cfg.clone(), std::sync::Arc::new(keys));
    Box::new(move || {
        Box::new(Upstox::new(cfg.clone(), keys.clone())) as Box<dyn crate::feed::BrokerProtocol>
    })
}
