//! The reader: any number, in any number of processes, each with its own cursor.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use memmap2::Mmap;
use tickwire_engine::Tick;

use crate::layout::{
    self, state, DirEntry, Geometry, GeometryError, Header, DIR_ENTRY_SIZE, DIR_OFFSET,
    HEADER_SIZE, MAGIC, RECORD_SIZE,
};
use crate::liveness::{self, Holder};
use crate::seqlock::SeqTick;
use crate::{file, ShmError};

/// What [`Reader::next`] found.
// The tick is returned by value on purpose: boxing it would allocate per read.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// The next tick in ring order.
    Tick(Tick),
    /// The writer lapped this reader: exactly `lost` ticks were overwritten before they could be read.
    /// The reader has resynced; the next `next()` continues from the oldest tick still safe to read.
    /// Last values ([`Reader::last_value`]) are always current, so a strategy can refresh from them.
    Lagged {
        /// Ticks skipped.
        lost: u64,
    },
}

/// Whether a writer is publishing to the file. Decided from the file itself (the writer's lock and
/// the header), never from the pid, which is kept for display only: see [`Reader::writer_status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterStatus {
    /// Live: the writer holds the file and heartbeat recently.
    Live,
    /// It shut down cleanly.
    Closed,
    /// Its process is gone without closing the file (crashed or killed): nobody holds the file.
    Dead {
        /// The writer's pid, as the file records it (in the writer's PID namespace).
        pid: u32,
    },
    /// The writer still holds the file but has not heartbeat for `age_ms` (stopped or hung).
    Stale {
        /// The writer's pid.
        pid: u32,
        /// Milliseconds since the last heartbeat.
        age_ms: u64,
    },
}

impl fmt::Display for WriterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriterStatus::Live => write!(f, "live"),
            WriterStatus::Closed => write!(f, "the writer closed the file"),
            WriterStatus::Dead { pid } => write!(
                f,
                "writer process {pid} is gone (it did not close the file)"
            ),
            WriterStatus::Stale { pid, age_ms } => {
                write!(f, "writer process {pid} has not heartbeat for {age_ms} ms")
            }
        }
    }
}

/// How to open.
#[derive(Clone, Copy, Debug)]
pub struct OpenOptions {
    /// Refuse a file with no live writer (tools that inspect a dead file turn this off).
    pub require_live: bool,
    /// Heartbeat age past which a writer counts as stale.
    pub stale_after: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            require_live: true,
            stale_after: Duration::from_secs(5),
        }
    }
}

/// A directory entry, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolName {
    /// Exchange.
    pub exchange: String,
    /// Trading symbol.
    pub symbol: String,
    /// Broker token.
    pub token: String,
}

/// The header's values, for `tickwire shm stat`.
#[derive(Clone, Debug)]
pub struct HeaderInfo {
    /// Major, minor layout version.
    pub version: (u16, u16),
    /// Tick record size.
    pub tick_size: u32,
    /// Ring slot / last-value entry size.
    pub record_size: u32,
    /// Sections and sizes.
    pub geometry: Geometry,
    /// Writer pid.
    pub writer_pid: u32,
    /// Newest ring position.
    pub write_pos: u64,
    /// Last heartbeat, ns since the epoch; in a closed file, when it was closed.
    pub heartbeat_ns: i64,
    /// Directory length.
    pub symbol_count: u64,
    /// Liveness.
    pub status: WriterStatus,
}

/// A reader; see the crate docs.
pub struct Reader {
    map: Mmap,
    /// Kept open for the liveness test (a lock test needs a descriptor on the file).
    file: File,
    geo: Geometry,
    path: PathBuf,
    opts: OpenOptions,
    /// Ring position `next()` will read.
    next: u64,
    names: HashMap<String, HashMap<String, u32>>,
    names_loaded: u64,
}

