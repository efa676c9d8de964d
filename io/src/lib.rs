//! tickwire's IO threads: broker feeds in, WebSocket clients out.
//!
//! - [`feed`]: the upstream connection mechanism every broker shares (the broker seam).
//! - [`brokers`]: one folder per broker (wire format, instrument master).
//! - [`gateway`]: the client IO thread (OpenAlgo's WebSocket protocol, plain HTTP status).
//! - [`journal`]: the raw-frame journal (segments of checksummed records, a writer thread).
#![deny(unsafe_code)]

pub mod brokers;
pub mod feed;
pub mod gateway;
pub mod http;
pub mod journal;
pub mod ratelog;
pub mod replay;

/// Kite's codec, where it has always been importable from (`tickwire_io::kite`).
pub use brokers::kite;
