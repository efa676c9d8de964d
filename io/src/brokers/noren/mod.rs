//! Noren (Shoonya, Flattrade and other Noren brokers): JSON text frames, every value a string,
//! updates carrying only changed fields. (Skeleton: being filled in.)

use std::sync::Arc;

use super::Listing;
use crate::feed::ProtocolFactory;

/// Shoonya's WebSocket.
pub const SHOONYA_URL: &str = "wss://api.shoonya.com/NorenWSTP/";
/// Flattrade's WebSocket.
pub const FLATTRADE_URL: &str = "wss://piconnect.flattrade.in/PiConnectWSTp/";

/// A Noren broker's credentials and URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NorenConfig {
    /// Which Noren broker (`shoonya`, `flattrade`, `noren`): for status and logs.
    pub broker: &'static str,
    /// The WebSocket URL.
    pub url: String,
    /// User id (`uid`).
    pub user: String,
    /// Account id (`actid`; usually the user id).
    pub account: String,
    /// Session token from the login (`susertoken`).
    pub token: String,
}

impl Default for NorenConfig {
    fn default() -> Self {
        Self {
            broker: "shoonya",
            url: SHOONYA_URL.into(),
            user: String::new(),
            account: String::new(),
            token: String::new(),
        }
    }
}

/// Loads Noren symbol masters (URLs or files, comma-separated; zip or plain) as OpenAlgo listings.
pub fn listings(_source: &str) -> Result<Vec<Listing>, String> {
    Err("the noren feed is not implemented yet".into())
}

/// One protocol value per connection over the broker keys by symbol id.
pub fn factory(_cfg: &NorenConfig, _keys: Arc<Vec<Box<str>>>) -> ProtocolFactory {
    todo!("noren protocol")
}
