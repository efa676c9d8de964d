//! Ticks the sink could not store because the shm ring overwrote them first (the database was
//! down or slow for longer than the ring holds); `super::backfill` fills them from the journal.

/// A run of ring positions lost to the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The shm file's incarnation (`tickwire_shm::Reader::instance`).
    pub shm_instance: i64,
    /// First lost ring position.
    pub from: u64,
    /// Last lost ring position (inclusive).
    pub to: u64,
    /// Positions of `from..=to` lost to this sink lane (`super::lanes`): all of them with one
    /// lane.
    pub lost: u64,
    /// Receive time (ns since the epoch) of the newest tick the sink read before the gap; 0 if
    /// none. The lost ticks were published after that tick (with one feed, also received after
    /// it) and received before [`Gap::detected_ns`].
    pub after_recv_ns: i64,
    /// Wall clock when the sink found the gap, ns since the epoch.
    pub detected_ns: i64,
}

impl Gap {
    /// Ticks lost.
    pub fn len(&self) -> u64 {
        self.lost
    }

    /// True if the lane lost none of the positions (such a gap is not reported).
    pub fn is_empty(&self) -> bool {
        self.lost == 0
    }
}
