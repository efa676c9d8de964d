//! One folder per broker, each implementing [`crate::feed::BrokerProtocol`] and loading its
//! instrument master into OpenAlgo names. `docs/adding-a-broker.md` walks through adding one.
//!
//! - [`kite`]: Zerodha Kite Connect's ticker (binary, big-endian).
//! - [`upstox`]: Upstox Market Data Feed V3 (protobuf).
//! - [`master`]: fetching a master (URL or file, gzip or plain).

pub mod kite;
pub mod master;
pub mod upstox;
