//! The feed thread's side: an [`Appender`] copies a record into its own SPSC byte ring and
//! returns. No lock, no allocation, no syscall: the ring is pre-allocated, `write_chunk_uninit`
//! is two atomic loads and a store, and the writer thread is never woken (it polls), since an
//! `unpark` may be a futex call. The CRC is left to the writer thread too, off the tick path.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::format::{self, Kind, CRC_LEN, FLAG_BINARY, PAYLOAD_MAX, RECORD_HEAD};
use super::JournalStats;

/// A control event worth recording: it changes what the frames after it mean.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The connection came up.
    Connect,
    /// The connection went down, and why.
    Disconnect {
        /// Free text.
        reason: &'a str,
    },
    /// Symbols subscribed in a mode (1 ltp, 2 quote, 3 depth); symbols as `"NSE:SBIN"`.
    Subscribe {
        /// 1 ltp, 2 quote, 3 depth.
        mode: u8,
        /// `"EXCHANGE:SYMBOL"`.
        symbols: &'a [&'a str],
    },
    /// Symbols unsubscribed.
    Unsubscribe {
        /// `"EXCHANGE:SYMBOL"`.
        symbols: &'a [&'a str],
    },
    /// An instrument key the protocol learned (`BrokerProtocol::learned`).
    Learned {
        /// `"EXCHANGE:SYMBOL"`.
        symbol: &'a str,
        /// The key (Fyers' fytoken).
        value: &'a str,
    },
}

/// The feed thread that owns the feed may not be the one that made the appender.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Appender>();
};

/// Ring bytes of a gap record (the ring never carries the CRC; the writer appends it).
const GAP_RING: usize = RECORD_HEAD + 8;

/// One feed's way into the journal. `Send`, used by the one thread that owns the feed.
pub struct Appender {
    prod: rtrb::Producer<u8>,
    feed: u8,
    /// Records dropped since the last one that fitted: told by a gap record before the next.
    missed: u64,
    stats: Arc<JournalStats>,
}

impl Appender {
    pub(crate) fn new(prod: rtrb::Producer<u8>, feed: u8, stats: Arc<JournalStats>) -> Appender {
        Appender {
            prod,
            feed,
            missed: 0,
            stats,
        }
    }

    /// Records one upstream frame as received. Never blocks: with the ring full the frame is
    /// dropped and counted, and a gap record says so before the next record that fits.
    #[inline]
    pub fn frame(&mut self, conn: u8, recv_ns: i64, binary: bool, bytes: &[u8]) {
        let flags = if binary { FLAG_BINARY } else { 0 };
        self.put(Kind::Frame, conn, flags, recv_ns, bytes.len(), |c| {
            c.put(bytes)
        });
    }

    /// Records a control event (same guarantees as [`Appender::frame`]).
    pub fn event(&mut self, conn: u8, ts_ns: i64, event: Event<'_>) {
        match event {
            Event::Connect => self.put(Kind::Connect, conn, 0, ts_ns, 0, |_| {}),
            Event::Disconnect { reason } => {
                let r = &reason.as_bytes()[..reason.len().min(PAYLOAD_MAX)];
                self.put(Kind::Disconnect, conn, 0, ts_ns, r.len(), |c| c.put(r));
            }
            Event::Subscribe { mode, symbols } => {
                let n = 1 + format::symbols_len(symbols);
                self.put(Kind::Subscribe, conn, 0, ts_ns, n, |c| {
                    c.put(&[mode]);
                    put_symbols(c, symbols);
                });
            }
            Event::Unsubscribe { symbols } => {
                let n = format::symbols_len(symbols);
                self.put(Kind::Unsubscribe, conn, 0, ts_ns, n, |c| {
                    put_symbols(c, symbols)
                });
            }
            Event::Learned { symbol, value } => {
                let pair = [symbol, value];
                let n = format::symbols_len(&pair);
                self.put(Kind::Learned, conn, 0, ts_ns, n, |c| put_symbols(c, &pair));
            }
        }
    }

