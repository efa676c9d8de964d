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
