//! Writer and reader through a real mapped file: round trips, laps counted exactly, bad files refused,
//! and a concurrency stress run of the seqlocked ring.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tickwire_engine::symbols::SymbolRegistry;
use tickwire_engine::tick::valid;
use tickwire_engine::Tick;
use tickwire_shm::{Event, OpenOptions, Reader, ShmError, Writer, WriterConfig, WriterStatus};

fn registry(n: u32) -> SymbolRegistry {
    let mut r = SymbolRegistry::with_capacity(n as usize);
    for i in 0..n {
        r.register("NSE", &format!("S{i}"), &format!("{}", 1000 + i))
            .unwrap();
    }
    r
}

/// Tick at ring position `p`: content derived from `p` so any mix-up of slots shows.
fn tick_at(p: u64, symbols: u32) -> Tick {
    let mut t = Tick::new((p % symbols as u64) as u32);
    t.valid = valid::LTP | valid::DEPTH;
    t.seq = p;
    t.ltp = p as i64 * 7;
    t.last_qty = p ^ 0xABCD;
    t.bids[4].price = -(p as i64);
    t._reserved1[3] = p.rotate_left(17);
    t
}

fn check(t: &Tick, p: u64, symbols: u32) {
    assert_eq!(*t, tick_at(p, symbols), "content of position {p}");
}

fn writer(dir: &Path, ring: u64, symbols: u32) -> Writer {
    let cfg = WriterConfig {
        ring_capacity: ring,
        symbol_capacity: symbols as u64,
    };
    Writer::create(&dir.join("ticks"), &cfg, &registry(symbols)).unwrap()
}

#[test]
fn ticks_and_names_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 64, 4);
    let mut r = Reader::open(dir.path().join("ticks")).unwrap();
    assert_eq!(r.next(), None, "nothing yet");
    for p in 1..=10 {
        w.publish(&tick_at(p, 4));
    }
    for p in 1..=10 {
        match r.next() {
            Some(Event::Tick(t)) => check(&t, p, 4),
            other => panic!("position {p}: {other:?}"),
        }
    }
    assert_eq!(r.next(), None);
    assert_eq!(r.lookup("NSE", "S2"), Some(2));
    assert_eq!(r.lookup("NSE", "S9"), None);
    assert_eq!(r.symbol(3).unwrap().token, "1003");
    // Last value of symbol 2 is position 10 (10 % 4 == 2), merged.
    let last = r.last_value(2).unwrap().unwrap();
    let want = tick_at(10, 4);
    assert_eq!(
        (last.seq, last.ltp, last.last_qty, last.bids),
        (want.seq, want.ltp, want.last_qty, want.bids)
    );
    assert_eq!(r.last_value(99).unwrap(), None, "out of range");
    let r2 = Reader::open(dir.path().join("ticks")).unwrap();
    assert_eq!(
        r2.position(),
        11,
        "a new reader starts at the next new tick"
    );
}

#[test]
fn last_values_merge_field_groups() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 64, 2);
    let mut full = Tick::new(1);
    full.valid = valid::LTP | valid::QUOTE;
    full.ltp = 10;
    full.volume = 500;
    w.publish(&full);
    let mut ltp = Tick::new(1);
    ltp.valid = valid::LTP;
    ltp.ltp = 11;
    w.publish(&ltp);
    let r = Reader::open(dir.path().join("ticks")).unwrap();
    let last = r.last_value(1).unwrap().unwrap();
    assert_eq!((last.ltp, last.volume), (11, 500));
    assert!(last.has(valid::QUOTE));
    assert_eq!(r.last_value(0).unwrap(), None, "never ticked");
}

