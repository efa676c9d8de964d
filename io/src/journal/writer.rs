//! The writer thread, "tickwire-journal": drains every appender's ring into the current segment,
//! computing each record's CRC on the way, rolls segments by size and by IST trading day, and
//! fsyncs per [`SyncPolicy`], always when a segment closes and at stop.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickwire_engine::calendar::civil::{ist_day_and_secs, Day};
use tickwire_engine::clock::{civil_from_days, now_ns};

use super::format::{self, Kind, CRC_LEN, RECORD_HEAD};
use super::{JournalConfig, Shared, SyncPolicy};

/// How long the writer sleeps when every ring is empty: bounds how stale the disk is, and (with
/// the ring size) the frame rate a ring absorbs between passes.
const IDLE: Duration = Duration::from_millis(1);
/// After a write error, the writer waits this long before opening a new segment.
const RETRY: Duration = Duration::from_secs(1);

/// A feed's ring as the writer sees it.
pub(crate) struct Source {
    pub feed: u8,
    pub broker: String,
    pub cons: rtrb::Consumer<u8>,
}

/// The day directory's name: the IST trading day as `YYYY-MM-DD`.
pub fn day_dir_name(day: Day) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The IST trading day of a time in ns since the epoch.
pub fn trading_day(ts_ns: i64) -> Day {
    ist_day_and_secs(ts_ns.div_euclid(1_000_000_000)).0
}

struct Segment {
    out: BufWriter<File>,
    path: PathBuf,
    day: Day,
    bytes: u64,
    /// Bytes of the header and catalog: the size limit counts what comes after them.
    base: u64,
    records: u64,
    dirty: bool,
    last_sync: Instant,
}

impl Segment {
    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.bytes += b.len() as u64;
        self.dirty = true;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }
}

/// The writer's state; runs on its own thread.
pub(crate) struct Writer {
    cfg: JournalConfig,
    shared: Arc<Shared>,
    sources: Vec<Source>,
    /// Every feed's id and broker, for segment headers (`sources` is moved out while draining).
    feeds: Vec<(u8, String)>,
    seg: Option<Segment>,
    /// The first error, returned by `stop`.
    error: Option<io::Error>,
    /// No segment is opened before this after an error (a full disk is not hammered).
    retry_at: Option<Instant>,
}

impl Writer {
    pub fn new(cfg: JournalConfig, shared: Arc<Shared>) -> Writer {
        Writer {
            cfg,
            shared,
            sources: Vec::new(),
            feeds: Vec::new(),
            seg: None,
            error: None,
            retry_at: None,
        }
    }

