//! Angel One SmartAPI WebSocket 2.0: binary little-endian packets (51 / 123 / 379 bytes, one per
//! message) parsed straight into ticks, JSON text requests, text `ping` / `pong` heartbeat, and the
//! OpenAPI scrip master (JSON) mapped to OpenAlgo names.
//!
//! - [`packet`]: the packet layout and parser (no allocation).
//! - [`protocol`]: the broker seam (headers, requests, heartbeat, errors).
//! - [`instruments`]: the scrip master.
//!
//! `docs/brokers.md` (Angel section) describes the wire format; `tests.rs` holds golden packets
//! written out byte by byte.

pub mod instruments;
pub mod packet;
pub mod protocol;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use super::Listing;
use crate::feed::{BrokerProtocol, ProtocolFactory};

pub use packet::{KeyMap, ParseError};
pub use protocol::Angel;

/// Angel One credentials and URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AngelConfig {
    /// The WebSocket URL (default `wss://smartapisocket.angelone.in/smart-stream`).
    pub url: String,
    /// The SmartAPI app's API key (`x-api-key`).
    pub api_key: String,
    /// The client code (`x-client-code`).
    pub client_code: String,
    /// The JWT from the login (`Authorization`).
    pub jwt: String,
    /// The feed token from the login (`x-feed-token`).
    pub feed_token: String,
}

impl Default for AngelConfig {
    fn default() -> Self {
        Self {
            url: "wss://smartapisocket.angelone.in/smart-stream".into(),
            api_key: String::new(),
            client_code: String::new(),
            jwt: String::new(),
            feed_token: String::new(),
        }
    }
}

/// Loads Angel's scrip master (URL or file) as OpenAlgo listings.
pub fn listings(source: &str) -> Result<Vec<Listing>, String> {
    Ok(instruments::load(source)
        .map_err(|e| e.to_string())?
        .iter()
        .filter_map(|r| {
            let (exchange, symbol) = instruments::openalgo_name(r)?;
            Some(Listing {
                exchange: exchange.to_string(),
                symbol,
                key: instruments::listing_key(r)?,
            })
        })
        .collect())
}

/// `"<exchangeType>|<token>"` back to its parts.
pub fn parse_key(key: &str) -> Option<(u8, u64)> {
    let (e, t) = key.split_once('|')?;
    let (e, t) = (e.parse::<u8>().ok()?, t.parse::<u64>().ok()?);
    packet::key(e, t)?;
    (e != 0).then_some((e, t))
}

/// The shared tables: packed key → symbol id, and symbol id → (exchange type, token).
pub fn tables(keys: &[Box<str>]) -> (KeyMap, Vec<(u8, u64)>) {
    let mut map = KeyMap::default();
    let mut of_id = vec![(0u8, 0u64); keys.len()];
    for (id, k) in keys.iter().enumerate() {
        let Some((e, t)) = parse_key(k) else {
            continue;
        };
        if let Some(packed) = packet::key(e, t) {
            // The first symbol of a key wins, as in the registry.
            if let std::collections::hash_map::Entry::Vacant(v) = map.entry(packed) {
                v.insert(id as u32);
                of_id[id] = (e, t);
            }
        }
    }
    (map, of_id)
}

/// One protocol value per connection over the broker keys by symbol id.
pub fn factory(cfg: &AngelConfig, keys: Arc<Vec<Box<str>>>) -> ProtocolFactory {
    let (map, of_id) = tables(&keys);
    let (cfg, map, of_id) = (cfg.clone(), Arc::new(map), Arc::new(of_id));
    Box::new(move || {
        Box::new(Angel::new(cfg.clone(), map.clone(), of_id.clone())) as Box<dyn BrokerProtocol>
    })
}