/// The writer replaces a last value whole only when the new tick carries every group the old one
/// holds (a Kite full packet after full packets); otherwise it merges.
#[test]
fn a_full_tick_replaces_and_a_partial_one_merges() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 64, 2);
    let r = Reader::open(dir.path().join("ticks")).unwrap();
    let kite_full = |ltp: i64, bid: i64| {
        let mut t = Tick::new(1);
        t.valid = valid::LTP | valid::QUOTE | valid::DEPTH | valid::OI;
        t.exchange_ts_ns = 1_700_000_000_000_000_000 + ltp;
        t.ltp = ltp;
        t.volume = 7;
        t.bids[0].price = bid;
        t
    };
    w.publish(&kite_full(100, 99));
    w.publish(&kite_full(101, 98));
    let last = r.last_value(1).unwrap().unwrap();
    assert_eq!((last.ltp, last.bids[0].price), (101, 98));

    // Greeks from elsewhere, then a full tick without greeks: the greeks must survive.
    let mut g = Tick::new(1);
    g.valid = valid::GREEKS;
    g.exchange_ts_ns = 1;
    g.delta = 0.5;
    w.publish(&g);
    w.publish(&kite_full(102, 97));
    let last = r.last_value(1).unwrap().unwrap();
    assert_eq!((last.ltp, last.bids[0].price, last.delta), (102, 97, 0.5));
    assert!(last.has(valid::GREEKS) && last.has(valid::DEPTH));

    // An LTP tick with a timestamp keeps depth and quote.
    let mut l = Tick::new(1);
    l.valid = valid::LTP;
    l.exchange_ts_ns = 5;
    l.ltp = 103;
    w.publish(&l);
    let last = r.last_value(1).unwrap().unwrap();
    assert_eq!((last.ltp, last.bids[0].price, last.volume), (103, 97, 7));
}

#[test]
fn a_lapped_reader_is_told_exactly_how_many_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 16, 3);
    let mut r = Reader::open(dir.path().join("ticks")).unwrap();
    for p in 1..=3 {
        w.publish(&tick_at(p, 3));
    }
    for p in 1..=3 {
        assert!(matches!(r.next(), Some(Event::Tick(t)) if t.seq == p));
    }
    // The writer goes 40 positions further while the reader sleeps: positions 4..=43.
    for p in 4..=43 {
        w.publish(&tick_at(p, 3));
    }
    let Some(Event::Lagged { lost }) = r.next() else {
        panic!("expected a lap")
    };
    let resume = r.position();
    assert_eq!(resume, 4 + lost, "lost positions are exactly those skipped");
    let mut p = resume;
    while let Some(ev) = r.next() {
        let Event::Tick(t) = ev else {
            panic!("second lap without writes")
        };
        check(&t, p, 3);
        p += 1;
    }
    assert_eq!(p, 44, "everything after the resume point arrives");
}

