//! The file layout: header, symbol directory, last-value table, ring. Every offset is derived from the
//! one before it and pinned by a `const` assertion; `docs/shm-layout.md` draws the same picture.
//!
//! ```text
//! +------------------------------+ 0
//! | Header (4096 B, one page)    |
//! +------------------------------+ DIR_OFFSET = 4096
//! | Symbol directory             |  symbol_capacity × 128 B
//! +------------------------------+ lvt_offset (rounded up to 4096)
//! | Last-value table             |  symbol_capacity × 448 B (SeqTick)
//! +------------------------------+ ring_offset (rounded up to 4096)
//! | Ring                         |  ring_capacity × 448 B (SeqTick)
//! +------------------------------+ file_size
//! ```

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64};

use tickwire_engine::symbols::{EXCHANGE_MAX, SYMBOL_MAX, TOKEN_MAX};

use crate::seqlock::SeqTick;

/// `b"TICKWIRE"` read as a little-endian u64; stored last when the file is created.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TICKWIRE");
/// Layout major version: a reader refuses any other.
pub const VERSION_MAJOR: u16 = 1;
/// Layout minor version: additions a v1 reader may ignore.
pub const VERSION_MINOR: u16 = 3;

/// Header size: one page.
pub const HEADER_SIZE: usize = 4096;
/// The directory starts right after the header.
pub const DIR_OFFSET: usize = HEADER_SIZE;
/// One directory entry.
pub const DIR_ENTRY_SIZE: usize = core::mem::size_of::<DirEntry>();
/// One last-value entry or ring slot.
pub const RECORD_SIZE: usize = core::mem::size_of::<SeqTick>();

/// Writer state in [`Header::state`].
pub mod state {
    /// Being created (never seen by readers: files are renamed into place when ready).
    pub const INIT: u32 = 0;
    /// A writer is publishing.
    pub const LIVE: u32 = 1;
    /// The writer shut down cleanly.
    pub const CLOSED: u32 = 2;
}

/// The header. Cold, write-once configuration fills the first line; each field the writer keeps
/// updating gets a cache line of its own so readers polling one do not false-share with another.
#[repr(C, align(64))]
pub struct Header {
    // ---- line 0: identity and geometry, written once before `magic`
    /// [`MAGIC`], stored last with Release when the file is ready.
    pub magic: AtomicU64,
    /// `VERSION_MAJOR << 16 | VERSION_MINOR`.
    pub version: AtomicU32,
    /// `size_of::<Tick>()`.
    pub tick_size: AtomicU32,
    /// [`RECORD_SIZE`].
    pub record_size: AtomicU32,
    /// [`DIR_ENTRY_SIZE`].
    pub dir_entry_size: AtomicU32,
    /// Ring slots, a power of two.
    pub ring_capacity: AtomicU64,
    /// Directory and last-value entries.
    pub symbol_capacity: AtomicU64,
    /// Byte offset of the last-value table.
    pub lvt_offset: AtomicU64,
    /// Byte offset of the ring.
    pub ring_offset: AtomicU64,
    /// Total file size.
    pub file_size: AtomicU64,
    // ---- line 1 (64): hot, the writer's position
    /// Ring position of the newest complete slot (0 = nothing yet; positions start at 1).
    pub write_pos: AtomicU64,
    _pad1: [u64; 7],
    // ---- line 2 (128): liveness
    /// Writer's wall clock at its last heartbeat, ns since the epoch; stamped once more at close,
    /// so in a closed file it is the time of closing.
    pub heartbeat_ns: AtomicI64,
    /// [`state`].
    pub state: AtomicU32,
    /// Writer's process id, in its own PID namespace: shown by tools, never used to judge liveness
    /// (the writer's lock on the file is; `docs/shm-layout.md`, "Liveness").
    pub writer_pid: AtomicU32,
    _pad2: [u32; 12],
    // ---- line 3 (192): the directory's length
    /// Directory entries `0..symbol_count` are complete.
    pub symbol_count: AtomicU64,
    /// The writer's wall clock when it created the file, ns since the epoch (1.3; zero in older
    /// files): identifies this file's incarnation, whose ring positions start again at 1.
    pub created_ns: AtomicI64,
    _pad3: [u64; 6],
    // ---- 256..4096: reserved, zero
    _reserved: [u64; (HEADER_SIZE - 256) / 8],
}

/// One symbol directory entry: NUL-padded UTF-8 names, 128 bytes; index = symbol id.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct DirEntry {
    /// Exchange, NUL-padded.
    pub exchange: [u8; EXCHANGE_MAX],
    /// Trading symbol, NUL-padded.
    pub symbol: [u8; SYMBOL_MAX],
    /// Broker token, NUL-padded.
    pub token: [u8; TOKEN_MAX],
}

use core::mem::{offset_of, size_of};
const _: () = assert!(size_of::<Header>() == HEADER_SIZE);
const _: () = assert!(offset_of!(Header, magic) == 0);
const _: () = assert!(offset_of!(Header, version) == 8);
const _: () = assert!(offset_of!(Header, tick_size) == 12);
const _: () = assert!(offset_of!(Header, record_size) == 16);
const _: () = assert!(offset_of!(Header, dir_entry_size) == 20);
const _: () = assert!(offset_of!(Header, ring_capacity) == 24);
const _: () = assert!(offset_of!(Header, symbol_capacity) == 32);
const _: () = assert!(offset_of!(Header, lvt_offset) == 40);
const _: () = assert!(offset_of!(Header, ring_offset) == 48);
const _: () = assert!(offset_of!(Header, file_size) == 56);
const _: () = assert!(offset_of!(Header, write_pos) == 64);
const _: () = assert!(offset_of!(Header, heartbeat_ns) == 128);
const _: () = assert!(offset_of!(Header, state) == 136);
const _: () = assert!(offset_of!(Header, writer_pid) == 140);
const _: () = assert!(offset_of!(Header, symbol_count) == 192);
const _: () = assert!(offset_of!(Header, created_ns) == 200);
const _: () = assert!(DIR_ENTRY_SIZE == 128);
const _: () = assert!(offset_of!(DirEntry, symbol) == 16);
const _: () = assert!(offset_of!(DirEntry, token) == 80);
const _: () = assert!(RECORD_SIZE == 448);

