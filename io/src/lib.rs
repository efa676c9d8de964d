//! tickwire's IO threads: broker feeds in, WebSocket clients out.
//!
//! - [`kite`]: Zerodha Kite's ticker format (parser, encoder, instrument master).
#![deny(unsafe_code)]

pub mod feed;
pub mod gateway;
pub mod http;
pub mod kite;
