//! The journal's records back in time order across feeds.
//!
//! Within a segment each feed's records are in the order it appended them, but the writer drains
//! feeds in turns, so feeds interleave in chunks. A replay wants them merged by receive time
//! without ever reordering one feed's own records (a clock step must not shuffle a feed's frames):
//! each feed's records wait in their own queue, and the earliest head of all queues goes next, once
//! every feed has one queued (so no earlier record can still come), or once the journal is read to
//! its end, or the queues hold more than [`HORIZON_NS`] of time or [`MAX_BUFFERED`] bytes (a feed
//! silent for hours must not make the others wait). Every rule depends only on the journal's
//! content: a replay merges the same way every time.

use std::collections::VecDeque;
use std::path::Path;

use crate::journal::format::Kind;
use crate::journal::read::{record_in, ReadError, Segments, TornTail};

/// How far ahead of the earliest queued record reading may run before it goes out anyway: far more
/// than the writer's drain turns (milliseconds), far less than a quiet feed's silence.
pub const HORIZON_NS: i64 = 5_000_000_000;
/// Queued bytes past which the earliest record goes out anyway.
pub const MAX_BUFFERED: usize = 64 << 20;

/// One record, copied out of the reader.
#[derive(Debug, Default)]
pub struct Owned {
    /// What it holds.
    pub kind: Option<Kind>,
    /// The feed (appender) id.
    pub feed: u8,
    /// The connection within the feed.
    pub conn: u8,
    /// Flag bits.
    pub flags: u8,
    /// Receive or event time, ns since the epoch.
    pub ts_ns: i64,
    /// The whole record as read (header, payload, CRC): moved out of the reader, not copied.
    whole: Vec<u8>,
}

impl Owned {
    /// The payload.
    pub fn payload(&self) -> &[u8] {
        record_in(&self.whole, 0).map_or(&[], |r| r.payload)
    }

    /// Takes the fields from `whole`; false if it holds no record.
    fn fill(&mut self) -> bool {
        let Some(r) = record_in(&self.whole, 0) else {
            return false;
        };
        let (kind, feed, conn, flags, ts_ns) = (r.kind, r.feed, r.conn, r.flags, r.ts_ns);
        (self.kind, self.feed, self.conn, self.flags, self.ts_ns) =
            (Some(kind), feed, conn, flags, ts_ns);
        true
    }
}

/// See the module docs.
pub struct Merge {
    segs: Segments,
    /// Queues by feed id; `active` lists the ids that have had a record.
    queues: Vec<VecDeque<Owned>>,
    active: Vec<u8>,
    /// Records handed out and given back: their buffers are reused.
    free: Vec<Owned>,
    buffered: usize,
    newest_ns: i64,
    eof: bool,
}

impl Merge {
    /// Reads the journal in `dir`.
    pub fn open(dir: &Path) -> Result<Merge, ReadError> {
        Ok(Merge::of(Segments::open(dir)?))
    }

    /// Reads these segments.
    pub fn of(segs: Segments) -> Merge {
        Merge {
            segs,
            queues: (0..256).map(|_| VecDeque::new()).collect(),
            active: Vec::new(),
            free: Vec::new(),
            buffered: 0,
            newest_ns: i64::MIN,
            eof: false,
        }
    }

    /// The segment files, in reading order.
    pub fn paths(&self) -> &[std::path::PathBuf] {
        self.segs.paths()
    }

    /// The segment being read.
    pub fn current_path(&self) -> Option<&Path> {
        self.segs.current().map(|c| c.path())
    }

    /// Torn tails met so far.
    pub fn torn_tails(&self) -> &[TornTail] {
        self.segs.torn_tails()
    }

    /// The next record in merged order (`None` at the end). Give it back with [`Merge::recycle`]
    /// to reuse its buffer.
    pub fn next_record(&mut self) -> Result<Option<Owned>, ReadError> {
        loop {
            if let Some(f) = self.ready() {
                let r = self.queues[f as usize].pop_front();
                if let Some(r) = &r {
                    self.buffered -= r.whole.len();
                }
                return Ok(r);
            }
            if self.eof {
                return Ok(None);
            }
            self.read_one()?;
        }
    }

