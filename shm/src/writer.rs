//! The single writer: creates the file, fills the directory, publishes ticks.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use std::sync::Arc;

use memmap2::{MmapMut, MmapRaw};
use tickwire_engine::last::LastValues;
use tickwire_engine::router::Publish;
use tickwire_engine::symbols::SymbolRegistry;
use tickwire_engine::Tick;

use crate::file::{self, TmpFile};
use crate::layout::{
    self, state, DirEntry, Geometry, GeometryError, Header, DIR_ENTRY_SIZE, DIR_OFFSET, MAGIC,
    RECORD_SIZE,
};
use crate::seqlock::SeqTick;
use crate::{liveness, space, OpenOptions, Reader, ShmError, WriterStatus};

/// Sizes of a new file.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Ring slots; a power of two. Default 65,536 (28 MiB): about 65 ms of history at 1 M ticks/s.
    pub ring_capacity: u64,
    /// Directory and last-value entries (the registry's capacity).
    pub symbol_capacity: u64,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            ring_capacity: 1 << 16,
            symbol_capacity: tickwire_engine::symbols::DEFAULT_CAPACITY as u64,
        }
    }
}

/// The writer; see the crate docs. Dropping it marks the file closed. The file stays at its path
/// (a reader sees "closed", `tickwire shm stat` can still describe it); the next writer on the
/// path replaces it, and `tickwire shm rm` removes it.
pub struct Writer {
    /// Shared with [`LastValueView`]s: the client IO threads read last values through it.
    map: Arc<MmapRaw>,
    /// Holds the liveness lock (`liveness`) until [`Writer::close`].
    file: File,
    geo: Geometry,
    pos: u64,
    path: PathBuf,
    closed: bool,
}

impl Writer {
    /// Creates (or replaces) the file at `path` with the registry's symbols in its directory.
    ///
    /// The file is built under a temporary name and renamed into place once its magic is set, so a
    /// reader never sees a half-made file; readers still mapping a replaced file see it closed.
    ///
    /// Refused before anything is created: capacities that cannot be laid out, a path that is a
    /// directory, FIFO or other non-file, a path a live writer holds, and a file bigger than
    /// available memory or the free space of its filesystem (`space`). A failure after the
    /// temporary file exists removes it.
    pub fn create(
        path: &Path,
        cfg: &WriterConfig,
        symbols: &SymbolRegistry,
    ) -> Result<Self, ShmError> {
        let (ring, syms) = (cfg.ring_capacity, cfg.symbol_capacity);
        let geo = Geometry::check(ring, syms).map_err(|e| {
            ShmError::Config(match e {
                GeometryError::RingNotPowerOfTwo => {
                    format!("ring capacity {ring} must be a power of two of at least 2")
                }
                GeometryError::NoSymbols => "symbol capacity must be at least 1".to_string(),
                GeometryError::TooLarge { need } => format!(
                    "ring capacity {ring} and symbol capacity {syms} need a file of {need} \
                     bytes, more than a file can hold"
                ),
            })
        })?;
        if symbols.len() as u64 > geo.symbol_capacity {
            return Err(ShmError::Config(format!(
                "{} symbols registered but the file holds {}",
                symbols.len(),
                geo.symbol_capacity
            )));
        }
        // A directory or FIFO at the path would only fail at the rename, after the work.
        match file::check_kind(path) {
            Ok(()) | Err(ShmError::Missing { .. }) => {}
            Err(e) => return Err(e),
        }
        // Never replace a file another writer holds, live or hung: its readers would be orphaned.
        let loose = OpenOptions {
            require_live: false,
            ..OpenOptions::default()
        };
        if let Ok(r) = Reader::open_with(path, loose) {
            let pid = r.info().writer_pid;
            let status = r.writer_status();
            let held = matches!(status, WriterStatus::Live | WriterStatus::Stale { .. });
            if held && pid != std::process::id() {
                return Err(ShmError::InUse {
                    path: path.to_owned(),
                    pid,
                    status,
                });
            }
        }
        space::check_room(path, &geo)?;
        let io = |source| ShmError::Io {
            path: path.to_owned(),
            source,
        };
        // From here on every early return drops `tmp`, which removes the temporary file.
        let (tmp, file) = TmpFile::create(tmp_path(path)).map_err(io)?;
        // Locked before the rename: from the moment a reader can open the file, it is held.
        liveness::hold(&file).map_err(io)?;
        // ftruncate gives zero pages that tmpfs allocates only when touched, so a big directory and
        // last-value table cost memory only for the symbols actually used.
        file.set_len(geo.file_size).map_err(io)?;
        // SAFETY: the file was just created under a private temporary name; only this process maps it
        // until the rename below, and every later access goes through atomics or the single writer.
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(io)?;
        let mut w = Writer {
            map: Arc::new(MmapRaw::from(map)),
            file,
            geo,
            pos: 0,
            path: path.to_owned(),
            closed: false,
        };
        let h = w.header();
        h.version.store(
            (layout::VERSION_MAJOR as u32) << 16 | layout::VERSION_MINOR as u32,
            Ordering::Relaxed,
        );
        h.tick_size.store(Tick::SIZE as u32, Ordering::Relaxed);
        h.record_size.store(RECORD_SIZE as u32, Ordering::Relaxed);
        h.dir_entry_size
            .store(DIR_ENTRY_SIZE as u32, Ordering::Relaxed);
        h.ring_capacity.store(geo.ring_capacity, Ordering::Relaxed);
        h.symbol_capacity
            .store(geo.symbol_capacity, Ordering::Relaxed);
        h.lvt_offset.store(geo.lvt_offset, Ordering::Relaxed);
        h.ring_offset.store(geo.ring_offset, Ordering::Relaxed);
        h.file_size.store(geo.file_size, Ordering::Relaxed);
        h.writer_pid.store(std::process::id(), Ordering::Relaxed);
        let now = tickwire_engine::clock::now_ns();
        h.heartbeat_ns.store(now, Ordering::Relaxed);
        h.created_ns.store(now, Ordering::Relaxed);
        h.state.store(state::LIVE, Ordering::Relaxed);
        for (id, s) in symbols.iter() {
            w.add_symbol(id, &s.exchange, &s.symbol, &s.broker_token)?;
        }
        // Position 1 is the first to be written: mark its slot as every later one is marked.
        w.ring_slot(1).mark(1 << 1 | 1);
        // Last: a reader that Acquire-loads MAGIC sees every field above.
        w.header().magic.store(MAGIC, Ordering::Release);
        std::fs::rename(tmp.path(), path).map_err(io)?;
        tmp.keep();
        Ok(w)
    }

