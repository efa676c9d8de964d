//! Angel One SmartAPI WebSocket 2.0: binary little-endian packets (51 / 123 / 379 bytes), JSON
//! text requests, text `ping` / `pong` heartbeat. (Skeleton: being filled in.)

use std::sync::Arc;

use super::Listing;
use crate::feed::ProtocolFactory;

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
pub fn listings(_source: &str) -> Result<Vec<Listing>, String> {
    Err("the angel feed is not implemented yet".into())
}

/// One protocol value per connection over the broker keys by symbol id.
pub fn factory(_cfg: &AngelConfig, _keys: Arc<Vec<Box<str>>>) -> ProtocolFactory {
    todo!("angel protocol")
}