    /// Returns a record's buffer for reuse.
    pub fn recycle(&mut self, r: Owned) {
        if self.free.len() < 1024 {
            self.free.push(r);
        }
    }

    /// The feed whose head goes next, if one may go now.
    fn ready(&self) -> Option<u8> {
        let mut best: Option<(i64, u8)> = None;
        let mut all = true;
        for &f in &self.active {
            match self.queues[f as usize].front() {
                Some(h) => {
                    if best.is_none_or(|(ts, _)| h.ts_ns < ts) {
                        best = Some((h.ts_ns, f));
                    }
                }
                None => all = false,
            }
        }
        let (ts, f) = best?;
        let go = all
            || self.eof
            || self.buffered > MAX_BUFFERED
            || self.newest_ns.saturating_sub(ts) > HORIZON_NS;
        go.then_some(f)
    }

    fn read_one(&mut self) -> Result<(), ReadError> {
        let mut slot = self.free.pop().unwrap_or_default();
        if !(self.segs.next_swapped(&mut slot.whole)? && slot.fill()) {
            self.eof = true;
            self.free.push(slot);
            return Ok(());
        }
        // A segment's header names its feeds: each is waited for from then on.
        if let Some(cur) = self.segs.current() {
            for (f, _) in &cur.header().feeds {
                if !self.active.contains(f) {
                    self.active.push(*f);
                }
            }
        }
        // Writer-stamped records (the catalog, a feed's arrival) carry no data time.
        if matches!(
            slot.kind,
            Some(Kind::Frame | Kind::Connect | Kind::Disconnect)
        ) {
            self.newest_ns = self.newest_ns.max(slot.ts_ns);
        }
        let f = slot.feed;
        if !self.active.contains(&f) {
            self.active.push(f);
        }
        self.buffered += slot.whole.len();
        self.queues[f as usize].push_back(slot);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::format::{encode_header, encode_record};

    fn write(dir: &Path, records: &[(u8, i64)]) {
        let day = dir.join("2026-12-03");
        std::fs::create_dir_all(&day).unwrap();
        let mut b = encode_header(0, &[(0, "zerodha".into()), (1, "upstox".into())]);
        for &(feed, ts) in records {
            b.extend(encode_record(
                Kind::Frame,
                feed,
                0,
                0,
                ts,
                &ts.to_le_bytes(),
            ));
        }
        std::fs::write(day.join("000001.twj"), b).unwrap();
    }

    fn order(dir: &Path) -> Vec<(u8, i64)> {
        let mut m = Merge::open(dir).unwrap();
        let mut out = Vec::new();
        while let Some(r) = m.next_record().unwrap() {
            out.push((r.feed, r.ts_ns));
            m.recycle(r);
        }
        out
    }

    #[test]
    fn feeds_drained_in_chunks_come_out_in_time_order() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            &[
                (0, 1),
                (0, 3),
                (0, 5),
                (1, 2),
                (1, 4),
                (0, 7),
                (1, 6),
                (1, 8),
            ],
        );
        let got = order(d.path());
        let ts: Vec<i64> = got.iter().map(|r| r.1).collect();
        assert_eq!(ts, [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn one_feed_keeps_its_own_order_even_when_its_clock_steps_back() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), &[(0, 10), (0, 5), (0, 20), (1, 1), (1, 30)]);
        let got = order(d.path());
        let feed0: Vec<i64> = got.iter().filter(|r| r.0 == 0).map(|r| r.1).collect();
        assert_eq!(feed0, [10, 5, 20]);
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn a_silent_feed_holds_the_others_back_only_to_the_horizon() {
        let d = tempfile::tempdir().unwrap();
        let s = 1_000_000_000;
        // Feed 1 says something once, then nothing: feed 0's records still go out in order.
        let mut recs = vec![(1, 0)];
        recs.extend((1..=20).map(|i| (0u8, i * s)));
        write(d.path(), &recs);
        let got = order(d.path());
        assert_eq!(got.len(), 21);
        assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
