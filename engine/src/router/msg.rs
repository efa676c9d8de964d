//! Messages on the rings around the router. All are small `Copy` values: a ring slot never owns heap
//! memory, so pushing and popping never allocates.

use crate::symbols::SymbolId;
use crate::tick::Tick;

/// A consumer of throttled updates: one client connection. Ids are dense; IO thread `k` owns ids
/// `k * consumers_per_io .. (k + 1) * consumers_per_io` (see [`RouterConfig`](super::RouterConfig)),
/// so the router knows which ring reaches a consumer without a table.
pub type ConsumerId = u32;

/// A subscription mode, numbered as OpenAlgo numbers them. Each mode includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Mode {
    /// Last traded price.
    Ltp = 1,
    /// LTP, OHLC, volume, totals.
    Quote = 2,
    /// Quote plus 5-level depth.
    Depth = 3,
}

impl Mode {
    /// All modes, lowest first.
    pub const ALL: [Mode; 3] = [Mode::Ltp, Mode::Quote, Mode::Depth];

    /// This mode's bit in a [`ModeSet`].
    #[inline]
    pub const fn bit(self) -> ModeSet {
        1 << (self as u8 - 1)
    }

    /// From OpenAlgo's number.
    pub const fn from_number(n: u8) -> Option<Mode> {
        match n {
            1 => Some(Mode::Ltp),
            2 => Some(Mode::Quote),
            3 => Some(Mode::Depth),
            _ => None,
        }
    }

    /// The highest mode in a set, if any.
    pub const fn highest(set: ModeSet) -> Option<Mode> {
        if set & 4 != 0 {
            Some(Mode::Depth)
        } else if set & 2 != 0 {
            Some(Mode::Quote)
        } else if set & 1 != 0 {
            Some(Mode::Ltp)
        } else {
            None
        }
    }
}

/// A set of modes as bits (`Mode::bit`); 0 is empty.
pub type ModeSet = u8;

/// Client IO thread → router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// `consumer` wants `symbol` in `mode` (in addition to modes it already holds).
    Subscribe {
        /// Who.
        consumer: ConsumerId,
        /// What.
        symbol: SymbolId,
        /// Which mode.
        mode: Mode,
    },
    /// `consumer` drops the modes in `modes` for `symbol` (`0b111` = every mode).
    Unsubscribe {
        /// Who.
        consumer: ConsumerId,
        /// What.
        symbol: SymbolId,
        /// Which modes to drop.
        modes: ModeSet,
    },
    /// `consumer` drops everything (unsubscribe_all, or the connection closed).
    UnsubscribeAll {
        /// Who.
        consumer: ConsumerId,
    },
}

/// Router → feed IO thread: the demand for one symbol changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// Subscribe (or change mode) so that `mode` data arrives for `symbol`.
    Subscribe {
        /// What.
        symbol: SymbolId,
        /// The highest mode any consumer wants.
        mode: Mode,
    },
    /// No consumer wants `symbol` any more.
    Unsubscribe {
        /// What.
        symbol: SymbolId,
    },
}

/// Router → client IO thread: a symbol some client of that thread holds has changed. The router
/// sends one per IO thread, not one per client: the IO thread fans it out to its own clients
/// (formatting each message once), so the router's cost per tick does not grow with subscribers.
#[derive(Clone, Copy, Debug, PartialEq)]
// Ring slots are fixed-size values: boxing the tick would allocate per tick.
#[allow(clippy::large_enum_variant)]
pub enum Delivery {
    /// A published tick (already stamped with its sequence): every update, in order, while the
    /// ring has room.
    Tick(Tick),
    /// The symbol changed; read its latest value from the last-value table. Sent by the interval
    /// flush (`--flush-ms`), when the ring was full (the ticks that did not fit are conflated into
    /// this), and when a client subscribes (its first value).
    Latest(SymbolId),
}

impl Delivery {
    /// The symbol concerned.
    pub fn symbol(&self) -> SymbolId {
        match self {
            Delivery::Tick(t) => t.symbol_id,
            Delivery::Latest(s) => *s,
        }
    }
}
