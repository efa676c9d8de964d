//! Ticks the sink could not store because the shm ring overwrote them first (the database was
//! down or slow for longer than the ring holds), and the hook that will fill them from the
//! journal.

use std::path::Path;

use postgres::Client;

use super::schema::TableName;
use super::SinkError;

/// A run of ring positions lost to the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The shm file's incarnation (`tickwire_shm::Reader::instance`).
    pub shm_instance: i64,
    /// First lost ring position.
    pub from: u64,
    /// Last lost ring position (inclusive).
    pub to: u64,
    /// Receive time (ns since the epoch) of the newest tick the sink read before the gap; 0 if
    /// none. The lost ticks were received after it and before [`Gap::detected_ns`].
    pub after_recv_ns: i64,
    /// Wall clock when the sink found the gap, ns since the epoch.
    pub detected_ns: i64,
}

impl Gap {
    /// Ticks lost.
    pub fn len(&self) -> u64 {
        self.to + 1 - self.from
    }

    /// Never true: a gap has at least one position (clippy's pair for `len`).
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Backfill hook: stores the ticks of `gap` from the journal in `journal_dir` into `table`, and
/// returns how many rows it stored.
///
/// Called once per gap, on the sink thread, after the gap has been counted and logged and after
/// the batch it was found in committed (rows before and after the gap are in the table), with no
/// transaction open (`db` is idle; the hook may open its own). An error is handled like any
/// database error (reconnect and resume; the gap is offered again). The lost ticks are the
/// frames received in `(gap.after_recv_ns, gap.detected_ns]` by the feeds of this gateway;
/// replaying that window of the journal through the parsers gives them back, and a row already
/// in the table is recognised by `(exchange, symbol, seq)` within the window.
///
/// Not implemented yet (the journal replay core is being written): returns `Ok(0)`, and the
/// gap stays reported in `/status` and `/metrics`.
pub fn backfill(
    gap: &Gap,
    journal_dir: Option<&Path>,
    db: &mut Client,
    table: &TableName,
) -> Result<u64, SinkError> {
    let _ = (gap, journal_dir, db, table);
    Ok(0)
}
