//! The journal through its public API: written by the writer thread, read back by `read`.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::format::{self, Kind};
use super::read::{segment_paths, ReadError, SegmentReader, Segments};
use super::*;

/// 2026-12-03 10:00:00 IST in ns.
const T0: i64 = 1_796_272_200_000_000_000;
const SEC: i64 = 1_000_000_000;

fn cfg(dir: &Path) -> JournalConfig {
    JournalConfig {
        dir: dir.to_path_buf(),
        ring_bytes: 1 << 16,
        ..JournalConfig::default()
    }
}

/// A record as read: (kind, feed, conn, ts, payload).
type Rec = (Kind, u8, u8, i64, Vec<u8>);

/// Every record of a journal.
fn all(dir: &Path) -> (Vec<Rec>, Segments) {
    let mut s = Segments::open(dir).unwrap();
    let mut v = Vec::new();
    while let Some(r) = s.next_record().unwrap() {
        v.push((r.kind, r.feed, r.conn, r.ts_ns, r.payload.to_vec()));
    }
    (v, s)
}

#[test]
fn frames_and_events_round_trip_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::start(cfg(dir.path())).unwrap();
    let mut a = j.appender(1, "kite");
    a.event(0, T0, Event::Connect);
    a.event(
        0,
        T0 + 1,
        Event::Subscribe {
            mode: 2,
            symbols: &["NSE:SBIN"],
        },
    );
    for i in 0..100 {
        a.frame(0, T0 + 2 + i, true, &[i as u8; 200]);
    }
    a.event(0, T0 + 200, Event::Disconnect { reason: "eof" });
    let stats = j.stats();
    j.stop().unwrap();
    assert_eq!(stats.frames.load(Ordering::Relaxed), 100);
    assert_eq!(stats.segments.load(Ordering::Relaxed), 1);
    let (v, s) = all(dir.path());
    assert_eq!(v.len(), 103);
    assert_eq!(v[0].0, Kind::Connect);
    assert_eq!(v[1].0, Kind::Subscribe);
    assert_eq!(v[2], (Kind::Frame, 1, 0, T0 + 2, vec![0; 200]));
    assert_eq!(v[101].4, vec![99; 200]);
    assert_eq!(v[102], (Kind::Disconnect, 1, 0, T0 + 200, b"eof".to_vec()));
    assert!(s.torn_tails().is_empty());
    let p = &segment_paths(dir.path()).unwrap()[0];
    assert!(p.ends_with("2026-12-03/000001.twj"), "{}", p.display());
    let r = SegmentReader::open(p).unwrap();
    assert_eq!(r.header().feeds, vec![(1, "kite".to_string())]);
}

#[test]
fn rolls_by_size_and_by_ist_trading_day() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::start(JournalConfig {
        segment_bytes: 2000,
        ..cfg(dir.path())
    })
    .unwrap();
    let mut a = j.appender(0, "upstox");
    for i in 0..20 {
        a.frame(0, T0 + i, false, &[1; 200]); // 220 bytes a record: 9 per 2000-byte segment
    }
    // 23:59:59 IST, then 00:00:01 IST the next day (18:30 UTC is IST midnight).
    let midnight = T0 + 14 * 3600 * SEC;
    a.frame(0, midnight - SEC, false, b"late");
    a.frame(0, midnight + SEC, false, b"next day");
    a.frame(0, midnight - 2 * SEC, false, b"older, after the roll"); // stays: rolls go forward
    j.stop().unwrap();
    let paths = segment_paths(dir.path()).unwrap();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "2026-12-03/000001.twj",
            "2026-12-03/000002.twj",
            "2026-12-03/000003.twj",
            "2026-12-04/000001.twj"
        ]
    );
    for p in &paths {
        assert!(std::fs::metadata(p).unwrap().len() <= 2000 + 64);
    }
    let (v, _) = all(dir.path());
    assert_eq!(v.len(), 23);
    assert_eq!(v[21].4, b"next day");
}

#[test]
fn a_restart_continues_after_the_last_segment() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let mut j = Journal::start(cfg(dir.path())).unwrap();
        j.appender(0, "kite").frame(0, T0, true, b"x");
        j.stop().unwrap();
    }
    let paths = segment_paths(dir.path()).unwrap();
    assert_eq!(paths.len(), 2);
    assert!(paths[1].ends_with("000002.twj"));
}

#[test]
fn a_full_ring_gives_a_gap_record_with_the_count() {
    let dir = tempfile::tempdir().unwrap();
    // A ring of 1000 bytes, and a writer that cannot drain before the burst ends: most drop.
    let mut j = Journal::start(JournalConfig {
        ring_bytes: 1000,
        ..cfg(dir.path())
    })
    .unwrap();
    let mut a = j.appender(2, "dhan");
    for i in 0..1000 {
        a.frame(0, T0 + i, true, &[0; 200]);
    }
    let missed_now = a.pending_missed();
    std::thread::sleep(Duration::from_millis(50));
    a.frame(0, T0 + 5000, true, b"after");
    let stats = j.stats();
    drop(a);
    j.stop().unwrap();
    let (v, _) = all(dir.path());
    let frames = v.iter().filter(|r| r.0 == Kind::Frame).count() as u64;
    let told: u64 = v
        .iter()
        .filter(|r| r.0 == Kind::Gap)
        .map(|r| u64::from_le_bytes(r.4[..8].try_into().unwrap()))
        .sum();
    assert!(missed_now > 0);
    assert_eq!(frames + told, 1001, "every frame written or counted");
    assert_eq!(stats.missed.load(Ordering::Relaxed), told);
    assert_eq!(v.last().unwrap().4, b"after");
}

