//! tickwire's IO threads: broker feeds in, WebSocket clients out.
#![deny(unsafe_code)]
