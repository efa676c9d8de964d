//! tickwire's engine: the tick record, fixed-point prices, the symbol registry and the router.
//!
//! The tick path, by module: a feed (in `tickwire-io`) fills a [`tick::Tick`] and pushes it on an
//! rtrb ring → [`router`] stamps, publishes (to `tickwire-shm`) and marks → client IO threads are
//! told which symbols changed. No module here uses `unsafe`; shared memory lives in `tickwire-shm`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod affinity;
pub mod calendar;
pub mod clock;
pub mod dirty;
pub mod doorbell;
pub mod health;
pub mod hist;
pub mod idle;
pub mod last;
pub mod price;
pub mod router;
pub mod symbols;
pub mod tick;

pub use price::{Px, PRICE_SCALE};
pub use symbols::{SymbolId, SymbolRegistry};
pub use tick::Tick;
