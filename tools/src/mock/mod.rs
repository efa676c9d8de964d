//! `tickwire mock-broker`: a test peer that speaks Zerodha Kite's ticker protocol byte for byte
//! from a simulated market. Never used inside the gateway: the gateway reaches it over a real
//! WebSocket like any broker.

pub mod market;
pub mod server;

pub use server::{MockBroker, MockConfig, MockStats};
