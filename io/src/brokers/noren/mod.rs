//! Noren (Shoonya, Flattrade and other Noren brokers): JSON text frames, every value a string,
//! updates carrying only changed fields.
//!
//! - [`wire`]: one server message (`ck`, `tk`, `tf`, `dk`, `df`) parsed with simd-json's tape, in
//!   place in a reused buffer, into a fixed-size [`wire::Update`] (prices straight into tickwire's
//!   fixed point from their decimal text, no floats).
//! - [`state`]: each subscribed token's merged values (a `tf`/`df` carries only what changed), from
//!   which every tick is built whole.
//! - [`keys`]: `exch|token` keys ↔ symbol ids.
//! - [`protocol`]: the broker seam (connect message, ack, batched requests, heartbeat).
//! - [`instruments`]: the zipped symbol masters → OpenAlgo names.
//!
//! `docs/brokers.md` (Noren) describes the wire format and the decisions taken here.

pub mod instruments;
pub mod keys;
pub mod protocol;
pub mod state;
pub mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use super::Listing;
use crate::feed::{BrokerProtocol, ProtocolFactory};

pub use keys::Keys;
pub use protocol::Noren;
pub use wire::{Kind, Update};

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

pub use super::excerpt::Excerpt;

/// Why a message was not used. Small and `Copy`: counted and logged by the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON (simd-json refused it).
    #[error("not JSON: {0}")]
    Json(Excerpt),
    /// JSON, but not an object (or an array of objects).
    #[error("not a JSON object: {0}")]
    NotObject(Excerpt),
    /// No `t` (message type).
    #[error("message without a type (t)")]
    NoType,
    /// A market-data message without a usable `e` / `tk`.
    #[error("market data without a usable exchange and token: {0}")]
    NoToken(Excerpt),
    /// A field whose value is not a decimal string (or integer) that fits.
    #[error("field {field} has a bad value {value}")]
    BadValue {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: Excerpt,
    },
    /// An `exch|token` this feed does not list.
    #[error("unknown token {exchange}|{token}")]
    UnknownToken {
        /// Exchange (`NSE`).
        exchange: Excerpt,
        /// Token number.
        token: u32,
    },
    /// A token with no subscription on this connection.
    #[error("data for {0}, which this connection has not subscribed")]
    NotSubscribed(u32),
    /// A `tf`/`df` before any `tk`/`dk` for its token: there is nothing to merge it into.
    #[error("update for token {0} before its snapshot")]
    UpdateBeforeSnapshot(u32),
}

/// Loads Noren symbol masters (URLs or files, comma-separated; zip or plain) as OpenAlgo listings.
pub fn listings(source: &str) -> Result<Vec<Listing>, String> {
    instruments::listings(source).map_err(|e| e.to_string())
}

/// One protocol value per connection over the broker keys by symbol id.
pub fn factory(cfg: &NorenConfig, keys: Arc<Vec<Box<str>>>) -> ProtocolFactory {
    let keys = Arc::new(Keys::new(&keys));
    let cfg = cfg.clone();
    Box::new(move || Box::new(Noren::new(cfg.clone(), keys.clone())) as Box<dyn BrokerProtocol>)
}
