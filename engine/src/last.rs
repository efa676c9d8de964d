//! Reading the latest value of a symbol from inside the process: [`LastValues`].
//!
//! The router is the only writer of last values; the client IO threads read them when they format
//! a message. They read through this trait rather than through the cross-process shm `Reader`, so
//! WebSocket output does not depend on the shm file existing under its path (a deleted or replaced
//! file does not matter: the writer's own mapping stays valid for its lifetime). In production the
//! implementation is the shm writer's view of its last-value table (`tickwire_shm::LastValueView`);
//! the tick is not stored twice.

use crate::symbols::SymbolId;
use crate::tick::Tick;

/// Latest value per symbol, readable from any thread while the router writes.
pub trait LastValues: Send + Sync {
    /// The latest value of `symbol` (merged across field groups), `None` if it never ticked, the
    /// id is outside the table, or the entry could not be read consistently (a writer rewriting it
    /// without pause; the next delivery reads it again).
    fn last_value(&self, symbol: SymbolId) -> Option<Tick>;
}
