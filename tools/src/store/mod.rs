//! Storing ticks outside the gateway: the row shape every store shares ([`columns`]).
//!
//! - [`columns`]: the columns of an exported file and of the PostgreSQL sink's table.
//! - [`pg`]: the PostgreSQL sink (`serve --sink`).

pub mod columns;
pub mod pg;
