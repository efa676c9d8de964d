//! Storing ticks outside the gateway: the row shape every store shares ([`columns`]).
//!
//! - [`columns`]: the columns of an exported file and of the PostgreSQL sink's table.
//! - [`writer`]: the exported files' formats and the writer each has ([`csv`], [`parquet`]).
//! - [`pg`]: the PostgreSQL sink (`serve --sink`).

pub mod columns;
pub mod csv;
pub mod parquet;
pub mod pg;
pub mod writer;