/// Section offsets and the file size for the given capacities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Ring slots.
    pub ring_capacity: u64,
    /// Symbols.
    pub symbol_capacity: u64,
    /// Byte offset of the last-value table.
    pub lvt_offset: u64,
    /// Byte offset of the ring.
    pub ring_offset: u64,
    /// Total size.
    pub file_size: u64,
}

/// Why a pair of capacities cannot be laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeometryError {
    /// The ring capacity is not a power of two of at least 2.
    RingNotPowerOfTwo,
    /// The symbol capacity is zero.
    NoSymbols,
    /// The file would be larger than a file can be (`i64::MAX` bytes); `need` is its size.
    TooLarge {
        /// Bytes the capacities need.
        need: u128,
    },
}

impl Geometry {
    /// Lays out a file; `None` if the ring capacity is not a power of two or a size overflows.
    pub fn new(ring_capacity: u64, symbol_capacity: u64) -> Option<Self> {
        Self::check(ring_capacity, symbol_capacity).ok()
    }

    /// Lays out a file, saying why not: the reasons need different words (a header's "not a power
    /// of two" and "2^62 slots is more than a file can hold" are different mistakes).
    pub fn check(ring_capacity: u64, symbol_capacity: u64) -> Result<Self, GeometryError> {
        // At least 2 slots: the slot after the newest tick is always marked for the next one.
        if !ring_capacity.is_power_of_two() || ring_capacity < 2 {
            return Err(GeometryError::RingNotPowerOfTwo);
        }
        if symbol_capacity == 0 {
            return Err(GeometryError::NoSymbols);
        }
        // In u128 nothing here can overflow (each term is below 2^74), so the size is exact even for
        // capacities no file could hold; the u64 offsets below are then in range by construction.
        let need = Self::size_needed(ring_capacity, symbol_capacity);
        if need > i64::MAX as u128 {
            return Err(GeometryError::TooLarge { need });
        }
        let page = |x: u64| x.next_multiple_of(4096);
        let lvt_offset = page(DIR_OFFSET as u64 + symbol_capacity * DIR_ENTRY_SIZE as u64);
        let ring_offset = page(lvt_offset + symbol_capacity * RECORD_SIZE as u64);
        let file_size = ring_offset + ring_capacity * RECORD_SIZE as u64;
        debug_assert_eq!(file_size as u128, need);
        Ok(Self {
            ring_capacity,
            symbol_capacity,
            lvt_offset,
            ring_offset,
            file_size,
        })
    }

    /// The file size the capacities need, in bytes, exact for any inputs (no overflow).
    pub fn size_needed(ring_capacity: u64, symbol_capacity: u64) -> u128 {
        let page = |x: u128| x.next_multiple_of(4096);
        let (ring, syms) = (ring_capacity as u128, symbol_capacity as u128);
        let lvt_offset = page(DIR_OFFSET as u128 + syms * DIR_ENTRY_SIZE as u128);
        let ring_offset = page(lvt_offset + syms * RECORD_SIZE as u128);
        ring_offset + ring * RECORD_SIZE as u128
    }
}

/// Writes `s` NUL-padded into `dst` (callers have checked the length through the registry).
pub fn put_name(dst: &mut [u8], s: &str) {
    let n = s.len().min(dst.len());
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
    dst[n..].fill(0);
}

/// Reads a NUL-padded name; invalid UTF-8 is replaced rather than trusted.
pub fn get_name(src: &[u8]) -> String {
    let end = src.iter().position(|&b| b == 0).unwrap_or(src.len());
    String::from_utf8_lossy(&src[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_is_page_aligned_and_checked() {
        let g = Geometry::new(1024, 10).unwrap();
        assert_eq!(g.lvt_offset, 8192);
        assert_eq!(g.ring_offset, 8192 + 8192);
        assert_eq!(g.file_size, 16384 + 1024 * 448);
        assert!(
            Geometry::new(1000, 10).is_none(),
            "ring must be a power of two"
        );
        assert!(Geometry::new(1 << 62, 10).is_none(), "overflow");
        assert_eq!(
            Geometry::check(1 << 62, 10),
            Err(GeometryError::TooLarge {
                need: 16384 + (1u128 << 62) * 448
            })
        );
        assert_eq!(
            Geometry::check(0, 10),
            Err(GeometryError::RingNotPowerOfTwo)
        );
        assert_eq!(Geometry::check(2, 0), Err(GeometryError::NoSymbols));
        assert!(
            Geometry::check(1 << 40, u64::MAX).is_err(),
            "no overflow on any input"
        );
        assert_eq!(
            Geometry::size_needed(1024, 10),
            Geometry::new(1024, 10).unwrap().file_size as u128
        );
    }

    #[test]
    fn names_round_trip() {
        let mut b = [0xffu8; 16];
        put_name(&mut b, "NSE_INDEX");
        assert_eq!(get_name(&b), "NSE_INDEX");
        assert_eq!(&b[9..], &[0; 7]);
    }
}