    fn header(&self) -> &Header {
        // SAFETY: the map is at least HEADER_SIZE bytes (Geometry), page-aligned, and Header is
        // all atomics and plain integers, valid for any bit pattern.
        unsafe { &*(self.map.as_ptr() as *const Header) }
    }

    fn record(&self, offset: u64) -> &SeqTick {
        debug_assert!(
            offset + RECORD_SIZE as u64 <= self.geo.file_size && offset.is_multiple_of(64)
        );
        // SAFETY: callers pass offsets of whole records inside the file (ring slot or LVT entry,
        // bounds from Geometry); SeqTick is atomics only, valid for any bit pattern.
        unsafe { &*(self.map.as_ptr().add(offset as usize) as *const SeqTick) }
    }

    /// Appends directory entry `id`, which must be the next one (`id == symbol_count`).
    pub fn add_symbol(
        &mut self,
        id: u32,
        exchange: &str,
        symbol: &str,
        token: &str,
    ) -> Result<(), ShmError> {
        let count = self.header().symbol_count.load(Ordering::Relaxed);
        if id as u64 != count || count >= self.geo.symbol_capacity {
            return Err(ShmError::Config(format!(
                "directory entry {id} out of order or past capacity (count {count}, capacity {})",
                self.geo.symbol_capacity
            )));
        }
        let mut e = DirEntry {
            exchange: [0; 16],
            symbol: [0; 64],
            token: [0; 48],
        };
        layout::put_name(&mut e.exchange, exchange);
        layout::put_name(&mut e.symbol, symbol);
        layout::put_name(&mut e.token, token);
        let off = DIR_OFFSET + id as usize * DIR_ENTRY_SIZE;
        // SAFETY: entry `id` lies inside the directory (id < symbol_capacity, checked above); no
        // reader looks at it before symbol_count covers it, which happens below, and only the
        // writer (`&mut self`) stores outside atomics.
        unsafe { std::ptr::write(self.map.as_mut_ptr().add(off) as *mut DirEntry, e) };
        // Release: a reader that sees the new count sees the entry's bytes.
        self.header()
            .symbol_count
            .store(count + 1, Ordering::Release);
        Ok(())
    }

    /// Publishes `tick` to the ring and merges it into its symbol's last value. Ticks whose symbol id
    /// is past the capacity go to the ring only (the router never produces them).
    #[inline]
    pub fn publish(&mut self, tick: &Tick) {
        self.publish_with(tick, false);
    }

