//! Dhan live market feed v2: JSON requests, binary little-endian responses with an 8-byte header.
//! (Skeleton: being filled in.)

use std::sync::Arc;

use super::Listing;
use crate::feed::ProtocolFactory;

/// Dhan credentials and URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhanConfig {
    /// The feed URL without its query (default `wss://api-feed.dhan.co`).
    pub url: String,
    /// The Dhan client id.
    pub client_id: String,
    /// The access token.
    pub access_token: String,
}

impl Default for DhanConfig {
    fn default() -> Self {
        Self {
            url: "wss://api-feed.dhan.co".into(),
            client_id: String::new(),
            access_token: String::new(),
        }
    }
}

/// Loads Dhan's scrip master CSV (URL or file) as OpenAlgo listings.
pub fn listings(_source: &str) -> Result<Vec<Listing>, String> {
    Err("the dhan feed is not implemented yet".into())
}

/// One protocol value per connection over the broker keys by symbol id.
pub fn factory(_cfg: &DhanConfig, _keys: Arc<Vec<Box<str>>>) -> ProtocolFactory {
    todo!("dhan protocol")
}