impl Reader {
    /// Opens `path`, checking magic, version, sizes and that a writer is live.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ShmError> {
        Self::open_with(path, OpenOptions::default())
    }

    /// Opens with explicit options.
    pub fn open_with(path: impl AsRef<Path>, opts: OpenOptions) -> Result<Self, ShmError> {
        let path = path.as_ref().to_owned();
        // A directory, FIFO, socket or device is refused by name, and the open never blocks.
        let (file, len) = file::open_regular(&path)?;
        let mut r = Self::from_file(path, file, len, opts)?;
        if opts.require_live {
            let status = r.writer_status();
            if status != WriterStatus::Live {
                return Err(ShmError::NotLive {
                    path: r.path,
                    status,
                });
            }
        }
        r.seek_latest();
        Ok(r)
    }

    /// Maps and validates `file` (already checked to be a regular file of `len` bytes).
    pub(crate) fn from_file(
        path: PathBuf,
        file: File,
        len: u64,
        opts: OpenOptions,
    ) -> Result<Self, ShmError> {
        let io = |source| ShmError::Io {
            path: path.clone(),
            source,
        };
        if len < HEADER_SIZE as u64 {
            return Err(ShmError::Truncated {
                path,
                len,
                need: HEADER_SIZE as u64,
            });
        }
        // SAFETY: a read-only shared mapping. The file may be written concurrently by the writer;
        // this reader only performs atomic loads on the mapped bytes (allowed on read-only memory for
        // lock-free atomics of at most 8 bytes) and plain reads of directory entries that the writer
        // finished before publishing them. Truncation by a third party would fault (SIGBUS): the
        // writer never truncates a file once it is renamed into place.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let mut r = Reader {
            map,
            file,
            geo: Geometry::new(2, 1).expect("constant geometry"),
            path,
            opts,
            next: 0,
            names: HashMap::new(),
            names_loaded: 0,
        };
        r.geo = r.validate(len)?;
        Ok(r)
    }

    fn validate(&self, len: u64) -> Result<Geometry, ShmError> {
        let h = self.header();
        let path = || self.path.clone();
        // Acquire: pairs with the writer's Release store of MAGIC; every header field is set before it.
        let magic = h.magic.load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(ShmError::BadMagic {
                path: path(),
                found: magic,
            });
        }
        let v = h.version.load(Ordering::Relaxed);
        let (major, minor) = ((v >> 16) as u16, v as u16);
        if major != layout::VERSION_MAJOR {
            return Err(ShmError::Version {
                path: path(),
                found_major: major,
                found_minor: minor,
                expected: layout::VERSION_MAJOR,
            });
        }
        let check = |field, found: u64, expected: u64| {
            if found == expected {
                Ok(())
            } else {
                Err(ShmError::Layout {
                    path: path(),
                    field,
                    found,
                    expected,
                })
            }
        };
        check(
            "tick_size",
            h.tick_size.load(Ordering::Relaxed) as u64,
            Tick::SIZE as u64,
        )?;
        check(
            "record_size",
            h.record_size.load(Ordering::Relaxed) as u64,
            RECORD_SIZE as u64,
        )?;
        check(
            "dir_entry_size",
            h.dir_entry_size.load(Ordering::Relaxed) as u64,
            DIR_ENTRY_SIZE as u64,
        )?;
        let ring = h.ring_capacity.load(Ordering::Relaxed);
        let syms = h.symbol_capacity.load(Ordering::Relaxed);
        let bad = |field, found, why| ShmError::BadCapacity {
            path: path(),
            field,
            found,
            why,
        };
        // The capacities first, against the file's real length: every offset below derives from
        // them, and a corrupt header may ask for more than any file (or a u64) can hold.
        let geo = match Geometry::check(ring, syms) {
            Ok(geo) if geo.file_size <= len => geo,
            Err(GeometryError::RingNotPowerOfTwo) => {
                return Err(bad(
                    "ring_capacity",
                    ring,
                    "not a power of two of at least 2",
                ))
            }
            Err(GeometryError::NoSymbols) => {
                return Err(bad("symbol_capacity", syms, "expected at least 1"))
            }
            Ok(_) | Err(GeometryError::TooLarge { .. }) => {
                return Err(ShmError::Undersized {
                    path: path(),
                    ring_capacity: ring,
                    symbol_capacity: syms,
                    need: Geometry::size_needed(ring, syms),
                    len,
                })
            }
        };
        check(
            "lvt_offset",
            h.lvt_offset.load(Ordering::Relaxed),
            geo.lvt_offset,
        )?;
        check(
            "ring_offset",
            h.ring_offset.load(Ordering::Relaxed),
            geo.ring_offset,
        )?;
        check(
            "file_size",
            h.file_size.load(Ordering::Relaxed),
            geo.file_size,
        )?;
        Ok(geo)
    }

    fn header(&self) -> &Header {
        // SAFETY: the map is at least HEADER_SIZE bytes (checked in open_with before this is called),
        // page-aligned; Header is atomics and integers, valid for any bit pattern; only loads are done.
        unsafe { &*(self.map.as_ptr() as *const Header) }
    }

    fn record(&self, offset: u64) -> &SeqTick {
        debug_assert!(offset + RECORD_SIZE as u64 <= self.geo.file_size);
        // SAFETY: offsets come from Geometry, which validate() matched against the file length;
        // records are 64-byte aligned within a page-aligned map; only atomic loads are done.
        unsafe { &*(self.map.as_ptr().add(offset as usize) as *const SeqTick) }
    }

    /// The writer's liveness, from the file alone: the header's state, whether the writer's lock on
    /// the file is held (`docs/shm-layout.md`, "Liveness"), and the heartbeat's age. Closed if the
    /// state says so; dead if nobody holds the lock, however recent the heartbeat (a killed
    /// writer's lock goes with it); stale if the lock is held but the heartbeat is older than
    /// [`OpenOptions::stale_after`]; live otherwise. Works from any PID namespace; at most two
    /// syscalls.
    pub fn writer_status(&self) -> WriterStatus {
        let h = self.header();
        let pid = h.writer_pid.load(Ordering::Relaxed);
        if h.state.load(Ordering::Acquire) == state::CLOSED {
            return WriterStatus::Closed;
        }
        match liveness::probe(&self.file) {
            // The writer stores `closed` before it lets go of the lock: a close that happened
            // between the load above and the lock test shows now.
            Holder::Free if h.state.load(Ordering::Acquire) == state::CLOSED => {
                return WriterStatus::Closed
            }
            Holder::Free => return WriterStatus::Dead { pid },
            // No lock evidence (a filesystem without flock): the heartbeat alone decides.
            Holder::Held | Holder::Unknown => {}
        }
        if h.state.load(Ordering::Acquire) != state::LIVE {
            // Never published as live (a half-made file): nobody is writing it.
            return WriterStatus::Dead { pid };
        }
        let age = tickwire_engine::clock::now_ns() - h.heartbeat_ns.load(Ordering::Relaxed);
        let age_ms = (age.max(0) / 1_000_000) as u64;
        if age_ms as u128 > self.opts.stale_after.as_millis() {
            return WriterStatus::Stale { pid, age_ms };
        }
        WriterStatus::Live
    }

    /// Newest ring position the writer has completed.
    pub fn write_position(&self) -> u64 {
        self.header().write_pos.load(Ordering::Acquire)
    }

    /// Ring position the next `next()` reads.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Ring capacity in slots.
    pub fn ring_capacity(&self) -> u64 {
        self.geo.ring_capacity
    }

    /// This file's incarnation: the writer's wall clock when it created the file (ns since the
    /// epoch; 0 in a file older than layout 1.3). Ring positions start again at 1 in every new
    /// file at the same path, so a position saved outside the file (the PostgreSQL sink's
    /// committed position) means something only together with this value.
    pub fn instance(&self) -> i64 {
        self.header().created_ns.load(Ordering::Relaxed)
    }

    /// Continue from ring position `pos` (a value [`Reader::position`] gave earlier, for
    /// example one saved by a consumer that restarts). If the ring has since overwritten `pos`,
    /// the next [`Reader::next`] reports exactly the positions lost (`Lagged`) and resumes
    /// after them, as for any lapped reader; a position past the writer's is simply waited for.
    pub fn seek(&mut self, pos: u64) {
        self.next = pos.max(1);
    }

    /// Continue from the newest tick on (the default after open: only new ticks).
    pub fn seek_latest(&mut self) {
        self.next = self.write_position() + 1;
    }

    /// Continue from the oldest tick still in the ring.
    pub fn seek_oldest(&mut self) {
        let w = self.write_position();
        // The ring holds the newest C - 1 positions: the slot after the newest is already marked
        // for the next one.
        self.next = w.saturating_sub(self.geo.ring_capacity - 2).max(1);
    }

    /// The next tick in ring order, `Lagged` if the writer lapped this reader, `None` if there is
    /// nothing new yet. Never blocks; a torn slot is detected and never returned.
    // Not `Iterator::next`: `None` here means "nothing yet", not "finished".
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> Option<Event> {
        let r = self.next;
        let slot = (r & (self.geo.ring_capacity - 1)) * RECORD_SIZE as u64;
        match self.record(self.geo.ring_offset + slot).read(r << 1) {
            Ok(t) => {
                self.next = r + 1;
                Some(Event::Tick(t))
            }
            // The slot still holds an older position, or position r half-written: not ready.
            Err(seen) if seen >> 1 <= r => None,
            // The slot holds a newer position: the writer went round at least once past us.
            Err(_) => Some(self.resync(r)),
        }
    }

    fn resync(&mut self, r: u64) -> Event {
        // Resume half a ring behind the writer, so a reader that was lapped has room to catch up
        // before it is lapped again. Every position in [r, resume) is reported lost, so the count is
        // exact: each position is either returned once or counted once.
        let w = self.write_position();
        let resume = (w + 1)
            .saturating_sub(self.geo.ring_capacity / 2)
            .max(r + 1);
        self.next = resume;
        Event::Lagged { lost: resume - r }
    }

    /// The latest value of `symbol` (merged across field groups), `None` if it never ticked or the id
    /// is outside the table.
    pub fn last_value(&self, symbol: u32) -> Result<Option<Tick>, ShmError> {
        if symbol as u64 >= self.geo.symbol_capacity {
            return Ok(None);
        }
        let e = self.record(self.geo.lvt_offset + symbol as u64 * RECORD_SIZE as u64);
        e.read_latest().map_err(|_| ShmError::Contended {
            symbol,
            attempts: crate::seqlock::LATEST_ATTEMPTS,
        })
    }

    /// The symbol's health byte (`tickwire_engine::health::state`: 0 none, 1 pending, 2 live,
    /// 3 stale, 4 rejected, 5 closed, 6 down), 0 for an id outside the table. Check it next to
    /// a last value: `stale` means the gateway expected an update by now and has none.
    pub fn health(&self, symbol: u32) -> u8 {
        if symbol as u64 >= self.geo.symbol_capacity {
            return 0;
        }
        let e = self.record(self.geo.lvt_offset + symbol as u64 * RECORD_SIZE as u64);
        e.health.load(Ordering::Acquire)
    }

    /// Number of symbols in the directory.
    pub fn symbol_count(&self) -> u64 {
        self.header().symbol_count.load(Ordering::Acquire)
    }

    /// The names behind `id`.
    pub fn symbol(&self, id: u32) -> Option<SymbolName> {
        if id as u64 >= self.symbol_count() {
            return None;
        }
        let off = DIR_OFFSET + id as usize * DIR_ENTRY_SIZE;
        // SAFETY: id < symbol_count ≤ symbol_capacity, so the entry is inside the directory; the
        // writer completed it before the Release store of symbol_count we Acquire-loaded above and
        // never changes it again. read_unaligned: DirEntry is plain bytes.
        let e: DirEntry =
            unsafe { std::ptr::read_unaligned(self.map.as_ptr().add(off) as *const DirEntry) };
        Some(SymbolName {
            exchange: layout::get_name(&e.exchange),
            symbol: layout::get_name(&e.symbol),
            token: layout::get_name(&e.token),
        })
    }

    /// The id of `(exchange, symbol)`. Loads directory entries added since the last call.
    pub fn lookup(&mut self, exchange: &str, symbol: &str) -> Option<u32> {
        let count = self.symbol_count();
        for id in self.names_loaded..count {
            if let Some(n) = self.symbol(id as u32) {
                self.names
                    .entry(n.exchange)
                    .or_default()
                    .insert(n.symbol, id as u32);
            }
        }
        self.names_loaded = count;
        self.names.get(exchange)?.get(symbol).copied()
    }

    /// The header's values.
    pub fn info(&self) -> HeaderInfo {
        let h = self.header();
        let v = h.version.load(Ordering::Relaxed);
        HeaderInfo {
            version: ((v >> 16) as u16, v as u16),
            tick_size: h.tick_size.load(Ordering::Relaxed),
            record_size: h.record_size.load(Ordering::Relaxed),
            geometry: self.geo,
            writer_pid: h.writer_pid.load(Ordering::Relaxed),
            write_pos: self.write_position(),
            heartbeat_ns: h.heartbeat_ns.load(Ordering::Relaxed),
            symbol_count: self.symbol_count(),
            status: self.writer_status(),
        }
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
