//! `tickwire mock-broker`: a test peer that speaks a broker's market-data protocol byte for byte
//! from a simulated market. Never used inside the gateway: the gateway reaches it over a real
//! WebSocket like any broker.
//!
//! | file | what |
//! |---|---|
//! | `market.rs` | the simulated market (one for every broker) |
//! | `config.rs` | settings, the broker spoken, counters |
//! | `server.rs` | listener, HTTP, WebSocket sessions, fan-out (one for every broker) |
//! | `dialect.rs` | the trait a broker's dialect implements |
//! | `kite.rs`, `upstox.rs`, `fyers.rs`, `angel.rs`, `dhan.rs`, `noren.rs` | the dialects |

pub mod angel;
pub mod config;
pub mod dhan;
pub mod dialect;
pub mod fyers;
pub mod kite;
pub mod market;
pub mod noren;
pub mod server;
mod side;
pub mod upstox;

pub use config::{BrokerKind, MockConfig, MockStats};
pub use server::MockBroker;
