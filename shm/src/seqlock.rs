//! The seqlocked record: one 64-byte line holding a sequence word, then a [`Tick`] as 48 atomic words.
//! Ring slots and last-value entries are both this record; only the meaning of the sequence differs
//! (see `docs/shm-layout.md`).
//!
//! The protocol (Boehm, "Can seqlocks get along with programming language memory models?", 2012):
//!
//! ```text
//! writer                                   reader
//! seq.store(odd, Relaxed)                  s1 = seq.load(Acquire)        // pairs with the even store
//! fence(Release)                           words[i].load(Relaxed) × 48
//! words[i].store(Relaxed) × 48             fence(Acquire)
//! seq.store(even, Release)                 s2 = seq.load(Relaxed)
//!                                          valid iff s1 == s2 and s1 is the value wanted
//! ```
//!
//! If any word the reader loaded came from a later write, the writer's Release fence (before that
//! word's store) synchronises with the reader's Acquire fence (after its load), so the reader's `s2`
//! sees that later write's odd store or something newer, and `s1 != s2`: a torn copy is always
//! detected. The data is moved as `AtomicU64`s, not `memcpy`, so a racing copy is not undefined
//! behaviour; relaxed atomic word moves compile to plain `mov`s.

use std::sync::atomic::{fence, AtomicU64, AtomicU8, Ordering};

use tickwire_engine::Tick;

/// Attempts [`SeqTick::read_latest`] makes before it reports contention.
pub const LATEST_ATTEMPTS: u32 = 10_000;

/// [`SeqTick::read_latest`] met a write in progress on every attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contended;

/// Words in a tick.
pub const TICK_WORDS: usize = Tick::SIZE / 8;

/// One seqlocked tick: 448 bytes, cache-line aligned.
#[repr(C, align(64))]
pub struct SeqTick {
    /// The sequence word; its meaning is set by the user of the record.
    pub seq: AtomicU64,
    /// In a last-value entry: the symbol's health (`tickwire_engine::health::state`), written by
    /// the writer outside the seqlock (one byte needs none). Unused (zero) in ring slots.
    pub health: AtomicU8,
    _pad_health: [u8; 7],
    _pad: [u64; 6],
    words: [AtomicU64; TICK_WORDS],
}

const _: () = assert!(core::mem::size_of::<SeqTick>() == 448);
const _: () = assert!(core::mem::offset_of!(SeqTick, seq) == 0);
const _: () = assert!(core::mem::offset_of!(SeqTick, health) == 8);
const _: () = assert!(core::mem::offset_of!(SeqTick, words) == 64);

impl SeqTick {
    /// Writes `tick`, moving the sequence from `odd` (in progress) to `even` (complete).
    /// Only one thread may write a given record (the single writer).
    #[inline]
    pub fn write(&self, odd: u64, tick: &Tick, even: u64) {
        self.mark(odd);
        self.write_marked(tick, even);
    }

    /// The first half of [`SeqTick::write`]: stores the in-progress sequence `odd`. The ring
    /// writer marks the next slot right after publishing the current one, so the store that
    /// takes the line from a polling reader happens off the next tick's path.
    #[inline]
    pub fn mark(&self, odd: u64) {
        debug_assert!(odd & 1 == 1);
        self.seq.store(odd, Ordering::Relaxed);
    }

    /// The second half of [`SeqTick::write`], for a record already [`mark`](SeqTick::mark)ed by
    /// this writer: the data, then the complete sequence `even`.
    #[inline]
    pub fn write_marked(&self, tick: &Tick, even: u64) {
        debug_assert!(even & 1 == 0);
        // Orders the odd store (made here or earlier by `mark`) before the data stores (pairs
        // with the reader's Acquire fence).
        fence(Ordering::Release);
        let src: &[u64; TICK_WORDS] = bytemuck::cast_ref(tick);
        for (w, v) in self.words.iter().zip(src) {
            w.store(*v, Ordering::Relaxed);
        }
        // Publishes the data: a reader that Acquire-loads `even` sees every word above.
        self.seq.store(even, Ordering::Release);
    }

    /// Copies the tick out if the record holds sequence `want` throughout the copy.
    /// `Err(seen)` returns the sequence found instead (at the start, or changed during the copy).
    #[inline]
    pub fn read(&self, want: u64) -> Result<Tick, u64> {
        let s1 = self.seq.load(Ordering::Acquire); // pairs with the writer's final Release store
        if s1 != want {
            return Err(s1);
        }
        let mut out = [0u64; TICK_WORDS];
        for (o, w) in out.iter_mut().zip(&self.words) {
            *o = w.load(Ordering::Relaxed);
        }
        // Keeps the data loads before the re-check (pairs with the writer's Release fence).
        fence(Ordering::Acquire);
        let s2 = self.seq.load(Ordering::Relaxed);
        if s2 != s1 {
            return Err(s2);
        }
        Ok(bytemuck::cast(out))
    }