    /// As [`Writer::publish`], for the last tick of a batch (a reader is probably waiting for it):
    /// right after the ring slot is complete its lines are pushed from this core's caches to the
    /// shared last-level cache (CLDEMOTE), where the reader's next read finds them instead of
    /// snooping this core. `cargo bench --bench shm` p50 ~310 → ~240 ns. Not for every tick of a
    /// burst: demoting each slot at full speed measured 33 → 6 M ticks/s.
    #[inline]
    pub fn publish_last(&mut self, tick: &Tick) {
        self.publish_with(tick, true);
    }

    #[inline]
    fn publish_with(&mut self, tick: &Tick, last: bool) {
        let id = tick.symbol_id as u64;
        if id < self.geo.symbol_capacity {
            let e = self.record(self.geo.lvt_offset + id * RECORD_SIZE as u64);
            // The writer is the only one storing to this entry, so its plain view is current.
            let v = e.seq.load(Ordering::Relaxed);
            let held = e.own_valid();
            if tick.exchange_ts_ns != 0 && tick.valid & held == held {
                // The tick carries every group the last value holds (a Kite full packet after
                // full packets): it replaces the value whole, no copy-out and merge needed.
                e.write(v + 1, tick, v + 2);
            } else {
                let mut last = e.read_own();
                last.merge_from(tick);
                e.write(v + 1, &last, v + 2);
            }
        }
        // The ring last: a reader that takes this tick from the ring finds the last value
        // already including it, and nothing stands between the slot's final store and the demote.
        self.ring_with(tick, last);
    }

    /// Publishes `tick` to the ring only.
    #[inline]
    pub fn publish_ring(&mut self, tick: &Tick) {
        self.ring_with(tick, false);
    }

    /// [`Writer::publish_ring`] for the last tick of a batch (see [`Writer::publish_last`]).
    #[inline]
    pub fn publish_ring_last(&mut self, tick: &Tick) {
        self.ring_with(tick, true);
    }

    #[inline]
    fn ring_with(&mut self, tick: &Tick, last: bool) {
        let p = self.pos + 1;
        // Slot `p` was marked in progress when `p - 1` was published (or at creation).
        let slot = self.ring_slot(p);
        slot.write_marked(tick, p << 1);
        if last {
            hint_lines(slot, LineHint::Demote);
        }
        // Release: a reader that sees `p` here finds slot `p` complete (used when resyncing).
        self.header().write_pos.store(p, Ordering::Release);
        self.pos = p;
        // Mark the next slot now. A caught-up reader polls it, so this store has to take the
        // line from that reader's cache; done here, the transfer overlaps the reader copying
        // slot `p`, and the next tick's path pays one ownership transfer (its `even` store)
        // instead of two. Its old position counts as overwritten from here on.
        self.ring_slot(p + 1).mark((p + 1) << 1 | 1);
        // Ask for a slot a few ticks ahead in exclusive state now, so a burst does not wait on
        // one ownership request per line when it gets there (the slot was last written a whole
        // ring ago and is cold, or shared by a reader's cache).
        hint_lines(self.ring_slot(p + PREFETCH_AHEAD), LineHint::PrefetchWrite);
    }

    /// The ring slot that holds position `p`.
    #[inline]
    fn ring_slot(&self, p: u64) -> &SeqTick {
        let slot = (p & (self.geo.ring_capacity - 1)) * RECORD_SIZE as u64;
        self.record(self.geo.ring_offset + slot)
    }

    /// Stores a symbol's health byte (`tickwire_engine::health::state`) in its last-value entry,
    /// with Release so a reader that Acquire-loads it sees the values published before it.
    pub fn set_health(&self, symbol: u32, state: u8) {
        let id = symbol as u64;
        if id < self.geo.symbol_capacity {
            let e = self.record(self.geo.lvt_offset + id * RECORD_SIZE as u64);
            e.health.store(state, Ordering::Release);
        }
    }

    /// Ring position of the newest tick (0 before the first).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Records the wall clock so readers can tell this writer is alive.
    pub fn heartbeat(&self, now_ns: i64) {
        self.header().heartbeat_ns.store(now_ns, Ordering::Relaxed);
    }

