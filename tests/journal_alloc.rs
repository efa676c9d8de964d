//! `Appender::frame` and `Appender::event` allocate nothing, with the writer thread draining to a
//! segment at the same time (it allocates nothing in steady state either), and a full ring (the
//! drop path, then the gap record) allocates nothing. A counting global allocator watches the
//! whole process; one test in this binary on purpose, since the counter is process-wide.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tickwire_io::journal::{Event, Journal, JournalConfig};

#[path = "common/counting.rs"]
mod counting;
use counting::ALLOCS;

/// 2026-12-03 10:00 IST.
const T0: i64 = 1_796_272_200_000_000_000;

#[test]
fn appending_allocates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = JournalConfig {
        dir: tmp.path().to_path_buf(),
        ring_bytes: 64 << 10,
        ..JournalConfig::default()
    };
    let mut j = Journal::start(cfg).unwrap();
    let mut a = j.appender(0, "kite");
    let stats = j.stats();
    let frame = [1u8; 200];
    let wait = |want: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        // Written or dropped (a slow debug writer may let the ring fill: that path is timed too).
        while stats.frames.load(Ordering::Relaxed) + stats.missed.load(Ordering::Relaxed) < want {
            assert!(
                Instant::now() < deadline,
                "writer stuck at {} of {want}, {} missed",
                stats.frames.load(Ordering::Relaxed),
                stats.missed.load(Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    // Warm: the segment is open and the writer has run its loop.
    a.frame(0, T0, true, &frame);
    wait(1);
    std::thread::sleep(Duration::from_millis(20));

    let before = ALLOCS.load(Ordering::Relaxed);
    let mut sent = 1;
    for i in 0..10_000 {
        a.frame(0, T0 + i, true, &frame);
        sent += 1;
        if i % 200 == 0 {
            a.event(
                0,
                T0 + i,
                Event::Subscribe {
                    mode: 3,
                    symbols: &["NSE:SBIN", "NSE:INFY"],
                },
            );
            a.event(
                0,
                T0 + i,
                Event::Unsubscribe {
                    symbols: &["NSE:SBIN"],
                },
            );
            a.event(0, T0 + i, Event::Disconnect { reason: "eof" });
            a.event(0, T0 + i, Event::Connect);
            wait(sent);
        }
    }
    // Overfill the ring: drops, then a gap record before the next frame that fits.
    for i in 0..2_000 {
        a.frame(0, T0 + i, true, &frame);
    }
    assert!(a.pending_missed() > 0);
    std::thread::sleep(Duration::from_millis(50));
    a.frame(0, T0 + 3, true, &frame);
    assert_eq!(a.pending_missed(), 0);
    std::thread::sleep(Duration::from_millis(20));
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    drop(a);
    j.stop().unwrap();
    assert_eq!(allocs, 0, "allocations while appending");
    assert!(stats.gaps.load(Ordering::Relaxed) >= 1);
}
