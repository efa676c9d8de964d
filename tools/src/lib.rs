//! The pieces of the `tickwire` binary that tests and benchmarks share.
#![deny(unsafe_code)]

pub mod bench_cmd;
pub mod bench_fanout;
pub mod bench_soak;
pub mod config;
pub mod export_cmd;
pub mod gateway_cmd;
pub mod journal_cmd;
pub mod json;
pub mod keys_cmd;
pub mod logging;
pub mod mock;
pub mod reload;
pub mod replay_cmd;
pub mod secrets;
pub mod shm_cmd;
pub mod store;
pub mod synthetic;
pub mod wsraw;