    /// Marks the file closed: readers stop with "writer closed" instead of waiting. The heartbeat
    /// is stamped first, so it tells when the file was closed (`tickwire shm stat` prints it).
    pub fn close(&mut self) {
        if !self.closed {
            self.heartbeat(tickwire_engine::clock::now_ns());
            self.header().state.store(state::CLOSED, Ordering::Release);
            let _ = self.map.flush_async();
            // After the state: a reader that finds the lock free and then reads the state sees
            // `closed`, never a dead writer. Let go explicitly: a [`LastValueView`]'s mapping
            // keeps the open file, and with it the lock, alive past this writer.
            liveness::release(&self.file);
            self.closed = true;
        }
    }

    /// A handle on this writer's last-value table for threads of this process
    /// ([`tickwire_engine::last::LastValues`]). It reads the writer's own mapping, so it works
    /// whether or not the file is still at its path.
    pub fn last_values(&self) -> LastValueView {
        LastValueView {
            map: self.map.clone(),
            geo: self.geo,
        }
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The writer's last-value table, read from other threads of the writer's process (see
/// [`Writer::last_values`]). The mapping lives as long as any view does.
#[derive(Clone)]
pub struct LastValueView {
    map: Arc<MmapRaw>,
    geo: Geometry,
}

impl LastValueView {
    /// The writer's ring position (`write_pos` in the header): ticks published since the file
    /// was made, for status pages.
    pub fn write_position(&self) -> u64 {
        // SAFETY: the map is at least HEADER_SIZE bytes (Geometry made the file), page-aligned;
        // Header is atomics and plain integers, valid for any bit pattern; only a load is done.
        let h = unsafe { &*(self.map.as_ptr() as *const Header) };
        h.write_pos.load(Ordering::Acquire)
    }

    /// Ring slots and symbol capacity of the file.
    pub fn capacities(&self) -> (u64, u64) {
        (self.geo.ring_capacity, self.geo.symbol_capacity)
    }
}

impl LastValues for LastValueView {
    fn last_value(&self, symbol: u32) -> Option<Tick> {
        if symbol as u64 >= self.geo.symbol_capacity {
            return None;
        }
        let off = self.geo.lvt_offset + symbol as u64 * RECORD_SIZE as u64;
        // SAFETY: the entry lies inside the mapping (symbol < symbol_capacity, Geometry made the
        // file that size); records are 64-byte aligned in a page-aligned map; SeqTick is atomics
        // only and this does loads only. The Arc keeps the mapping alive.
        let e = unsafe { &*(self.map.as_ptr().add(off as usize) as *const SeqTick) };
        e.read_latest().ok().flatten()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

impl Publish for Writer {
    #[inline]
    fn publish(&mut self, tick: &Tick) {
        Writer::publish(self, tick);
    }
    fn publish_last(&mut self, tick: &Tick) {
        Writer::publish_last(self, tick);
    }
    fn heartbeat(&mut self, now_ns: i64) {
        Writer::heartbeat(self, now_ns);
    }
    fn health(&mut self, symbol: u32, state: u8) {
        Writer::set_health(self, symbol, state);
    }
}

/// How many slots ahead of the newest the writer prefetches for write.
const PREFETCH_AHEAD: u64 = 8;

/// A cache hint for the lines of one record. Hints only: neither changes what any reader sees.
#[derive(Clone, Copy)]
enum LineHint {
    /// PREFETCHW: fetch the lines in exclusive state, ready to be written.
    PrefetchWrite,
    /// CLDEMOTE: move the lines from this core's private caches to the shared last-level cache,
    /// where another core's next read is served instead of by a snoop into this core. A NOP on
    /// CPUs without it (its encoding is in the hint-NOP space).
    Demote,
}

/// Applies `hint` to each cache line of `rec`; a no-op off x86-64.
#[inline]
fn hint_lines(rec: &SeqTick, hint: LineHint) {
    #[cfg(target_arch = "x86_64")]
    {
        let p = (rec as *const SeqTick).cast::<u8>();
        for off in (0..RECORD_SIZE).step_by(64) {
            // SAFETY: `p + off` lies inside `rec`, which is mapped. Neither instruction faults,
            // writes memory or changes a register.
            unsafe {
                let line = p.add(off);
                match hint {
                    LineHint::PrefetchWrite => std::arch::x86_64::_mm_prefetch::<
                        { std::arch::x86_64::_MM_HINT_ET0 },
                    >(line.cast()),
                    LineHint::Demote => std::arch::asm!(
                        "cldemote [{0}]",
                        in(reg) line,
                        options(nostack, preserves_flags, readonly)
                    ),
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (rec, hint);
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".tmp.{}", std::process::id()));
    PathBuf::from(s)
}