    /// The thread's body: until stop, drain, sync, sleep when idle; then drain once more, close.
    pub fn run(mut self) -> io::Result<()> {
        yield_to_the_tick_path();
        loop {
            // Read before draining: everything appended before `stop` is in the rings by now.
            let stopping = self.shared.stop.load(Ordering::Acquire);
            self.adopt();
            let mut moved = 0;
            // Out of `self` while draining: a ring chunk borrows its source.
            let mut sources = std::mem::take(&mut self.sources);
            for s in &mut sources {
                moved += self.drain(s);
            }
            self.sources = sources;
            if let (SyncPolicy::Every(every), Some(seg)) = (self.cfg.sync, self.seg.as_mut()) {
                if seg.dirty && seg.last_sync.elapsed() >= every {
                    let r = seg.sync();
                    self.check(r);
                }
            }
            if stopping {
                break;
            }
            if moved == 0 {
                // Idle: what is buffered goes to the OS (not synced), so that a reader of the
                // live journal (the sink's backfill, `journal stat`) sees every frame received
                // before now. A no-op, without a syscall, when nothing is buffered.
                if let Some(seg) = self.seg.as_mut() {
                    let r = seg.out.flush();
                    self.check(r);
                }
                std::thread::park_timeout(IDLE);
            }
        }
        self.close();
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Takes appenders registered since the last pass; an open segment is told of each.
    fn adopt(&mut self) {
        let new: Vec<Source> = match self.shared.new.lock() {
            Ok(mut v) if !v.is_empty() => v.drain(..).collect(),
            _ => return,
        };
        for s in new {
            if self.seg.is_some() {
                let r =
                    format::encode_record(Kind::Feed, s.feed, 0, 0, now_ns(), s.broker.as_bytes());
                let res = self
                    .seg
                    .as_mut()
                    .map_or(Ok(()), |seg| seg.write(&r).map(|_| seg.records += 1));
                self.check(res);
            }
            self.feeds.push((s.feed, s.broker.clone()));
            self.sources.push(s);
        }
    }

    /// Moves every whole record in a source's ring to disk; returns the bytes moved.
    fn drain(&mut self, src: &mut Source) -> usize {
        let n = src.cons.slots();
        if n == 0 {
            return 0;
        }
        let Ok(chunk) = src.cons.read_chunk(n) else {
            return 0;
        };
        let (a, b) = chunk.as_slices();
        let mut off = 0;
        // Appenders commit whole records, so the available bytes are whole records.
        while off + RECORD_HEAD <= n {
            let mut head = [0u8; RECORD_HEAD];
            gather(a, b, off, &mut head);
            let len = format::u32_at(&head, format::R_LEN) as usize;
            let ring_len = len.saturating_sub(CRC_LEN).max(RECORD_HEAD);
            let ts = i64::from_le_bytes(
                head[format::R_TS..format::R_TS + 8]
                    .try_into()
                    .unwrap_or([0; 8]),
            );
            let kind = head[format::R_KIND];
            let end = (off + ring_len).min(n);
            let res = self.write_record(a, b, off, end, ts, kind, len as u64);
            self.check(res);
            off = end;
        }
        chunk.commit_all();
        n
    }

    #[allow(clippy::too_many_arguments)]
    fn write_record(
        &mut self,
        a: &[u8],
        b: &[u8],
        start: usize,
        end: usize,
        ts: i64,
        kind: u8,
        len: u64,
    ) -> io::Result<()> {
        if !self.ready(ts, len)? {
            self.shared.stats.lost.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let stats = &self.shared.stats;
        let Some(seg) = self.seg.as_mut() else {
            return Ok(());
        };
        let mut crc = 0;
        for part in split(a, b, start, end) {
            crc = crc32c::crc32c_append(crc, part);
            seg.write(part)?;
        }
        seg.write(&crc.to_le_bytes())?;
        seg.records += 1;
        stats.bytes.fetch_add(len, Ordering::Relaxed);
        if kind == Kind::Frame as u8 {
            stats.frames.fetch_add(1, Ordering::Relaxed);
        } else if kind == Kind::Gap as u8 {
            stats.gaps.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Opens or rolls the segment for a record at `ts` of `len` bytes; false while an earlier
    /// error's retry delay runs (the record is lost, and counted).
    fn ready(&mut self, ts: i64, len: u64) -> io::Result<bool> {
        let day = trading_day(ts);
        let roll = match &self.seg {
            None => None,
            // Forward only: records of several feeds interleave around midnight, and one a
            // moment older than the day's first must not reopen yesterday.
            Some(s) if day > s.day => Some(day),
            Some(s) if s.records > 0 && s.bytes - s.base + len > self.cfg.segment_bytes => {
                Some(s.day)
            }
            Some(_) => return Ok(true),
        };
        let day = roll.unwrap_or(day);
        self.close();
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return Ok(false);
        }
        self.retry_at = None;
        self.seg = Some(self.open(day)?);
        Ok(true)
    }

    fn open(&mut self, day: Day) -> io::Result<Segment> {
        let dir = self.cfg.dir.join(day_dir_name(day));
        fs::create_dir_all(&dir)?;
        // A new file each time, after the highest there: a segment a crash left torn stays as
        // it is, for the reader to skip its tail.
        let seq = last_seq(&dir)? + 1;
        let path = dir.join(format!("{seq:06}.twj"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let header = format::encode_header(now_ns(), &self.feeds);
        let mut seg = Segment {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            day,
            bytes: 0,
            base: 0,
            records: 0,
            dirty: false,
            last_sync: Instant::now(),
        };
        seg.write(&header)?;
        let catalog = self
            .shared
            .catalog
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        for r in catalog.iter() {
            seg.write(r)?;
        }
        seg.base = seg.bytes;
        // The new name must survive a crash too.
        File::open(&dir)?.sync_all()?;
        self.shared.stats.segments.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(path = %seg.path.display(), "journal segment opened");
        Ok(seg)
    }

    /// Flushes and fsyncs the current segment, if any.
    fn close(&mut self) {
        if let Some(mut seg) = self.seg.take() {
            let r = seg.sync();
            self.check(r);
        }
    }

    /// Keeps the first error for `stop`, logs it, drops the segment and delays the next.
    fn check(&mut self, r: io::Result<()>) {
        let Err(e) = r else { return };
        self.shared
            .stats
            .write_errors
            .fetch_add(1, Ordering::Relaxed);
        let path = self
            .seg
            .take()
            .map(|s| s.path)
            .unwrap_or_else(|| self.cfg.dir.clone());
        tracing::error!(path = %path.display(), "journal write failed: {e}");
        self.retry_at = Some(Instant::now() + RETRY);
        if self.error.is_none() {
            self.error = Some(io::Error::new(e.kind(), format!("{}: {e}", path.display())));
        }
    }
}

/// The highest `NNNNNN.twj` sequence number in `dir` (0 if none).
fn last_seq(dir: &Path) -> io::Result<u64> {
    let mut max = 0;
    for e in fs::read_dir(dir)? {
        let name = e?.file_name();
        let seq = name
            .to_str()
            .and_then(|n| n.strip_suffix(".twj"))
            .and_then(|n| n.parse().ok());
        max = max.max(seq.unwrap_or(0));
    }
    Ok(max)
}

/// Copies `out.len()` bytes at `off` of the ring's two halves.
fn gather(a: &[u8], b: &[u8], off: usize, out: &mut [u8]) {
    for (i, o) in out.iter_mut().enumerate() {
        let p = off + i;
        *o = if p < a.len() {
            a[p]
        } else {
            b.get(p - a.len()).copied().unwrap_or(0)
        };
    }
}

/// Bytes `start..end` of the ring's two halves, as up to two slices.
fn split<'a>(a: &'a [u8], b: &'a [u8], start: usize, end: usize) -> [&'a [u8]; 2] {
    let al = a.len();
    let first = a.get(start.min(al)..end.min(al)).unwrap_or_default();
    let second = b
        .get(start.saturating_sub(al)..end.saturating_sub(al))
        .unwrap_or_default();
    [first, second]
}

/// Lowers this thread's scheduling priority (nice 10; Linux keeps a nice value per thread). On a
/// host with no core to spare, the journal's writes and fsyncs then wait for the feed, router and
/// client threads instead of preempting them: its ring absorbs the delay, and past that it records
/// a gap rather than slow a tick. Measured with `bench e2e` on 2 busy cores (README). A failure
/// (a container without the right) leaves the default priority; nothing else changes.
fn yield_to_the_tick_path() {
    #[allow(unsafe_code)]
    // SAFETY: setpriority takes plain integers and touches no memory of ours; `who = 0` is the
    // calling thread on Linux.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, 10) };
    if rc != 0 {
        tracing::debug!(
            "journal: could not lower the writer's priority: {}",
            io::Error::last_os_error()
        );
    }
}