#[test]
fn seek_oldest_replays_the_ring() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 8, 2);
    for p in 1..=20 {
        w.publish(&tick_at(p, 2));
    }
    let mut r = Reader::open(dir.path().join("ticks")).unwrap();
    r.seek_oldest();
    // 8 slots hold the newest 7 positions: slot 21 & 7 (position 13's) is already marked for 21.
    assert_eq!(r.position(), 14);
    let got: Vec<u64> = std::iter::from_fn(|| match r.next() {
        Some(Event::Tick(t)) => Some(t.seq),
        _ => None,
    })
    .collect();
    assert_eq!(got, (14..=20).collect::<Vec<_>>());
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn bad_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let loose = OpenOptions {
        require_live: false,
        ..OpenOptions::default()
    };
    assert!(matches!(Reader::open(&path), Err(ShmError::Missing { .. })));
    let mut w = writer(dir.path(), 16, 2);
    w.close();
    match Reader::open(&path) {
        Err(ShmError::NotLive {
            status: WriterStatus::Closed,
            ..
        }) => {}
        other => panic!("closed file: {:?}", other.err()),
    }
    assert!(
        Reader::open_with(&path, loose).is_ok(),
        "inspectable when asked"
    );

    // another major version
    let copy = dir.path().join("v2");
    std::fs::copy(&path, &copy).unwrap();
    patch(&copy, 8, &(2u32 << 16).to_le_bytes());
    let e = Reader::open_with(&copy, loose).err().unwrap();
    assert!(
        matches!(
            e,
            ShmError::Version {
                found_major: 2,
                expected: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("2.0") && e.to_string().contains("1.x"));

    // a different tick size
    std::fs::copy(&path, &copy).unwrap();
    patch(&copy, 12, &256u32.to_le_bytes());
    let e = Reader::open_with(&copy, loose).err().unwrap();
    assert!(
        matches!(
            e,
            ShmError::Layout {
                field: "tick_size",
                found: 256,
                expected: 384,
                ..
            }
        ),
        "{e}"
    );

    // truncated
    std::fs::copy(&path, &copy).unwrap();
    let len = std::fs::metadata(&copy).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let e = Reader::open_with(&copy, loose).err().unwrap();
    assert!(matches!(e, ShmError::Undersized { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!(
            "need a file of {len} bytes but the file has {}",
            len - 1
        )),
        "{e}"
    );

    // not ours
    std::fs::write(&copy, vec![7u8; 8192]).unwrap();
    assert!(matches!(
        Reader::open_with(&copy, loose),
        Err(ShmError::BadMagic { .. })
    ));
}

#[test]
fn the_writer_never_waits_and_readers_see_gap_free_or_exact_laps() {
    // Stress: one writer thread at full speed over a small ring, three readers, two of them slowed.
    let dir = tempfile::tempdir().unwrap();
    let total: u64 = if cfg!(debug_assertions) {
        300_000
    } else {
        3_000_000
    };
    let mut w = writer(dir.path(), 256, 5);
    let path = dir.path().join("ticks");
    let start = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3u32)
        .map(|k| {
            let mut r = Reader::open(&path).unwrap();
            let start = start.clone();
            std::thread::spawn(move || {
                while !start.load(Ordering::Acquire) {}
                let (mut got, mut lost, mut laps) = (0u64, 0u64, 0u64);
                let mut expect = r.position();
                while expect <= total {
                    match r.next() {
                        Some(Event::Tick(t)) => {
                            check(&t, expect, 5);
                            expect += 1;
                            got += 1;
                            if k > 0 && got % 64 == 0 {
                                for _ in 0..(k * 2000) {
                                    std::hint::spin_loop();
                                }
                            }
                        }
                        Some(Event::Lagged { lost: n }) => {
                            assert_eq!(
                                r.position(),
                                expect + n,
                                "a lap skips exactly `lost` positions"
                            );
                            expect += n;
                            lost += n;
                            laps += 1;
                        }
                        None => std::hint::spin_loop(),
                    }
                }
                assert_eq!(
                    got + lost,
                    total,
                    "every position is either read or counted lost"
                );
                (got, lost, laps)
            })
        })
        .collect();
    start.store(true, Ordering::Release);
    for p in 1..=total {
        w.publish(&tick_at(p, 5));
    }
    for (k, h) in readers.into_iter().enumerate() {
        let (got, lost, laps) = h.join().unwrap();
        eprintln!("reader {k}: read {got}, lost {lost} in {laps} laps");
    }
}

#[test]
fn seek_resumes_at_a_saved_position_and_reports_a_lapped_one_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = writer(dir.path(), 16, 2);
    let mut r = Reader::open(dir.path().join("ticks")).unwrap();
    assert!(r.instance() > 0, "a 1.3 file names its incarnation");
    for p in 1..=10 {
        w.publish(&tick_at(p, 2));
    }
    r.seek(4);
    assert!(matches!(r.next(), Some(Event::Tick(t)) if t.seq == 4));
    // A new file at the same path is another incarnation.
    let before = r.instance();
    std::thread::sleep(std::time::Duration::from_millis(2));
    drop(w);
    let mut w = writer(dir.path(), 16, 2);
    let mut r = Reader::open(dir.path().join("ticks")).unwrap();
    assert_ne!(r.instance(), before);
    for p in 1..=40 {
        w.publish(&tick_at(p, 2));
    }
    // Position 5 was overwritten: the lap is reported from exactly there.
    r.seek(5);
    let Some(Event::Lagged { lost }) = r.next() else {
        panic!("expected a lap")
    };
    assert_eq!(r.position(), 5 + lost);
    let p = r.position();
    assert!(matches!(r.next(), Some(Event::Tick(t)) if t.seq == p));
}