    /// Reads a last-value entry (whose sequence is 0 until its first write, odd while being
    /// written, even when complete): `Ok(None)` before the first write, `Err` when every one of
    /// a bounded number of attempts met a write in progress ([`Contended`]) (the writer never pauses on one entry
    /// for long, so this means a writer stopped mid-write or an extraordinarily hot entry).
    pub fn read_latest(&self) -> Result<Option<Tick>, Contended> {
        for _ in 0..LATEST_ATTEMPTS {
            let s = self.seq.load(Ordering::Acquire);
            if s == 0 {
                return Ok(None);
            }
            if s & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            if let Ok(t) = self.read(s) {
                return Ok(Some(t));
            }
        }
        Err(Contended)
    }

    /// The field groups the record's tick holds, as the writer sees them (no race: only the writer
    /// stores to this record). One word load instead of a whole copy.
    #[inline]
    pub fn own_valid(&self) -> u32 {
        // `Tick::valid` is bytes 4..8 of word 0 (asserted in `tick.rs`); native-endian bytes of
        // the word are its bytes in memory, so this holds on either endianness.
        let w = self.words[0].load(Ordering::Relaxed).to_ne_bytes();
        u32::from_ne_bytes([w[4], w[5], w[6], w[7]])
    }

    /// The writer's own view of the data (no race: only the writer stores to this record).
    #[inline]
    pub fn read_own(&self) -> Tick {
        let mut out = [0u64; TICK_WORDS];
        for (o, w) in out.iter_mut().zip(&self.words) {
            *o = w.load(Ordering::Relaxed);
        }
        bytemuck::cast(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Box<SeqTick> {
        // SAFETY-free construction: every field of SeqTick is valid when zeroed.
        Box::new(SeqTick {
            seq: AtomicU64::new(0),
            health: AtomicU8::new(0),
            _pad_health: [0; 7],
            _pad: [0; 6],
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        })
    }

    #[test]
    fn a_copy_round_trips() {
        let r = record();
        let mut t = Tick::new(3);
        t.ltp = 123;
        t.iv = 0.25;
        r.write(1, &t, 2);
        assert_eq!(r.read(2), Ok(t));
        assert_eq!(
            r.read(4),
            Err(2),
            "wrong sequence is reported, not returned"
        );
    }

    #[test]
    fn an_in_progress_write_is_never_returned() {
        let r = record();
        r.seq.store(5, Ordering::Relaxed); // a writer stopped mid-copy
        assert_eq!(r.read(4), Err(5));
        assert_eq!(r.read(6), Err(5));
    }

    /// A writer rewriting one record as fast as it can and readers copying it: every copy a reader
    /// accepts must be internally consistent (all words from the same write).
    #[test]
    fn concurrent_copies_are_never_torn() {
        let rec = record();
        let r: &SeqTick = &rec;
        let stop = std::sync::atomic::AtomicBool::new(false);
        let torn: u64 = std::thread::scope(|sc| {
            sc.spawn(|| {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let mut t = Tick::new(n as u32);
                    t.seq = n;
                    t.ltp = n as i64;
                    t.bids[4].price = n as i64;
                    t._reserved1[3] = n;
                    r.write(2 * n + 1, &t, 2 * n + 2);
                }
            });
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    sc.spawn(|| {
                        let (mut ok, mut torn) = (0u64, 0u64);
                        // Bounded in both count and time: a reader racing a full-speed writer on
                        // a loaded 2-core machine may see mostly torn copies. Miri checks every
                        // access for races but runs ~10^4× slower: a few copies suffice there.
                        let start = std::time::Instant::now();
                        let want = if cfg!(miri) { 20 } else { 10_000 };
                        while ok < want && start.elapsed() < std::time::Duration::from_secs(3) {
                            let s = r.seq.load(Ordering::Relaxed);
                            if s & 1 == 1 {
                                continue;
                            }
                            match r.read(s) {
                                Ok(t) => {
                                    let n = t.seq;
                                    assert_eq!(
                                        s,
                                        2 * n + 2 * (n > 0) as u64,
                                        "sequence matches content"
                                    );
                                    assert!(
                                        t.ltp == n as i64
                                            && t.bids[4].price == n as i64
                                            && t._reserved1[3] == n
                                    );
                                    ok += 1;
                                }
                                Err(_) => torn += 1,
                            }
                        }
                        assert!(ok > 0, "some copies must succeed");
                        torn
                    })
                })
                .collect();
            let torn = readers.into_iter().map(|h| h.join().unwrap()).sum();
            stop.store(true, Ordering::Relaxed);
            torn
        });
        // Not asserted > 0: on a quiet machine the race may never hit; correctness is the asserts above.
        eprintln!("detected and retried {torn} torn copies");
    }
}
