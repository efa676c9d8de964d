//! Fyers API v3 data socket ("HSM"): a binary protocol of its own inside WebSocket binary frames,
//! with symbols subscribed by *topic* names (`sf|nse_cm|3045`) that Fyers' HTTP `symbol-token`
//! endpoint resolves, and a CSV instrument master.
//!
//! The shapes are those of Fyers' official Python SDK (`fyers-apiv3` 3.2.0), whose behaviour
//! `docs/brokers.md` summarises; where the SDK is sloppy (bogus length prefixes on the client's
//! packets, an `L` record for an unknown topic that desynchronises the parser) tickwire writes and
//! reads the format as it is meant, never as the SDK's bugs make it.
//!
//! | file | what |
//! |---|---|
//! | [`packet`] | server → client packets: a zero-copy parser (auth reply, status replies, custom messages, data records) |
//! | [`request`] | client → server packets: encoders (auth, mode, subscribe, ack, ping) |
//! | [`serve`] | the mock broker's side: server packets encoded, client packets parsed |
//! | [`topic`] | topic names from a Fyers ticker and its fytoken; the record kinds `sf`, `if`, `dp` |
//! | [`state`] | one topic's merged values and how they fill a tick (exact integer price scaling) |
//! | [`auth`] | the access token: `appid:jwt`, the `hsm_key` and `exp` inside the JWT, a mock token |
//! | [`resolve`] | the `symbol-token` HTTP call, on a helper thread |
//! | `conn` | one connection's state: held packets, topic ids, records → ticks, acks |
//! | [`protocol`] | [`Fyers`]: the broker seam (auth, topic subscriptions via `symbol-token`, errors) |
//! | [`instruments`] | the symbol master CSV and OpenAlgo names |
//!
//! Tests: `golden.rs` holds frames written out as bytes (two the SDK produced, the rest built with
//! Python's `struct.pack`), `tests.rs` checks the codec against them, `protocol_tests.rs` drives
//! [`Fyers`] through the seam; the master, the token and the HTTP call are tested in their files.

pub mod auth;
mod conn;
#[cfg(test)]
mod golden;
pub mod instruments;
pub mod packet;
pub mod protocol;
#[cfg(test)]
mod protocol_tests;
pub mod request;
pub mod resolve;
pub mod serve;
pub mod state;
#[cfg(test)]
mod tests;
pub mod topic;

pub use packet::{DataPacket, Record, Records, ServerPacket, Snapshot, Values};
pub use protocol::{Fyers, FyersConfig};
pub use serve::{ClientPacket, DataWriter, SnapshotSpec};
pub use state::TopicState;
pub use topic::{Kind, Topics};

pub use super::excerpt::Excerpt;

/// Why a packet, or one record of a data packet, was not used. Small and `Copy`: it is counted and
/// logged by the feed, and the rest of the packet (where it can still be found) is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Fewer bytes than the packet's fixed header.
    #[error("packet of {len} bytes is shorter than its header")]
    Short {
        /// Bytes present.
        len: usize,
    },
    /// A data packet ended inside a record, or before its declared record count.
    #[error("data packet cut short in record {index} of {count}")]
    Truncated {
        /// 0-based index of the record that was cut.
        index: u16,
        /// Records declared.
        count: u16,
    },
    /// A TLV field (auth reply, status, custom message, client packet) runs past the packet.
    #[error("field {id} runs past the end of the packet")]
    FieldPastEnd {
        /// The field's id.
        id: u8,
    },
    /// A record type that is none of `S`, `U`, `L`: the rest of the packet cannot be found.
    #[error("unknown record type {0:#04x}")]
    UnknownRecord(u8),
    /// Text that is not UTF-8.
    #[error("text is not UTF-8")]
    NotUtf8,
    /// A snapshot for a topic name this connection did not subscribe.
    #[error("snapshot for unsubscribed topic {0}")]
    UnknownTopic(Excerpt),
    /// An update for a topic id no snapshot bound on this connection.
    #[error("update for topic id {0:02x?} with no snapshot")]
    UnknownTopicId([u8; 2]),
    /// A multiplier of 0 or a precision over 7 (tickwire's price scale has 7 decimals).
    #[error("price scale multiplier {multiplier} precision {precision} is unusable")]
    BadScale {
        /// The snapshot's multiplier.
        multiplier: u16,
        /// The snapshot's precision.
        precision: u8,
    },
    /// A lite (`L`) record for a depth topic, which has no LTP.
    #[error("lite record for a depth topic")]
    LiteForDepth,
    /// A fytoken with an unknown segment code or no exchange token.
    #[error("fytoken {0} has no known segment or no exchange token")]
    BadFytoken(Excerpt),
    /// A topic name longer than the one-byte length a subscribe packet gives it.
    #[error("topic name {0} is over 255 bytes")]
    TopicTooLong(Excerpt),
    /// A client packet the mock cannot read (wrong field, missing field).
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// Loads Fyers' symbol masters (URLs or files, comma-separated) as OpenAlgo listings (key: the
/// Fyers ticker, `NSE:SBIN-EQ`).
pub fn listings(source: &str) -> Result<Vec<super::Listing>, String> {
    Ok(instruments::load(source)
        .map_err(|e| e.to_string())?
        .iter()
        .filter_map(|r| {
            let (exchange, symbol) = instruments::openalgo_name(r)?;
            Some(super::Listing {
                exchange: exchange.to_string(),
                symbol,
                key: r.ticker.clone(),
            })
        })
        .collect())
}

/// One [`Fyers`] per connection over the tickers by symbol id (shared).
pub fn factory(
    cfg: &FyersConfig,
    tickers: std::sync::Arc<Vec<Box<str>>>,
) -> crate::feed::ProtocolFactory {
    let cfg = cfg.clone();
    Box::new(move || {
        Box::new(Fyers::new(cfg.clone(), tickers.clone())) as Box<dyn crate::feed::BrokerProtocol>
    })
}