    /// Records dropped and not yet told by a gap record.
    pub fn pending_missed(&self) -> u64 {
        self.missed
    }

    #[inline(always)]
    fn put(
        &mut self,
        kind: Kind,
        conn: u8,
        flags: u8,
        ts: i64,
        n: usize,
        fill: impl FnOnce(&mut Cursor<'_>),
    ) {
        let ring_len = RECORD_HEAD + n;
        let gap = if self.missed > 0 { GAP_RING } else { 0 };
        // A payload too large for the format, or a ring without room: dropped, never waited for.
        if n > PAYLOAD_MAX {
            return self.dropped();
        }
        let Ok(mut chunk) = self.prod.write_chunk_uninit(ring_len + gap) else {
            return self.dropped();
        };
        let (a, b) = chunk.as_mut_slices();
        let mut c = Cursor { a, b, pos: 0 };
        if gap > 0 {
            let len = (GAP_RING + CRC_LEN) as u32;
            c.put(&format::record_head(len, Kind::Gap, self.feed, conn, 0, ts));
            c.put(&self.missed.to_le_bytes());
        }
        c.put(&format::record_head(
            (ring_len + CRC_LEN) as u32,
            kind,
            self.feed,
            conn,
            flags,
            ts,
        ));
        fill(&mut c);
        c.zero_rest();
        // SAFETY: `zero_rest` initialised every byte `put` did not, so all `ring_len + gap` slots
        // of the chunk hold initialised bytes.
        unsafe { chunk.commit_all() };
        self.missed = 0;
    }

    #[cold]
    #[inline(never)]
    fn dropped(&mut self) {
        self.missed += 1;
        self.stats.missed.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Appender {
    /// A last gap record for drops no later record told of, if it fits.
    fn drop(&mut self) {
        if self.missed == 0 {
            return;
        }
        let Ok(mut chunk) = self.prod.write_chunk_uninit(GAP_RING) else {
            return;
        };
        let (a, b) = chunk.as_mut_slices();
        let mut c = Cursor { a, b, pos: 0 };
        let ts = tickwire_engine::clock::now_ns();
        let len = (GAP_RING + CRC_LEN) as u32;
        c.put(&format::record_head(len, Kind::Gap, self.feed, 0, 0, ts));
        c.put(&self.missed.to_le_bytes());
        c.zero_rest();
        // SAFETY: as in `put`: every slot was written by `put` or `zero_rest`.
        unsafe { chunk.commit_all() };
    }
}

fn put_symbols(c: &mut Cursor<'_>, symbols: &[&str]) {
    let n = symbols.len().min(format::SYMBOLS_MAX);
    c.put(&(n as u16).to_le_bytes());
    for s in &symbols[..n] {
        let s = &s.as_bytes()[..s.len().min(255)];
        c.put(&[s.len() as u8]);
        c.put(s);
    }
}

/// Writes across the two halves of a ring chunk (a record may wrap). Bounds-checked: writing
/// past the chunk is cut, so a miscounted length can never write outside it.
struct Cursor<'a> {
    a: &'a mut [MaybeUninit<u8>],
    b: &'a mut [MaybeUninit<u8>],
    pos: usize,
}

impl Cursor<'_> {
    #[inline(always)]
    fn put(&mut self, src: &[u8]) {
        let alen = self.a.len();
        let (first, second) = if self.pos >= alen {
            (
                &mut [][..],
                self.b.get_mut(self.pos - alen..).unwrap_or_default(),
            )
        } else {
            (&mut self.a[self.pos..], &mut *self.b)
        };
        let k = first.len().min(src.len());
        copy(&mut first[..k], &src[..k]);
        let rest = &src[k..];
        let m = second.len().min(rest.len());
        copy(&mut second[..m], &rest[..m]);
        self.pos += k + m;
    }

    /// Initialises what `put` did not reach (nothing, when lengths were counted right).
    fn zero_rest(&mut self) {
        let total = self.a.len() + self.b.len();
        while self.pos < total {
            self.put(&[0]);
        }
    }
}

#[inline(always)]
fn copy(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`; the two slices are the same length
    // (cut to it by the caller) and cannot overlap, since `dst` is a unique borrow.
    unsafe {
        std::ptr::copy_nonoverlapping(
            src.as_ptr(),
            dst.as_mut_ptr().cast::<u8>(),
            dst.len().min(src.len()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(cap: usize) -> (Appender, rtrb::Consumer<u8>, Arc<JournalStats>) {
        let (p, c) = rtrb::RingBuffer::new(cap);
        let stats = Arc::new(JournalStats::default());
        (Appender::new(p, 7, stats.clone()), c, stats)
    }

    fn take(c: &mut rtrb::Consumer<u8>) -> Vec<u8> {
        let n = c.slots();
        let chunk = c.read_chunk(n).unwrap();
        let v: Vec<u8> = chunk.into_iter().collect();
        v
    }

    #[test]
    fn frame_lays_out_head_then_payload_without_crc() {
        let (mut a, mut c, _) = ring(1024);
        a.frame(2, 99, true, b"hello");
        let v = take(&mut c);
        assert_eq!(v.len(), RECORD_HEAD + 5);
        let mut want = format::encode_record(Kind::Frame, 7, 2, FLAG_BINARY, 99, b"hello");
        want.truncate(want.len() - CRC_LEN);
        assert_eq!(v, want);
    }

    #[test]
    fn full_ring_drops_counts_and_tells_with_a_gap_record() {
        let (mut a, mut c, stats) = ring(64);
        a.frame(0, 1, false, &[1; 40]); // 56 bytes: fits
        a.frame(0, 2, false, &[2; 40]); // no room
        a.frame(0, 3, false, &[3; 40]);
        assert_eq!(a.pending_missed(), 2);
        assert_eq!(stats.missed.load(Ordering::Relaxed), 2);
        assert_eq!(take(&mut c).len(), 56);
        a.frame(0, 4, false, &[4; 20]); // gap (24) + frame (36) = 60: fits, wraps
        let v = take(&mut c);
        assert_eq!(v.len(), 60);
        assert_eq!(v[format::R_KIND], Kind::Gap as u8);
        assert_eq!(u64::from_le_bytes(v[16..24].try_into().unwrap()), 2);
        assert_eq!(v[24 + format::R_KIND], Kind::Frame as u8);
        assert_eq!(&v[40..], &[4; 20]);
        assert_eq!(a.pending_missed(), 0);
    }

    #[test]
    fn events_encode_their_payloads() {
        let (mut a, mut c, _) = ring(1024);
        a.event(
            1,
            5,
            Event::Subscribe {
                mode: 3,
                symbols: &["NSE:SBIN", "NSE:TCS"],
            },
        );
        let v = take(&mut c);
        assert_eq!(v[format::R_KIND], Kind::Subscribe as u8);
        assert_eq!(v[16], 3);
        let syms: Vec<_> = format::symbols(&v[17..]).collect();
        assert_eq!(syms, vec![&b"NSE:SBIN"[..], b"NSE:TCS"]);
        a.event(1, 6, Event::Disconnect { reason: "eof" });
        a.event(1, 7, Event::Connect);
        a.event(1, 8, Event::Unsubscribe { symbols: &[] });
        let v = take(&mut c);
        assert_eq!(v.len(), RECORD_HEAD + 3 + RECORD_HEAD + RECORD_HEAD + 2);
        assert_eq!(format::RECORD_MIN, RECORD_HEAD + CRC_LEN);
    }

    #[test]
    fn drop_writes_a_last_gap_record() {
        let (mut a, mut c, _) = ring(40);
        a.frame(0, 1, false, &[0; 100]);
        drop(a);
        let v = take(&mut c);
        assert_eq!(v[format::R_KIND], Kind::Gap as u8);
    }
}