#[test]
fn sync_every_fsyncs_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let sync = SyncPolicy::Every(Duration::from_millis(5));
    let mut j = Journal::start(JournalConfig {
        sync,
        ..cfg(dir.path())
    })
    .unwrap();
    let mut a = j.appender(0, "kite");
    a.frame(0, T0, true, &[7; 100]);
    // Flushed (and fsynced) without a stop: the file holds the record while the journal runs.
    let path = dir.path().join("2026-12-03/000001.twj");
    let want = format::encode_header(0, &[(0, "kite".into())]).len() + format::RECORD_MIN + 100;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < want as u64 {
        assert!(std::time::Instant::now() < deadline, "not synced");
        std::thread::sleep(Duration::from_millis(5));
    }
    j.stop().unwrap();
}

#[test]
fn a_feed_added_mid_segment_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::start(cfg(dir.path())).unwrap();
    let mut a = j.appender(0, "kite");
    a.frame(0, T0, true, b"a");
    std::thread::sleep(Duration::from_millis(30));
    let mut b = j.appender(1, "fyers");
    b.frame(0, T0 + 1, true, b"b");
    j.stop().unwrap();
    let (v, _) = all(dir.path());
    let feed = v.iter().find(|r| r.0 == Kind::Feed).unwrap();
    assert_eq!((feed.1, feed.4.as_slice()), (1, &b"fyers"[..]));
}

fn one_segment(dir: &Path) -> std::path::PathBuf {
    let mut j = Journal::start(cfg(dir)).unwrap();
    let mut a = j.appender(0, "kite");
    for i in 0..10 {
        a.frame(0, T0 + i, true, &[i as u8; 50]);
    }
    j.stop().unwrap();
    segment_paths(dir).unwrap().remove(0)
}

#[test]
fn a_torn_tail_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = one_segment(dir.path());
    let full = std::fs::read(&p).unwrap();
    // Cut mid-record, a bad CRC in the last record, and a zero-filled tail: each torn.
    for bytes in [
        full[..full.len() - 30].to_vec(),
        {
            let mut b = full.clone();
            let n = b.len();
            b[n - 10] ^= 0xff;
            b
        },
        [full.clone(), vec![0; 4096]].concat(),
    ] {
        std::fs::write(&p, &bytes).unwrap();
        let (v, s) = all(dir.path());
        let torn = s.torn_tails();
        assert_eq!(torn.len(), 1);
        assert!(v.len() >= 9, "{}", v.len());
        assert_eq!(torn[0].offset + torn[0].bytes, bytes.len() as u64);
    }
    // The header cut: no records, torn at 0.
    std::fs::write(&p, &full[..10]).unwrap();
    let (v, s) = all(dir.path());
    assert!(v.is_empty());
    assert_eq!(s.torn_tails()[0].offset, 0);
}

#[test]
fn damage_mid_file_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = one_segment(dir.path());
    let mut b = std::fs::read(&p).unwrap();
    let hlen = SegmentReader::open(&p).unwrap().header().len;
    b[hlen + 20] ^= 1; // a payload byte of the first record
    std::fs::write(&p, &b).unwrap();
    let mut s = Segments::open(dir.path()).unwrap();
    let e = s.next_record().unwrap_err();
    assert!(matches!(e, ReadError::Corrupt { offset, .. } if offset == hlen as u64));
    let msg = e.to_string();
    assert!(
        msg.contains("000001.twj") && msg.contains(&format!("offset {hlen}")),
        "{msg}"
    );
}

#[test]
fn any_bytes_read_without_panic() {
    let seg = [
        format::encode_header(1, &[(0, "k".into())]),
        format::encode_record(Kind::Frame, 0, 0, 1, 5, b"abc"),
        format::encode_record(Kind::Gap, 0, 0, 0, 6, &3u64.to_le_bytes()),
    ]
    .concat();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..3000 {
        let mut b = seg.clone();
        for _ in 0..3 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state % b.len() as u64) as usize;
            b[at] = (state >> 32) as u8;
        }
        let cut = (state >> 40) as usize % (b.len() + 1);
        let b = &b[..cut];
        if let Ok(mut r) = SegmentReader::new(b, Path::new("fuzz"), b.len() as u64) {
            while let Ok(Some(rec)) = r.next_record() {
                let _ = (rec.gap_missed(), rec.symbols().count(), rec.mode());
            }
        }
    }
}

#[test]
fn after_a_crash_the_restart_segment_is_read_past_the_torn_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = one_segment(dir.path());
    // The crash: the first run's segment ends inside its last record.
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let mut j = Journal::start(cfg(dir.path())).unwrap();
    j.appender(0, "kite")
        .frame(0, T0 + 100, true, b"after restart");
    j.stop().unwrap();
    let (v, s) = all(dir.path());
    assert_eq!(v.len(), 9 + 1);
    assert_eq!(v.last().unwrap().4, b"after restart");
    assert_eq!(s.torn_tails().len(), 1);
    assert_eq!(s.torn_tails()[0].path, p);
}
