//! One folder per broker, each implementing [`crate::feed::BrokerProtocol`] and loading its
//! instrument master into OpenAlgo names. `docs/adding-a-broker.md` walks through adding one.
//!
//! - [`kite`]: Zerodha Kite Connect's ticker (binary, big-endian).

pub mod kite;
